// Runs graphql-http's audit of a GraphQL-over-HTTP server and prints one JSON line per
// audit: {"id", "name", "status": "ok" | "warn" | "notice" | "error", "reason"}.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}
const results = await auditServer({ url });
for (const result of results) {
  console.log(JSON.stringify({ id: result.id, name: result.name, status: result.status, reason: result.reason ?? null }));
}
