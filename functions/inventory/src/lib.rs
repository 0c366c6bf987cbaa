//! Inventory: reserves stock for every line of a placed order and announces `StockReserved`, or
//! records why it cannot and announces `StockRejected`; gives the stock back when the order is
//! cancelled.
//!
//! Stock and decisions live in one table (`SERVICE_TABLE`, key `pk`, see [`items`]): `SKU#<sku>`
//! items hold `available`, `ORDER#<orderId>` items hold the decision for the order. An unknown sku or short
//! stock is a business outcome (the order is recorded as rejected for inventory), not a
//! technical failure: the message is acknowledged.
//!
//! Idempotency: the order's decision item is the event's idempotency entry (it records the
//! event's key and payload hash, and is written once per order: `attribute_not_exists`). The
//! stock decrements (or, on cancellation, increments) and the decision are one
//! `TransactWriteItems`, so stock moves exactly once per order and never below zero (each
//! decrement is conditional on `available >= quantity`, each release on the decision being
//! `RESERVED`); a rejection takes no stock and is one conditional write. No read before: the
//! conditions decide. A cancellation that arrives before the order leaves a `CANCELLED`
//! decision, so the late order reserves nothing. The outcome is announced after the write, and
//! again when the event comes again (a publish that failed after the write is retried that
//! way).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::SystemTime;

use lambda_kit::consumer::{ConfigError, EventHandler, FunctionEnv};
use lambda_kit::idempotency::Effect;
use lambda_kit::spec::ServiceSpec;
use lambda_kit::RecordError;
use order_events::publish::{EventPublisher, SnsPublisher};
use order_events::EventData;
use order_events::{
    CloudEvent, OrderCancelled, OrderPlaced, OrderPlacedEvent, StockRejected, StockReserved,
};
use uuid::Uuid;

mod dynamo;
pub mod items;
pub use dynamo::DynamoInventory;

/// What this service is: its name (the binary, the metrics' `service`, the scope of its
/// idempotency keys), its table, what it consumes and announces.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: "inventory",
    table_variable: Some(lambda_kit::spec::SERVICE_TABLE),
    consumes: InventoryEvent::TYPES,
    publishes: &[StockReserved::TYPE, StockRejected::TYPE],
};

/// Quantity wanted per sku: an order may list the same sku on several lines, and one
/// transaction may touch an item only once.
pub fn quantities_by_sku(order: &OrderPlaced) -> BTreeMap<&str, u64> {
    let mut wanted = BTreeMap::new();
    for line in &order.lines {
        *wanted.entry(line.sku.as_str()).or_insert(0) += u64::from(line.quantity);
    }
    wanted
}

/// The inventory decision for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    Reserved,
    Rejected(Rejection),
}

/// Why an order could not be reserved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("unknown sku {0}")]
    UnknownSku(String),
    #[error("insufficient stock for {sku}: {requested} requested, {available} available")]
    InsufficientStock {
        sku: String,
        requested: u64,
        available: u64,
    },
}

/// Where stock is reserved, released and decisions are recorded, once per event.
pub trait InventoryStore: Send + Sync {
    /// Reserves the order's stock, or records why not.
    fn reserve(
        &self,
        event: &OrderPlacedEvent,
    ) -> impl Future<Output = Result<Effect<Reservation>, RecordError>> + Send;

    /// Gives back what the order holds, or records that it must never hold anything.
    fn release(
        &self,
        event: &CloudEvent<OrderCancelled>,
    ) -> impl Future<Output = Result<Effect<()>, RecordError>> + Send;

    /// Where the order's stock stands: its outcome and, when rejected, why.
    fn decision(
        &self,
        order_id: Uuid,
    ) -> impl Future<Output = Result<Option<(items::ReservationStatus, Option<String>)>, RecordError>>
           + Send;
}

order_events::consumed_events! {
    /// What inventory reacts to.
    pub enum InventoryEvent {
        Placed(OrderPlaced),
        Cancelled(OrderCancelled),
    }
}

/// The inventory consumer.
pub struct Inventory<S, P> {
    store: S,
    publisher: P,
}

impl<S: InventoryStore, P: EventPublisher> Inventory<S, P> {
    pub fn new(store: S, publisher: P) -> Self {
        Self { store, publisher }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    async fn placed(&self, event: OrderPlacedEvent) -> Result<(), RecordError> {
        let order_id = event.order_id();
        let outcome = match self.store.reserve(&event).await? {
            Effect::Applied(Reservation::Reserved) => (items::ReservationStatus::Reserved, None),
            Effect::Applied(Reservation::Rejected(reason)) => {
                (items::ReservationStatus::Rejected, Some(reason.to_string()))
            }
            Effect::AlreadyDone(()) => match self.store.decision(order_id).await? {
                Some(standing) => standing,
                None => return Err("the order's decision is missing after it was applied".into()),
            },
        };
        let correlation = event.correlationid.as_str();
        match outcome {
            (items::ReservationStatus::Reserved, _) => {
                let data = StockReserved { order_id };
                self.publisher
                    .publish(&CloudEvent::new(data, correlation))
                    .await?;
                tracing::info!("stock reserved");
            }
            (items::ReservationStatus::Rejected, reason) => {
                let reason = reason.unwrap_or_else(|| "stock rejected".into());
                tracing::warn!(%reason, "order rejected by inventory");
                let data = StockRejected { order_id, reason };
                self.publisher
                    .publish(&CloudEvent::new(data, correlation))
                    .await?;
            }
            (outcome, _) => tracing::info!(?outcome, "order cancelled already; nothing held"),
        }
        Ok(())
    }
}

impl Inventory<DynamoInventory, SnsPublisher> {
    /// Reads `SERVICE_TABLE`, `IDEMPOTENCY_TABLE` and `TOPIC_ARN`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        Ok(Self::new(
            DynamoInventory::from_env(sdk, env)?,
            SnsPublisher::for_consumer(sdk, env)?,
        ))
    }
}

impl<S: InventoryStore, P: EventPublisher> EventHandler for Inventory<S, P> {
    const SPEC: ServiceSpec = SPEC;
    type Event = InventoryEvent;

    async fn apply(&self, event: InventoryEvent, _deadline: SystemTime) -> Result<(), RecordError> {
        match event {
            InventoryEvent::Placed(event) => self.placed(event).await,
            InventoryEvent::Cancelled(event) => {
                match self.store.release(&event).await? {
                    Effect::Applied(()) => tracing::info!("order cancelled; stock released"),
                    Effect::AlreadyDone(()) => tracing::info!("nothing to release; acknowledged"),
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
