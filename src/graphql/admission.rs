//! Admission: what an operation must pass before any of its fields run — it parses, its
//! document is within the limits (`limits`), an API key's scopes open its root fields
//! (`scopes`), its caller's bucket pays for it (`rate`), it validates, and its name is kept
//! for the metrics (`operation_name`). These checks are async-graphql extensions; this
//! module runs them on a schema of their own (the *gate*), which stops where execution
//! would begin, and then runs the admitted operation on a schema with no extension at all.
//!
//! Why: an extension with any hook makes async-graphql wrap every field and every list item
//! in its `resolve` chain (a type lookup and one boxed future per extension, per field),
//! even when no extension implements `resolve`. For a 50-offer catalog page — about 1,200
//! fields and items — that chain was a quarter of the page's CPU (#13 item 2). With no
//! extension, async-graphql resolves fields on its direct path.
//!
//! An API key's operation is run on a schema with one extension, `scopes`' field check (a
//! key may not see every type: each field it resolves is checked). Batches, uploads and
//! operations over WebSocket run on the schema with every extension ([`AppSchema`] as built
//! by `build_schema`).
//!
//! The gate checks the same document, variables and operation name the operation then runs
//! with (the parsed document is handed over, not parsed twice); the running schema repeats
//! only async-graphql's own validation, in its fast mode (complexity and depth, no rules:
//! the gate has checked them all). The gate's request is built here: a check that reads
//! request data of a new kind must be given it in `execute`, and a check with a `resolve`
//! or `execute` hook does not run on the schemas without extensions.

use std::any::{Any, TypeId};
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::{Request, Response};

use super::operation_name::OperationName;
use super::rate::RateCharge;
use super::{AppSchema, LoginAllowance, RequestContext};
use crate::domain::{Actor, Domain};

/// The schemas an operation is admitted by and run on.
#[derive(Clone)]
pub struct Admission {
    /// The checks, stopping before execution.
    gate: AppSchema,
    /// No extension: runs what the gate admitted.
    run: AppSchema,
    /// Only the key scopes' check of each field: runs what the gate admitted of an API key.
    keyed: AppSchema,
}

impl Admission {
    /// From the schema with every check and the gate, the same with no extension, and with
    /// the scopes' check alone (built by `super::build_admission`).
    pub(super) fn new(gate: AppSchema, run: AppSchema, keyed: AppSchema) -> Self {
        Self { gate, run, keyed }
    }

    /// Runs one operation for `actor`: refused by the gate with the gate's errors, else run
    /// on the schema without extensions (an API key's: with the scopes' check alone).
    /// `request` carries what the HTTP layer put in its data (the operation-name slot, the
    /// rate charge); its [`RequestContext`] and `allowance` are added here.
    pub async fn execute(
        &self,
        mut request: Request,
        domain: &Arc<Domain>,
        actor: Option<Actor>,
        allowance: &LoginAllowance,
    ) -> Response {
        let mut checked = Request::new(request.query.clone()).variables(request.variables.clone());
        checked.operation_name.clone_from(&request.operation_name);
        checked.introspection_mode = request.introspection_mode;
        // A document that does not parse is refused with the error the gate would give (its
        // first check parses it), without parsing it again.
        match request.parsed_query() {
            Ok(document) => checked.set_parsed_query(document.clone()),
            Err(error) => return Response::from_errors(vec![error]),
        }
        let checked = copied::<OperationName>(&request, copied::<Arc<RateCharge>>(&request, checked))
            .data(RequestContext::new(Arc::clone(domain), actor.clone()));
        let verdict = self.gate.execute(checked).await;
        if !verdict.errors.is_empty() {
            return verdict;
        }
        let schema = if actor.as_ref().is_some_and(|actor| actor.scopes.is_some()) { &self.keyed } else { &self.run };
        schema.execute(for_caller(request, domain, actor, allowance)).await
    }
}

/// `request` with the data its resolvers read: the caller's [`RequestContext`] and the
/// request's login `allowance`.
pub fn for_caller(request: Request, domain: &Arc<Domain>, actor: Option<Actor>, allowance: &LoginAllowance) -> Request {
    request.data(RequestContext::new(Arc::clone(domain), actor)).data(allowance.clone())
}

/// `to` with `from`'s data of type `T`, if it has some.
fn copied<T: Any + Clone + Send + Sync>(from: &Request, to: Request) -> Request {
    match from.data.get(&TypeId::of::<T>()).and_then(|data| data.downcast_ref::<T>()) {
        Some(data) => to.data(data.clone()),
        None => to,
    }
}

/// The gate's last extension: an operation that reached execution passed every check, and
/// is answered with an empty response instead of being run.
pub(super) struct Gate;

impl ExtensionFactory for Gate {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Gate)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Gate {
    async fn execute(&self, _ctx: &ExtensionContext<'_>, _operation: Option<&str>, _next: NextExecute<'_>) -> Response {
        Response::default()
    }
}
