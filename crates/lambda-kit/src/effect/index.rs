//! Reading a store's items through a secondary index, newest first, a page at a time: what a
//! "my orders" list needs. The index is keyed by a partition attribute (the owner) and a sort
//! attribute whose text sorts as its order (a fixed-width time); a page ends at a
//! [`Position`], from which the next one starts.

/// A global secondary index of the store's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    /// The index's name in the table.
    pub name: &'static str,
    /// Its partition key: a string attribute.
    pub partition: &'static str,
    /// Its sort key: a string attribute that sorts as text.
    pub sort: &'static str,
}

/// Where a page ended: the sort value and entity (table key) of its last item. The next page
/// starts after it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub sort: String,
    pub entity: String,
}

/// Up to a page of items, and where the next page starts when there are more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Position>,
}

impl<T> Page<T> {
    /// The first `limit` of `items` (each with its position), read one past the page to know
    /// whether another follows: only then is there a `next`. `more` says the store itself
    /// stopped early (a size limit) after the items given.
    pub(crate) fn of(mut items: Vec<(Position, T)>, limit: usize, more: bool) -> Self {
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|(position, _)| position.clone())
        } else if more {
            items.last().map(|(position, _)| position.clone())
        } else {
            None
        };
        Page {
            items: items.into_iter().map(|(_, item)| item).collect(),
            next,
        }
    }
}
