//! With the `sns` feature: publishing any event of the catalogue to the SNS topic, with the
//! message attributes filter policies match on.

use std::future::Future;
use std::time::Duration;

use aws_sdk_sns::types::MessageAttributeValue;

use crate::attribute;
use crate::envelope::{CloudEvent, EventData};

/// Where events go.
pub trait EventPublisher: Send + Sync {
    /// Publishes one event; Ok once the broker has durably accepted it.
    fn publish<T: EventData>(
        &self,
        event: &CloudEvent<T>,
    ) -> impl Future<Output = Result<(), PublishError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("publish failed: {0}")]
pub struct PublishError(pub String);

/// Longest a publish may take, retries included.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes to an SNS topic with the contract's message attributes.
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsPublisher {
    /// A publisher whose calls give up after [`PUBLISH_TIMEOUT`] (retries included), so a caller
    /// can answer in time instead of hanging until its own timeout.
    pub fn new(sdk: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(PUBLISH_TIMEOUT)
            .build();
        let config = aws_sdk_sns::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .interceptor(lambda_kit::calls::CallCounter)
            .build();
        Self {
            client: aws_sdk_sns::Client::from_conf(config),
            topic_arn: topic_arn.into(),
        }
    }
}

impl EventPublisher for SnsPublisher {
    async fn publish<T: EventData>(&self, event: &CloudEvent<T>) -> Result<(), PublishError> {
        let text = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| PublishError(e.to_string()))
        };
        let attributes = event.message_attributes();
        let body = serde_json::to_string(event).map_err(|e| PublishError(e.to_string()))?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(body)
            .message_attributes(attribute::EVENT_TYPE, text(&attributes.event_type)?)
            .message_attributes(attribute::EVENT_VERSION, text(&attributes.event_version)?)
            .message_attributes(attribute::CORRELATION_ID, text(&attributes.correlation_id)?)
            .send()
            .await
            .map_err(|e| PublishError(aws_sdk_sns::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

/// Keeps what is published, for tests of services that announce events.
#[cfg(feature = "testing")]
#[derive(Debug, Default)]
pub struct MemoryPublisher {
    bodies: std::sync::Mutex<Vec<String>>,
}

#[cfg(feature = "testing")]
impl MemoryPublisher {
    fn bodies(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.bodies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The type of every event published, in order.
    pub fn types(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .filter_map(|body| crate::RawEvent::parse(body).ok())
            .map(|raw| raw.event_type().to_owned())
            .collect()
    }

    /// Every published event of type `T`, read back as a consumer reads it.
    pub fn events<T: EventData>(&self) -> Vec<CloudEvent<T>> {
        self.bodies()
            .iter()
            .filter_map(|body| crate::parse_queue_body::<T>(body).ok())
            .collect()
    }

    /// Forgets what was published.
    pub fn clear(&self) {
        self.bodies().clear();
    }
}

#[cfg(feature = "testing")]
impl EventPublisher for MemoryPublisher {
    async fn publish<T: EventData>(&self, event: &CloudEvent<T>) -> Result<(), PublishError> {
        let body = serde_json::to_string(event).map_err(|e| PublishError(e.to_string()))?;
        self.bodies().push(body);
        Ok(())
    }
}

/// A shared publisher is a publisher.
impl<P: EventPublisher> EventPublisher for std::sync::Arc<P> {
    async fn publish<T: EventData>(&self, event: &CloudEvent<T>) -> Result<(), PublishError> {
        P::publish(self, event).await
    }
}
