//! What the inventory table holds (key `pk`): a [`StockItem`] per sku (`SKU#<sku>`, the
//! catalogue's, shared with the order API) and a [`ReservationItem`] per order (`ORDER#<order id>`,
//! inventory's own).

use std::collections::BTreeMap;

pub use catalogue::stock::{sku_key, StockItem, AVAILABLE, CURRENCY, KEY, UNIT_PRICE_MINOR};
use chrono::{DateTime, Utc};
use lambda_kit::effect::Applied;
use serde::{Deserialize, Serialize};

/// The key of an order's decision.
pub fn order_key(order_id: impl std::fmt::Display) -> String {
    format!("ORDER#{order_id}")
}

/// Where the order's stock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    /// Held for the order (and, once the order is confirmed, gone with it).
    Reserved,
    /// Not held: an unknown sku or short stock.
    Rejected,
    /// Held, then given back when the order was cancelled.
    Released,
    /// The order was cancelled before inventory saw it: nothing will be held.
    Cancelled,
}

/// The inventory decision for an order, one per order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationItem {
    pub pk: String,
    pub decision: ReservationStatus,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub event_id: uuid::Uuid,
    /// When the stock went back (outcome `RELEASED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<DateTime<Utc>>,
    /// Quantity per sku the decision covers, so an audit can recompute stock from decisions.
    pub lines: BTreeMap<String, u64>,
    pub decided_at: DateTime<Utc>,
    /// The event whose processing wrote the decision (its key and payload hash): the decision
    /// is that event's idempotency entry.
    #[serde(default, skip_serializing_if = "Applied::is_empty")]
    pub applied: Applied,
}

impl ReservationItem {
    /// The order id, when `pk` is a decision key.
    pub fn order_id(&self) -> Option<&str> {
        self.pk.strip_prefix("ORDER#")
    }
}

/// Any item of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InventoryItem {
    Reservation(ReservationItem),
    Stock(StockItem),
}
