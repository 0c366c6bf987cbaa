//! The simulated payment gateway: a stand-in for a payment service provider with realistic
//! latency, transient failures, and idempotency keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lambda_kit::consumer::{ConfigError, FunctionEnv};

use crate::PaymentGateway;

/// What to charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    pub idempotency_key: String,
    pub customer_id: String,
    pub amount_minor: i64,
    pub currency: String,
}

/// A successful charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub charge_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("payment gateway temporarily unavailable")]
    Unavailable,
}

/// Answers after `latency`, fails a `failure_rate` share of calls with
/// [`GatewayError::Unavailable`], and returns the first charge again for a repeated
/// idempotency key (as real gateways do for a retention period). Latency and failure rate can
/// be changed while it runs (an outage, a recovery).
#[derive(Debug, Default)]
pub struct SimulatedGateway {
    latency_ms: AtomicU64,
    failure_rate_bits: AtomicU64,
    calls: AtomicU64,
    charges: Mutex<HashMap<String, Charge>>,
}

impl SimulatedGateway {
    pub fn new(latency: Duration, failure_rate: f64) -> Self {
        let gateway = Self::default();
        gateway.set_latency(latency);
        gateway.set_failure_rate(failure_rate);
        gateway
    }

    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.latency_ms.store(ms, Ordering::SeqCst);
    }

    /// The share of calls (0.0 to 1.0) that fail from now on.
    pub fn set_failure_rate(&self, failure_rate: f64) {
        let rate = failure_rate.clamp(0.0, 1.0);
        self.failure_rate_bits
            .store(rate.to_bits(), Ordering::SeqCst);
    }

    fn failure_rate(&self) -> f64 {
        f64::from_bits(self.failure_rate_bits.load(Ordering::SeqCst))
    }

    /// How many charge calls were made, failed ones and repeats included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// `PAYMENT_LATENCY_MS` (default 0) and `PAYMENT_FAILURE_RATE` (0.0 to 1.0, default 0).
    pub fn from_env(env: &FunctionEnv) -> Result<Self, ConfigError> {
        let latency_ms: u64 = env.parse_or("PAYMENT_LATENCY_MS", 0)?;
        let failure_rate: f64 = env.parse_or("PAYMENT_FAILURE_RATE", 0.0)?;
        if !(0.0..=1.0).contains(&failure_rate) {
            return Err(ConfigError {
                name: "PAYMENT_FAILURE_RATE".into(),
                problem: format!("{failure_rate} is outside 0.0..=1.0"),
            });
        }
        Ok(Self::new(Duration::from_millis(latency_ms), failure_rate))
    }

    /// How many distinct charges were made (money moved this many times).
    pub fn charges_made(&self) -> usize {
        self.charges.lock().map(|c| c.len()).unwrap_or_default()
    }
}

impl PaymentGateway for SimulatedGateway {
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, GatewayError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(
            self.latency_ms.load(Ordering::SeqCst),
        ))
        .await;
        if rand::random::<f64>() < self.failure_rate() {
            return Err(GatewayError::Unavailable);
        }
        let mut charges = self.charges.lock().map_err(|_| GatewayError::Unavailable)?;
        let charge = charges
            .entry(request.idempotency_key.clone())
            .or_insert_with(|| Charge {
                charge_id: format!("ch_{}", uuid::Uuid::now_v7().simple()),
            });
        Ok(charge.clone())
    }
}

/// A shared gateway is a gateway (the local runtime keeps a handle to change its behaviour).
impl<G: PaymentGateway> PaymentGateway for Arc<G> {
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, GatewayError> {
        G::charge(self, request).await
    }
}
