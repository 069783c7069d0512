//! Random GraphQL documents and variable values, built from the server's own introspection
//! and thrown at it as every kind of caller (#9, the reliability suite): whatever comes in,
//! every request is answered, and no error is INTERNAL (bad input is BAD_USER_INPUT, a
//! missing object NOT_FOUND, and so on) — an INTERNAL error or a dropped connection is a
//! fault no input should reach.
//!
//! Documents pick random root fields of the query and mutation types, random arguments
//! (omitted, inline or as variables; valid-looking values, extremes, wrong types, nulls) and
//! random selections up to a few levels deep. `FUZZ_CASES` (default 3000) and `FUZZ_SEED`
//! (default: random, printed) reproduce a run.

use std::collections::HashMap;
use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use switchyard::domain::Role;

use crate::helpers::{Fixture, TestApp, spawn_app_with};

const INTROSPECTION: &str = "{ __schema { queryType { name } mutationType { name } types { kind name
  fields(includeDeprecated: true) { name args { name type { ...T } } type { ...T } }
  inputFields { name type { ...T } } enumValues(includeDeprecated: true) { name } } } }
  fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

/// A type reference: NON_NULL and LIST wrap a named type.
#[derive(Clone, Debug)]
enum TypeRef {
    NonNull(Box<TypeRef>),
    List(Box<TypeRef>),
    Named(String),
}

impl TypeRef {
    fn parse(value: &Value) -> Self {
        match value["kind"].as_str() {
            Some("NON_NULL") => Self::NonNull(Box::new(Self::parse(&value["ofType"]))),
            Some("LIST") => Self::List(Box::new(Self::parse(&value["ofType"]))),
            _ => Self::Named(value["name"].as_str().unwrap_or_default().to_owned()),
        }
    }

    fn named(&self) -> &str {
        match self {
            Self::NonNull(inner) | Self::List(inner) => inner.named(),
            Self::Named(name) => name,
        }
    }

    fn render(&self) -> String {
        match self {
            Self::NonNull(inner) => format!("{}!", inner.render()),
            Self::List(inner) => format!("[{}]", inner.render()),
            Self::Named(name) => name.clone(),
        }
    }
}

struct Field {
    name: String,
    args: Vec<(String, TypeRef)>,
    ty: TypeRef,
}

struct Type {
    kind: String,
    fields: Vec<Field>,
    input_fields: Vec<(String, TypeRef)>,
    enum_values: Vec<String>,
}

struct Schema {
    query: String,
    mutation: String,
    types: HashMap<String, Type>,
}

impl Schema {
    fn from_introspection(data: &Value) -> Self {
        let schema = &data["__schema"];
        let mut types = HashMap::new();
        for t in schema["types"].as_array().unwrap() {
            let args = |list: &Value| -> Vec<(String, TypeRef)> {
                list.as_array()
                    .map(|a| {
                        a.iter().map(|x| (x["name"].as_str().unwrap().to_owned(), TypeRef::parse(&x["type"]))).collect()
                    })
                    .unwrap_or_default()
            };
            let fields = t["fields"]
                .as_array()
                .map(|fields| {
                    fields
                        .iter()
                        .map(|f| Field {
                            name: f["name"].as_str().unwrap().to_owned(),
                            args: args(&f["args"]),
                            ty: TypeRef::parse(&f["type"]),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let enum_values = t["enumValues"]
                .as_array()
                .map(|v| v.iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            types.insert(
                t["name"].as_str().unwrap().to_owned(),
                Type {
                    kind: t["kind"].as_str().unwrap().to_owned(),
                    fields,
                    input_fields: args(&t["inputFields"]),
                    enum_values,
                },
            );
        }
        Self {
            query: schema["queryType"]["name"].as_str().unwrap().to_owned(),
            mutation: schema["mutationType"]["name"].as_str().unwrap_or_default().to_owned(),
            types,
        }
    }
}

/// Builds one document and its variables.
struct Generator<'s> {
    schema: &'s Schema,
    rng: StdRng,
    variables: Map<String, Value>,
    declarations: Vec<String>,
    /// Whether to send invalid values on purpose too (wrong kinds, nulls for non-null types,
    /// unknown enum values, missing required arguments); otherwise values are only odd.
    hostile: bool,
}

const STRINGS: &[&str] = &[
    "",
    "a",
    "1",
    "-1",
    "0",
    "USD",
    "EUR",
    "DE",
    "P1M",
    "2026-11",
    "2026-13",
    "2026-11-26T00:00:00Z",
    "not a date",
    "ü💥\u{202e}",
    "\u{0}",
    "'; DROP TABLE orders; --",
    "reseller@northwind.demo",
    "9999999999999999999999999999",
    "1e400",
    "NaN",
    "null",
    "{\"a\":1}",
];

impl Generator<'_> {
    fn string(&mut self) -> String {
        match self.rng.gen_range(0..10) {
            0 => "x".repeat(self.rng.gen_range(200..5000)),
            1 => (0..self.rng.gen_range(1..20)).map(|_| self.rng.gen_range(' '..'~')).collect(),
            _ => (*STRINGS.choose(&mut self.rng).unwrap()).to_owned(),
        }
    }

    fn scalar(&mut self, name: &str) -> Value {
        // Now and then, a value of the wrong kind.
        if self.hostile && self.rng.gen_ratio(1, 12) {
            return [json!("x"), json!(1), json!(true), json!({"a": 1}), json!([1]), json!(1.5)]
                .choose(&mut self.rng)
                .unwrap()
                .clone();
        }
        match name {
            "Int" => json!(
                [0i64, 1, 2, 3, -1, 7, 100, 1_000_000, 1_000_001, i64::from(i32::MAX), i64::from(i32::MIN)]
                    .choose(&mut self.rng)
                    .unwrap()
            ),
            "Float" => json!([0.0, -1.5, 1e300, 3.25].choose(&mut self.rng).unwrap()),
            "Boolean" => json!(self.rng.gen_bool(0.5)),
            "ID" => json!(
                ["1", "2", "3", "0", "-1", "999999999999", "9223372036854775807", "99999999999999999999", "abc", ""]
                    .choose(&mut self.rng)
                    .unwrap()
            ),
            "Decimal" => json!(
                [
                    "0",
                    "1",
                    "1.5",
                    "-1",
                    "0.19",
                    "100",
                    "1e30",
                    "79228162514264337593543950335",
                    "0.00000000000000000001",
                    "abc"
                ]
                .choose(&mut self.rng)
                .unwrap()
            ),
            "DateTime" => json!(
                [
                    "2026-11-26T00:00:00Z",
                    "2026-02-30T00:00:00Z",
                    "9999-12-31T23:59:59Z",
                    "1970-01-01T00:00:00Z",
                    "0000-01-01T00:00:00Z",
                    "x"
                ]
                .choose(&mut self.rng)
                .unwrap()
            ),
            "JSON" => [
                json!({}),
                json!({"url": "http://127.0.0.1:9/x", "secret": "s"}),
                json!({"latencyMs": 99999999}),
                json!([]),
                json!("x"),
            ]
            .choose(&mut self.rng)
            .unwrap()
            .clone(),
            _ => json!(self.string()),
        }
    }

    /// A value of `ty`, as JSON (for a variable; rendered inline by `literal`).
    fn value(&mut self, ty: &TypeRef, depth: usize) -> Value {
        match ty {
            TypeRef::NonNull(inner) if self.hostile && self.rng.gen_ratio(1, 25) => {
                let _ = inner;
                Value::Null
            }
            TypeRef::NonNull(inner) => self.present(inner, depth),
            nullable if self.rng.gen_ratio(1, 10) => {
                let _ = nullable;
                Value::Null
            }
            nullable => self.present(nullable, depth),
        }
    }

    /// A value of `ty` other than null.
    fn present(&mut self, ty: &TypeRef, depth: usize) -> Value {
        match ty {
            TypeRef::NonNull(inner) => self.present(inner, depth),
            TypeRef::List(inner) => {
                let n = if depth > 3 { 0 } else { self.rng.gen_range(0..4) };
                Value::Array((0..n).map(|_| self.value(inner, depth + 1)).collect())
            }
            TypeRef::Named(name) => {
                let Some(t) = self.schema.types.get(name) else { return Value::Null };
                match t.kind.as_str() {
                    "ENUM" => {
                        if self.hostile && self.rng.gen_ratio(1, 15) {
                            json!("NOT_A_VALUE")
                        } else {
                            json!(t.enum_values.choose(&mut self.rng).cloned().unwrap_or_default())
                        }
                    }
                    "INPUT_OBJECT" => {
                        let mut object = Map::new();
                        for (field, field_ty) in &t.input_fields {
                            let required = matches!(field_ty, TypeRef::NonNull(_));
                            let wanted = match (required, self.hostile) {
                                (true, true) => 0.92,
                                (true, false) => 1.0,
                                (false, _) if depth >= 4 => 0.0,
                                (false, _) => 0.6,
                            };
                            if self.rng.gen_bool(wanted) {
                                let v = self.value(field_ty, depth + 1);
                                object.insert(field.clone(), v);
                            }
                        }
                        Value::Object(object)
                    }
                    _ => self.scalar(name),
                }
            }
        }
    }

    /// `value` as a GraphQL literal of `ty` (enums bare).
    fn literal(&self, ty: &TypeRef, value: &Value) -> String {
        let named = self.schema.types.get(ty.named());
        match value {
            Value::Null => "null".into(),
            Value::Array(items) => {
                let inner = match ty {
                    TypeRef::NonNull(t) => match t.as_ref() {
                        TypeRef::List(i) => i.as_ref().clone(),
                        other => other.clone(),
                    },
                    TypeRef::List(i) => i.as_ref().clone(),
                    other => other.clone(),
                };
                format!("[{}]", items.iter().map(|v| self.literal(&inner, v)).collect::<Vec<_>>().join(", "))
            }
            Value::Object(fields) => {
                let field_type = |name: &str| {
                    named
                        .and_then(|t| t.input_fields.iter().find(|(n, _)| n == name))
                        .map(|(_, t)| t.clone())
                        .unwrap_or(TypeRef::Named("String".into()))
                };
                let parts: Vec<String> =
                    fields.iter().map(|(k, v)| format!("{k}: {}", self.literal(&field_type(k), v))).collect();
                format!("{{{}}}", parts.join(", "))
            }
            Value::String(s)
                if named.is_some_and(|t| t.kind == "ENUM")
                    && !s.is_empty()
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                s.clone()
            }
            other => other.to_string(),
        }
    }

    fn arguments(&mut self, args: &[(String, TypeRef)]) -> String {
        let mut parts = Vec::new();
        for (name, ty) in args {
            let required = matches!(ty, TypeRef::NonNull(_));
            let keep_required = if self.hostile { 0.95 } else { 1.0 };
            if !self.rng.gen_bool(if required { keep_required } else { 0.4 }) {
                continue;
            }
            let value = self.value(ty, 0);
            if self.rng.gen_bool(0.5) {
                let variable = format!("v{}", self.variables.len());
                self.declarations.push(format!("${variable}: {}", ty.render()));
                self.variables.insert(variable.clone(), value);
                parts.push(format!("{name}: ${variable}"));
            } else {
                parts.push(format!("{name}: {}", self.literal(ty, &value)));
            }
        }
        if parts.is_empty() { String::new() } else { format!("({})", parts.join(", ")) }
    }

    fn selection(&mut self, type_name: &str, depth: usize) -> String {
        let Some(t) = self.schema.types.get(type_name) else { return String::new() };
        match t.kind.as_str() {
            "OBJECT" => {}
            "INTERFACE" | "UNION" => return "{ __typename }".into(),
            _ => return String::new(),
        }
        let candidates: Vec<&Field> = t.fields.iter().filter(|f| !f.name.starts_with("__")).collect();
        let count = self.rng.gen_range(1..=4).min(candidates.len().max(1));
        let mut out = String::from("{ ");
        let picked: Vec<&Field> = candidates.choose_multiple(&mut self.rng, count).copied().collect();
        if picked.is_empty() {
            out.push_str("__typename ");
        }
        for (n, field) in picked.into_iter().enumerate() {
            let nested_kind = self.schema.types.get(field.ty.named()).map(|t| t.kind.clone()).unwrap_or_default();
            if depth >= 4 && matches!(nested_kind.as_str(), "OBJECT" | "INTERFACE" | "UNION") {
                out.push_str("__typename ");
                continue;
            }
            let args = self.arguments(&field.args);
            let nested = self.selection(field.ty.named(), depth + 1);
            let _ = write!(out, "f{n}: {}{args} {nested} ", field.name);
        }
        out.push('}');
        out
    }

    fn document(&mut self) -> (String, Value) {
        let mutation = !self.schema.mutation.is_empty() && self.rng.gen_bool(0.4);
        let root = if mutation { self.schema.mutation.clone() } else { self.schema.query.clone() };
        let body = self.selection(&root, 0);
        let keyword = if mutation { "mutation" } else { "query" };
        let declarations =
            if self.declarations.is_empty() { String::new() } else { format!("({})", self.declarations.join(", ")) };
        (format!("{keyword} Fuzz{declarations} {body}"), Value::Object(std::mem::take(&mut self.variables)))
    }
}

/// Undoes what fuzzed mutations did to the callers themselves (a suspended reseller, a
/// disabled user), so that every caller's documents keep reaching the resolvers.
async fn restore_callers(app: &TestApp) {
    use sea_orm::ConnectionTrait;
    for sql in [
        "UPDATE vendors SET status = 'ACTIVE'",
        "UPDATE resellers SET status = 'ACTIVE'",
        "UPDATE customers SET status = 'ACTIVE'",
    ] {
        // A worker may lock one of these rows for a moment: PostgreSQL may pick this update as
        // a deadlock's victim, and it is tried again; any other error fails the test.
        let mut tries = 0;
        while let Err(error) = app.domain.db.execute_unprepared(sql).await {
            tries += 1;
            assert!(
                tries < 5 && error.to_string().contains("deadlock"),
                "restoring the callers' standing failed: {error}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    // Written behind the catalog's version: drop the cached catalog (vendors' status).
    app.domain.catalog.invalidate();
}

/// The callers documents are sent as.
fn callers(app: &TestApp, f: &Fixture) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("anonymous", None),
        ("operator", Some(app.operator())),
        ("vendor", Some(app.token(Role::Vendor, Some(f.vendor_a)))),
        ("reseller", Some(app.token(Role::Reseller, Some(f.reseller_a)))),
        ("customer", Some(app.token(Role::Customer, Some(f.customer_a)))),
    ]
}

#[tokio::test]
async fn random_documents_never_reach_an_internal_error() {
    // Standing is read on every request, so the restoring below takes effect at once.
    let app = spawn_app_with(|s| s.standing_ttl = std::time::Duration::ZERO).await;
    let f = Fixture::build(&app).await;
    let cases: usize = std::env::var("FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(3000);
    let seed: u64 = std::env::var("FUZZ_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("fuzz: {cases} documents, FUZZ_SEED={seed}");
    let schema = Schema::from_introspection(&app.data(&app.operator(), INTROSPECTION, json!({})).await);
    let callers = callers(&app, &f);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut faults = Vec::new();
    let mut codes: HashMap<String, usize> = HashMap::new();
    let mut executed = 0;
    let mut executed_as: HashMap<&str, (usize, usize)> = HashMap::new();
    let started = std::time::Instant::now();
    for case in 0..cases {
        if case % 25 == 0 {
            restore_callers(&app).await;
        }
        let mut generator = Generator {
            schema: &schema,
            rng: StdRng::seed_from_u64(rng.r#gen()),
            variables: Map::new(),
            declarations: Vec::new(),
            hostile: case % 2 == 1,
        };
        let (document, variables) = generator.document();
        let (who, token) = callers.choose(&mut rng).unwrap();
        let mut request = app
            .client
            .post(format!("{}/graphql", app.address))
            .json(&json!({"query": document, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                response.json::<Value>().await.map(|body| (status, body)).map_err(|e| e.to_string())
            }
            Err(error) => Err(error.to_string()),
        };
        let fault = match answer {
            Err(error) => Some(format!("no answer: {error}")),
            Ok((status, body)) => {
                let errors = body["errors"].as_array().cloned().unwrap_or_default();
                if std::env::var("FUZZ_VERBOSE").is_ok() && case % 2 == 0 {
                    eprintln!(
                        "  -> {}",
                        errors.iter().map(|e| e["message"].to_string()).collect::<Vec<_>>().join(" | ")
                    );
                }
                // Executed (resolvers ran) when the answer has `data`, null or not; a request
                // error (unparsable, invalid, over a limit) has none.
                let sent = executed_as.entry(who).or_default();
                sent.0 += 1;
                if body.get("data").is_some() {
                    executed += 1;
                    sent.1 += 1;
                }
                for error in &errors {
                    *codes.entry(error["extensions"]["code"].as_str().unwrap_or("(none)").to_owned()).or_default() += 1;
                }
                // 401: a fuzzed mutation may suspend the caller's own organisation.
                if ![200, 400, 401].contains(&status) {
                    Some(format!("status {status}: {body}"))
                } else {
                    errors
                        .iter()
                        // The database is up all along: UNAVAILABLE would hide a fault too.
                        .find(|e| {
                            e["extensions"]["code"].as_str().is_none_or(|c| c == "INTERNAL" || c == "UNAVAILABLE")
                        })
                        .map(|internal| format!("{internal}"))
                }
            }
        };
        if std::env::var("FUZZ_VERBOSE").is_ok() {
            eprintln!("{who}: {document} {variables}");
        }
        if let Some(fault) = fault {
            faults.push(format!("case {case} as {who}: {fault}\n  document: {document}\n  variables: {variables}"));
        }
    }
    let mut seen: Vec<_> = codes.into_iter().collect();
    seen.sort();
    eprintln!(
        "fuzz: {cases} documents in {:?}, {executed} executed (the rest refused before execution); \
         (sent, executed) per caller: {executed_as:?}; error codes: {seen:?}",
        started.elapsed()
    );
    // Every caller got documents through to execution, not only refusals.
    for (who, (sent, ran)) in &executed_as {
        assert!(*ran * 10 >= *sent, "{who}: only {ran} of {sent} documents executed");
    }
    // The server is still up and answers.
    assert_eq!(app.data(&app.operator(), "{ me { role } }", json!({})).await["me"]["role"], "OPERATOR");
    assert!(
        faults.is_empty(),
        "{} of {cases} documents (FUZZ_SEED={seed}) reached a fault; the first:\n{}",
        faults.len(),
        faults.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}
