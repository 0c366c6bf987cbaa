//! An order's state and the saga's decision, as a pure function of the facts known about it.
//!
//! Facts arrive in any order and more than once. Recording a fact keeps the first occurrence
//! (a duplicate changes nothing), and every time is the event's own time, so the state after a
//! set of facts does not depend on their arrival order. The decision looks only at the facts:
//!
//! | facts (once the order itself is known) | decision |
//! |---|---|
//! | stock rejected | cancelled, "stock rejected" |
//! | payment declined (stock not rejected) | cancelled, "payment declined" |
//! | cancellation requested, pending | cancelled, "cancelled by the customer" |
//! | stock reserved and payment authorized | confirmed |
//! | cancellation requested, confirmed, not shipped | cancelled, "cancelled by the customer" |
//! | cancellation requested, shipped | stays confirmed: the request is refused, with the reason |
//!
//! A decision, once made, is never undone, except confirmed -> cancelled by the customer before
//! shipment. When stock is rejected and payment declined the reason is the first one known.
//! A refusal is recorded once, and only ever by the request itself: a cancellation known before
//! the shipment has already cancelled the order.

use chrono::{DateTime, Utc};
use order_events::{
    CancelReason, CancellationRefused, CancellationRequested, OrderCancelled, OrderConfirmed,
    OrderLine, OrderPlaced, PaymentAuthorized, PaymentCaptured, PaymentDeclined, RefusalReason,
    ShipmentCreated, ShippingAddress, StockRejected,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the order service knows about an order, and what it decided. One item per order in the
/// orders table (`ORDERS_TABLE`, key `orderId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub order_id: Uuid,
    pub status: Status,
    /// The order as placed; absent while only other services' outcomes have arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed: Option<Placed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_requested_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<Cancellation>,
    /// The customer's cancellation, refused because the order had shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_refused: Option<Refusal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped: Option<Step>,
    /// The customer, once the order is known: the partition key of the orders-by-customer index
    /// ([`crate::listing`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// When the order was placed, as the index's sort key ([`placed_key`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed_at: Option<String>,
    /// The type of the event whose processing made the standing decision: that event's record
    /// announces it, again on a redelivery (bookkeeping of the order service's announcements;
    /// the facts and the decision never depend on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

impl OrderItem {
    /// The table's partition key.
    pub const KEY: &'static str = "orderId";
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Placed; waiting for stock and payment.
    Pending,
    Confirmed,
    Cancelled,
}

/// The order as the customer placed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placed {
    pub customer_id: String,
    pub customer_email: String,
    /// The order lines (`items` in the JSON).
    #[serde(rename = "items")]
    pub lines: Vec<OrderLine>,
    pub currency: String,
    pub total_minor: i64,
    /// Where it ships, when the customer said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<ShippingAddress>,
    pub at: DateTime<Utc>,
}

/// One service's outcome for the order, at the time that service announced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub ok: bool,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// Why and when the order was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancellation {
    pub reason: CancelReason,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// The orders-by-customer index's sort key of an order placed at `at`: fixed width
/// (microseconds, UTC), so that text order is time order.
pub fn placed_key(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Why and when a cancellation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    pub reason: RefusalReason,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// A fact about an order, with the time its event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    Placed(OrderPlaced),
    StockReserved,
    StockRejected(StockRejected),
    PaymentAuthorized(PaymentAuthorized),
    PaymentDeclined(PaymentDeclined),
    CancellationRequested(CancellationRequested),
    PaymentCaptured(PaymentCaptured),
    ShipmentCreated(ShipmentCreated),
}

/// What a decision announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Confirmed(OrderConfirmed),
    Cancelled(OrderCancelled),
}

/// Sets `slot` unless it holds a value already; whether it changed.
fn first<T>(slot: &mut Option<T>, value: T) -> bool {
    if slot.is_some() {
        return false;
    }
    *slot = Some(value);
    true
}

fn step(ok: bool, detail: impl Into<String>, at: DateTime<Utc>) -> Step {
    Step {
        ok,
        detail: detail.into(),
        at,
    }
}

impl OrderItem {
    /// An order nothing is known about yet.
    pub fn new(order_id: Uuid) -> Self {
        Self {
            order_id,
            status: Status::Pending,
            placed: None,
            stock: None,
            payment: None,
            confirmed_at: None,
            cancellation_requested_at: None,
            cancelled: None,
            cancellation_refused: None,
            captured: None,
            shipped: None,
            customer_id: None,
            placed_at: None,
            decided_by: None,
        }
    }

    /// Records `fact` (that happened at `at`) and decides; whether anything changed.
    pub fn apply(&mut self, fact: Fact, at: DateTime<Utc>) -> bool {
        let recorded = self.add_fact(fact, at);
        let decided = self.decide();
        self.index_keys();
        recorded || decided
    }

    /// The orders-by-customer index's attributes, from the order once it is known (an item
    /// written before the index existed gets them with its next change).
    fn index_keys(&mut self) {
        if let (None, Some(placed)) = (&self.customer_id, &self.placed) {
            self.customer_id = Some(placed.customer_id.clone());
            self.placed_at = Some(placed_key(placed.at));
        }
    }

    fn add_fact(&mut self, fact: Fact, at: DateTime<Utc>) -> bool {
        match fact {
            Fact::Placed(order) => first(
                &mut self.placed,
                Placed {
                    customer_id: order.customer_id,
                    customer_email: order.customer_email,
                    lines: order.lines,
                    currency: order.currency,
                    total_minor: order.total_minor,
                    shipping_address: order.shipping_address,
                    at,
                },
            ),
            Fact::StockReserved => first(&mut self.stock, step(true, "stock reserved", at)),
            Fact::StockRejected(e) => first(&mut self.stock, step(false, e.reason, at)),
            Fact::PaymentAuthorized(e) => first(
                &mut self.payment,
                step(true, format!("authorized {}", e.authorization_id), at),
            ),
            Fact::PaymentDeclined(e) => first(&mut self.payment, step(false, e.reason, at)),
            Fact::CancellationRequested(_) => first(&mut self.cancellation_requested_at, at),
            Fact::PaymentCaptured(e) => first(
                &mut self.captured,
                step(true, format!("captured {}", e.capture_id), at),
            ),
            Fact::ShipmentCreated(e) => first(
                &mut self.shipped,
                step(
                    true,
                    format!("{} tracking {}", e.carrier, e.tracking_number),
                    at,
                ),
            ),
        }
    }

    /// Makes the decision the facts call for, if any; whether the status changed.
    fn decide(&mut self) -> bool {
        let Some(placed_at) = self.placed.as_ref().map(|p| p.at) else {
            return false;
        };
        let failed = |step: &Option<Step>| step.as_ref().filter(|s| !s.ok).cloned();
        let succeeded = |step: &Option<Step>| step.as_ref().is_some_and(|s| s.ok);
        let customer = self
            .cancellation_requested_at
            .map(|at| step(false, CancelReason::CustomerRequest.describe(), at));
        let cancel = match self.status {
            Status::Cancelled => None,
            Status::Pending => {
                if let Some(s) = failed(&self.stock) {
                    Some((CancelReason::StockRejected, s))
                } else if let Some(s) = failed(&self.payment) {
                    Some((CancelReason::PaymentDeclined, s))
                } else {
                    customer.map(|s| (CancelReason::CustomerRequest, s))
                }
            }
            Status::Confirmed if self.shipped.is_none() => {
                customer.map(|s| (CancelReason::CustomerRequest, s))
            }
            Status::Confirmed => {
                if let (Some(requested_at), Some(shipped), None) = (
                    self.cancellation_requested_at,
                    &self.shipped,
                    &self.cancellation_refused,
                ) {
                    self.cancellation_refused = Some(Refusal {
                        reason: RefusalReason::AlreadyShipped,
                        detail: shipped.detail.clone(),
                        at: requested_at.max(shipped.at),
                    });
                    return true;
                }
                None
            }
        };
        if let Some((reason, cause)) = cancel {
            self.status = Status::Cancelled;
            self.cancelled = Some(Cancellation {
                reason,
                detail: cause.detail,
                at: cause.at.max(placed_at),
            });
            return true;
        }
        if self.status == Status::Pending && succeeded(&self.stock) && succeeded(&self.payment) {
            let at = [Some(placed_at), self.stock_at(), self.payment_at()]
                .into_iter()
                .flatten()
                .max();
            self.status = Status::Confirmed;
            self.confirmed_at = at;
            return true;
        }
        false
    }

    fn stock_at(&self) -> Option<DateTime<Utc>> {
        self.stock.as_ref().map(|s| s.at)
    }

    fn payment_at(&self) -> Option<DateTime<Utc>> {
        self.payment.as_ref().map(|s| s.at)
    }

    /// The decision this state announces: `OrderConfirmed` while confirmed, `OrderCancelled`
    /// once cancelled, nothing while pending. Built from the state alone, so announcing it again
    /// (after a crash between the write and the publish) publishes the same data.
    pub fn decision(&self) -> Option<Decision> {
        let placed = self.placed.as_ref()?;
        let order = OrderPlaced {
            order_id: self.order_id,
            customer_id: placed.customer_id.clone(),
            customer_email: placed.customer_email.clone(),
            lines: placed.lines.clone(),
            currency: placed.currency.clone(),
            total_minor: placed.total_minor,
            shipping_address: placed.shipping_address.clone(),
        };
        match (self.status, &self.cancelled) {
            (Status::Confirmed, _) => Some(Decision::Confirmed(OrderConfirmed::from(&order))),
            (Status::Cancelled, Some(cancellation)) => Some(Decision::Cancelled(OrderCancelled {
                order_id: self.order_id,
                customer_id: order.customer_id,
                customer_email: order.customer_email,
                reason: cancellation.reason,
                detail: cancellation.detail.clone(),
                currency: order.currency,
                total_minor: order.total_minor,
            })),
            _ => None,
        }
    }

    /// The refusal of the customer's cancellation, once the order service refused it. Built from
    /// the state alone, like [`Self::decision`], so announcing it again publishes the same data.
    pub fn refusal(&self) -> Option<CancellationRefused> {
        let placed = self.placed.as_ref()?;
        let refusal = self.cancellation_refused.as_ref()?;
        Some(CancellationRefused {
            order_id: self.order_id,
            customer_id: placed.customer_id.clone(),
            customer_email: placed.customer_email.clone(),
            reason: refusal.reason,
            detail: refusal.detail.clone(),
        })
    }

    /// Whether the customer may still ask to cancel: not cancelled, not shipped.
    pub fn cancellable(&self) -> bool {
        self.status != Status::Cancelled && self.shipped.is_none()
    }
}
