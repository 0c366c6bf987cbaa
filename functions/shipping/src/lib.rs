//! Shipping: creates the shipment, with a tracking number, once an order is confirmed, and
//! announces `ShipmentCreated`; cancels it when the order is cancelled.
//!
//! Idempotency: the shipment (`SERVICE_TABLE`, one per order) is the events' idempotency entry:
//! each write records the event's key in it, conditional on the version read
//! ([`lambda_kit::effect::transition`]); the creation is written without a read, conditional on
//! no item ([`lambda_kit::effect::transition_from`]). A cancellation that arrives before the
//! confirmation leaves a `CANCELLED` item, so the late confirmation ships nothing. The creation
//! is announced after the write, and again when the confirmation comes again.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lambda_kit::consumer::{ConfigError, EventHandler, FunctionEnv};
use lambda_kit::effect::{transition, transition_from, DynamoEffectStore, EffectStore};
use lambda_kit::idempotency::{sha256_hex, DynamoIdempotency};
use lambda_kit::spec::{ServiceSpec, SERVICE_TABLE};
use lambda_kit::RecordError;
use order_events::publish::{EventPublisher, SnsPublisher};
use order_events::EventData;
use order_events::{CloudEvent, OrderCancelled, OrderConfirmed, ShipmentCreated, ShippingAddress};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What this service is: its name (the binary, the metrics' `service`, the scope of its
/// idempotency keys), its table, what it consumes and announces.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: "shipping",
    table_variable: Some(SERVICE_TABLE),
    consumes: ShippingEvent::TYPES,
    publishes: &[ShipmentCreated::TYPE],
};
/// The carrier every shipment goes with.
pub const CARRIER: &str = "DHL";

/// Where a shipment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShipmentStatus {
    /// Handed to the carrier.
    Created,
    /// Called back (or, created never: the order was cancelled first).
    Cancelled,
}

/// A shipment as the shipments table holds it: one per order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentItem {
    pub order_id: Uuid,
    pub status: ShipmentStatus,
    /// Absent when the order was cancelled before a shipment was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    pub customer_id: String,
    pub units: u64,
    /// Where the parcel goes, when the order said (from `OrderConfirmed`'s `shippingAddress`;
    /// orders placed without one ship to the address the carrier has on file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ship_to: Option<ShippingAddress>,
    pub updated_at: DateTime<Utc>,
}

impl ShipmentItem {
    /// The table's partition key.
    pub const KEY: &'static str = "orderId";

    /// Whether a carrier has the parcel.
    pub fn is_live(&self) -> bool {
        self.status == ShipmentStatus::Created
    }
}

/// The carrier tracking number of an order's shipment. Derived from the order id, so a retried
/// attempt proposes the same number.
pub fn tracking_number(order_id: Uuid) -> String {
    let digest = sha256_hex(order_id.as_bytes());
    format!("TRK{}", digest[..12].to_uppercase())
}

order_events::consumed_events! {
    /// What shipping reacts to.
    pub enum ShippingEvent {
        Confirmed(OrderConfirmed),
        Cancelled(OrderCancelled),
    }
}

/// The shipping consumer.
pub struct Shipping<S, P> {
    store: S,
    publisher: P,
}

impl<S: EffectStore, P: EventPublisher> Shipping<S, P> {
    pub fn new(store: S, publisher: P) -> Self {
        Self { store, publisher }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    async fn confirmed(&self, event: &CloudEvent<OrderConfirmed>) -> Result<(), RecordError> {
        let order = &event.data;
        let created = ShipmentItem {
            order_id: order.order_id,
            status: ShipmentStatus::Created,
            tracking_number: Some(tracking_number(order.order_id)),
            customer_id: order.customer_id.clone(),
            units: order.lines.iter().map(|l| u64::from(l.quantity)).sum(),
            ship_to: order.shipping_address.clone(),
            updated_at: Utc::now(),
        };
        // Usually the order's first shipment item: written without a read. Found (a
        // redelivery, or a cancellation first), it is read and left as it is.
        let done = transition_from(
            &self.store,
            &event.idempotency_key(),
            &order.order_id.to_string(),
            None,
            |current: Option<&ShipmentItem>| current.is_none().then(|| created.clone()),
        )
        .await?;
        match done.into_item() {
            Some(ShipmentItem {
                status: ShipmentStatus::Created,
                tracking_number: Some(tracking),
                ..
            }) => {
                tracing::info!(tracking_number = %tracking, "shipment created");
                let data = ShipmentCreated {
                    order_id: order.order_id,
                    shipment_id: format!("shp_{}", order.order_id.simple()),
                    carrier: CARRIER.into(),
                    tracking_number: tracking,
                };
                let correlation = event.correlationid.as_str();
                self.publisher
                    .publish(&CloudEvent::new(data, correlation))
                    .await?;
            }
            _ => tracing::info!("order cancelled already; nothing shipped"),
        }
        Ok(())
    }

    async fn cancelled(&self, event: &CloudEvent<OrderCancelled>) -> Result<(), RecordError> {
        let order = &event.data;
        let done = transition(
            &self.store,
            &event.idempotency_key(),
            &order.order_id.to_string(),
            |current: Option<&ShipmentItem>| match current {
                None => Some(ShipmentItem {
                    order_id: order.order_id,
                    status: ShipmentStatus::Cancelled,
                    tracking_number: None,
                    customer_id: order.customer_id.clone(),
                    units: 0,
                    ship_to: None,
                    updated_at: Utc::now(),
                }),
                Some(item) if item.is_live() => Some(ShipmentItem {
                    status: ShipmentStatus::Cancelled,
                    updated_at: Utc::now(),
                    ..item.clone()
                }),
                Some(_) => None,
            },
        )
        .await?;
        if done.is_applied() {
            tracing::info!("shipment cancelled");
        }
        Ok(())
    }
}

impl Shipping<DynamoEffectStore, SnsPublisher> {
    /// Reads `SERVICE_TABLE`, `IDEMPOTENCY_TABLE` and `TOPIC_ARN`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        let client = lambda_kit::calls::dynamodb_client(sdk);
        let idempotency =
            DynamoIdempotency::new(client, env.require("IDEMPOTENCY_TABLE")?, SPEC.name);
        let store =
            DynamoEffectStore::new(env.require(SERVICE_TABLE)?, ShipmentItem::KEY, idempotency);
        Ok(Self::new(store, SnsPublisher::for_consumer(sdk, env)?))
    }
}

impl<S: EffectStore, P: EventPublisher> EventHandler for Shipping<S, P> {
    const SPEC: ServiceSpec = SPEC;
    type Event = ShippingEvent;

    async fn apply(&self, event: ShippingEvent, _deadline: SystemTime) -> Result<(), RecordError> {
        match &event {
            ShippingEvent::Confirmed(event) => self.confirmed(event).await,
            ShippingEvent::Cancelled(event) => self.cancelled(event).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lambda_kit::consumer::SqsConsumer;
    use lambda_kit::effect::MemoryEffectStore;
    use order_events::publish::MemoryPublisher;
    use order_events::testing::{sample_order, sqs_batch};
    use order_events::CancelReason;

    use super::*;

    fn shipping() -> Shipping<MemoryEffectStore, MemoryPublisher> {
        Shipping::new(
            MemoryEffectStore::new(ShipmentItem::KEY),
            MemoryPublisher::default(),
        )
    }

    fn cancelled(order: &OrderConfirmed) -> String {
        let data = OrderCancelled {
            order_id: order.order_id,
            customer_id: order.customer_id.clone(),
            customer_email: order.customer_email.clone(),
            reason: CancelReason::CustomerRequest,
            detail: "cancelled by the customer".into(),
            currency: order.currency.clone(),
            total_minor: order.total_minor,
        };
        String::from_utf8(CloudEvent::new(data, "corr").canonical_json()).unwrap()
    }

    async fn deliver(shipping: &Shipping<MemoryEffectStore, MemoryPublisher>, bodies: &[&String]) {
        let deadline = SystemTime::now() + Duration::from_secs(60);
        let batch = sqs_batch(bodies.iter().map(|b| b.as_str()));
        let response = shipping.handle(batch, deadline).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn one_shipment_per_confirmed_order_however_often_delivered() {
        let shipping = shipping();
        let order = OrderConfirmed::from(&sample_order());
        let event = CloudEvent::new(order.clone(), "corr");
        let mut twin = event.clone();
        twin.id = Uuid::now_v7(); // the same decision announced again
        let (a, b) = (
            String::from_utf8(event.canonical_json()).unwrap(),
            String::from_utf8(twin.canonical_json()).unwrap(),
        );
        deliver(&shipping, &[&a, &a]).await;
        deliver(&shipping, &[&b]).await;
        let items = shipping.store().items::<ShipmentItem>();
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].tracking_number,
            Some(tracking_number(order.order_id))
        );
        assert_eq!(items[0].units, 3);
        let created = shipping.publisher().events::<ShipmentCreated>();
        assert_eq!(created.len(), 3);
        assert!(created.iter().all(|c| c.data == created[0].data));
    }

    #[tokio::test]
    async fn a_cancelled_order_has_no_live_shipment_in_either_order() {
        for cancel_first in [false, true] {
            let shipping = shipping();
            let order = OrderConfirmed::from(&sample_order());
            let confirmed =
                String::from_utf8(CloudEvent::new(order.clone(), "c").canonical_json()).unwrap();
            let cancel = cancelled(&order);
            let bodies = if cancel_first {
                [&cancel, &confirmed]
            } else {
                [&confirmed, &cancel]
            };
            for body in bodies {
                deliver(&shipping, &[body]).await;
            }
            let items = shipping.store().items::<ShipmentItem>();
            assert_eq!(items.len(), 1);
            assert!(!items[0].is_live(), "cancel first: {cancel_first}");
            let announced = shipping.publisher().types().len();
            assert_eq!(announced, usize::from(!cancel_first));
        }
    }

    #[test]
    fn tracking_numbers_are_stable_and_distinct() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(tracking_number(a), tracking_number(a));
        assert_ne!(tracking_number(a), tracking_number(b));
        assert_eq!(tracking_number(a).len(), 15);
    }
}
