//! Relay cursor connections with `totalCount`.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{OutputType, SimpleObject};

use crate::domain::pagination::{Page, encode_cursor};

/// Extra fields every connection carries.
#[derive(SimpleObject)]
pub struct ConnectionTotals {
    /// Rows matching the filter on all pages.
    pub total_count: usize,
}

/// A connection of `N` with string cursors and a total count.
pub type PageConnection<N> = Connection<String, N, ConnectionTotals>;

/// Builds a connection from a domain page, mapping each row to its output type.
pub fn connection<T, N: OutputType>(page: Page<T>, id: impl Fn(&T) -> i64, node: impl Fn(T) -> N) -> PageConnection<N> {
    let mut result = Connection::with_additional_fields(
        page.has_previous_page,
        page.has_next_page,
        ConnectionTotals { total_count: page.total_count },
    );
    result.edges.extend(page.items.into_iter().map(|row| Edge::new(encode_cursor(id(&row)), node(row))));
    result
}
