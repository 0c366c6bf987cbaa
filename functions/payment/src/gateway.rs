//! The simulated payment gateway: a stand-in for a payment service provider with the calls of a
//! real one (authorize a hold, capture it, void it, refund a capture), each taking the caller's
//! idempotency key, with configurable latency, decline rate and failure rate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lambda_kit::consumer::{ConfigError, FunctionEnv};

use crate::PaymentGateway;

/// A hold to place on the customer's means of payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub idempotency_key: String,
    pub customer_id: String,
    pub amount_minor: i64,
    pub currency: String,
}

/// The gateway's answer to an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// The amount is held; the id names the hold.
    Approved { authorization_id: String },
    /// The issuer refused; nothing is held.
    Declined { reason: String },
}

/// Where a hold stands at the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    Authorized,
    Captured,
    Voided,
    Refunded,
}

/// A hold as the gateway keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub authorization_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub state: HoldState,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// Transient: try again later (with the same idempotency key).
    #[error("payment gateway temporarily unavailable")]
    Unavailable,
    #[error("no authorization {0}")]
    UnknownAuthorization(String),
    /// The hold is not in a state that allows the operation (capture a voided hold, void a
    /// captured one).
    #[error("cannot {operation} authorization {authorization_id}: it is {state:?}")]
    NotAllowed {
        operation: &'static str,
        authorization_id: String,
        state: HoldState,
    },
}

/// What a keyed call answered, replayed for a repeated key.
#[derive(Debug, Clone)]
enum Answer {
    Authorization(Authorization),
    Done(Result<String, GatewayError>),
}

#[derive(Debug, Default)]
struct Ledger {
    holds: HashMap<String, Hold>,
    answers: HashMap<String, Answer>,
}

/// Answers after `latency`; fails a `failure_rate` share of calls with
/// [`GatewayError::Unavailable`] (nothing happens then); declines a `decline_rate` share of
/// authorizations. A repeated idempotency key gets the first answer again, as real gateways do
/// for a retention period. Rates and latency can be changed while it runs.
#[derive(Debug, Default)]
pub struct SimulatedGateway {
    latency_ms: AtomicU64,
    failure_rate_bits: AtomicU64,
    decline_rate_bits: AtomicU64,
    calls: AtomicU64,
    ledger: Mutex<Ledger>,
    /// Authorizations whose idempotency key contains this (an order id) fail, every time.
    unavailable_for: Mutex<Option<String>>,
}

fn rate(bits: &AtomicU64) -> f64 {
    f64::from_bits(bits.load(Ordering::SeqCst))
}

fn set_rate(bits: &AtomicU64, value: f64) {
    bits.store(value.clamp(0.0, 1.0).to_bits(), Ordering::SeqCst);
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
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
        set_rate(&self.failure_rate_bits, failure_rate);
    }

    /// The share of new authorizations (0.0 to 1.0) the issuer declines from now on.
    pub fn set_decline_rate(&self, decline_rate: f64) {
        set_rate(&self.decline_rate_bits, decline_rate);
    }

    /// Every authorization of the order `order_id` fails with [`GatewayError::Unavailable`] from
    /// now on, as an issuer that keeps timing out for one card would; `None` heals it.
    pub fn set_unavailable_for(&self, order_id: Option<String>) {
        *self
            .unavailable_for
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = order_id;
    }

    /// How many calls were made, failed ones and repeats included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// `PAYMENT_LATENCY_MS` (default 0), `PAYMENT_FAILURE_RATE` and `PAYMENT_DECLINE_RATE`
    /// (0.0 to 1.0, default 0).
    pub fn from_env(env: &FunctionEnv) -> Result<Self, ConfigError> {
        let latency_ms: u64 = env.parse_or("PAYMENT_LATENCY_MS", 0)?;
        let share = |name: &str| -> Result<f64, ConfigError> {
            let value: f64 = env.parse_or(name, 0.0)?;
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError {
                    name: name.into(),
                    problem: format!("{value} is outside 0.0..=1.0"),
                });
            }
            Ok(value)
        };
        let gateway = Self::new(
            Duration::from_millis(latency_ms),
            share("PAYMENT_FAILURE_RATE")?,
        );
        gateway.set_decline_rate(share("PAYMENT_DECLINE_RATE")?);
        Ok(gateway)
    }

    /// Every hold the gateway made, in no particular order.
    pub fn holds(&self) -> Vec<Hold> {
        self.ledger().holds.values().cloned().collect()
    }

    /// How many holds were charged (captured, and perhaps refunded since): money moved.
    pub fn captured(&self) -> usize {
        self.ledger()
            .holds
            .values()
            .filter(|hold| matches!(hold.state, HoldState::Captured | HoldState::Refunded))
            .count()
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits the latency, then fails the call or lets it through.
    async fn call(&self) -> Result<(), GatewayError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let latency = Duration::from_millis(self.latency_ms.load(Ordering::SeqCst));
        tokio::time::sleep(latency).await;
        if rand::random::<f64>() < rate(&self.failure_rate_bits) {
            return Err(GatewayError::Unavailable);
        }
        Ok(())
    }

    /// Moves the hold from `from` to `to` once per key; the new state's id, or why not.
    async fn transition(
        &self,
        idempotency_key: &str,
        authorization_id: &str,
        operation: &'static str,
        from: HoldState,
        to: HoldState,
    ) -> Result<String, GatewayError> {
        self.call().await?;
        let mut ledger = self.ledger();
        if let Some(Answer::Done(answer)) = ledger.answers.get(idempotency_key) {
            return answer.clone();
        }
        let answer = match ledger.holds.get_mut(authorization_id) {
            None => Err(GatewayError::UnknownAuthorization(authorization_id.into())),
            Some(hold) if hold.state == from => {
                hold.state = to;
                Ok(new_id(&operation[..3]))
            }
            Some(hold) => Err(GatewayError::NotAllowed {
                operation,
                authorization_id: authorization_id.into(),
                state: hold.state,
            }),
        };
        ledger
            .answers
            .insert(idempotency_key.into(), Answer::Done(answer.clone()));
        answer
    }
}

impl PaymentGateway for SimulatedGateway {
    async fn authorize(&self, request: &AuthorizeRequest) -> Result<Authorization, GatewayError> {
        self.call().await?;
        let unavailable = self
            .unavailable_for
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if unavailable
            .as_deref()
            .is_some_and(|order| request.idempotency_key.contains(order))
        {
            return Err(GatewayError::Unavailable);
        }
        drop(unavailable);
        let mut ledger = self.ledger();
        if let Some(Answer::Authorization(answer)) = ledger.answers.get(&request.idempotency_key) {
            return Ok(answer.clone());
        }
        let answer = if rand::random::<f64>() < rate(&self.decline_rate_bits) {
            Authorization::Declined {
                reason: "card declined by the issuer".into(),
            }
        } else {
            let authorization_id = new_id("auth");
            let hold = Hold {
                authorization_id: authorization_id.clone(),
                amount_minor: request.amount_minor,
                currency: request.currency.clone(),
                state: HoldState::Authorized,
            };
            ledger.holds.insert(authorization_id.clone(), hold);
            Authorization::Approved { authorization_id }
        };
        ledger.answers.insert(
            request.idempotency_key.clone(),
            Answer::Authorization(answer.clone()),
        );
        Ok(answer)
    }

    async fn capture(&self, key: &str, authorization_id: &str) -> Result<String, GatewayError> {
        let (from, to) = (HoldState::Authorized, HoldState::Captured);
        self.transition(key, authorization_id, "capture", from, to)
            .await
    }

    async fn void(&self, key: &str, authorization_id: &str) -> Result<String, GatewayError> {
        let (from, to) = (HoldState::Authorized, HoldState::Voided);
        self.transition(key, authorization_id, "void", from, to)
            .await
    }

    async fn refund(&self, key: &str, authorization_id: &str) -> Result<String, GatewayError> {
        let (from, to) = (HoldState::Captured, HoldState::Refunded);
        self.transition(key, authorization_id, "refund", from, to)
            .await
    }
}

/// A shared gateway is a gateway (the local runtime keeps a handle to change its behaviour).
impl<G: PaymentGateway> PaymentGateway for Arc<G> {
    async fn authorize(&self, request: &AuthorizeRequest) -> Result<Authorization, GatewayError> {
        G::authorize(self, request).await
    }
    async fn capture(&self, key: &str, authorization_id: &str) -> Result<String, GatewayError> {
        G::capture(self, key, authorization_id).await
    }
    async fn void(&self, key: &str, authorization_id: &str) -> Result<String, GatewayError> {
        G::void(self, key, authorization_id).await
    }
    async fn refund(&self, key: &str, authorization_id: &str) -> Result<String, GatewayError> {
        G::refund(self, key, authorization_id).await
    }
}
