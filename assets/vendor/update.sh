#!/usr/bin/env bash
# Refreshes the third-party browser files Switchyard serves from its binary (GraphiQL at `/`,
# graphql-ws for the dashboard at `/dashboard`). Nothing is built: each file is the package's
# own minified UMD build, taken from the npm registry at the pinned version, checked against
# the registry's integrity hash, with its source-map comment removed (the maps are not shipped).
# Run from anywhere: `bash assets/vendor/update.sh`; then commit the changed files.
set -euo pipefail
cd "$(dirname "$0")"

# package@version  file-in-package  name-here
FILES=(
  "react@18.3.1 umd/react.production.min.js react.production.min.js"
  "react-dom@18.3.1 umd/react-dom.production.min.js react-dom.production.min.js"
  "graphiql@3.9.0 graphiql.min.js graphiql.min.js"
  "graphiql@3.9.0 graphiql.min.css graphiql.min.css"
  "graphql-ws@5.16.0 umd/graphql-ws.min.js graphql-ws.min.js"
)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
: > LICENSES.txt
for entry in "${FILES[@]}"; do
  read -r package file name <<<"$entry"
  dir="$work/${package//[@\/]/_}"
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    tarball="$(cd "$work" && npm pack "$package" --silent)"
    expected="$(npm view "$package" dist.integrity)"
    actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
    [ "$expected" = "$actual" ] || { echo "$package: integrity $actual, registry says $expected" >&2; exit 1; }
    tar xzf "$work/$tarball" -C "$dir"
    { echo "== $package =="; cat "$dir/package/LICENSE"* 2>/dev/null; echo; } >> LICENSES.txt
  fi
  sed -e 's|//# sourceMappingURL=[^ ]*$||' -e 's|/\*# sourceMappingURL=[^ ]* \*/||' "$dir/package/$file" > "$name"
  echo "$package $file -> $name ($(wc -c < "$name") bytes)"
done
