//! The five functions, built in-process from their configuration: the same handler code that
//! runs on Lambda, looked up by the cargo binary name the template gives.

use std::sync::Arc;

use aws_config::SdkConfig;
use lambda_kit::consumer::{ConfigError, FunctionEnv, SqsConsumer};
use lambda_kit::idempotency::DynamoIdempotency;
use order_api::{OrderApi, SnsPublisher};
use payment::SimulatedGateway;

/// The order API as deployed: SNS publisher, DynamoDB idempotency records.
pub type HttpApi = OrderApi<SnsPublisher, DynamoIdempotency>;

/// A function ready to be invoked.
#[derive(Clone)]
pub enum Function {
    /// Behind the HTTP API.
    Http(Arc<HttpApi>),
    /// Fed by an SQS event source.
    Queue(Arc<dyn SqsConsumer>),
}

#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("no function is implemented by a binary named {0:?}")]
    UnknownBinary(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Handles on simulated dependencies of the built functions, to change their behaviour while
/// the system runs (an outage of the payment gateway, say).
#[derive(Debug, Clone, Default)]
pub struct Handles {
    pub payment_gateway: Option<Arc<SimulatedGateway>>,
}

/// Builds the function whose cargo binary is `binary`, configured by `env`.
pub fn build(
    binary: &str,
    sdk: &SdkConfig,
    env: &FunctionEnv,
    handles: &mut Handles,
) -> Result<Function, FunctionError> {
    let queue = |consumer: Arc<dyn SqsConsumer>| Ok(Function::Queue(consumer));
    match binary {
        "order-api" => Ok(Function::Http(Arc::new(OrderApi::from_env(sdk, env)?))),
        "inventory" => queue(Arc::new(inventory::Inventory::from_env(sdk, env)?)),
        "payment" => {
            let payment = payment::Payment::from_env(sdk, env)?;
            handles.payment_gateway = Some(payment.gateway().clone());
            queue(Arc::new(payment))
        }
        "shipping" => queue(Arc::new(shipping::Shipping::from_env(sdk, env)?)),
        "notification" => queue(Arc::new(notification::Notification::from_env(sdk, env)?)),
        other => Err(FunctionError::UnknownBinary(other.to_owned())),
    }
}
