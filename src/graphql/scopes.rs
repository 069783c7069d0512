//! Scopes of API keys, checked before an operation runs: every root field the selected
//! operation asks for (through fragments too) must be open to the key — the table is
//! `domain::scopes::needed_for` — else the whole request is refused FORBIDDEN, naming the
//! scope it lacks. Signed-in users (JWTs) pass: their role decides, in the domain.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{Request, ServerError, ServerResult};

use super::RequestContext;
use super::errors::request_error;
use crate::domain::scopes::{Needs, Scopes, needed_for};

/// Refuses a key's operation that reaches past its scopes.
pub struct ScopeCheck;

impl ExtensionFactory for ScopeCheck {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ScopeCheck)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ScopeCheck {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let scopes = request
            .data
            .get(&std::any::TypeId::of::<RequestContext>())
            .and_then(|d| d.downcast_ref::<RequestContext>())
            .and_then(|c| c.actor.as_ref())
            .and_then(|a| a.scopes);
        if let Some(scopes) = scopes {
            let operation_name = request.operation_name.clone();
            let document = request.parsed_query()?;
            if let Some(operation) = selected(document, operation_name.as_deref()) {
                check(scopes, document, &operation.selection_set.node)?;
            }
        }
        next.run(ctx, request).await
    }
}

/// The operation a request runs (None: the schema reports why there is none).
fn selected<'a>(document: &'a ExecutableDocument, name: Option<&str>) -> Option<&'a OperationDefinition> {
    match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next().map(|op| &op.node),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Every root field of `root`, fragments followed (each once), checked against `scopes`.
fn check(scopes: Scopes, document: &ExecutableDocument, root: &SelectionSet) -> ServerResult<()> {
    let mut pending = vec![root];
    let mut spread = HashSet::new();
    while let Some(set) = pending.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let refused = match needed_for(name) {
                        Some(Needs::Nothing) => None,
                        Some(Needs::Scope(scope)) if scopes.has(scope) => None,
                        Some(Needs::Scope(scope)) => {
                            Some(format!("this API key lacks the scope {} needed for {name}", scope.as_str()))
                        }
                        Some(Needs::Session) | None => Some(format!("{name} needs a signed-in user, not an API key")),
                    };
                    if let Some(message) = refused {
                        return Err(forbidden(message));
                    }
                }
                Selection::InlineFragment(fragment) => pending.push(&fragment.node.selection_set.node),
                Selection::FragmentSpread(s) => {
                    let name = &s.node.fragment_name.node;
                    if spread.insert(name.clone())
                        && let Some(fragment) = document.fragments.get(name)
                    {
                        pending.push(&fragment.node.selection_set.node);
                    }
                }
            }
        }
    }
    Ok(())
}

fn forbidden(message: String) -> ServerError {
    request_error(message, "FORBIDDEN")
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_schema;
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

    use crate::domain::scopes::needed_for;

    /// A new query, mutation or subscription must be given its scope (or be closed to keys
    /// on purpose, in the table): the table names every root field of the schema.
    #[test]
    fn every_root_field_of_the_schema_is_in_the_scope_table() {
        let Ok(document) = parse_schema(crate::graphql::sdl()) else { panic!("the SDL parses") };
        let mut roots = 0;
        for definition in &document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else { continue };
            let name = ty.node.name.node.as_str();
            if !["Query", "Mutation", "SubscriptionRoot"].contains(&name) {
                continue;
            }
            let TypeKind::Object(object) = &ty.node.kind else { continue };
            for field in &object.fields {
                roots += 1;
                let field = field.node.name.node.as_str();
                assert!(needed_for(field).is_some(), "{name}.{field} is not in domain::scopes::needed_for");
            }
        }
        assert!(roots > 60, "{roots} root fields found");
    }
}
