//! The five functions, built in-process from their configuration: the same handler code that
//! runs on Lambda, looked up by the cargo binary name the template gives.

use std::sync::Arc;

use aws_config::SdkConfig;
use lambda_kit::consumer::{ConfigError, FunctionEnv, SqsConsumer};
use lambda_kit::idempotency::DynamoIdempotency;
use order_api::{OrderApi, SnsPublisher};

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

/// Builds the function whose cargo binary is `binary`, configured by `env`.
pub fn build(binary: &str, sdk: &SdkConfig, env: &FunctionEnv) -> Result<Function, FunctionError> {
    let queue = |consumer: Arc<dyn SqsConsumer>| Ok(Function::Queue(consumer));
    match binary {
        "order-api" => Ok(Function::Http(Arc::new(OrderApi::from_env(sdk, env)?))),
        "inventory" => queue(Arc::new(inventory::Inventory::from_env(sdk, env)?)),
        "payment" => queue(Arc::new(payment::Payment::from_env(sdk, env)?)),
        "shipping" => queue(Arc::new(shipping::Shipping::from_env(sdk, env)?)),
        "notification" => queue(Arc::new(notification::Notification::from_env(sdk, env)?)),
        other => Err(FunctionError::UnknownBinary(other.to_owned())),
    }
}
