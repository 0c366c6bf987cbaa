//! Payment: charges the customer for a placed order through a payment gateway, once.
//!
//! Idempotency mode: transactional, with the gateway's own idempotency key. The gateway is
//! called with the order id as its idempotency key, so calling it again for the same order
//! returns the first charge instead of charging twice. The payment record (`PAYMENTS_TABLE`, one
//! per order) and the COMPLETED idempotency record are then written in one transaction. A crash
//! between the charge and that commit is therefore harmless: the redelivered event calls the
//! gateway again, gets the same charge back, and commits.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use lambda_kit::consumer::{ConfigError, Effect, EventHandler, FunctionEnv};
use lambda_kit::idempotency::DynamoIdempotency;
use lambda_kit::record::{DynamoRecordStore, RecordStore};
use lambda_kit::RecordError;
use order_events::OrderPlacedEvent;

mod gateway;
pub use gateway::{Charge, ChargeRequest, GatewayError, SimulatedGateway};

/// The name idempotency keys are scoped by.
pub const SERVICE: &str = "payment";

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

impl<G: PaymentGateway, S: RecordStore> Payment<G, S> {
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

impl Payment<Arc<SimulatedGateway>, DynamoRecordStore> {
    /// Reads `PAYMENTS_TABLE`, `IDEMPOTENCY_TABLE`, and the simulated gateway's
    /// `PAYMENT_LATENCY_MS` and `PAYMENT_FAILURE_RATE`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        let client = aws_sdk_dynamodb::Client::new(sdk);
        let idempotency =
            DynamoIdempotency::new(client, env.require("IDEMPOTENCY_TABLE")?, SERVICE);
        let store = DynamoRecordStore::new(env.require("PAYMENTS_TABLE")?, "orderId", idempotency);
        Ok(Self::new(Arc::new(SimulatedGateway::from_env(env)?), store))
    }
}

impl<G: PaymentGateway, S: RecordStore> EventHandler for Payment<G, S> {
    type Event = OrderPlacedEvent;

    async fn apply(
        &self,
        event: OrderPlacedEvent,
        _deadline: SystemTime,
    ) -> Result<(), RecordError> {
        let key = event.idempotency_key();
        if self.store.is_completed(&key).await? {
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
        let record = serde_json::json!({
            "orderId": order.order_id.to_string(),
            "chargeId": charge.charge_id,
            "amountMinor": order.total_minor,
            "currency": order.currency,
            "eventId": event.id.to_string(),
            "paidAt": chrono::Utc::now().to_rfc3339(),
        });
        match self.store.commit(&key, record, false).await? {
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
