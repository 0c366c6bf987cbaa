//! Payment: holds the order's total when the order is placed (`PaymentAuthorized` or
//! `PaymentDeclined`), charges it once the order is confirmed (`PaymentCaptured`), and gives it
//! back when the order is cancelled (void of the hold, or refund of a capture).
//!
//! Idempotency: every gateway call carries its own idempotency key (the event's key, with the
//! operation), so calling again after a crash returns the first answer instead of moving money
//! twice. The payment item (`SERVICE_TABLE`, one per order) is the events' idempotency entry:
//! each write records the event's key in it, conditional on the version the write is based on
//! (the authorization on no item, without a read). A cancellation that arrives before the order
//! leaves a `CANCELLED` item: the late order's authorization is then voided at once, so no hold
//! outlives a cancelled order (even one a crashed attempt made before the item was written).

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lambda_kit::consumer::{ConfigError, EventHandler, FunctionEnv};
use lambda_kit::effect::{transition_from, DynamoEffectStore, EffectStore, Versioned};
use lambda_kit::idempotency::DynamoIdempotency;
use lambda_kit::spec::{ServiceSpec, SERVICE_TABLE};
use lambda_kit::RecordError;
use order_events::publish::{EventPublisher, SnsPublisher};
use order_events::EventData;
use order_events::{
    CloudEvent, OrderCancelled, OrderConfirmed, OrderPlaced, OrderPlacedEvent, PaymentAuthorized,
    PaymentCaptured, PaymentDeclined,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod gateway;
pub use gateway::{
    Authorization, AuthorizeRequest, GatewayError, Hold, HoldState, SimulatedGateway,
};

/// What this service is: its name (the binary, the metrics' `service`, the scope of its
/// idempotency keys), its table, what it consumes and announces.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: "payment",
    table_variable: Some(SERVICE_TABLE),
    consumes: PaymentEvent::TYPES,
    publishes: &[
        PaymentAuthorized::TYPE,
        PaymentDeclined::TYPE,
        PaymentCaptured::TYPE,
    ],
};

/// Where an order's payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// The total is held, not charged.
    Authorized,
    /// The gateway refused the hold.
    Declined,
    /// Charged.
    Captured,
    /// The hold was released; nothing was charged.
    Voided,
    /// Charged, then paid back.
    Refunded,
    /// The order was cancelled before payment saw it: nothing will be held.
    Cancelled,
}

/// A payment as the payments table holds it: one per order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentItem {
    pub order_id: Uuid,
    pub status: PaymentStatus,
    pub amount_minor: i64,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_id: Option<String>,
    /// The void's or the refund's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_id: Option<String>,
    /// Why it was declined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl PaymentItem {
    /// The table's partition key.
    pub const KEY: &'static str = "orderId";

    fn moved_to(&self, status: PaymentStatus) -> Self {
        Self {
            status,
            updated_at: Utc::now(),
            ..self.clone()
        }
    }
}

/// A payment service provider. Every call with the same idempotency key answers the same and
/// moves money once.
pub trait PaymentGateway: Send + Sync {
    /// Holds the amount.
    fn authorize(
        &self,
        request: &AuthorizeRequest,
    ) -> impl Future<Output = Result<Authorization, GatewayError>> + Send;
    /// Charges a hold; answers the capture id.
    fn capture(
        &self,
        key: &str,
        authorization_id: &str,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;
    /// Releases a hold that was not captured; answers the void id.
    fn void(
        &self,
        key: &str,
        authorization_id: &str,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;
    /// Pays back a capture; answers the refund id.
    fn refund(
        &self,
        key: &str,
        authorization_id: &str,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;
}

order_events::consumed_events! {
    /// What payment reacts to.
    pub enum PaymentEvent {
        Placed(OrderPlaced),
        Confirmed(OrderConfirmed),
        Cancelled(OrderCancelled),
    }
}

/// The payment consumer.
pub struct Payment<G, S, P> {
    gateway: G,
    store: S,
    publisher: P,
}

impl Payment<Arc<SimulatedGateway>, DynamoEffectStore, SnsPublisher> {
    /// Reads `SERVICE_TABLE`, `IDEMPOTENCY_TABLE`, `TOPIC_ARN` and the simulated gateway's
    /// `PAYMENT_LATENCY_MS`, `PAYMENT_FAILURE_RATE` and `PAYMENT_DECLINE_RATE`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        let client = lambda_kit::calls::dynamodb_client(sdk);
        let idempotency =
            DynamoIdempotency::new(client, env.require("IDEMPOTENCY_TABLE")?, SPEC.name);
        let store =
            DynamoEffectStore::new(env.require(SERVICE_TABLE)?, PaymentItem::KEY, idempotency);
        Ok(Self::new(
            Arc::new(SimulatedGateway::from_env(env)?),
            store,
            SnsPublisher::for_consumer(sdk, env)?,
        ))
    }
}

impl<G: PaymentGateway, S: EffectStore, P: EventPublisher> Payment<G, S, P> {
    pub fn new(gateway: G, store: S, publisher: P) -> Self {
        Self {
            gateway,
            store,
            publisher,
        }
    }

    /// The same consumer talking to another gateway.
    pub fn with_gateway<H: PaymentGateway>(self, gateway: H) -> Payment<H, S, P> {
        Payment {
            gateway,
            store: self.store,
            publisher: self.publisher,
        }
    }

    pub fn gateway(&self) -> &G {
        &self.gateway
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    async fn current(&self, order_id: Uuid) -> Result<Option<Versioned<PaymentItem>>, RecordError> {
        Ok(self
            .store
            .load::<PaymentItem>(&order_id.to_string())
            .await?)
    }

    /// Writes `next` for the event over `read` (the item as read; `None`: there was none) in
    /// one conditional write; when the item changed meanwhile, writes it only if the item is
    /// still in the status read. Answers the item as it now is.
    async fn write<T: EventData>(
        &self,
        event: &CloudEvent<T>,
        read: Option<&Versioned<PaymentItem>>,
        next: PaymentItem,
    ) -> Result<Option<PaymentItem>, RecordError> {
        let from = read.map(|r| r.item.status);
        let done = transition_from(
            &self.store,
            &event.idempotency_key(),
            &event.order_id().to_string(),
            read,
            |current: Option<&PaymentItem>| {
                (current.map(|item| item.status) == from).then(|| next.clone())
            },
        )
        .await?;
        Ok(done.into_item())
    }

    /// OrderPlaced: hold the total, record and announce the outcome.
    async fn placed(&self, event: &OrderPlacedEvent) -> Result<(), RecordError> {
        let order = &event.data;
        // No read first: asking the gateway again with the same key answers the same
        // authorization, and the write finds an item that exists already (this event's
        // redelivery: announced again; or a cancellation that came first: the hold is voided).
        let request = AuthorizeRequest {
            idempotency_key: event.idempotency_key().key,
            customer_id: order.customer_id.clone(),
            amount_minor: order.total_minor,
            currency: order.currency.clone(),
        };
        let (status, authorization_id, reason) = match self.gateway.authorize(&request).await? {
            Authorization::Approved { authorization_id } => {
                (PaymentStatus::Authorized, Some(authorization_id), None)
            }
            Authorization::Declined { reason } => (PaymentStatus::Declined, None, Some(reason)),
        };
        let next = PaymentItem {
            order_id: order.order_id,
            status,
            amount_minor: order.total_minor,
            currency: order.currency.clone(),
            authorization_id,
            capture_id: None,
            release_id: None,
            reason,
            updated_at: Utc::now(),
        };
        let item = match self.write(event, None, next.clone()).await? {
            Some(item) if item.status == PaymentStatus::Cancelled => {
                let tombstone = self
                    .current(order.order_id)
                    .await?
                    .ok_or("the payment item vanished; retry")?;
                return self.release_late_hold(event, tombstone).await;
            }
            Some(item) => item,
            None => return Err("the payment item vanished; retry".into()),
        };
        if item == next && item.status == PaymentStatus::Declined {
            lambda_kit::metrics::count(lambda_kit::metrics::name::PAYMENT_DECLINES, SPEC.name, 1);
        }
        let correlation = event.correlationid.as_str();
        match (item.status, item.authorization_id, item.reason) {
            (PaymentStatus::Authorized, Some(authorization_id), _) => {
                tracing::info!(%authorization_id, amount_minor = item.amount_minor, "payment authorized");
                let data = PaymentAuthorized {
                    order_id: item.order_id,
                    authorization_id,
                    amount_minor: item.amount_minor,
                    currency: item.currency,
                };
                self.publisher
                    .publish(&CloudEvent::new(data, correlation))
                    .await?;
            }
            (PaymentStatus::Declined, _, reason) => {
                let reason = reason.unwrap_or_else(|| "declined".into());
                tracing::warn!(%reason, "payment declined");
                let data = PaymentDeclined {
                    order_id: item.order_id,
                    reason,
                };
                self.publisher
                    .publish(&CloudEvent::new(data, correlation))
                    .await?;
            }
            (status, _, _) => tracing::info!(?status, "payment decided already; acknowledged"),
        }
        Ok(())
    }

    /// The order was cancelled before its authorization was recorded. Asking the gateway again
    /// with the same key returns any hold a crashed attempt made (or makes one), which is voided
    /// at once: no hold outlives a cancelled order.
    async fn release_late_hold(
        &self,
        event: &OrderPlacedEvent,
        tombstone: Versioned<PaymentItem>,
    ) -> Result<(), RecordError> {
        let key = event.idempotency_key().key;
        let request = AuthorizeRequest {
            idempotency_key: key.clone(),
            customer_id: event.data.customer_id.clone(),
            amount_minor: event.data.total_minor,
            currency: event.data.currency.clone(),
        };
        if let Authorization::Approved { authorization_id } =
            self.gateway.authorize(&request).await?
        {
            let void_id = self
                .gateway
                .void(&format!("{key}:void"), &authorization_id)
                .await?;
            let mut next = tombstone.item.moved_to(PaymentStatus::Voided);
            next.authorization_id = Some(authorization_id);
            next.release_id = Some(void_id);
            self.write(event, Some(&tombstone), next).await?;
        }
        tracing::info!("order cancelled before payment; no hold kept");
        Ok(())
    }

    /// OrderConfirmed: charge the hold once, announce the capture.
    async fn confirmed(&self, event: &CloudEvent<OrderConfirmed>) -> Result<(), RecordError> {
        let Some(read) = self.current(event.order_id()).await? else {
            return Err("no authorization recorded for a confirmed order yet; retry".into());
        };
        let item = match (read.item.status, read.item.authorization_id.clone()) {
            (PaymentStatus::Authorized, Some(authorization_id)) => {
                let key = format!("{}:capture", event.idempotency_key().key);
                match self.gateway.capture(&key, &authorization_id).await {
                    Ok(capture_id) => {
                        let mut next = read.item.moved_to(PaymentStatus::Captured);
                        next.capture_id = Some(capture_id);
                        self.write(event, Some(&read), next).await?
                    }
                    Err(error @ GatewayError::NotAllowed { .. }) => {
                        tracing::warn!(%error, "not captured: the order was cancelled meanwhile");
                        return Ok(());
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            _ => Some(read.item),
        };
        match item {
            Some(PaymentItem {
                status: PaymentStatus::Captured,
                capture_id: Some(capture_id),
                amount_minor,
                currency,
                order_id,
                ..
            }) => {
                tracing::info!(%capture_id, amount_minor, "payment captured");
                let data = PaymentCaptured {
                    order_id,
                    capture_id,
                    amount_minor,
                    currency,
                };
                let correlation = event.correlationid.as_str();
                self.publisher
                    .publish(&CloudEvent::new(data, correlation))
                    .await?;
            }
            other => tracing::info!(status = ?other.map(|i| i.status), "nothing to capture"),
        }
        Ok(())
    }

    /// OrderCancelled: void the hold, or refund the capture; remember a cancellation that came
    /// before the order.
    async fn cancelled(&self, event: &CloudEvent<OrderCancelled>) -> Result<(), RecordError> {
        let key = event.idempotency_key().key;
        for _ in 0..4 {
            let current = self.current(event.order_id()).await?;
            let (read, next) = match &current {
                None => {
                    let data = &event.data;
                    let tombstone = PaymentItem {
                        order_id: data.order_id,
                        status: PaymentStatus::Cancelled,
                        amount_minor: data.total_minor,
                        currency: data.currency.clone(),
                        authorization_id: None,
                        capture_id: None,
                        release_id: None,
                        reason: Some(data.detail.clone()),
                        updated_at: Utc::now(),
                    };
                    (None, tombstone)
                }
                Some(read) => {
                    let item = &read.item;
                    let Some(authorization_id) = item.authorization_id.clone() else {
                        tracing::info!(status = ?item.status, "nothing held; acknowledged");
                        return Ok(());
                    };
                    let (status, release) = match item.status {
                        PaymentStatus::Authorized => {
                            match self
                                .gateway
                                .void(&format!("{key}:void"), &authorization_id)
                                .await
                            {
                                Ok(void_id) => (PaymentStatus::Voided, void_id),
                                // Captured meanwhile: read again and refund.
                                Err(GatewayError::NotAllowed { .. }) => continue,
                                Err(error) => return Err(error.into()),
                            }
                        }
                        PaymentStatus::Captured => {
                            let refund_key = format!("{key}:refund");
                            let refund_id =
                                self.gateway.refund(&refund_key, &authorization_id).await?;
                            (PaymentStatus::Refunded, refund_id)
                        }
                        status => {
                            tracing::info!(?status, "nothing to give back; acknowledged");
                            return Ok(());
                        }
                    };
                    let mut next = item.moved_to(status);
                    next.release_id = Some(release);
                    (Some(read), next)
                }
            };
            let status = next.status;
            if let Some(item) = self.write(event, read, next).await? {
                if item.status == status {
                    tracing::info!(?status, "payment released for the cancelled order");
                    return Ok(());
                }
            }
        }
        Err("the payment kept changing; retry later".into())
    }
}

impl<G: PaymentGateway, S: EffectStore, P: EventPublisher> EventHandler for Payment<G, S, P> {
    const SPEC: ServiceSpec = SPEC;
    type Event = PaymentEvent;

    async fn apply(&self, event: PaymentEvent, _deadline: SystemTime) -> Result<(), RecordError> {
        match &event {
            PaymentEvent::Placed(event) => self.placed(event).await,
            PaymentEvent::Confirmed(event) => self.confirmed(event).await,
            PaymentEvent::Cancelled(event) => self.cancelled(event).await,
        }
    }
}

#[cfg(test)]
mod tests;
