//! An order as `GET /orders/{orderId}` shows it: status, lines, total, and each step of its
//! lifecycle with its time and outcome.

use chrono::{DateTime, Utc};
use order_events::{CancelReason, OrderLine, RefusalReason, ShippingAddress};
use serde::Serialize;
use uuid::Uuid;

use crate::state::{OrderItem, Status, Step};

/// The customer's view of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: Uuid,
    /// `PENDING`, `CONFIRMED`, `SHIPPED` or `CANCELLED`.
    pub status: &'static str,
    pub customer_id: String,
    /// The order lines (`items` in the JSON).
    #[serde(rename = "items")]
    pub lines: Vec<OrderLine>,
    pub currency: String,
    pub total_minor: i64,
    pub placed_at: DateTime<Utc>,
    /// Where it ships, when the customer gave an address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<ShippingAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<CancellationView>,
    /// Why the customer's cancellation was refused, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation_refusal: Option<RefusalView>,
    /// Every step so far, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// Why an order was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancellationView {
    pub reason: CancelReason,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// Why a cancellation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusalView {
    pub reason: RefusalReason,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// One step of an order's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// `placed`, `stock`, `payment`, `confirmed`, `cancellationRequested`, `cancelled`,
    /// `cancellationRefused`, `captured` or `shipped`.
    pub step: &'static str,
    /// `ok` or `failed`.
    pub outcome: &'static str,
    pub at: DateTime<Utc>,
    pub detail: String,
}

fn entry(
    step: &'static str,
    ok: bool,
    at: DateTime<Utc>,
    detail: impl Into<String>,
) -> TimelineEntry {
    TimelineEntry {
        step,
        outcome: if ok { "ok" } else { "failed" },
        at,
        detail: detail.into(),
    }
}

fn from_step(name: &'static str, step: &Option<Step>) -> Option<TimelineEntry> {
    step.as_ref()
        .map(|s| entry(name, s.ok, s.at, s.detail.clone()))
}

impl OrderView {
    /// The view of `item`, once the order itself is known (before, there is nothing to show).
    pub fn of(item: &OrderItem) -> Option<Self> {
        let placed = item.placed.as_ref()?;
        let mut timeline: Vec<TimelineEntry> = [
            Some(entry("placed", true, placed.at, "order accepted")),
            from_step("stock", &item.stock),
            from_step("payment", &item.payment),
            item.confirmed_at.map(|at| {
                entry(
                    "confirmed",
                    true,
                    at,
                    "stock reserved and payment authorized",
                )
            }),
            item.cancellation_requested_at.map(|at| {
                entry(
                    "cancellationRequested",
                    true,
                    at,
                    "requested by the customer",
                )
            }),
            item.cancelled
                .as_ref()
                .map(|c| entry("cancelled", true, c.at, c.reason.describe())),
            from_step("captured", &item.captured),
            from_step("shipped", &item.shipped),
            item.cancellation_refused.as_ref().map(|r| {
                entry(
                    "cancellationRefused",
                    false,
                    r.at,
                    format!("{}: {}", r.reason.describe(), r.detail),
                )
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        // Stable: a refusal at its shipment's time stays after it.
        timeline.sort_by_key(|e| e.at);
        let status = match item.status {
            Status::Pending => "PENDING",
            Status::Confirmed if item.shipped.is_some() => "SHIPPED",
            Status::Confirmed => "CONFIRMED",
            Status::Cancelled => "CANCELLED",
        };
        Some(Self {
            order_id: item.order_id,
            status,
            customer_id: placed.customer_id.clone(),
            lines: placed.lines.clone(),
            currency: placed.currency.clone(),
            total_minor: placed.total_minor,
            placed_at: placed.at,
            shipping_address: placed.shipping_address.clone(),
            cancellation: item.cancelled.as_ref().map(|c| CancellationView {
                reason: c.reason,
                detail: c.detail.clone(),
                at: c.at,
            }),
            cancellation_refusal: item.cancellation_refused.as_ref().map(|r| RefusalView {
                reason: r.reason,
                detail: r.detail.clone(),
                at: r.at,
            }),
            timeline,
        })
    }
}
