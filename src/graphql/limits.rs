//! Abuse limits async-graphql does not have built in: the number of aliases per document.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

/// Refuses documents with more than `max` aliased fields (alias-based amplification).
pub struct AliasLimit {
    max: usize,
}

impl AliasLimit {
    /// A limit of `max` aliases per document.
    pub fn new(max: usize) -> Self {
        Self { max }
    }
}

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasLimitExtension { max: self.max })
    }
}

struct AliasLimitExtension {
    max: usize,
}

#[async_graphql::async_trait::async_trait]
impl Extension for AliasLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let aliases = count_aliases(&document);
        if aliases > self.max {
            return Err(ServerError::new(format!("too many aliases: {aliases} (limit {})", self.max), None));
        }
        Ok(document)
    }
}

/// Counts aliased fields in every operation and fragment of a document.
pub fn count_aliases(document: &ExecutableDocument) -> usize {
    let mut pending: Vec<&SelectionSet> = Vec::new();
    match &document.operations {
        DocumentOperations::Single(op) => pending.push(&op.node.selection_set.node),
        DocumentOperations::Multiple(ops) => pending.extend(ops.values().map(|op| &op.node.selection_set.node)),
    }
    pending.extend(document.fragments.values().map(|f| &f.node.selection_set.node));
    let mut count = 0;
    while let Some(set) = pending.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    count += usize::from(field.node.alias.is_some());
                    pending.push(&field.node.selection_set.node);
                }
                Selection::InlineFragment(fragment) => pending.push(&fragment.node.selection_set.node),
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    count
}
