//! SQS batch processing with a partial batch response.
//!
//! Lambda's SQS event source deletes every message of a batch whose invocation succeeds, except
//! those listed in `batchItemFailures`; those become visible again after the visibility timeout
//! and, after `maxReceiveCount` receives, move to the queue's dead-letter queue. So one bad
//! record must fail alone: a [`BatchProcessor`] runs each record's handler, isolates errors and
//! panics per record, and lists exactly the failed message ids.
//!
//! | mode | order | on a failure |
//! |---|---|---|
//! | [`BatchProcessor::standard`] | concurrent, at most `concurrency` at once | only that record fails |
//! | [`BatchProcessor::fifo`] | one by one, in order | that record and every record after it fail (not run), so SQS FIFO redelivers them in order |
//! | [`BatchProcessor::fifo_skip_group`] | each message group in order, groups concurrently | that record and the later records *of its message group* fail; other groups go on |
//!
//! In every mode, once the invocation's remaining time falls under the deadline margin, no
//! further record is started: the rest are reported as failures, so SQS redelivers them instead
//! of Lambda killing the invocation half-way (which would redeliver the whole batch).
//!
//! A panic fails its record only; this needs `panic = "unwind"` (the default) in the profile
//! the function is built with.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
//! use lambda_kit::batch::BatchProcessor;
//!
//! # #[tokio::main] async fn main() {
//! let mut batch = SqsEvent::default();
//! for (id, body) in [("m1", "ok"), ("m2", "bad"), ("m3", "ok")] {
//!     let mut record = SqsMessage::default();
//!     record.message_id = Some(id.into());
//!     record.body = Some(body.into());
//!     batch.records.push(record);
//! }
//! let deadline = SystemTime::now() + Duration::from_secs(30);
//! let response = BatchProcessor::standard(10)
//!     .process(batch, deadline, |record| async move {
//!         match record.body.as_deref() {
//!             Some("ok") => Ok(()),
//!             _ => Err("cannot handle this record".into()),
//!         }
//!     })
//!     .await
//!     .unwrap();
//! assert_eq!(response.batch_item_failures[0].item_identifier, "m2");
//! # }
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{FutureExt, StreamExt};
use tracing::Instrument;

use crate::dead_letters::DeadLetters;
use crate::RecordError;

/// Records of one batch handled at the same time by default (Lambda's maximum batch size is
/// 10,000; 10 keeps DynamoDB and downstream APIs from seeing a burst per invocation).
pub const DEFAULT_CONCURRENCY: usize = 10;

/// Remaining invocation time under which no further record is started, by default.
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// The batch as a whole cannot be answered with a partial batch response.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A failed record has no message id. An empty `itemIdentifier` makes Lambda treat the whole
    /// batch as failed anyway, so say so plainly: every record of the batch is retried.
    #[error("{0} failed record(s) without a message id; failing the whole batch")]
    UnidentifiableFailure(usize),
}

/// The record attribute that names a FIFO message's group.
pub const MESSAGE_GROUP_ID: &str = "MessageGroupId";

/// How records of a batch are ordered and what a failure does to the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Concurrent, bounded; a failure affects only its record.
    Standard { concurrency: usize },
    /// In order; the first failure fails every later record.
    Fifo,
    /// Each message group in order, at most `concurrency` groups at a time; a failure fails the
    /// later records of its message group only.
    FifoSkipGroup { concurrency: usize },
}

/// Runs the records of an SQS batch and answers which failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProcessor {
    pub mode: Mode,
    pub deadline_margin: Duration,
}

impl Default for BatchProcessor {
    fn default() -> Self {
        Self::standard(DEFAULT_CONCURRENCY)
    }
}

/// What became of one record: done, sent to the DLQ at once (a permanent failure), or failed
/// (its reason), with its message id.
type Outcome = (Option<String>, Result<Done, String>);

/// A record that needs no retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Handled,
    DeadLettered,
}

/// A batch's answer to Lambda, and how many of its records failed permanently and went to the
/// dead-letter queue at once (those are not in the answer: Lambda deletes them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    pub response: SqsBatchResponse,
    pub dead_lettered: usize,
}

impl BatchProcessor {
    /// For standard queues: records run concurrently, at most `concurrency` at a time.
    pub const fn standard(concurrency: usize) -> Self {
        Self {
            mode: Mode::Standard { concurrency },
            deadline_margin: DEFAULT_DEADLINE_MARGIN,
        }
    }

    /// For FIFO queues: in order, stopping at the first failure.
    pub const fn fifo() -> Self {
        Self {
            mode: Mode::Fifo,
            deadline_margin: DEFAULT_DEADLINE_MARGIN,
        }
    }

    /// For FIFO queues whose message groups are independent: each group in order, groups
    /// concurrently, skipping only the message group of a failed record.
    pub const fn fifo_skip_group() -> Self {
        Self {
            mode: Mode::FifoSkipGroup {
                concurrency: DEFAULT_CONCURRENCY,
            },
            deadline_margin: DEFAULT_DEADLINE_MARGIN,
        }
    }

    /// No record is started once less than `margin` is left before the deadline.
    pub const fn with_deadline_margin(mut self, margin: Duration) -> Self {
        self.deadline_margin = margin;
        self
    }

    /// Runs `handle` on the records of `batch` and answers which failed. A record fails when
    /// its handler returns an error or panics, or when it is not started (deadline, or an
    /// earlier failure in FIFO order); each failure is logged with its message id and reason.
    /// Handlers must be idempotent: a failed record is retried, and a batch can be delivered
    /// again after a timeout.
    pub async fn process<F, Fut>(
        &self,
        batch: SqsEvent,
        deadline: SystemTime,
        handle: F,
    ) -> Result<SqsBatchResponse, BatchError>
    where
        F: Fn(SqsMessage) -> Fut,
        Fut: Future<Output = Result<(), RecordError>>,
    {
        // The handler takes its record; process_with lends it (it keeps it for the DLQ).
        let handle = |record: &SqsMessage| handle(record.clone());
        Ok(self
            .process_with(batch, deadline, None, handle)
            .await?
            .response)
    }

    /// [`BatchProcessor::process`] with the record lent to `handle`, sending a record whose
    /// handler fails permanently to `dead_letters` at once (when given), so that it is not
    /// retried.
    pub async fn process_with<F, Fut>(
        &self,
        batch: SqsEvent,
        deadline: SystemTime,
        dead_letters: Option<&dyn DeadLetters>,
        handle: F,
    ) -> Result<BatchOutcome, BatchError>
    where
        F: Fn(&SqsMessage) -> Fut,
        Fut: Future<Output = Result<(), RecordError>>,
    {
        let not_started = |reason: &str| Err::<Done, _>(format!("not started: {reason}"));
        let time_left = || {
            let left = deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            (left >= self.deadline_margin).then_some(()).ok_or_else(|| {
                format!(
                    "{} ms left before the invocation deadline (margin {} ms)",
                    left.as_millis(),
                    self.deadline_margin.as_millis()
                )
            })
        };
        let run = |record: SqsMessage| {
            let run = AssertUnwindSafe(handle(&record)).catch_unwind();
            async move {
                match run.await {
                    Ok(Ok(())) => Ok(Done::Handled),
                    Ok(Err(error)) => match dead_letters {
                        Some(dead_letters) if error.is_permanent() => {
                            dead_letter(dead_letters, &record, &error).await
                        }
                        _ => Err(error.to_string()),
                    },
                    // A panic may be a bug a new version fixes: retried like any failure.
                    Err(panic) => Err(format!("handler panicked: {}", panic_message(&panic))),
                }
            }
        };

        let outcomes: Vec<Outcome> = match self.mode {
            Mode::Standard { concurrency } => {
                futures::stream::iter(batch.records)
                    .map(|record| {
                        let message_id = record.message_id.clone();
                        async {
                            let outcome = match time_left() {
                                Ok(()) => run(record).await,
                                Err(reason) => not_started(&reason),
                            };
                            (message_id, outcome)
                        }
                    })
                    .buffer_unordered(concurrency.max(1))
                    .collect()
                    .await
            }
            Mode::Fifo => {
                in_order(batch.records, &time_left, &run, "an earlier record failed").await
            }
            Mode::FifoSkipGroup { concurrency } => {
                // One run per message group (a record without one is a group of its own), in
                // the batch's order within each.
                let mut groups: Vec<(Option<String>, Vec<SqsMessage>)> = Vec::new();
                for record in batch.records {
                    let group = record.attributes.get(MESSAGE_GROUP_ID).cloned();
                    match groups
                        .iter_mut()
                        .find(|(g, _)| group.is_some() && *g == group)
                    {
                        Some((_, records)) => records.push(record),
                        None => groups.push((group, vec![record])),
                    }
                }
                futures::stream::iter(groups)
                    .map(|(_, records)| {
                        let held_back = "an earlier record of its message group failed";
                        in_order(records, &time_left, &run, held_back)
                    })
                    .buffer_unordered(concurrency.max(1))
                    .collect::<Vec<_>>()
                    .await
                    .into_iter()
                    .flatten()
                    .collect()
            }
        };
        response(outcomes)
    }

    /// [`BatchProcessor::process_with`] for records whose body is a typed event: each body is
    /// parsed with `parse` (a body that does not parse fails permanently: to the dead-letter
    /// queue at once, with the reason), and `handle` runs inside the span `span` makes for the
    /// event, so every log line of the record carries the event's identifiers.
    pub async fn process_events<T, E, P, S, F, Fut>(
        &self,
        batch: SqsEvent,
        deadline: SystemTime,
        dead_letters: Option<&dyn DeadLetters>,
        parse: P,
        span: S,
        handle: F,
    ) -> Result<BatchOutcome, BatchError>
    where
        P: Fn(&str) -> Result<T, E>,
        E: std::error::Error + Send + Sync + 'static,
        S: Fn(&T) -> tracing::Span,
        F: Fn(T) -> Fut,
        Fut: Future<Output = Result<(), RecordError>>,
    {
        self.process_with(batch, deadline, dead_letters, |record: &SqsMessage| {
            let parsed = parse(record.body.as_deref().unwrap_or_default());
            async {
                // A body that is not an event this consumer reads never will be.
                let event = parsed
                    .map_err(|e| RecordError::permanent(format!("unreadable message: {e}")))?;
                let span = span(&event);
                handle(event).instrument(span).await
            }
        })
        .await
    }
}

/// Sends a permanently failed record to the DLQ: done if it went, a retryable failure if not.
async fn dead_letter(
    dead_letters: &dyn DeadLetters,
    record: &SqsMessage,
    error: &RecordError,
) -> Result<Done, String> {
    let reason = error.reason();
    let message_id = record.message_id.as_deref().unwrap_or_default();
    match dead_letters.send(record, &reason).await {
        Ok(()) => {
            tracing::warn!(%message_id, %reason, "record failed permanently; sent to the dead-letter queue, not retried");
            Ok(Done::DeadLettered)
        }
        Err(problem) => Err(format!(
            "{error}; and it could not be sent to the dead-letter queue ({problem})"
        )),
    }
}

/// Runs `records` one after the other; after a failure (or once the deadline is near) the rest
/// are not started, with `held_back` as the reason.
async fn in_order<R, Fut>(
    records: Vec<SqsMessage>,
    time_left: &impl Fn() -> Result<(), String>,
    run: &R,
    held_back: &str,
) -> Vec<Outcome>
where
    R: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<Done, String>>,
{
    let mut outcomes = Vec::with_capacity(records.len());
    let mut stopped: Option<String> = None;
    for record in records {
        let message_id = record.message_id.clone();
        if stopped.is_none() {
            stopped = time_left().err();
        }
        let outcome = match &stopped {
            Some(reason) => Err(format!("not started: {reason}")),
            None => {
                let outcome = run(record).await;
                if outcome.is_err() {
                    stopped = Some(held_back.to_owned());
                }
                outcome
            }
        };
        outcomes.push((message_id, outcome));
    }
    outcomes
}

fn response(outcomes: Vec<Outcome>) -> Result<BatchOutcome, BatchError> {
    let mut response = SqsBatchResponse::default();
    let mut unidentifiable = 0;
    let mut dead_lettered = 0;
    for (message_id, outcome) in outcomes {
        let reason = match outcome {
            Ok(Done::Handled) => continue,
            Ok(Done::DeadLettered) => {
                dead_lettered += 1;
                continue;
            }
            Err(reason) => reason,
        };
        match message_id.filter(|id| !id.is_empty()) {
            Some(id) => {
                tracing::warn!(message_id = %id, %reason, "record failed; it will be retried");
                response.add_failure(id);
            }
            None => {
                tracing::error!(%reason, "record without a message id failed");
                unidentifiable += 1;
            }
        }
    }
    if unidentifiable > 0 {
        return Err(BatchError::UnidentifiableFailure(unidentifiable));
    }
    Ok(BatchOutcome {
        response,
        dead_lettered,
    })
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records `m0`, `m1`, ... with the given bodies; a body `group:text` sets the message group.
    fn batch(bodies: &[&str]) -> SqsEvent {
        let mut event = SqsEvent::default();
        for (i, body) in bodies.iter().enumerate() {
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("m{i}"));
            if let Some((group, _)) = body.split_once(':') {
                record
                    .attributes
                    .insert("MessageGroupId".into(), group.into());
            }
            record.body = Some((*body).to_owned());
            event.records.push(record);
        }
        event
    }

    async fn fail_on_bad_panic_on_boom(record: SqsMessage) -> Result<(), RecordError> {
        let body = record.body.unwrap_or_default();
        match body.rsplit(':').next() {
            Some("bad") => Err("bad record".into()),
            Some("boom") => panic!("boom"),
            _ => Ok(()),
        }
    }

    fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
        let mut ids: Vec<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        ids.sort();
        ids
    }

    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(30)
    }

    async fn failures(processor: BatchProcessor, bodies: &[&str]) -> Vec<String> {
        let response = processor
            .process(batch(bodies), later(), fail_on_bad_panic_on_boom)
            .await
            .unwrap();
        failed_ids(&response)
    }

    #[tokio::test]
    async fn only_failed_records_are_reported() {
        let failed = failures(BatchProcessor::standard(4), &["ok", "bad", "ok", "bad"]).await;
        assert_eq!(failed, ["m1", "m3"]);
    }

    #[tokio::test]
    async fn a_panicking_record_fails_alone() {
        let failed = failures(BatchProcessor::standard(2), &["ok", "boom", "ok"]).await;
        assert_eq!(failed, ["m1"]);
    }

    #[tokio::test]
    async fn an_all_good_batch_reports_nothing() {
        let failed = failures(BatchProcessor::default(), &["ok"; 25]).await;
        assert!(failed.is_empty());
    }

    #[tokio::test]
    async fn a_failure_without_message_id_fails_the_batch() {
        let mut event = batch(&["ok", "bad"]);
        event.records[1].message_id = Some(String::new());
        let result = BatchProcessor::default()
            .process(event, later(), fail_on_bad_panic_on_boom)
            .await;
        assert!(matches!(result, Err(BatchError::UnidentifiableFailure(1))));
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        BatchProcessor::standard(3)
            .process(batch(&["ok"; 12]), later(), |_| async {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn fifo_stops_at_the_first_failure_and_keeps_order() {
        let seen = Mutex::new(Vec::new());
        let response = BatchProcessor::fifo()
            .process(batch(&["ok", "ok", "bad", "ok", "ok"]), later(), |record| {
                seen.lock()
                    .unwrap()
                    .push(record.message_id.clone().unwrap());
                fail_on_bad_panic_on_boom(record)
            })
            .await
            .unwrap();
        assert_eq!(failed_ids(&response), ["m2", "m3", "m4"]);
        assert_eq!(
            *seen.lock().unwrap(),
            ["m0", "m1", "m2"],
            "nothing ran after the failure"
        );
        // Lambda reads the failures in order: the first one reported is the first to retry.
        assert_eq!(response.batch_item_failures[0].item_identifier, "m2");
    }

    #[tokio::test]
    async fn fifo_skip_group_fails_only_the_failing_group() {
        let failed = failures(
            BatchProcessor::fifo_skip_group(),
            &["a:ok", "b:bad", "a:ok", "b:ok", "c:boom", "c:ok", "a:ok"],
        )
        .await;
        assert_eq!(failed, ["m1", "m3", "m4", "m5"]);
    }

    #[tokio::test]
    async fn fifo_skip_group_runs_groups_side_by_side_and_each_in_order() {
        // Each record takes 20 ms; the log says when each started and ended.
        let log = Mutex::new(Vec::new());
        let handle = |record: SqsMessage| {
            let body = record.body.unwrap_or_default();
            let log = &log;
            async move {
                log.lock().unwrap().push(format!("start {body}"));
                tokio::time::sleep(Duration::from_millis(20)).await;
                log.lock().unwrap().push(format!("end {body}"));
                Ok::<(), RecordError>(())
            }
        };
        let bodies = ["a:1", "b:1", "a:2", "b:2", "a:3"];
        BatchProcessor::fifo_skip_group()
            .process(batch(&bodies), later(), handle)
            .await
            .unwrap();
        let log = log.into_inner().unwrap();
        let at = |entry: &str| log.iter().position(|e| e == entry).unwrap();
        // In order within a group: each record starts after the one before it ended.
        for (before, after) in [("a:1", "a:2"), ("a:2", "a:3"), ("b:1", "b:2")] {
            assert!(
                at(&format!("end {before}")) < at(&format!("start {after}")),
                "{log:?}"
            );
        }
        // Groups side by side: b's first record started before a's first ended.
        assert!(at("start b:1") < at("end a:1"), "{log:?}");
    }

    #[tokio::test]
    async fn near_the_deadline_no_record_is_started() {
        let soon = SystemTime::now() + Duration::from_millis(500);
        for processor in [BatchProcessor::standard(4), BatchProcessor::fifo()] {
            let started = Mutex::new(0);
            let response = processor
                .with_deadline_margin(Duration::from_secs(1))
                .process(batch(&["ok", "ok", "ok"]), soon, |_| async {
                    *started.lock().unwrap() += 1;
                    Ok(())
                })
                .await
                .unwrap();
            assert_eq!(failed_ids(&response), ["m0", "m1", "m2"], "{processor:?}");
            assert_eq!(*started.lock().unwrap(), 0);
        }
    }

    #[tokio::test]
    async fn the_deadline_stops_a_fifo_batch_midway() {
        let deadline = SystemTime::now() + Duration::from_millis(300);
        let response = BatchProcessor::fifo()
            .with_deadline_margin(Duration::from_millis(100))
            .process(batch(&["ok"; 6]), deadline, |_| async {
                tokio::time::sleep(Duration::from_millis(120)).await;
                Ok(())
            })
            .await
            .unwrap();
        let failed = failed_ids(&response);
        assert!(!failed.is_empty() && failed.len() < 6, "{failed:?}");
        assert_eq!(failed.last().map(String::as_str), Some("m5"));
    }

    /// A DLQ that refuses every letter.
    struct Unreachable;

    impl DeadLetters for Unreachable {
        fn send<'a>(
            &'a self,
            _: &'a SqsMessage,
            _: &'a str,
        ) -> futures::future::BoxFuture<'a, Result<(), String>> {
            Box::pin(async { Err("the queue is unreachable".to_owned()) })
        }
    }

    /// `perm` fails permanently, `bad` retryably, anything else succeeds.
    fn permanent_or_retryable(record: &SqsMessage) -> std::future::Ready<Result<(), RecordError>> {
        std::future::ready(match record.body.as_deref() {
            Some("perm") => Err(RecordError::permanent("never readable")),
            Some("bad") => Err("throttled".into()),
            _ => Ok(()),
        })
    }

    #[tokio::test]
    async fn a_permanent_failure_goes_to_the_dlq_at_once_and_a_retryable_one_back_to_the_queue() {
        let dead_letters = crate::dead_letters::MemoryDeadLetters::default();
        let outcome = BatchProcessor::default()
            .process_with(
                batch(&["ok", "perm", "bad", "ok"]),
                later(),
                Some(&dead_letters),
                permanent_or_retryable,
            )
            .await
            .unwrap();
        assert_eq!(
            failed_ids(&outcome.response),
            ["m2"],
            "only the retryable one"
        );
        assert_eq!(outcome.dead_lettered, 1);
        assert_eq!(
            dead_letters.sent(),
            [("perm".to_owned(), "never readable".to_owned())]
        );
    }

    #[tokio::test]
    async fn a_permanent_failure_is_retried_when_there_is_no_dlq_or_it_cannot_be_reached() {
        let without = BatchProcessor::default()
            .process_with(batch(&["perm"]), later(), None, permanent_or_retryable)
            .await
            .unwrap();
        assert_eq!(failed_ids(&without.response), ["m0"]);
        let unreachable = BatchProcessor::default()
            .process_with(
                batch(&["perm"]),
                later(),
                Some(&Unreachable),
                permanent_or_retryable,
            )
            .await
            .unwrap();
        assert_eq!(failed_ids(&unreachable.response), ["m0"]);
        assert_eq!(unreachable.dead_lettered, 0);
    }

    #[test]
    fn a_key_reused_with_another_payload_is_a_permanent_failure() {
        use crate::idempotency::IdempotencyError;
        let mismatch: RecordError = IdempotencyError::PayloadMismatch("k".into()).into();
        assert!(mismatch.is_permanent());
        let busy: RecordError = IdempotencyError::InProgress("k".into()).into();
        assert!(!busy.is_permanent());
    }
}
