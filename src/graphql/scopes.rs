//! Scopes of API keys, checked twice. Before an operation runs, every root field it asks for
//! (through fragments too) must be open to the key — the table is
//! `domain::scopes::needed_for` — else the whole request is refused FORBIDDEN, naming the
//! scope it lacks. While it runs, every field returning an object the key may not see
//! (`domain::scopes::needed_to_see`: an order's customer without customers:write) is a
//! FORBIDDEN field error, null in the data. Signed-in users (JWTs) pass: their role
//! decides, in the domain; for them the second check is one atomic read per field.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextResolve, ResolveInfo,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::registry::MetaType;
use async_graphql::{PathSegment, QueryPathNode, QueryPathSegment, Request, ServerError, ServerResult, Value};

use super::RequestContext;
use super::errors::request_error;
use crate::domain::scopes::{Needs, Scopes, needed_for, needed_to_see};

/// Refuses a key's operation that reaches past its scopes.
pub struct ScopeCheck;

impl ExtensionFactory for ScopeCheck {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestScopes::default())
    }
}

/// One request's key scopes (unset for a signed-in user or an anonymous caller).
#[derive(Default)]
struct RequestScopes {
    scopes: OnceLock<Scopes>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for RequestScopes {
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
            let _ = self.scopes.set(scopes);
            let operation_name = request.operation_name.clone();
            let document = request.parsed_query()?;
            if let Some(operation) = selected(document, operation_name.as_deref()) {
                check(scopes, document, &operation.selection_set.node)?;
            }
        }
        next.run(ctx, request).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if let Some(scopes) = self.scopes.get()
            && !info.is_for_introspection
        {
            let named = info.return_type.trim_matches(|c| matches!(c, '[' | ']' | '!'));
            // Only objects carry an area's data; scalars and enums are their fields.
            let object = matches!(ctx.schema_env.registry.types.get(named), Some(MetaType::Object { .. }));
            let needs = if object { needed_to_see(named) } else { Some(Needs::Nothing) };
            let refused = match needs {
                Some(Needs::Nothing) => None,
                Some(Needs::Scope(scope)) if scopes.has(scope) => None,
                Some(Needs::Scope(scope)) => {
                    Some(format!("this API key lacks the scope {} needed to see {named}", scope.as_str()))
                }
                Some(Needs::Session) | None => Some(format!("{named} is not open to API keys")),
            };
            if let Some(message) = refused {
                let mut error = ServerError::new(message, None);
                error.path = path_of(info.path_node);
                error.extensions.get_or_insert_with(Default::default).set("code", "FORBIDDEN");
                return Err(error);
            }
        }
        next.run(ctx, info).await
    }
}

/// A field's path in the response, as errors carry it.
fn path_of(node: &QueryPathNode<'_>) -> Vec<PathSegment> {
    let mut path = Vec::new();
    let mut at = Some(node);
    while let Some(node) = at {
        path.push(match node.segment {
            QueryPathSegment::Index(index) => PathSegment::Index(index),
            QueryPathSegment::Name(name) => PathSegment::Field(name.to_owned()),
        });
        at = node.parent;
    }
    path.reverse();
    path
}

/// The operation a request runs (None: the schema reports why there is none).
pub(super) fn selected<'a>(document: &'a ExecutableDocument, name: Option<&str>) -> Option<&'a OperationDefinition> {
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

    use crate::domain::scopes::{needed_for, needed_to_see};

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

    /// A new object type must be given the scope that sees it (or none, on purpose).
    #[test]
    fn every_object_type_of_the_schema_is_in_the_visibility_table() {
        let Ok(document) = parse_schema(crate::graphql::sdl()) else { panic!("the SDL parses") };
        let mut objects = 0;
        for definition in &document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else { continue };
            if let TypeKind::Object(_) = &ty.node.kind {
                objects += 1;
                let name = ty.node.name.node.as_str();
                assert!(needed_to_see(name).is_some(), "{name} is not in domain::scopes::needed_to_see");
            }
        }
        assert!(objects > 40, "{objects} object types found");
    }
}
