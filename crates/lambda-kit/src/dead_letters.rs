//! A consumer's dead-letter queue, written by the kit when a record fails permanently
//! ([`crate::RecordError::permanent`]): the record's body and message attributes, with why and
//! where it failed as two more attributes, so `dlq list` shows the reason and `dlq redrive`
//! moves it back unchanged once the cause is fixed. The record is then done (Lambda deletes it
//! from the source queue); if the send fails, the record fails as retryable and the queue's
//! redrive policy still moves it after `maxReceiveCount` receives.
//!
//! The queue is `DEAD_LETTER_QUEUE_URL` in the function's environment (the template sets it to
//! the DLQ of the consumer's queue and grants `sqs:SendMessage` on it). Without it, permanent
//! failures are retried like the others.

use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::types::MessageAttributeValue;
use futures::future::BoxFuture;

use crate::config::FunctionEnv;

/// The environment variable holding the DLQ's URL.
pub const URL_VARIABLE: &str = "DEAD_LETTER_QUEUE_URL";

/// The message attributes a dead letter carries besides the record's own.
pub mod attribute {
    /// Why the record failed.
    pub const REASON: &str = "failureReason";
    /// The service that refused it.
    pub const FAILED_BY: &str = "failedBy";
}

/// Most characters of a reason kept in the attribute.
const REASON_LIMIT: usize = 1_000;

/// Where permanently failed records go.
pub trait DeadLetters: Send + Sync {
    /// Sends `record` with `reason`; `Err` says why it could not.
    fn send<'a>(
        &'a self,
        record: &'a SqsMessage,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// The DLQ as an SQS queue.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    sqs: aws_sdk_sqs::Client,
    url: String,
    service: &'static str,
}

impl SqsDeadLetters {
    pub fn new(sqs: aws_sdk_sqs::Client, url: impl Into<String>, service: &'static str) -> Self {
        Self {
            sqs,
            url: url.into(),
            service,
        }
    }

    /// The queue `DEAD_LETTER_QUEUE_URL` names, if set.
    pub fn from_env(
        sdk: &aws_config::SdkConfig,
        env: &FunctionEnv,
        service: &'static str,
    ) -> Option<Self> {
        let url = env.get(URL_VARIABLE).filter(|url| !url.is_empty())?;
        Some(Self::new(crate::calls::sqs_client(sdk), url, service))
    }
}

/// A string message attribute.
fn text(value: impl Into<String>) -> Option<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .ok()
}

impl DeadLetters for SqsDeadLetters {
    fn send<'a>(
        &'a self,
        record: &'a SqsMessage,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            // The record's own string attributes (eventType, correlationId, ...), so that a
            // redriven message is filtered and traced as the original was; then why it failed.
            let mut attributes = std::collections::HashMap::new();
            for (name, value) in &record.message_attributes {
                if let (Some(data_type), Some(string)) = (&value.data_type, &value.string_value) {
                    let value = MessageAttributeValue::builder()
                        .data_type(data_type)
                        .string_value(string)
                        .build();
                    if let Ok(value) = value {
                        attributes.insert(name.clone(), value);
                    }
                }
            }
            let reason: String = reason.chars().take(REASON_LIMIT).collect();
            for (name, value) in [
                (attribute::REASON, text(reason)),
                (attribute::FAILED_BY, text(self.service)),
            ] {
                attributes.extend(value.map(|value| (name.to_owned(), value)));
            }
            // A FIFO DLQ takes the record's message group and, as deduplication id, its message
            // id: a second send of the same record is dropped.
            let fifo = self.url.ends_with(".fifo");
            let send = self
                .sqs
                .send_message()
                .queue_url(&self.url)
                .message_body(record.body.clone().unwrap_or_default())
                .set_message_attributes(Some(attributes))
                .set_message_group_id(
                    fifo.then(|| record.attributes.get("MessageGroupId").cloned())
                        .flatten(),
                )
                .set_message_deduplication_id(fifo.then(|| record.message_id.clone()).flatten());
            send.send()
                .await
                .map(|_| ())
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
        })
    }
}

/// Dead letters kept in memory (tests).
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    sent: std::sync::Mutex<Vec<(String, String)>>,
}

impl MemoryDeadLetters {
    /// The (body, reason) of every letter sent.
    pub fn sent(&self) -> Vec<(String, String)> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl DeadLetters for MemoryDeadLetters {
    fn send<'a>(
        &'a self,
        record: &'a SqsMessage,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        let letter = (record.body.clone().unwrap_or_default(), reason.to_owned());
        Box::pin(async move {
            self.sent
                .lock()
                .map_err(|_| "poisoned".to_owned())?
                .push(letter);
            Ok(())
        })
    }
}
