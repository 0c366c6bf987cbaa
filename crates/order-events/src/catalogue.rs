//! The catalogue: every event type on the order events topic, each a data struct with its name,
//! version and producer ([`EventData`]).
//!
//! The saga, in events: the order API announces [`OrderPlaced`]; inventory answers
//! [`StockReserved`] or [`StockRejected`], payment [`PaymentAuthorized`] or [`PaymentDeclined`];
//! the order service decides [`OrderConfirmed`] or [`OrderCancelled`]; a confirmed order is
//! captured ([`PaymentCaptured`]) and shipped ([`ShipmentCreated`]); a customer may ask for
//! [`CancellationRequested`], which the order service grants (an [`OrderCancelled`]) or, when the
//! order shipped first, refuses ([`CancellationRefused`]). `events/asyncapi.yaml` documents who produces and consumes each.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::{CloudEvent, EventData};

/// `source` of events published by the order service (its API and its decisions).
pub const ORDER_SERVICE_SOURCE: &str = "urn:orderflow:order-service";
/// `source` of events published by inventory.
pub const INVENTORY_SOURCE: &str = "urn:orderflow:inventory";
/// `source` of events published by payment.
pub const PAYMENT_SOURCE: &str = "urn:orderflow:payment";
/// `source` of events published by shipping.
pub const SHIPPING_SOURCE: &str = "urn:orderflow:shipping";

/// Every event type of the contract: what subscription filter policies may name.
pub const EVENT_TYPES: &[&str] = &[
    OrderPlaced::TYPE,
    StockReserved::TYPE,
    StockRejected::TYPE,
    PaymentAuthorized::TYPE,
    PaymentDeclined::TYPE,
    OrderConfirmed::TYPE,
    OrderCancelled::TYPE,
    PaymentCaptured::TYPE,
    ShipmentCreated::TYPE,
    CancellationRequested::TYPE,
    CancellationRefused::TYPE,
];

/// The events of one order that is confirmed and shipped, in the order they happen.
pub const CONFIRMED_ORDER_EVENTS: &[&str] = &[
    OrderPlaced::TYPE,
    StockReserved::TYPE,
    PaymentAuthorized::TYPE,
    OrderConfirmed::TYPE,
    PaymentCaptured::TYPE,
    ShipmentCreated::TYPE,
];

/// CloudEvents `type`, and the `eventType` message attribute, of [`OrderPlaced`].
pub const ORDER_PLACED: &str = OrderPlaced::TYPE;

/// Implements [`EventData`] for data structs that carry their order in `order_id`.
macro_rules! event_data {
    ($($data:ident: $version:literal from $source:ident;)+) => {$(
        impl EventData for $data {
            const TYPE: &'static str = stringify!($data);
            const VERSION: &'static str = $version;
            const SOURCE: &'static str = $source;

            fn order_id(&self) -> Uuid {
                self.order_id
            }
        }
    )+};
}

event_data! {
    StockReserved: "1" from INVENTORY_SOURCE;
    StockRejected: "1" from INVENTORY_SOURCE;
    PaymentAuthorized: "1" from PAYMENT_SOURCE;
    PaymentDeclined: "1" from PAYMENT_SOURCE;
    OrderConfirmed: "1" from ORDER_SERVICE_SOURCE;
    OrderCancelled: "1" from ORDER_SERVICE_SOURCE;
    PaymentCaptured: "1" from PAYMENT_SOURCE;
    ShipmentCreated: "1" from SHIPPING_SOURCE;
    CancellationRequested: "1" from ORDER_SERVICE_SOURCE;
    CancellationRefused: "1" from ORDER_SERVICE_SOURCE;
}

/// One line of an order. Prices are integer minor units of the order's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub sku: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
}

impl OrderLine {
    /// `quantity * unit_price_minor`, or `None` on overflow.
    pub fn amount_minor(&self) -> Option<i64> {
        self.unit_price_minor.checked_mul(i64::from(self.quantity))
    }
}

/// Where an order ships (`shippingAddress`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShippingAddress {
    pub recipient: String,
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// The `OrderPlaced` fact: a customer placed this order. Every reader of `OrderPlaced` gets
/// this, whatever major version carried it: v1's layout is this one (read as is; events written
/// before `shippingAddress` was added read without it), v2's is [`OrderPlacedV2`], regrouped
/// into this on reading. Written as v1. Its fingerprint (the default: its JSON) is the same
/// for the order as v1, as v2, and as written before `shippingAddress` (absent, so not written):
/// an idempotency key recorded before the change still matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub customer_id: String,
    pub customer_email: String,
    /// The order lines (`items` in the JSON).
    #[serde(rename = "items")]
    pub lines: Vec<OrderLine>,
    /// ISO 4217 code, one of [`crate::SUPPORTED_CURRENCIES`].
    pub currency: String,
    /// Sum of the lines, in minor units.
    pub total_minor: i64,
    /// Where it ships, when the customer said (added to v1 as an optional field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<ShippingAddress>,
}

impl EventData for OrderPlaced {
    const TYPE: &'static str = "OrderPlaced";
    const VERSION: &'static str = "1";
    const READS: &'static [&'static str] = &["1", "2"];
    const SOURCE: &'static str = ORDER_SERVICE_SOURCE;

    fn order_id(&self) -> Uuid {
        self.order_id
    }

    fn read_version(version: &str, data: serde_json::Value) -> Result<Self, serde_json::Error> {
        match version {
            OrderPlacedV2::VERSION => serde_json::from_value::<OrderPlacedV2>(data).map(Self::from),
            other => Err(serde::de::Error::custom(format!(
                "no reader of OrderPlaced version {other:?}"
            ))),
        }
    }
}

/// Who placed an order, in [`OrderPlacedV2`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<ShippingAddress>,
}

/// Version 2 of `OrderPlaced`: who ordered and where it ships grouped under `customer`. A
/// breaking change (`customerId` and `customerEmail` moved), hence a new major. What the API
/// writes when its `ORDER_PLACED_VERSION` is 2; readers read it as [`OrderPlaced`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlacedV2 {
    pub order_id: Uuid,
    pub customer: Customer,
    #[serde(rename = "items")]
    pub lines: Vec<OrderLine>,
    pub currency: String,
    pub total_minor: i64,
}

impl EventData for OrderPlacedV2 {
    const TYPE: &'static str = OrderPlaced::TYPE;
    const VERSION: &'static str = "2";
    const SOURCE: &'static str = ORDER_SERVICE_SOURCE;

    fn order_id(&self) -> Uuid {
        self.order_id
    }

    /// The same as the order's as v1: one fact, whichever major carries it.
    fn fingerprint(&self) -> Vec<u8> {
        OrderPlaced::from(self.clone()).fingerprint()
    }
}

/// The upcaster: a v1 order as v2 (the same order, regrouped).
impl From<&OrderPlaced> for OrderPlacedV2 {
    fn from(order: &OrderPlaced) -> Self {
        Self {
            order_id: order.order_id,
            customer: Customer {
                id: order.customer_id.clone(),
                email: order.customer_email.clone(),
                shipping_address: order.shipping_address.clone(),
            },
            lines: order.lines.clone(),
            currency: order.currency.clone(),
            total_minor: order.total_minor,
        }
    }
}

impl CloudEvent<OrderPlaced> {
    /// The same event written as v2: same id, time and order.
    pub fn as_v2(&self) -> CloudEvent<OrderPlacedV2> {
        let mut event = self.clone().with_data(OrderPlacedV2::from(&self.data));
        event.eventversion = OrderPlacedV2::VERSION.to_owned();
        event
    }
}

/// A v2 order as its readers take it.
impl From<OrderPlacedV2> for OrderPlaced {
    fn from(order: OrderPlacedV2) -> Self {
        Self {
            order_id: order.order_id,
            customer_id: order.customer.id,
            customer_email: order.customer.email,
            lines: order.lines,
            currency: order.currency,
            total_minor: order.total_minor,
            shipping_address: order.customer.shipping_address,
        }
    }
}

/// Inventory holds stock for every line of the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockReserved {
    pub order_id: Uuid,
}

/// Inventory cannot hold stock for the order; nothing was reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockRejected {
    pub order_id: Uuid,
    /// Why, for people: "insufficient stock for SKU-WEBCAM: 1 requested, 0 available".
    pub reason: String,
}

/// Payment holds the order's total on the customer's means of payment (not yet charged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentAuthorized {
    pub order_id: Uuid,
    /// The payment gateway's id of the hold.
    pub authorization_id: String,
    pub amount_minor: i64,
    pub currency: String,
}

/// The payment gateway refused to hold the order's total; nothing is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDeclined {
    pub order_id: Uuid,
    pub reason: String,
}

/// The order service's decision: stock is reserved and payment authorized; the order goes
/// ahead. Carries the order, so that capturing, shipping and confirming need no lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderConfirmed {
    pub order_id: Uuid,
    pub customer_id: String,
    pub customer_email: String,
    /// The order lines (`items` in the JSON).
    #[serde(rename = "items")]
    pub lines: Vec<OrderLine>,
    pub currency: String,
    pub total_minor: i64,
    /// Where it ships, when the order said (added to v1 as an optional field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<ShippingAddress>,
}

impl From<&OrderPlaced> for OrderConfirmed {
    fn from(order: &OrderPlaced) -> Self {
        Self {
            order_id: order.order_id,
            customer_id: order.customer_id.clone(),
            customer_email: order.customer_email.clone(),
            lines: order.lines.clone(),
            currency: order.currency.clone(),
            total_minor: order.total_minor,
            shipping_address: order.shipping_address.clone(),
        }
    }
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CancelReason {
    StockRejected,
    PaymentDeclined,
    CustomerRequest,
}

impl CancelReason {
    /// The reason for people ("stock rejected").
    pub fn describe(self) -> &'static str {
        match self {
            CancelReason::StockRejected => "stock rejected",
            CancelReason::PaymentDeclined => "payment declined",
            CancelReason::CustomerRequest => "cancelled by the customer",
        }
    }
}

/// The order service's decision: the order will not go ahead. Every service undoes what it did
/// for the order (releases stock, voids or refunds, cancels a shipment) and the customer is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub customer_id: String,
    pub customer_email: String,
    pub reason: CancelReason,
    /// The reason in the words of the service that gave it.
    pub detail: String,
    pub currency: String,
    pub total_minor: i64,
}

/// Payment charged the authorized amount of a confirmed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCaptured {
    pub order_id: Uuid,
    pub capture_id: String,
    pub amount_minor: i64,
    pub currency: String,
}

/// Shipping handed a confirmed order to a carrier: from now on it cannot be cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentCreated {
    pub order_id: Uuid,
    pub shipment_id: String,
    pub carrier: String,
    pub tracking_number: String,
}

/// The customer asked to cancel the order. Granted unless it has shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancellationRequested {
    pub order_id: Uuid,
    pub customer_id: String,
}

/// An `OrderPlaced` event as it travels.
pub type OrderPlacedEvent = CloudEvent<OrderPlaced>;

/// Why a customer's cancellation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RefusalReason {
    /// The shipment was created before the order service heard the request.
    AlreadyShipped,
}

impl RefusalReason {
    /// The reason for people ("the order had already shipped").
    pub fn describe(self) -> &'static str {
        match self {
            RefusalReason::AlreadyShipped => "the order had already shipped",
        }
    }
}

/// The order service's answer to a [`CancellationRequested`] it could not grant: the order goes
/// ahead as it was (no service undoes anything) and the customer is told why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancellationRefused {
    pub order_id: Uuid,
    pub customer_id: String,
    pub customer_email: String,
    pub reason: RefusalReason,
    /// What made it so, e.g. the shipment's carrier and tracking number.
    pub detail: String,
}
