//! The name of the operation a request runs, for the metrics: the client's `operationName`
//! when given, else the name of the document's only operation (most clients send the name
//! only in the document). Read when the request is prepared, from the document async-graphql
//! parses once anyway, and put in the [`OperationName`] slot the HTTP layer gave the request
//! only once the document passed validation and only for a caller with credentials: an
//! anonymous flood of made-up names cannot fill the metrics' bounded set of names.

use std::sync::{Arc, OnceLock};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextValidation};
use async_graphql::parser::types::DocumentOperations;
use async_graphql::{Request, ServerError, ServerResult, ValidationResult};

/// Where the name of a request's operation is put once its document is parsed.
#[derive(Clone, Debug, Default)]
pub struct OperationName(Arc<OnceLock<String>>);

impl OperationName {
    /// The name, once the request was prepared and its operation has one.
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// Fills a request's [`OperationName`] slot.
pub struct OperationNames;

impl ExtensionFactory for OperationNames {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Naming::default())
    }
}

/// One request's naming: the slot and the name, held until validation passes.
#[derive(Default)]
struct Naming {
    pending: std::sync::Mutex<Option<(OperationName, String)>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for Naming {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let slot = request
            .data
            .get(&std::any::TypeId::of::<OperationName>())
            .and_then(|d| d.downcast_ref::<OperationName>())
            .cloned();
        let signed_in = request
            .data
            .get(&std::any::TypeId::of::<super::RequestContext>())
            .and_then(|d| d.downcast_ref::<super::RequestContext>())
            .is_some_and(|c| c.actor.is_some());
        if let Some(slot) = slot.filter(|_| signed_in) {
            let given = request.operation_name.clone();
            // The operation that will run, by name: a given name only if the document has
            // such an operation (else the request is refused, and the name is the client's
            // say-so, not a label).
            let name = match (&request.parsed_query().ok().map(|d| &d.operations), given) {
                // A single anonymous operation has no name; a named one is in `Multiple`.
                (Some(DocumentOperations::Multiple(ops)), Some(given)) => {
                    ops.contains_key(given.as_str()).then_some(given)
                }
                (Some(DocumentOperations::Multiple(ops)), None) if ops.len() == 1 => {
                    ops.keys().next().map(ToString::to_string)
                }
                _ => None,
            };
            if let Some(name) = name
                && let Ok(mut pending) = self.pending.lock()
            {
                *pending = Some((slot, name));
            }
        }
        next.run(ctx, request).await
    }

    /// Names the operation once its document is valid (its name checked against the
    /// document when the request was prepared).
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if let Ok(mut pending) = self.pending.lock()
            && let Some((slot, name)) = pending.take()
        {
            let _ = slot.0.set(name);
        }
        Ok(result)
    }
}
