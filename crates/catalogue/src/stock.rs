//! A SKU's stock item in the inventory table (key `pk` = `SKU#<sku>`): its available stock and,
//! as the catalogue, its price. The attribute names live here only.

use serde::{Deserialize, Serialize};

/// The table's partition key.
pub const KEY: &str = "pk";
/// The stock attribute of a [`StockItem`] (conditions and updates name it).
pub const AVAILABLE: &str = "available";

/// The key of a sku's stock.
pub fn sku_key(sku: &str) -> String {
    format!("SKU#{sku}")
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
