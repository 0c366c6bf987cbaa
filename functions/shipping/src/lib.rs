//! Shipping: creates the shipment, with a tracking number, for a placed order.
//!
//! Idempotency mode: transactional. The shipment (`SHIPMENTS_TABLE`, one per order) and the
//! COMPLETED idempotency record are written in one transaction: both or neither, so a
//! redelivered event finds the record and creates no second shipment.

use std::time::SystemTime;

use lambda_kit::consumer::{ConfigError, Effect, EventHandler, FunctionEnv};
use lambda_kit::idempotency::{sha256_hex, DynamoIdempotency};
use lambda_kit::record::{DynamoRecordStore, RecordStore};
use lambda_kit::RecordError;
use order_events::OrderPlacedEvent;
use uuid::Uuid;

/// The name idempotency keys are scoped by.
pub const SERVICE: &str = "shipping";

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

impl<S: RecordStore> Shipping<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }
}

impl Shipping<DynamoRecordStore> {
    /// Reads `SHIPMENTS_TABLE` and `IDEMPOTENCY_TABLE`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        let client = aws_sdk_dynamodb::Client::new(sdk);
        let idempotency =
            DynamoIdempotency::new(client, env.require("IDEMPOTENCY_TABLE")?, SERVICE);
        let store = DynamoRecordStore::new(env.require("SHIPMENTS_TABLE")?, "orderId", idempotency);
        Ok(Self::new(store))
    }
}

impl<S: RecordStore> EventHandler for Shipping<S> {
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
        let record = serde_json::json!({
            "orderId": order.order_id.to_string(),
            "trackingNumber": tracking,
            "customerId": order.customer_id,
            "units": units,
            "eventId": event.id.to_string(),
            "createdAt": chrono::Utc::now().to_rfc3339(),
        });
        match self.store.commit(&key, record, false).await? {
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
    use lambda_kit::record::MemoryRecordStore;
    use order_events::testing::{event_batch, sample_event};

    use super::*;

    #[tokio::test]
    async fn one_shipment_per_order_however_often_delivered() {
        let shipping = Shipping::new(MemoryRecordStore::new("orderId"));
        let event = sample_event();
        let mut twin = event.clone();
        twin.id = Uuid::now_v7(); // a second event about the same order
        let deadline = SystemTime::now() + Duration::from_secs(60);
        for batch in [event_batch([&event, &event]), event_batch([&twin])] {
            let response = shipping.handle(batch, deadline).await.unwrap();
            assert!(response.batch_item_failures.is_empty());
        }
        let records = shipping.store().records();
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0]["trackingNumber"],
            tracking_number(event.order_id())
        );
        assert_eq!(records[0]["units"], 3);
    }

    #[test]
    fn tracking_numbers_are_stable_and_distinct() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(tracking_number(a), tracking_number(a));
        assert_ne!(tracking_number(a), tracking_number(b));
        assert_eq!(tracking_number(a).len(), 15);
    }
}
