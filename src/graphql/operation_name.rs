//! The name of the operation a request runs, for the metrics: the client's `operationName`
//! when given, else the name of the document's only operation (most clients send the name
//! only in the document). Read when the request is prepared, from the document async-graphql
//! parses once anyway, into the [`OperationName`] slot the HTTP layer put in the request.

use std::sync::{Arc, OnceLock};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
use async_graphql::parser::types::DocumentOperations;
use async_graphql::{Request, ServerResult};

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
        Arc::new(OperationNames)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for OperationNames {
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
        if let Some(slot) = slot {
            let given = request.operation_name.clone();
            let name = given.or_else(|| match &request.parsed_query().ok()?.operations {
                // A single anonymous operation has no name; a named one is in `Multiple`.
                DocumentOperations::Single(_) => None,
                DocumentOperations::Multiple(ops) if ops.len() == 1 => ops.keys().next().map(ToString::to_string),
                DocumentOperations::Multiple(_) => None,
            });
            if let Some(name) = name {
                let _ = slot.0.set(name);
            }
        }
        next.run(ctx, request).await
    }
}
