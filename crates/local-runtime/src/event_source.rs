//! Lambda's SQS event source mapping, played locally.
//!
//! It does what Lambda's does: long-polls the queue, hands the function a batch (at most the
//! template's `BatchSize`, and at most 10, the SQS receive limit), deletes the records that
//! succeeded, and leaves the others to the queue: they reappear after the visibility timeout
//! and, after `maxReceiveCount` receives, the queue moves them to its DLQ. Which records
//! succeeded follows Lambda's rules:
//!
//! - the invocation failed or timed out: none;
//! - with `ReportBatchItemFailures`: all but those listed in `batchItemFailures`; a listed
//!   `itemIdentifier` that is empty or names no record of the batch fails the whole batch;
//! - without it: all of them (the response body is ignored).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use lambda_kit::consumer::SqsConsumer;
use tokio::sync::watch;
use tracing::Instrument;

/// An X-Ray trace header of the shape Lambda passes (`Root=1-<time>-<96 random bits>`), not
/// sampled: nothing collects traces locally.
fn local_trace_id() -> String {
    let seconds = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("Root=1-{seconds:08x}-{};Sampled=0", &random[..24])
}

/// Counters of one function's event source mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub invocations: u64,
    pub records: u64,
    pub failed_records: u64,
    pub deleted: u64,
    /// `DeleteMessageBatch` requests made (each invocation also made one `ReceiveMessage` that
    /// brought its records; empty long polls are not counted).
    pub delete_requests: u64,
    /// Total time the function spent in its invocations (what Lambda bills).
    pub busy: Duration,
}

/// The counters of every function's mappings, by function logical id.
#[derive(Debug, Clone, Default)]
pub struct Stats(Arc<Mutex<BTreeMap<String, SourceStats>>>);

impl Stats {
    pub fn of(&self, function: &str) -> SourceStats {
        self.lock().get(function).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SourceStats>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One SQS event source of one function.
#[derive(Clone)]
pub struct EventSourceMapping {
    pub function: String,
    pub consumer: Arc<dyn SqsConsumer>,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub region: String,
    pub batch_size: i32,
    pub report_batch_item_failures: bool,
    pub timeout: Duration,
    pub long_poll_seconds: i32,
    pub stats: Stats,
    /// Every record body handed to the function, for whoever listens (the live view).
    pub observed: tokio::sync::broadcast::Sender<String>,
}

impl EventSourceMapping {
    /// Polls and invokes until `shutdown`; while `enabled` is false the queue keeps its messages.
    pub async fn run(
        self,
        mut shutdown: watch::Receiver<bool>,
        mut enabled: watch::Receiver<bool>,
    ) {
        loop {
            if !*enabled.borrow_and_update() {
                tracing::info!(function = %self.function, "event source mapping disabled");
                tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => return,
                    _ = enabled.wait_for(|on| *on) => {}
                }
                tracing::info!(function = %self.function, "event source mapping enabled");
            }
            let receive = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(self.batch_size)
                .wait_time_seconds(self.long_poll_seconds)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send();
            // Disabling takes effect at once: a long poll in progress is abandoned (anything it
            // had received becomes visible again after the visibility timeout).
            let received = tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = enabled.wait_for(|on| !*on) => continue,
                received = receive => received,
            };
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(function = %self.function, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "receive failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if !messages.is_empty() {
                self.invoke(messages).await;
            }
        }
    }

    /// One invocation: hand the batch to the function, then delete what succeeded.
    async fn invoke(&self, messages: Vec<Message>) {
        let receipts: Vec<(String, String)> = messages
            .iter()
            .map(|m| {
                (
                    m.message_id.clone().unwrap_or_default(),
                    m.receipt_handle.clone().unwrap_or_default(),
                )
            })
            .collect();
        let mut batch = SqsEvent::default();
        batch.records = messages.into_iter().map(|m| self.record(m)).collect();
        if self.observed.receiver_count() > 0 {
            for body in batch.records.iter().filter_map(|r| r.body.clone()) {
                let _ = self.observed.send(body);
            }
        }

        let deadline = SystemTime::now() + self.timeout;
        let started = Instant::now();
        // The span Lambda's runtime opens for an invocation, so that a record's log lines carry
        // a request id and a trace id here too.
        let invocation = tracing::info_span!(
            "Lambda runtime invoke",
            requestId = %uuid::Uuid::new_v4(),
            xrayTraceId = %local_trace_id(),
        );
        let outcome = tokio::time::timeout(
            self.timeout,
            self.consumer.handle(batch, deadline).instrument(invocation),
        )
        .await;
        let busy = started.elapsed();
        let every = || receipts.iter().map(|(id, _)| id.clone()).collect();
        let failed: HashSet<String> = match outcome {
            Ok(Ok(response)) => self.failures(response, &receipts).unwrap_or_else(every),
            Ok(Err(e)) => {
                tracing::error!(function = %self.function, error = %e, "invocation failed; the whole batch is retried");
                every()
            }
            Err(_) => {
                tracing::error!(function = %self.function, timeout = ?self.timeout, "invocation timed out; the whole batch is retried");
                every()
            }
        };

        let done: Vec<&(String, String)> = receipts
            .iter()
            .filter(|(id, _)| !failed.contains(id))
            .collect();
        let (deleted, delete_requests) = self.delete(&done).await;
        let mut stats = self.stats.lock();
        let entry = stats.entry(self.function.clone()).or_default();
        entry.invocations += 1;
        entry.records += receipts.len() as u64;
        entry.failed_records += failed.len() as u64;
        entry.deleted += deleted;
        entry.delete_requests += delete_requests;
        entry.busy += busy;
    }

    /// The records a successful invocation's response fails; `None`: the whole batch.
    fn failures(
        &self,
        response: SqsBatchResponse,
        receipts: &[(String, String)],
    ) -> Option<HashSet<String>> {
        if !self.report_batch_item_failures {
            return Some(HashSet::new());
        }
        let ids: HashSet<&str> = receipts.iter().map(|(id, _)| id.as_str()).collect();
        let mut failed = HashSet::new();
        for failure in response.batch_item_failures {
            if failure.item_identifier.is_empty() || !ids.contains(failure.item_identifier.as_str())
            {
                tracing::error!(function = %self.function, item_identifier = %failure.item_identifier, "batch item failure names no record of the batch; the whole batch is retried");
                return None;
            }
            failed.insert(failure.item_identifier);
        }
        Some(failed)
    }

    /// Deletes the records that succeeded; answers how many were deleted, in how many requests.
    async fn delete(&self, done: &[&(String, String)]) -> (u64, u64) {
        let (mut deleted, mut requests) = (0, 0);
        for chunk in done.chunks(10) {
            requests += 1;
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, (_, receipt))| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build()
                        .ok()
                })
                .collect();
            match self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => deleted += output.successful.len() as u64,
                Err(e) => {
                    tracing::warn!(function = %self.function, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "delete failed; the records will be delivered again")
                }
            }
        }
        (deleted, requests)
    }

    /// An SQS message as Lambda presents it in an SQS event.
    fn record(&self, message: Message) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = message.message_id;
        record.receipt_handle = message.receipt_handle;
        record.body = message.body;
        record.md5_of_body = message.md5_of_body;
        record.md5_of_message_attributes = message.md5_of_message_attributes;
        record.attributes = message
            .attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_owned(), v))
            .collect();
        record.message_attributes = message
            .message_attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| {
                let mut attribute = SqsMessageAttribute::default();
                attribute.string_value = value.string_value;
                attribute.data_type = Some(value.data_type);
                (name, attribute)
            })
            .collect();
        record.event_source = Some("aws:sqs".to_owned());
        record.event_source_arn = Some(self.queue_arn.clone());
        record.aws_region = Some(self.region.clone());
        record
    }
}
