//! With the `sns` feature: publishing any event of the catalogue to the SNS topic, with the
//! message attributes filter policies match on.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use tokio::sync::oneshot;

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

/// The environment variable naming the topic events are published to.
pub const TOPIC_ARN: &str = "TOPIC_ARN";

/// Longest a publish may take, retries included.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a batched publish waits for others of the same invocation to go with it.
pub const BATCH_LINGER: Duration = Duration::from_millis(5);

/// Most events SNS takes in one `PublishBatch`.
const MAX_BATCH: usize = 10;

/// Publishes to an SNS topic with the contract's message attributes. To a FIFO topic (its ARN
/// ends in `.fifo`), each event goes in its order's message group (the event's subject) with its
/// id as the deduplication id: SNS and SQS then keep one order's events in publish order, and
/// drop a second publish of the same event within five minutes.
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
    fifo: bool,
    /// Publishes waiting to go together, when batched.
    pending: Option<Arc<Pending>>,
}

/// An event waiting for its `PublishBatch`, with where its outcome goes.
type Waiting = (
    PublishBatchRequestEntry,
    oneshot::Sender<Result<(), PublishError>>,
);

/// Events waiting for their `PublishBatch`.
#[derive(Debug, Default)]
struct Pending {
    entries: Mutex<Vec<Waiting>>,
    next_id: AtomicU64,
}

/// A publish's message group and deduplication id: both set for a FIFO topic, neither for a
/// standard one.
#[derive(Default)]
struct FifoIds {
    group: Option<String>,
    deduplication: Option<String>,
}

/// What a publish does for its batch.
enum Role {
    /// The first of a batch: waits [`BATCH_LINGER`] for others, then sends what is there.
    Leader,
    /// Filled the batch: sends it at once.
    Sender(Vec<Waiting>),
    /// Another publish sends it.
    Follower,
}

impl SnsPublisher {
    /// A publisher whose calls give up after [`PUBLISH_TIMEOUT`] (retries included), so a caller
    /// can answer in time instead of hanging until its own timeout. One `Publish` per event.
    pub fn new(sdk: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(PUBLISH_TIMEOUT)
            .build();
        let config = aws_sdk_sns::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .interceptor(lambda_kit::calls::CallCounter)
            .build();
        let topic_arn = topic_arn.into();
        Self {
            client: aws_sdk_sns::Client::from_conf(config),
            fifo: topic_arn.ends_with(".fifo"),
            topic_arn,
            pending: None,
        }
    }

    /// Events published within [`BATCH_LINGER`] of each other go in one `PublishBatch` (up to
    /// 10), which SNS bills as one request: for a consumer, whose records of one invocation
    /// announce their outcomes at about the same time. Each publish still answers for its own
    /// event. (An API answering one request per invocation gains nothing from it.)
    pub fn batched(mut self) -> Self {
        self.pending = Some(Arc::default());
        self
    }

    /// A consumer's publisher: to the topic named by `TOPIC_ARN`, [`Self::batched`].
    pub fn for_consumer(
        sdk: &aws_config::SdkConfig,
        env: &lambda_kit::config::FunctionEnv,
    ) -> Result<Self, lambda_kit::config::ConfigError> {
        Ok(Self::new(sdk, env.require(TOPIC_ARN)?).batched())
    }

    async fn publish_alone(
        &self,
        body: String,
        attributes: HashMap<String, MessageAttributeValue>,
        fifo: FifoIds,
    ) -> Result<(), PublishError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(body)
            .set_message_attributes(Some(attributes))
            .set_message_group_id(fifo.group)
            .set_message_deduplication_id(fifo.deduplication)
            .send()
            .await
            .map_err(|e| PublishError(aws_sdk_sns::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }

    async fn publish_batched(
        &self,
        pending: &Pending,
        body: String,
        attributes: HashMap<String, MessageAttributeValue>,
        fifo: FifoIds,
    ) -> Result<(), PublishError> {
        let id = format!("e{}", pending.next_id.fetch_add(1, Ordering::Relaxed));
        let entry = PublishBatchRequestEntry::builder()
            .id(id)
            .message(body)
            .set_message_attributes(Some(attributes))
            .set_message_group_id(fifo.group)
            .set_message_deduplication_id(fifo.deduplication)
            .build()
            .map_err(|e| PublishError(e.to_string()))?;
        let (sent, outcome) = oneshot::channel();
        let role = {
            let mut entries = lock(&pending.entries);
            entries.push((entry, sent));
            match entries.len() {
                1 => Role::Leader,
                n if n >= MAX_BATCH => Role::Sender(std::mem::take(&mut *entries)),
                _ => Role::Follower,
            }
        };
        match role {
            Role::Sender(batch) => self.send_batch(batch).await,
            Role::Leader => {
                tokio::time::sleep(BATCH_LINGER).await;
                let batch = std::mem::take(&mut *lock(&pending.entries));
                self.send_batch(batch).await;
            }
            Role::Follower => {}
        }
        match tokio::time::timeout(BATCH_LINGER + PUBLISH_TIMEOUT, outcome).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(PublishError(
                "the batch this event was in was not sent in time".into(),
            )),
        }
    }

    /// Sends `batch` in one `PublishBatch` and tells each event how it went.
    async fn send_batch(&self, batch: Vec<Waiting>) {
        if batch.is_empty() {
            return;
        }
        let ids: Vec<String> = batch.iter().map(|(entry, _)| entry.id.clone()).collect();
        let (entries, outcomes): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let sent = self
            .client
            .publish_batch()
            .topic_arn(&self.topic_arn)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await;
        for (id, outcome) in ids.into_iter().zip(outcomes) {
            let result = match &sent {
                Ok(output) => match output.failed().iter().find(|f| f.id == id) {
                    Some(failed) => Err(PublishError(format!(
                        "{}: {}",
                        failed.code,
                        failed.message.as_deref().unwrap_or_default()
                    ))),
                    None => Ok(()),
                },
                Err(e) => Err(PublishError(
                    aws_sdk_sns::error::DisplayErrorContext(e).to_string(),
                )),
            };
            // A publish that gave up waiting no longer listens: nothing to tell it.
            let _ = outcome.send(result);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let contract = event.message_attributes();
        let attributes = HashMap::from([
            (
                attribute::EVENT_TYPE.to_owned(),
                text(&contract.event_type)?,
            ),
            (
                attribute::EVENT_VERSION.to_owned(),
                text(&contract.event_version)?,
            ),
            (
                attribute::CORRELATION_ID.to_owned(),
                text(&contract.correlation_id)?,
            ),
        ]);
        let body = serde_json::to_string(event).map_err(|e| PublishError(e.to_string()))?;
        let fifo = if self.fifo {
            FifoIds {
                group: Some(event.subject.clone()),
                deduplication: Some(event.id.to_string()),
            }
        } else {
            FifoIds::default()
        };
        match &self.pending {
            Some(pending) => self.publish_batched(pending, body, attributes, fifo).await,
            None => self.publish_alone(body, attributes, fifo).await,
        }
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
