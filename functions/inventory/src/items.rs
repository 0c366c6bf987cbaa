//! What the inventory table holds (key `pk`): a [`StockItem`] per sku (`SKU#<sku>`) and a
//! [`DecisionItem`] per order (`ORDER#<order id>`). The attribute names live here only.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The function environment variable naming the inventory table.
pub const TABLE_VARIABLE: &str = "INVENTORY_TABLE";
/// The table's partition key.
pub const KEY: &str = "pk";
/// The stock attribute of a [`StockItem`] (conditions and updates name it).
pub const AVAILABLE: &str = "available";

/// The key of a sku's stock.
pub fn sku_key(sku: &str) -> String {
    format!("SKU#{sku}")
}

/// The key of an order's decision.
pub fn order_key(order_id: impl std::fmt::Display) -> String {
    format!("ORDER#{order_id}")
}

/// The price attribute of a [`StockItem`]: minor units per unit.
pub const UNIT_PRICE_MINOR: &str = "unitPriceMinor";
/// The currency attribute of a [`StockItem`].
pub const CURRENCY: &str = "currency";

/// A sku's available stock and, as the catalogue, its price: the one source of what an order
/// is charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockItem {
    pub pk: String,
    #[serde(default)]
    pub available: u64,
    #[serde(
        rename = "unitPriceMinor",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub unit_price_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

impl StockItem {
    /// The sku, when `pk` is a stock key.
    pub fn sku(&self) -> Option<&str> {
        self.pk.strip_prefix("SKU#")
    }
}

/// Where the order's stock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
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
pub struct DecisionItem {
    pub pk: String,
    pub decision: Outcome,
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
}

impl DecisionItem {
    /// The order id, when `pk` is a decision key.
    pub fn order_id(&self) -> Option<&str> {
        self.pk.strip_prefix("ORDER#")
    }
}

/// Any item of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InventoryItem {
    Decision(DecisionItem),
    Stock(StockItem),
}
