//! Forward keyset pagination (Relay `first`/`after`) over id-ordered rows.

use super::error::{Error, Result};

/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: usize = 100;
/// Page size when the caller does not say.
pub const DEFAULT_PAGE_SIZE: usize = 20;

/// A validated page request: up to `first` rows with an id greater than `after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// How many rows.
    pub first: usize,
    /// The id of the last row already seen.
    pub after: Option<i64>,
    /// Newest (highest id) first, `after` then meaning "older than"; only where the API
    /// offers it (`fetch_page` readers).
    pub newest_first: bool,
}

impl PageRequest {
    /// Validates `first` (1..=100, default 20) and an `after` cursor.
    pub fn parse(first: Option<i32>, after: Option<&str>) -> Result<Self> {
        let first = match first {
            None => DEFAULT_PAGE_SIZE,
            Some(n) if n >= 0 && (n as usize) <= MAX_PAGE_SIZE => n as usize,
            Some(_) => {
                return Err(Error::validation("first", format!("must be between 0 and {MAX_PAGE_SIZE}")));
            }
        };
        let after = after
            .map(|cursor| decode_cursor(cursor).ok_or_else(|| Error::validation("after", "not a valid cursor")))
            .transpose()?;
        Ok(Self { first, after, newest_first: false })
    }

    /// The same request, newest first when `newest` is true.
    pub fn newest_first(self, newest: bool) -> Self {
        Self { newest_first: newest, ..self }
    }
}

/// One page of rows plus what a Relay connection reports about it.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The rows, in id order.
    pub items: Vec<T>,
    /// Whether rows follow this page.
    pub has_next_page: bool,
    /// Whether rows precede this page.
    pub has_previous_page: bool,
    /// All rows matching the filter, on every page.
    pub total_count: usize,
}

impl<T> Page<T> {
    /// Builds a page from an id-ordered iterator of every matching row.
    pub fn from_sorted<I>(rows: I, request: PageRequest, id: impl Fn(&T) -> i64) -> Self
    where
        I: IntoIterator<Item = T>,
    {
        let mut items = Vec::with_capacity(request.first);
        let mut total_count = 0;
        let mut has_previous_page = false;
        let mut has_next_page = false;
        for row in rows {
            total_count += 1;
            if request.after.is_some_and(|after| id(&row) <= after) {
                has_previous_page = true;
            } else if items.len() < request.first {
                items.push(row);
            } else {
                has_next_page = true;
            }
        }
        Self { items, has_next_page, has_previous_page, total_count }
    }

    /// Maps the rows, keeping the page information.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            total_count: self.total_count,
        }
    }
}

impl<T> Page<Option<T>> {
    /// Drops the rows that turned out missing (read after the page was cut), keeping the page
    /// information.
    pub fn flatten(self) -> Page<T> {
        Page {
            items: self.items.into_iter().flatten().collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            total_count: self.total_count,
        }
    }
}

/// The cursor of a row: its id, prefixed so cursors are not mistaken for ids.
pub fn encode_cursor(id: i64) -> String {
    format!("c{id}")
}

/// The id inside a cursor.
pub fn decode_cursor(cursor: &str) -> Option<i64> {
    cursor.strip_prefix('c')?.parse().ok()
}

/// Fetches one page of `select` in id order: two statements (a count and the rows).
pub async fn fetch_page<E, C>(
    db: &C,
    select: sea_orm::Select<E>,
    id_column: E::Column,
    request: PageRequest,
) -> Result<Page<E::Model>>
where
    E: sea_orm::EntityTrait,
    E::Model: Send + Sync,
    C: sea_orm::ConnectionTrait,
{
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
    let total_count = usize::try_from(select.clone().count(db).await?).unwrap_or(usize::MAX);
    let mut query = if request.newest_first { select.order_by_desc(id_column) } else { select.order_by_asc(id_column) };
    if let Some(after) = request.after {
        query = query.filter(if request.newest_first { id_column.lt(after) } else { id_column.gt(after) });
    }
    let mut items = query.limit(request.first as u64 + 1).all(db).await?;
    let has_next_page = items.len() > request.first;
    items.truncate(request.first);
    Ok(Page { items, has_next_page, has_previous_page: request.after.is_some(), total_count })
}
