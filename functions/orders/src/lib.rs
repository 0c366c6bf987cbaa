//! The order service: holds each order's state (the orders table) and makes the saga's
//! decision. It hears every outcome about an order, records it, and announces `OrderConfirmed`
//! once stock is reserved and payment authorized, or `OrderCancelled` with the reason once stock
//! is rejected, payment declined, or the customer asked before shipment ([`order_state::state`]).
//!
//! Idempotency: each event is a transition of the order's item: one read and one conditional
//! write that records the event's key in the item and is refused if the item changed since the
//! read ([`lambda_kit::effect::transition`]), so two events about one order processed at once
//! cannot overwrite each other, and an event applied before is found in the item.
//!
//! The decision is published after the write by the record whose event made it (the item names
//! that event: `decidedBy`). That record is the outbox: it leaves the queue only once the
//! publish succeeded, and a redelivery of it (its publish failed, or its invocation died before
//! it) finds its event applied and publishes the decision again, built from the item, so with
//! the same data, which consumers apply once. No other event publishes it, and no write records
//! that it was published. A refused cancellation is announced the same way
//! (`CancellationRefused`), by the record of the request it refuses: only that event can refuse.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lambda_kit::consumer::{ConfigError, EventHandler, FunctionEnv};
use lambda_kit::effect::{transition, DynamoEffectStore, EffectStore};
use lambda_kit::spec::{ServiceSpec, SERVICE_TABLE};
use lambda_kit::RecordError;
use order_events::publish::{EventPublisher, SnsPublisher};
use order_events::{
    CancellationRefused, CancellationRequested, CloudEvent, EventData, OrderCancelled,
    OrderConfirmed, OrderPlaced, PaymentAuthorized, PaymentCaptured, PaymentDeclined,
    ShipmentCreated, StockRejected, StockReserved,
};

pub use order_state::{store_from_env, Decision, Fact, OrderItem, Status};

/// What this service is: its name (the binary, the metrics' `service`, the scope of its
/// idempotency keys: the owner of the orders table), its table, what it consumes and announces.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: order_state::OWNER,
    table_variable: Some(SERVICE_TABLE),
    consumes: OrderServiceEvent::TYPES,
    publishes: &[
        OrderConfirmed::TYPE,
        OrderCancelled::TYPE,
        CancellationRefused::TYPE,
    ],
};

order_events::consumed_events! {
    /// What the order service hears: the order, every service's outcome, the customer's request.
    pub enum OrderServiceEvent {
        Placed(OrderPlaced),
        StockReserved(StockReserved),
        StockRejected(StockRejected),
        PaymentAuthorized(PaymentAuthorized),
        PaymentDeclined(PaymentDeclined),
        PaymentCaptured(PaymentCaptured),
        ShipmentCreated(ShipmentCreated),
        CancellationRequested(CancellationRequested),
    }
}

impl OrderServiceEvent {
    /// The fact the event states, and when it happened.
    pub fn fact(&self) -> (Fact, DateTime<Utc>) {
        use OrderServiceEvent as E;
        match self {
            E::Placed(e) => (Fact::Placed(e.data.clone()), e.time),
            E::StockReserved(e) => (Fact::StockReserved, e.time),
            E::StockRejected(e) => (Fact::StockRejected(e.data.clone()), e.time),
            E::PaymentAuthorized(e) => (Fact::PaymentAuthorized(e.data.clone()), e.time),
            E::PaymentDeclined(e) => (Fact::PaymentDeclined(e.data.clone()), e.time),
            E::PaymentCaptured(e) => (Fact::PaymentCaptured(e.data.clone()), e.time),
            E::ShipmentCreated(e) => (Fact::ShipmentCreated(e.data.clone()), e.time),
            E::CancellationRequested(e) => (Fact::CancellationRequested(e.data.clone()), e.time),
        }
    }

    fn correlation_id(&self) -> &str {
        use OrderServiceEvent as E;
        match self {
            E::Placed(e) => &e.correlationid,
            E::StockReserved(e) => &e.correlationid,
            E::StockRejected(e) => &e.correlationid,
            E::PaymentAuthorized(e) => &e.correlationid,
            E::PaymentDeclined(e) => &e.correlationid,
            E::PaymentCaptured(e) => &e.correlationid,
            E::ShipmentCreated(e) => &e.correlationid,
            E::CancellationRequested(e) => &e.correlationid,
        }
    }
}

/// The order service's consumer.
pub struct Orders<S, P> {
    store: S,
    publisher: P,
}

impl<S: EffectStore, P: EventPublisher> Orders<S, P> {
    pub fn new(store: S, publisher: P) -> Self {
        Self { store, publisher }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    async fn announce(&self, decision: Decision, correlation_id: &str) -> Result<(), RecordError> {
        match decision {
            Decision::Confirmed(data) => {
                self.publisher
                    .publish(&CloudEvent::new(data, correlation_id))
                    .await?;
                tracing::info!("order confirmed");
            }
            Decision::Cancelled(data) => {
                let (reason, detail) = (data.reason.describe(), data.detail.clone());
                self.publisher
                    .publish(&CloudEvent::new(data, correlation_id))
                    .await?;
                tracing::info!(%reason, %detail, "order cancelled");
            }
        }
        Ok(())
    }
}

impl Orders<DynamoEffectStore, SnsPublisher> {
    /// Reads `SERVICE_TABLE` (the orders table), `IDEMPOTENCY_TABLE` and `TOPIC_ARN`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        Ok(Self::new(
            store_from_env(sdk, env, SERVICE_TABLE)?,
            SnsPublisher::for_consumer(sdk, env)?,
        ))
    }
}

impl<S: EffectStore, P: EventPublisher> EventHandler for Orders<S, P> {
    const SPEC: ServiceSpec = SPEC;
    type Event = OrderServiceEvent;

    async fn apply(
        &self,
        event: OrderServiceEvent,
        _deadline: SystemTime,
    ) -> Result<(), RecordError> {
        let order_id = event.order_id();
        let event_type = event.type_name();
        let (fact, at) = event.fact();
        let done = transition(
            &self.store,
            &event.idempotency_key(),
            &order_id.to_string(),
            |current: Option<&OrderItem>| {
                let mut item = current.cloned().unwrap_or_else(|| OrderItem::new(order_id));
                let before = item.status;
                if !item.apply(fact.clone(), at) {
                    return None;
                }
                if item.status != before {
                    item.decided_by = Some(event_type.to_owned());
                }
                Some(item)
            },
        )
        .await?;
        let applied = done.is_applied();
        let Some(item) = done.into_item() else {
            return Ok(());
        };
        if applied {
            tracing::info!(status = ?item.status, "applied");
        }
        if let (OrderServiceEvent::CancellationRequested(_), Some(refusal)) =
            (&event, item.refusal())
        {
            let (reason, detail) = (refusal.reason.describe(), refusal.detail.clone());
            self.publisher
                .publish(&CloudEvent::new(refusal, event.correlation_id()))
                .await?;
            tracing::info!(%reason, %detail, "cancellation refused");
            return Ok(());
        }
        if item.decided_by.as_deref() != Some(event_type) {
            return Ok(());
        }
        if let Some(decision) = item.decision() {
            let cancelled = match &decision {
                Decision::Confirmed(_) => None,
                Decision::Cancelled(data) => Some(data.reason),
            };
            self.announce(decision, event.correlation_id()).await?;
            if applied {
                count_decision(cancelled, item.placed.as_ref().map(|p| p.at));
            }
        }
        Ok(())
    }
}

/// The decision's business metrics: confirmed or cancelled (by reason), and how long the
/// customer waited for it since the order was placed.
fn count_decision(cancelled: Option<order_events::CancelReason>, placed_at: Option<DateTime<Utc>>) {
    use lambda_kit::metrics::{self, name};
    match cancelled {
        None => metrics::count(name::ORDERS_CONFIRMED, SPEC.name, 1),
        Some(reason) => metrics::order_cancelled(SPEC.name, reason_dimension(reason)),
    }
    if let Some(placed_at) = placed_at {
        metrics::time(
            name::TIME_TO_DECISION,
            SPEC.name,
            metrics::age(placed_at.into()),
        );
    }
}

/// The `reason` dimension of a cancellation: one of three fixed values.
fn reason_dimension(reason: order_events::CancelReason) -> &'static str {
    match reason {
        order_events::CancelReason::StockRejected => "StockRejected",
        order_events::CancelReason::PaymentDeclined => "PaymentDeclined",
        order_events::CancelReason::CustomerRequest => "CustomerRequest",
    }
}

#[cfg(test)]
mod tests;
