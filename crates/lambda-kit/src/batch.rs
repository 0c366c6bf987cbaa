//! SQS batch processing with a partial batch response.
//!
//! Lambda's SQS event source deletes every message of a batch whose invocation succeeds, except
//! those listed in `batchItemFailures`; those become visible again after the visibility timeout
//! and, after `maxReceiveCount` receives, move to the queue's dead-letter queue. So one bad
//! record must fail alone: [`process_batch`] runs each record's handler, isolates errors and
//! panics per record, and lists exactly the failed message ids.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{FutureExt, StreamExt};
use tracing::Instrument;

use crate::RecordError;

/// Records of one batch handled at the same time (Lambda's maximum batch size is 10,000;
/// 10 keeps DynamoDB and downstream APIs from seeing a burst per invocation).
pub const DEFAULT_CONCURRENCY: usize = 10;

/// The batch as a whole cannot be answered with a partial batch response.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A failed record has no message id. An empty `itemIdentifier` makes Lambda treat the whole
    /// batch as failed anyway, so say so plainly: every record of the batch is retried.
    #[error("{0} failed record(s) without a message id; failing the whole batch")]
    UnidentifiableFailure(usize),
}

/// Runs `handle` on every record of `event`, at most `concurrency` at a time, and answers which
/// records failed.
///
/// A record fails when its handler returns an error or panics; either way the reason is logged
/// with the message id and the record is reported in `batchItemFailures`. The other records of
/// the batch are unaffected. Handlers must therefore be idempotent: a failed record is retried,
/// and a batch can be delivered again after a timeout.
pub async fn process_batch<F, Fut>(
    event: SqsEvent,
    concurrency: usize,
    handle: F,
) -> Result<SqsBatchResponse, BatchError>
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), RecordError>>,
{
    let outcomes: Vec<(Option<String>, Result<(), String>)> = futures::stream::iter(event.records)
        .map(|record| {
            let message_id = record.message_id.clone();
            let run = AssertUnwindSafe(handle(record)).catch_unwind();
            async move {
                let outcome = match run.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(error)) => Err(error.to_string()),
                    Err(panic) => Err(format!("handler panicked: {}", panic_message(&panic))),
                };
                (message_id, outcome)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;

    let mut response = SqsBatchResponse::default();
    let mut unidentifiable = 0;
    for (message_id, outcome) in outcomes {
        let Err(reason) = outcome else { continue };
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
    Ok(response)
}

/// [`process_batch`] for records whose body is a typed event: each body is parsed with `parse`
/// (a body that does not parse is a failed record, logged with the reason, so it ends in the
/// dead-letter queue), and `handle` runs inside the span `span` makes for the event, so every log
/// line of the record carries the event's identifiers.
pub async fn process_events<T, E, P, S, F, Fut>(
    event: SqsEvent,
    concurrency: usize,
    parse: P,
    span: S,
    handle: F,
) -> Result<SqsBatchResponse, BatchError>
where
    P: Fn(&str) -> Result<T, E>,
    E: std::error::Error + Send + Sync + 'static,
    S: Fn(&T) -> tracing::Span,
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<(), RecordError>>,
{
    process_batch(event, concurrency, |record| {
        let parsed = parse(record.body.as_deref().unwrap_or_default());
        async {
            let event = parsed.map_err(|e| format!("unreadable message: {e}"))?;
            let span = span(&event);
            handle(event).instrument(span).await
        }
    })
    .await
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
    use super::*;

    fn batch(bodies: &[&str]) -> SqsEvent {
        let mut event = SqsEvent::default();
        for (i, body) in bodies.iter().enumerate() {
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("m{i}"));
            record.body = Some((*body).to_owned());
            event.records.push(record);
        }
        event
    }

    async fn fail_on_bad_panic_on_boom(record: SqsMessage) -> Result<(), RecordError> {
        match record.body.as_deref() {
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

    #[tokio::test]
    async fn only_failed_records_are_reported() {
        let response = process_batch(
            batch(&["ok", "bad", "ok", "bad"]),
            4,
            fail_on_bad_panic_on_boom,
        )
        .await
        .unwrap();
        assert_eq!(failed_ids(&response), ["m1", "m3"]);
    }

    #[tokio::test]
    async fn a_panicking_record_fails_alone() {
        let response = process_batch(batch(&["ok", "boom", "ok"]), 2, fail_on_bad_panic_on_boom)
            .await
            .unwrap();
        assert_eq!(failed_ids(&response), ["m1"]);
    }

    #[tokio::test]
    async fn an_all_good_batch_reports_nothing() {
        let response = process_batch(batch(&["ok"; 25]), 10, fail_on_bad_panic_on_boom)
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn a_failure_without_message_id_fails_the_batch() {
        let mut event = batch(&["ok", "bad"]);
        event.records[1].message_id = Some(String::new());
        let result = process_batch(event, 2, fail_on_bad_panic_on_boom).await;
        assert!(matches!(result, Err(BatchError::UnidentifiableFailure(1))));
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        process_batch(batch(&["ok"; 12]), 3, |_| async {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }
}
