//! A customer's orders, newest first, a page at a time (`GET /orders`): the orders table's
//! `ByCustomer` index, keyed by the customer and the time the order was placed, which every
//! order's item feeds with its `customerId` and `placedAt` attributes once the order is known.
//! The index holds keys only: its entry is written once per order, when those attributes
//! appear, not at each of the order service's writes, and a page reads the orders themselves.
//! A page ends at an opaque [`Cursor`]; the next page starts after it. The customer is always
//! the caller's, never the cursor's: a cursor carries only a position in a list.

use chrono::{DateTime, Utc};
use lambda_kit::effect::{EffectStore, Index, Position};
use lambda_kit::idempotency::IdempotencyError;
use uuid::Uuid;

use crate::state::placed_key;
use crate::{OrderItem, OrderView};

/// The orders table's index of each customer's orders by the time they were placed.
pub const BY_CUSTOMER: Index = Index {
    name: "ByCustomer",
    partition: "customerId",
    sort: "placedAt",
};

/// Orders a page holds when the client does not say.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// The most orders a page holds.
pub const MAX_PAGE_SIZE: usize = 100;

/// Where a page of a customer's orders ended: the last order's id and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    order_id: Uuid,
    placed_micros: i64,
}

/// A cursor the API did not hand out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not one this API handed out")]
pub struct InvalidCursor;

impl Cursor {
    /// The cursor as the client sees it: hex digits, to be handed back as they are.
    pub fn encode(&self) -> String {
        format!("{}{:x}", self.order_id.simple(), self.placed_micros)
    }

    /// A cursor from its text; refused unless [`Self::encode`] could have written it.
    pub fn decode(text: &str) -> Result<Self, InvalidCursor> {
        let (id, micros) = text
            .split_at_checked(32)
            .filter(|(_, micros)| (1..=16).contains(&micros.len()))
            .ok_or(InvalidCursor)?;
        let is_hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !is_hex(id) || !is_hex(micros) {
            return Err(InvalidCursor);
        }
        let order_id = Uuid::parse_str(id).map_err(|_| InvalidCursor)?;
        let placed_micros = i64::from_str_radix(micros, 16).map_err(|_| InvalidCursor)?;
        DateTime::<Utc>::from_timestamp_micros(placed_micros).ok_or(InvalidCursor)?;
        Ok(Self {
            order_id,
            placed_micros,
        })
    }

    fn position(&self) -> Position {
        let at = DateTime::<Utc>::from_timestamp_micros(self.placed_micros).unwrap_or_default();
        Position {
            sort: placed_key(at),
            entity: self.order_id.to_string(),
        }
    }

    fn at(position: &Position) -> Result<Self, IdempotencyError> {
        let unreadable = || {
            IdempotencyError::Store(format!(
                "{} lists an order at an unreadable position {position:?}",
                BY_CUSTOMER.name
            ))
        };
        let placed = DateTime::parse_from_rfc3339(&position.sort).map_err(|_| unreadable())?;
        Ok(Self {
            order_id: Uuid::parse_str(&position.entity).map_err(|_| unreadable())?,
            placed_micros: placed.timestamp_micros(),
        })
    }
}

/// A page of a customer's orders, newest first, and where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPage {
    pub orders: Vec<OrderView>,
    pub next: Option<Cursor>,
}

/// `customer`'s orders, newest first: at most `limit` (at most [`MAX_PAGE_SIZE`]), after
/// `after`. One query of the index (keys only) and one consistent batch read of the orders, so
/// each order is shown as it is now.
pub async fn customer_orders<S: EffectStore>(
    store: &S,
    customer: &str,
    limit: usize,
    after: Option<&Cursor>,
) -> Result<OrderPage, IdempotencyError> {
    let limit = limit.clamp(1, MAX_PAGE_SIZE);
    let start = after.map(Cursor::position);
    let page = store
        .page(&BY_CUSTOMER, customer, limit, start.as_ref())
        .await?;
    let items: Vec<OrderItem> = store.load_many(&page.items).await?;
    Ok(OrderPage {
        orders: items.iter().filter_map(OrderView::of).collect(),
        next: page.next.as_ref().map(Cursor::at).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written_and_nothing_else_reads() {
        let at = DateTime::<Utc>::from_timestamp_micros(1_795_000_000_123_456).unwrap();
        let position = Position {
            sort: placed_key(at),
            entity: Uuid::now_v7().to_string(),
        };
        let cursor = Cursor::at(&position).unwrap();
        let decoded = Cursor::decode(&cursor.encode()).unwrap();
        assert_eq!(decoded, cursor);
        assert_eq!(decoded.position(), position);
        let text = cursor.encode();
        for bad in [
            "",
            "zz",
            &text[..31],
            &format!("{text}0000000000000000"),
            &text.to_uppercase(),
            &text.replace(&text[..1], "g"),
        ] {
            assert_eq!(Cursor::decode(bad), Err(InvalidCursor), "{bad:?}");
        }
    }

    #[test]
    fn placed_keys_sort_as_their_times() {
        let at = |micros| DateTime::<Utc>::from_timestamp_micros(micros).unwrap();
        let keys: Vec<String> = [
            1_795_000_000_000_000,
            1_795_000_000_000_001,
            1_795_000_001_000_000,
        ]
        .into_iter()
        .map(|m| placed_key(at(m)))
        .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys[0], "2026-11-18T11:06:40.000000Z");
    }
}
