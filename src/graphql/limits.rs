//! Abuse limits checked when a request is prepared, before any of async-graphql's own checks
//! walk the document: the number of aliases, the number of selections once fragment spreads
//! are expanded, and the depth — with a bound of its own for introspection, so the standard
//! introspection query (graphql-js's `getIntrospectionQuery`, depth 15) works at the
//! default limits while ordinary queries keep theirs (async-graphql's own depth limit
//! counts both alike). A fragment spreading the
//! previous one twice doubles the work of every walk that follows spreads (the recursion
//! depth and directive checks, then validation) per level: a 1 KB "fragment bomb" would
//! otherwise hold a worker thread for minutes.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Request, ServerError, ServerResult};

/// Most complexity one field counts: far above any configured limit, and low enough that
/// sums of such fields over any document within the selection limit cannot overflow.
const MOST_COMPLEXITY: usize = 1 << 40;

/// The complexity of a page of `first` items (20 when not given) of `child_complexity` each:
/// `first` counted as at most a page can hold (more is refused when the field runs), the
/// product saturating at [`MOST_COMPLEXITY`] — nested pages of `first: 2147483647` once
/// overflowed the multiplication (a panic in a debug build, a wrapped, small complexity
/// that passed the limit in a release build).
pub fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let items = usize::try_from(first.unwrap_or(20)).unwrap_or(0).min(crate::domain::pagination::MAX_PAGE_SIZE);
    items.saturating_mul(child_complexity).min(MOST_COMPLEXITY)
}

/// Refuses documents with more than `max_aliases` aliased fields (alias-based amplification),
/// more than `max_selections` selections with every fragment spread expanded, or fields
/// nested deeper than `max_depth` (`max_introspection_depth` under `__schema` and `__type`).
#[derive(Clone, Copy, Debug)]
pub struct DocumentLimits {
    /// Most aliased fields.
    pub max_aliases: usize,
    /// Most selections, fragments expanded.
    pub max_selections: usize,
    /// Deepest ordinary field.
    pub max_depth: usize,
    /// Deepest field of an introspection subtree.
    pub max_introspection_depth: usize,
}

impl DocumentLimits {
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
        let (depth, introspection) = depths(document);
        for (depth, limit, what) in
            [(depth, self.max_depth, "Query"), (introspection, self.max_introspection_depth, "Introspection")]
        {
            if depth > limit {
                let shown = if depth == usize::MAX { "unbounded".to_owned() } else { depth.to_string() };
                return Err(ServerError::new(
                    format!("{what} is nested too deep: depth {shown} (limit {limit})"),
                    None,
                ));
            }
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
/// fields, inline fragments and each spread counted once), its deepest field (a field of the
/// set itself is depth 1), and the fragments it spreads, with repetition, each with the depth
/// of fields around the spread.
struct Shallow<'a> {
    selections: usize,
    depth: usize,
    spreads: Vec<(&'a str, usize)>,
}

fn shallow(set: &SelectionSet) -> Shallow<'_> {
    let mut out = Shallow { selections: 0, depth: 0, spreads: Vec::new() };
    let mut pending = vec![(set, 0_usize)];
    while let Some((set, level)) = pending.pop() {
        for item in &set.items {
            out.selections = out.selections.saturating_add(1);
            match &item.node {
                Selection::Field(field) => {
                    out.depth = out.depth.max(level + 1);
                    pending.push((&field.node.selection_set.node, level + 1));
                }
                Selection::InlineFragment(fragment) => pending.push((&fragment.node.selection_set.node, level)),
                Selection::FragmentSpread(spread) => out.spreads.push((spread.node.fragment_name.node.as_str(), level)),
            }
        }
    }
    out
}

/// A document's fragments, each as [`shallow`] sees it.
fn fragment_graph(document: &ExecutableDocument) -> HashMap<&str, Shallow<'_>> {
    document.fragments.iter().map(|(name, f)| (name.as_str(), shallow(&f.node.selection_set.node))).collect()
}

fn operation_sets(document: &ExecutableDocument) -> Vec<&SelectionSet> {
    match &document.operations {
        DocumentOperations::Single(op) => vec![&op.node.selection_set.node],
        DocumentOperations::Multiple(ops) => ops.values().map(|op| &op.node.selection_set.node).collect(),
    }
}

/// The number of selections in the document with every fragment spread expanded: in its
/// operations, and in every fragment definition as well (validation walks fragments no
/// operation uses too). Computed without expanding: each fragment's size once, iteratively
/// (a chain of thousands of fragments cannot exhaust the stack), saturating. A fragment
/// cycle (invalid anyway) counts as `usize::MAX`; a spread of an unknown fragment as 1
/// (validation names it).
pub fn expanded_selections(document: &ExecutableDocument) -> usize {
    let fragments = fragment_graph(document);
    let mut sizes = HashMap::new();
    let mut total = 0_usize;
    for set in operation_sets(document) {
        let own = shallow(set);
        total = total.saturating_add(own.selections);
        for (name, _) in own.spreads {
            total = total.saturating_add(fold_fragment(name, &fragments, &mut sizes, Fold::Size));
        }
    }
    for name in fragments.keys() {
        total = total.saturating_add(fold_fragment(name, &fragments, &mut sizes, Fold::Size));
    }
    total
}

/// The deepest nesting of fields in the document's operations with fragments expanded, as
/// (ordinary fields, introspection): the subtree of a root `__schema` or `__type` field
/// counts toward the second, so the standard introspection query (depth 13 to 15, by
/// client) has a bound of its own and ordinary queries keep theirs. A fragment cycle is
/// `usize::MAX`. Computed without expanding, like [`expanded_selections`].
pub fn depths(document: &ExecutableDocument) -> (usize, usize) {
    let fragments = fragment_graph(document);
    let mut memo = HashMap::new();
    let (mut ordinary, mut introspection) = (0_usize, 0_usize);
    let mut pending: Vec<&SelectionSet> = operation_sets(document);
    while let Some(set) = pending.pop() {
        for item in &set.items {
            let (depth, introspecting) = match &item.node {
                Selection::Field(field) => {
                    let inner = shallow(&field.node.selection_set.node);
                    let below = inner.spreads.iter().fold(inner.depth, |deepest, (name, level)| {
                        deepest.max(level.saturating_add(fold_fragment(name, &fragments, &mut memo, Fold::Depth)))
                    });
                    let name = field.node.name.node.as_str();
                    (below.saturating_add(1), name == "__schema" || name == "__type")
                }
                // The root's own inline fragments hold root fields.
                Selection::InlineFragment(fragment) => {
                    pending.push(&fragment.node.selection_set.node);
                    continue;
                }
                Selection::FragmentSpread(spread) => {
                    (fold_fragment(spread.node.fragment_name.node.as_str(), &fragments, &mut memo, Fold::Depth), false)
                }
            };
            if introspecting {
                introspection = introspection.max(depth);
            } else {
                ordinary = ordinary.max(depth);
            }
        }
    }
    (ordinary, introspection)
}

/// What [`fold_fragment`] computes of a fragment.
#[derive(Clone, Copy, PartialEq)]
enum Fold {
    /// Its selections, expanded.
    Size,
    /// Its deepest field, expanded.
    Depth,
}

/// A fragment's value in the post-order walk: being walked, or known.
#[derive(Clone, Copy)]
enum Walk {
    Open,
    Done(usize),
}

/// The expanded size or depth of fragment `root`, walking the fragment graph post-order
/// with an explicit stack and remembering every fragment's value in `memo` (one `Fold` per
/// memo).
fn fold_fragment<'a>(
    root: &'a str,
    fragments: &HashMap<&'a str, Shallow<'a>>,
    memo: &mut HashMap<&'a str, Walk>,
    fold: Fold,
) -> usize {
    let mut stack: Vec<(&str, usize)> = vec![(root, 0)];
    while let Some((name, next)) = stack.pop() {
        let Some(fragment) = fragments.get(name) else {
            memo.insert(name, Walk::Done(0));
            continue;
        };
        if next == 0 {
            match memo.get(name) {
                Some(Walk::Done(_)) => continue,
                // Reached again while being walked: a cycle.
                Some(Walk::Open) => {
                    memo.insert(name, Walk::Done(usize::MAX));
                    continue;
                }
                None => {
                    memo.insert(name, Walk::Open);
                }
            }
        }
        if let Some(&(child, _)) = fragment.spreads.get(next) {
            stack.push((name, next + 1));
            match memo.get(child) {
                Some(Walk::Done(_)) => {}
                // A cycle: the fragment spreads itself through `child`.
                Some(Walk::Open) => {
                    memo.insert(name, Walk::Done(usize::MAX));
                }
                None => stack.push((child, 0)),
            }
            continue;
        }
        if matches!(memo.get(name), Some(Walk::Done(_))) {
            continue;
        }
        let value_of = |child: &str| match memo.get(child) {
            Some(Walk::Done(value)) => *value,
            _ => usize::MAX,
        };
        let value = match fold {
            Fold::Size => {
                fragment.spreads.iter().fold(fragment.selections, |sum, (child, _)| sum.saturating_add(value_of(child)))
            }
            Fold::Depth => fragment
                .spreads
                .iter()
                .fold(fragment.depth, |deepest, (child, level)| deepest.max(level.saturating_add(value_of(child)))),
        };
        memo.insert(name, Walk::Done(value));
    }
    match memo.get(root) {
        Some(Walk::Done(value)) => *value,
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

    fn depth(query: &str) -> (usize, usize) {
        depths(&parse_query(query).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn depth_counts_nested_fields_through_fragments_and_keeps_introspection_apart() {
        assert_eq!(depth("{ me }"), (1, 0));
        assert_eq!(depth("{ me { role } }"), (2, 0));
        // Inline fragments and spreads add no level of their own.
        assert_eq!(depth("{ a { ... on T { b { c } } } }"), (3, 0));
        assert_eq!(depth("{ a { ...F } } fragment F on T { b { ...G } } fragment G on T { c }"), (3, 0));
        assert_eq!(depth("{ ...F } fragment F on Query { a { b } }"), (2, 0));
        assert_eq!(depth("{ ... on Query { a { b } } }"), (2, 0));
        // The subtree of a root __schema or __type is introspection's; __typename is ordinary.
        assert_eq!(depth("{ __schema { types { fields { name } } } me { role } }"), (2, 4));
        assert_eq!(depth("{ __type(name: \"Offer\") { fields { type { ofType { name } } } } }"), (0, 5));
        assert_eq!(depth("{ __typename a { __typename } }"), (2, 0));
        // Introspection nested under an ordinary field is ordinary depth.
        assert_eq!(depth("{ a { __schema { types { name } } } }"), (4, 0));
        // A cycle is unbounded; an unknown fragment adds nothing.
        assert_eq!(depth("{ a { ...A } } fragment A on T { x ...B } fragment B on T { ...A }").0, usize::MAX);
        assert_eq!(depth("{ a { ...Missing } }"), (1, 0));
    }

    #[test]
    fn a_fragment_bomb_and_a_long_chain_have_a_depth_without_being_expanded() {
        let mut bomb = String::from("{ ...F60 } fragment F0 on Query { x { y } }");
        for level in 1..=60 {
            bomb.push_str(&format!(" fragment F{level} on Query {{ ...F{} ...F{} }}", level - 1, level - 1));
        }
        assert_eq!(depth(&bomb), (2, 0));
        let mut chain = String::from("{ a { ...F0 } }");
        for level in 0..20_000 {
            chain.push_str(&format!(" fragment F{level} on T {{ x {{ ...F{} }} }}", level + 1));
        }
        chain.push_str(" fragment F20000 on T { y }");
        assert_eq!(depth(&chain), (20_002, 0));
    }
}
