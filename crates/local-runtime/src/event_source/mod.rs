//! Lambda's SQS event source mapping, played locally.
//!
//! It does what Lambda's does: long-polls the queue, gathers a batch (up to the template's
//! `BatchSize`, for up to `MaximumBatchingWindowInSeconds` once a first record is there), hands
//! it to the function, deletes the records that succeeded, and leaves the others to the queue:
//! they reappear after the visibility timeout and, after `maxReceiveCount` receives, the queue
//! moves them to its DLQ. Several batches run at once, as many as the backlog calls for, up to
//! `ScalingConfig.MaximumConcurrency` ([`pollers`]). Which records succeeded follows Lambda's
//! rules:
//!
//! - the invocation failed or timed out: none;
//! - with `ReportBatchItemFailures`: all but those listed in `batchItemFailures`; a listed
//!   `itemIdentifier` that is empty or names no record of the batch fails the whole batch;
//! - without it: all of them (the response body is ignored).

mod pollers;

pub use pollers::STEADY_POLLERS;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use lambda_kit::consumer::SqsConsumer;
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
    /// `DeleteMessageBatch` requests made.
    pub delete_requests: u64,
    /// `ReceiveMessage` requests that brought records (one or more per invocation: a batch
    /// gathered over a batching window may take several; empty long polls are not counted).
    pub receive_requests: u64,
    /// The most invocations that ran at once.
    pub peak_concurrency: u64,
    /// Pollers now (each works on one batch at a time).
    pub pollers: u64,
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

    fn update(&self, function: &str, change: impl FnOnce(&mut SourceStats)) {
        change(self.lock().entry(function.to_owned()).or_default());
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
    /// `BatchSize`: records per invocation at most.
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds`: how long a batch is gathered once it has a record.
    pub batching_window: Duration,
    /// `ScalingConfig.MaximumConcurrency`: batches at once at most.
    pub maximum_concurrency: Option<u32>,
    pub report_batch_item_failures: bool,
    pub timeout: Duration,
    pub long_poll_seconds: i32,
    pub stats: Stats,
    /// Every record body handed to the function, for whoever listens (the live view).
    pub observed: tokio::sync::broadcast::Sender<String>,
}

impl EventSourceMapping {
    /// One `ReceiveMessage` of at most `max` messages, waiting up to `wait_seconds` for the first.
    async fn receive(&self, max: usize, wait_seconds: i32) -> Result<Vec<Message>, String> {
        let output = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        let messages = output.messages.unwrap_or_default();
        if !messages.is_empty() {
            self.stats
                .update(&self.function, |s| s.receive_requests += 1);
        }
        Ok(messages)
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
        self.stats.update(&self.function, |entry| {
            entry.invocations += 1;
            entry.records += receipts.len() as u64;
            entry.failed_records += failed.len() as u64;
            entry.deleted += deleted;
            entry.delete_requests += delete_requests;
            entry.busy += busy;
        });
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
