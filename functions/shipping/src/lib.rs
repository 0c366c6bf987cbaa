//! Shipping: creates the shipment, with a tracking number, for a placed order.
//!
//! Idempotency mode: transactional. The shipment (`SHIPMENTS_TABLE`, one per order) and the
//! COMPLETED idempotency entry are written in one transaction: both or neither, so a
//! redelivered event finds the entry and creates no second shipment.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lambda_kit::consumer::{ConfigError, EventHandler, FunctionEnv};
use lambda_kit::effect::{DynamoEffectStore, EffectStore};
use lambda_kit::idempotency::{sha256_hex, DynamoIdempotency, Effect};
use lambda_kit::RecordError;
use order_events::OrderPlacedEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The name idempotency keys are scoped by.
pub const SERVICE: &str = "shipping";

/// A shipment as the shipments table holds it: one per order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentItem {
    pub order_id: Uuid,
    pub tracking_number: String,
    pub customer_id: String,
    pub units: u64,
    pub event_id: Uuid,
    pub created_at: DateTime<Utc>,
}

impl ShipmentItem {
    /// The function environment variable naming the shipments table.
    pub const TABLE_VARIABLE: &'static str = "SHIPMENTS_TABLE";
    /// The table's partition key.
    pub const KEY: &'static str = "orderId";
}

/// The carrier tracking number of an order's shipment. Derived from the order id, so a retried
/// attempt proposes the same number.
pub fn tracking_number(order_id: Uuid) -> String {
    let digest = sha256_hex(order_id.as_bytes());
    format!("TRK{}", digest[..12].to_uppercase())
}

/// The shipping consumer.
pub struct Shipping<S> {
    store: S,
}

impl<S: EffectStore> Shipping<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }
}

impl Shipping<DynamoEffectStore> {
    /// Reads `SHIPMENTS_TABLE` and `IDEMPOTENCY_TABLE`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        let client = aws_sdk_dynamodb::Client::new(sdk);
        let idempotency =
            DynamoIdempotency::new(client, env.require("IDEMPOTENCY_TABLE")?, SERVICE);
        let store = DynamoEffectStore::new(
            env.require(ShipmentItem::TABLE_VARIABLE)?,
            ShipmentItem::KEY,
            idempotency,
        );
        Ok(Self::new(store))
    }
}

impl<S: EffectStore> EventHandler for Shipping<S> {
    type Event = OrderPlacedEvent;

    async fn apply(
        &self,
        event: OrderPlacedEvent,
        _deadline: SystemTime,
    ) -> Result<(), RecordError> {
        let key = event.idempotency_key();
        let order = &event.data;
        let tracking = tracking_number(order.order_id);
        let units: u64 = order.items.iter().map(|l| u64::from(l.quantity)).sum();
        let item = ShipmentItem {
            order_id: order.order_id,
            tracking_number: tracking.clone(),
            customer_id: order.customer_id.clone(),
            units,
            event_id: event.id,
            created_at: Utc::now(),
        };
        match self.store.commit(&key, &item, false).await? {
            Effect::Applied(()) => tracing::info!(tracking_number = %tracking, "shipment created"),
            Effect::AlreadyApplied => tracing::info!("shipment exists; acknowledged"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lambda_kit::consumer::SqsConsumer;
    use lambda_kit::effect::MemoryEffectStore;
    use order_events::testing::{event_batch, sample_event};

    use super::*;

    #[tokio::test]
    async fn one_shipment_per_order_however_often_delivered() {
        let shipping = Shipping::new(MemoryEffectStore::new("orderId"));
        let event = sample_event();
        let mut twin = event.clone();
        twin.id = Uuid::now_v7(); // a second event about the same order
        let deadline = SystemTime::now() + Duration::from_secs(60);
        for batch in [event_batch([&event, &event]), event_batch([&twin])] {
            let response = shipping.handle(batch, deadline).await.unwrap();
            assert!(response.batch_item_failures.is_empty());
        }
        let items = shipping.store().items::<ShipmentItem>();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].tracking_number, tracking_number(event.order_id()));
        assert_eq!(items[0].units, 3);
        assert_eq!(items[0].event_id, event.id);
    }

    #[test]
    fn tracking_numbers_are_stable_and_distinct() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(tracking_number(a), tracking_number(a));
        assert_ne!(tracking_number(a), tracking_number(b));
        assert_eq!(tracking_number(a).len(), 15);
    }
}
