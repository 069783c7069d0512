//! Abuse limits async-graphql does not have built in, checked when a request is prepared,
//! before any of async-graphql's own checks walk the document: the number of aliases, and
//! the number of selections once fragment spreads are expanded. A fragment spreading the
//! previous one twice doubles the work of every walk that follows spreads (the recursion
//! depth and directive checks, then validation) per level: a 1 KB "fragment bomb" would
//! otherwise hold a worker thread for minutes.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Request, ServerError, ServerResult};

/// Refuses documents with more than `max_aliases` aliased fields (alias-based amplification)
/// or more than `max_selections` selections with every fragment spread expanded.
#[derive(Clone, Copy)]
pub struct DocumentLimits {
    max_aliases: usize,
    max_selections: usize,
}

impl DocumentLimits {
    /// Limits per document.
    pub fn new(max_aliases: usize, max_selections: usize) -> Self {
        Self { max_aliases, max_selections }
    }

    fn check(&self, document: &ExecutableDocument) -> ServerResult<()> {
        let aliases = count_aliases(document);
        if aliases > self.max_aliases {
            return Err(ServerError::new(format!("too many aliases: {aliases} (limit {})", self.max_aliases), None));
        }
        let selections = expanded_selections(document);
        if selections > self.max_selections {
            let shown = if selections == usize::MAX { "unbounded".to_owned() } else { selections.to_string() };
            return Err(ServerError::new(
                format!(
                    "document too large: {shown} selections with its fragments expanded (limit {})",
                    self.max_selections
                ),
                None,
            ));
        }
        Ok(())
    }
}

impl ExtensionFactory for DocumentLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for DocumentLimits {
    /// Parses the document (async-graphql keeps it, so it is parsed once) and refuses it
    /// here, before the schema's own checks walk it.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.check(request.parsed_query()?)?;
        next.run(ctx, request).await
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

/// What one selection set holds before fragments are expanded: its selections (nested
/// fields, inline fragments and each spread counted once) and the fragments it spreads,
/// with repetition.
fn shallow(set: &SelectionSet) -> (usize, Vec<&str>) {
    let mut fields = 0_usize;
    let mut spreads = Vec::new();
    let mut pending = vec![set];
    while let Some(set) = pending.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    fields = fields.saturating_add(1);
                    pending.push(&field.node.selection_set.node);
                }
                Selection::InlineFragment(fragment) => {
                    fields = fields.saturating_add(1);
                    pending.push(&fragment.node.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    fields = fields.saturating_add(1);
                    spreads.push(spread.node.fragment_name.node.as_str());
                }
            }
        }
    }
    (fields, spreads)
}

/// The number of selections in the document with every fragment spread expanded: in its
/// operations, and in every fragment definition as well (validation walks fragments no
/// operation uses too). Computed without expanding: each fragment's size once, iteratively
/// (a chain of thousands of fragments cannot exhaust the stack), saturating. A fragment
/// cycle (invalid anyway) counts as `usize::MAX`; a spread of an unknown fragment as 1
/// (validation names it).
pub fn expanded_selections(document: &ExecutableDocument) -> usize {
    let fragments: HashMap<&str, (usize, Vec<&str>)> =
        document.fragments.iter().map(|(name, f)| (name.as_str(), shallow(&f.node.selection_set.node))).collect();
    let mut sizes = HashMap::new();
    let mut operations = Vec::new();
    match &document.operations {
        DocumentOperations::Single(op) => operations.push(&op.node.selection_set.node),
        DocumentOperations::Multiple(ops) => operations.extend(ops.values().map(|op| &op.node.selection_set.node)),
    }
    let mut total = 0_usize;
    for set in operations {
        let (fields, spreads) = shallow(set);
        total = total.saturating_add(fields);
        for name in spreads {
            total = total.saturating_add(fragment_size(name, &fragments, &mut sizes));
        }
    }
    for name in fragments.keys() {
        total = total.saturating_add(fragment_size(name, &fragments, &mut sizes));
    }
    total
}

/// A fragment's size in the post-order walk: being walked, or known.
#[derive(Clone, Copy)]
enum Walk {
    Open,
    Done(usize),
}

/// The expanded size of fragment `root`, walking the fragment graph post-order with an
/// explicit stack and remembering every fragment's size in `sizes`.
fn fragment_size<'a>(
    root: &'a str,
    fragments: &HashMap<&'a str, (usize, Vec<&'a str>)>,
    sizes: &mut HashMap<&'a str, Walk>,
) -> usize {
    let mut stack: Vec<(&str, usize)> = vec![(root, 0)];
    while let Some((name, next)) = stack.pop() {
        let Some((fields, spreads)) = fragments.get(name) else {
            sizes.insert(name, Walk::Done(0));
            continue;
        };
        if next == 0 {
            match sizes.get(name) {
                Some(Walk::Done(_)) => continue,
                // Reached again while being walked: a cycle.
                Some(Walk::Open) => {
                    sizes.insert(name, Walk::Done(usize::MAX));
                    continue;
                }
                None => {
                    sizes.insert(name, Walk::Open);
                }
            }
        }
        if let Some(&child) = spreads.get(next) {
            stack.push((name, next + 1));
            match sizes.get(child) {
                Some(Walk::Done(_)) => {}
                // A cycle: the fragment spreads itself through `child`.
                Some(Walk::Open) => {
                    sizes.insert(name, Walk::Done(usize::MAX));
                }
                None => stack.push((child, 0)),
            }
            continue;
        }
        if matches!(sizes.get(name), Some(Walk::Done(_))) {
            continue;
        }
        let total = spreads.iter().fold(*fields, |sum, child| match sizes.get(child) {
            Some(Walk::Done(size)) => sum.saturating_add(*size),
            _ => usize::MAX,
        });
        sizes.insert(name, Walk::Done(total));
    }
    match sizes.get(root) {
        Some(Walk::Done(size)) => *size,
        _ => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn size(query: &str) -> usize {
        expanded_selections(&parse_query(query).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn fields_count_once_each_and_fragments_as_often_as_spread() {
        assert_eq!(size("{ me { role } }"), 2);
        assert_eq!(size("{ a { ... on T { b c } } }"), 4);
        // Two spreads of two fields, and the fragment itself: 2 × 3 + 2.
        assert_eq!(size("{ ...F ...F } fragment F on Query { me { role } }"), 8);
        // Operation: a, two spreads of F (F: a spread of G (1 field)): 3 + 2 × 2; then F (2)
        // and G (1) as definitions.
        assert_eq!(size("{ a { ...F } ...F } fragment F on Query { ...G } fragment G on Query { x }"), 10);
        // A fragment no operation uses still counts; an unknown one is validation's to name.
        assert_eq!(size("{ x } fragment Unused on Query { a b c }"), 4);
        assert_eq!(size("{ ...Missing }"), 1);
    }

    #[test]
    fn a_fragment_bomb_counts_its_expansion_without_expanding_it() {
        let mut query = String::from("{ ...F60 } fragment F0 on Query { x }");
        for level in 1..=60 {
            query.push_str(&format!(" fragment F{level} on Query {{ ...F{} ...F{} }}", level - 1, level - 1));
        }
        // F_k expands to 3 × 2^k − 2 selections (two spreads and twice F_{k-1}); the
        // operation holds F60 and its spread, and every F_k counts once more as a definition.
        let f = |k: u32| 3 * (1_usize << k) - 2;
        assert_eq!(size(&query), 1 + f(60) + (0..=60).map(f).sum::<usize>());
        query = query.replacen("...F60 }", &format!("{}}}", "...F60 ".repeat(16)), 1);
        assert_eq!(size(&query), usize::MAX, "saturates");
    }

    #[test]
    fn a_long_chain_of_fragments_does_not_exhaust_the_stack() {
        let mut query = String::from("{ ...F0 }");
        for level in 0..20_000 {
            query.push_str(&format!(" fragment F{level} on Query {{ x ...F{} }}", level + 1));
        }
        query.push_str(" fragment F20000 on Query { y }");
        // Each F_k (k < 20000) is a field and a spread: F_k expands to 2(20000 − k) + 1.
        let chain: usize = (0..=20_000).map(|k| 2 * (20_000 - k) + 1).sum();
        assert_eq!(size(&query), 1 + 40_001 + chain);
    }

    #[test]
    fn a_fragment_cycle_is_unbounded() {
        assert_eq!(size("{ ...A } fragment A on Query { x ...B } fragment B on Query { ...A }"), usize::MAX);
        assert_eq!(size("{ ...A } fragment A on Query { ...A }"), usize::MAX);
    }
}
