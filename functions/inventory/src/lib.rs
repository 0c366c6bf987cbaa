//! Inventory: reserves stock for every line of a placed order, or records why it cannot.
//!
//! Stock and decisions live in one table (`INVENTORY_TABLE`, key `pk`, see [`items`]): `SKU#<sku>`
//! items hold `available`, `ORDER#<orderId>` items hold the decision for the order. An unknown sku or short
//! stock is a business outcome (the order is recorded as rejected for inventory), not a
//! technical failure: the message is acknowledged.
//!
//! Idempotency mode: transactional. The stock decrements, the decision and the COMPLETED
//! idempotency entry are one `TransactWriteItems`, so stock moves exactly once per event and
//! never below zero (each decrement is conditional on `available >= quantity`).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::SystemTime;

use lambda_kit::consumer::{ConfigError, EventHandler, FunctionEnv};
use lambda_kit::idempotency::Effect;
use lambda_kit::RecordError;
use order_events::{OrderPlaced, OrderPlacedEvent};

mod dynamo;
pub mod items;
pub use dynamo::DynamoInventory;

/// The name idempotency keys are scoped by.
pub const SERVICE: &str = "inventory";

/// Quantity wanted per sku: an order may list the same sku on several lines, and one
/// transaction may touch an item only once.
pub fn quantities_by_sku(order: &OrderPlaced) -> BTreeMap<&str, u64> {
    let mut wanted = BTreeMap::new();
    for line in &order.items {
        *wanted.entry(line.sku.as_str()).or_insert(0) += u64::from(line.quantity);
    }
    wanted
}

/// The inventory decision for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
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

/// Where stock is reserved and decisions are recorded, once per event.
pub trait InventoryStore: Send + Sync {
    fn reserve(
        &self,
        event: &OrderPlacedEvent,
    ) -> impl Future<Output = Result<Effect<Decision>, RecordError>> + Send;
}

/// The inventory consumer.
pub struct Inventory<S> {
    store: S,
}

impl<S: InventoryStore> Inventory<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }
}

impl Inventory<DynamoInventory> {
    /// Reads `INVENTORY_TABLE` and `IDEMPOTENCY_TABLE`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        Ok(Self::new(DynamoInventory::from_env(sdk, env)?))
    }
}

impl<S: InventoryStore> EventHandler for Inventory<S> {
    type Event = OrderPlacedEvent;

    async fn apply(
        &self,
        event: OrderPlacedEvent,
        _deadline: SystemTime,
    ) -> Result<(), RecordError> {
        match self.store.reserve(&event).await? {
            Effect::Applied(Decision::Reserved) => tracing::info!("stock reserved"),
            Effect::Applied(Decision::Rejected(reason)) => {
                tracing::warn!(%reason, "order rejected by inventory")
            }
            Effect::AlreadyApplied => tracing::info!("already decided; acknowledged"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
