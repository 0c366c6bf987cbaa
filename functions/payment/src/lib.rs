//! Payment: charges the customer for a placed order through a payment gateway, once.
//!
//! Idempotency mode: transactional, with the gateway's own idempotency key. The gateway is
//! called with the event's idempotency key (event type and order id), so calling it again for
//! the same order returns the first charge instead of charging twice. The payment item
//! (`PAYMENTS_TABLE`, one per order) and the COMPLETED idempotency entry are then written in one
//! transaction. A crash
//! between the charge and that commit is therefore harmless: the redelivered event calls the
//! gateway again, gets the same charge back, and commits.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lambda_kit::consumer::{ConfigError, EventHandler, FunctionEnv};
use lambda_kit::effect::{DynamoEffectStore, EffectStore};
use lambda_kit::idempotency::{DynamoIdempotency, Effect, IdempotencyStore};
use lambda_kit::RecordError;
use order_events::OrderPlacedEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod gateway;
pub use gateway::{Charge, ChargeRequest, GatewayError, SimulatedGateway};

/// The name idempotency keys are scoped by.
pub const SERVICE: &str = "payment";

/// A payment as the payments table holds it: one per order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentItem {
    pub order_id: Uuid,
    pub charge_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub event_id: Uuid,
    pub paid_at: DateTime<Utc>,
}

impl PaymentItem {
    /// The function environment variable naming the payments table.
    pub const TABLE_VARIABLE: &'static str = "PAYMENTS_TABLE";
    /// The table's partition key.
    pub const KEY: &'static str = "orderId";
}

/// A payment service provider.
pub trait PaymentGateway: Send + Sync {
    /// Charges the request's amount. Calls with the same `idempotency_key` must return the
    /// same charge and move money once.
    fn charge(
        &self,
        request: &ChargeRequest,
    ) -> impl Future<Output = Result<Charge, GatewayError>> + Send;
}

/// The payment consumer.
pub struct Payment<G, S> {
    gateway: G,
    store: S,
}

impl<G: PaymentGateway, S: EffectStore> Payment<G, S> {
    pub fn new(gateway: G, store: S) -> Self {
        Self { gateway, store }
    }

    pub fn gateway(&self) -> &G {
        &self.gateway
    }

    pub fn store(&self) -> &S {
        &self.store
    }
}

impl Payment<Arc<SimulatedGateway>, DynamoEffectStore> {
    /// Reads `PAYMENTS_TABLE`, `IDEMPOTENCY_TABLE`, and the simulated gateway's
    /// `PAYMENT_LATENCY_MS` and `PAYMENT_FAILURE_RATE`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        let client = aws_sdk_dynamodb::Client::new(sdk);
        let idempotency =
            DynamoIdempotency::new(client, env.require("IDEMPOTENCY_TABLE")?, SERVICE);
        let store = DynamoEffectStore::new(
            env.require(PaymentItem::TABLE_VARIABLE)?,
            PaymentItem::KEY,
            idempotency,
        );
        Ok(Self::new(Arc::new(SimulatedGateway::from_env(env)?), store))
    }
}

impl<G: PaymentGateway, S: EffectStore> EventHandler for Payment<G, S> {
    type Event = OrderPlacedEvent;

    async fn apply(
        &self,
        event: OrderPlacedEvent,
        _deadline: SystemTime,
    ) -> Result<(), RecordError> {
        let key = event.idempotency_key();
        if self.store.entries().is_completed(&key).await? {
            tracing::info!("already paid; acknowledged");
            return Ok(());
        }
        let order = &event.data;
        let request = ChargeRequest {
            idempotency_key: key.key.clone(),
            customer_id: order.customer_id.clone(),
            amount_minor: order.total_minor,
            currency: order.currency.clone(),
        };
        let charge = self.gateway.charge(&request).await?;
        let item = PaymentItem {
            order_id: order.order_id,
            charge_id: charge.charge_id.clone(),
            amount_minor: order.total_minor,
            currency: order.currency.clone(),
            event_id: event.id,
            paid_at: Utc::now(),
        };
        match self.store.commit(&key, &item, false).await? {
            Effect::Applied(()) => {
                tracing::info!(charge_id = %charge.charge_id, amount_minor = order.total_minor, "payment captured")
            }
            Effect::AlreadyApplied => tracing::info!("already paid; acknowledged"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
