//! The catalogue: every event type on the order events topic, each a data struct with its name,
//! version and producer ([`EventData`]).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::{CloudEvent, EventData};

/// `source` of events published by the order service.
pub const ORDER_SERVICE_SOURCE: &str = "urn:orderflow:order-service";

/// Every event type of the contract: what subscription filter policies may name.
pub const EVENT_TYPES: &[&str] = &[OrderPlaced::TYPE];

/// CloudEvents `type`, and the `eventType` message attribute, of [`OrderPlaced`].
pub const ORDER_PLACED: &str = OrderPlaced::TYPE;

/// One line of an order. Prices are integer minor units of the order's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    pub sku: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
}

impl LineItem {
    /// `quantity * unit_price_minor`, or `None` on overflow.
    pub fn amount_minor(&self) -> Option<i64> {
        self.unit_price_minor.checked_mul(i64::from(self.quantity))
    }
}

/// Version 1 of the `OrderPlaced` fact: a customer placed this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub customer_id: String,
    pub customer_email: String,
    pub items: Vec<LineItem>,
    /// ISO 4217 code, one of [`crate::SUPPORTED_CURRENCIES`].
    pub currency: String,
    /// Sum of the lines, in minor units.
    pub total_minor: i64,
}

impl EventData for OrderPlaced {
    const TYPE: &'static str = "OrderPlaced";
    const VERSION: &'static str = "1";
    const SOURCE: &'static str = ORDER_SERVICE_SOURCE;

    fn order_id(&self) -> Uuid {
        self.order_id
    }
}

/// An `OrderPlaced` event as it travels.
pub type OrderPlacedEvent = CloudEvent<OrderPlaced>;
