//! What every function measures, behind the [`metrics`] facade.
//!
//! The names and dimensions are defined here once; the consumers' counts and times are recorded
//! by the kit ([`crate::consumer`]), business metrics by the function that knows the fact. On
//! Lambda, [`init_on_lambda`] installs a recorder that writes CloudWatch embedded metric format
//! (EMF) documents to stdout, flushed once per invocation by the kit's `run_on_lambda`: CloudWatch
//! Logs turns them into metrics, with no call to the CloudWatch API. Locally, the runtime installs
//! its own recorder and shows the same metrics in the live view. Without a recorder (unit tests)
//! every call is a no-op.
//!
//! Dimensions are `service`, and `event_type` for the times (an event's age and its processing
//! time differ by type: payment's capture waits for the order's confirmation); cancellations
//! carry their `reason`, one of three values. Never an order or a customer id, which would make
//! one metric per order.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use metrics_cloudwatch_embedded::Collector;

/// The CloudWatch namespace when `METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "Orderflow";

/// Dimension: the service (the function's cargo binary).
pub const SERVICE: &str = "service";
/// Dimension: the event type a per-event metric is about.
pub const EVENT_TYPE: &str = "event_type";
/// Dimension: why an order was cancelled.
pub const REASON: &str = "reason";

/// Metric names, as they appear in CloudWatch and in the local live view.
pub mod name {
    /// Records handed to a consumer (service).
    pub const RECORDS_RECEIVED: &str = "RecordsReceived";
    /// Records whose effect was applied now (service).
    pub const RECORDS_SUCCEEDED: &str = "RecordsSucceeded";
    /// Records whose effect had been applied before: a redelivery (service).
    pub const RECORDS_REPLAYED: &str = "RecordsReplayed";
    /// Records reported as failed: retried, and after maxReceiveCount in the DLQ (service).
    pub const RECORDS_FAILED: &str = "RecordsFailed";
    /// Time to apply one event, in milliseconds (service, event type).
    pub const PROCESSING_TIME: &str = "ProcessingTime";
    /// Now minus the event's time when the consumer starts on it, in milliseconds: how far
    /// behind the service is (service, event type).
    pub const EVENT_AGE: &str = "EventAge";
    /// A new execution environment's first invocation (service).
    pub const COLD_START: &str = "ColdStart";
    /// Orders the API accepted (service).
    pub const ORDERS_PLACED: &str = "OrdersPlaced";
    /// Orders the order service confirmed (service).
    pub const ORDERS_CONFIRMED: &str = "OrdersConfirmed";
    /// Orders the order service cancelled (service, reason).
    pub const ORDERS_CANCELLED: &str = "OrdersCancelled";
    /// From an order's placement to its announced decision, in milliseconds (service).
    pub const TIME_TO_DECISION: &str = "TimeToDecision";
    /// Authorizations the payment gateway declined (service).
    pub const PAYMENT_DECLINES: &str = "PaymentDeclines";
}

/// A counter of `service` (nothing for zero: EMF leaves zeros out anyway).
pub fn count(metric: &'static str, service: &'static str, n: u64) {
    if n > 0 {
        metrics::counter!(metric, SERVICE => service).increment(n);
    }
}

/// A time in milliseconds, for `service`.
pub fn time(metric: &'static str, service: &'static str, elapsed: Duration) {
    metrics::histogram!(metric, SERVICE => service).record(elapsed.as_secs_f64() * 1000.0);
}

/// An order cancelled for `reason`.
pub fn order_cancelled(service: &'static str, reason: &str) {
    metrics::counter!(name::ORDERS_CANCELLED, SERVICE => service, REASON => reason.to_owned())
        .increment(1);
}

/// What the records of one batch did, kept while the batch runs and recorded once it is over:
/// one update per metric and event type per batch, not one per record (each update looks its
/// metric up in the recorder).
#[derive(Debug, Default)]
pub struct BatchTally(std::sync::Mutex<Tally>);

#[derive(Debug, Default)]
struct Tally {
    succeeded: u64,
    replayed: u64,
    /// (event type, age when processing started, processing time), in milliseconds.
    times: Vec<(String, Option<f64>, f64)>,
}

/// How a record that was processed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    Applied,
    Replayed,
    Failed,
}

impl BatchTally {
    /// One record of `event_type`, `age` old when it started, processed in `took`.
    pub fn record(&self, event_type: &str, age: Option<Duration>, took: Duration, how: Processed) {
        let millis = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut tally = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match how {
            Processed::Applied => tally.succeeded += 1,
            Processed::Replayed => tally.replayed += 1,
            Processed::Failed => {}
        }
        tally
            .times
            .push((event_type.to_owned(), age.map(millis), millis(took)));
    }

    /// Records the batch's metrics for `service`: `received` records, `failed` reported failed.
    pub fn publish(self, service: &'static str, received: u64, failed: u64) {
        let mut tally = self.0.into_inner().unwrap_or_else(|p| p.into_inner());
        count(name::RECORDS_RECEIVED, service, received);
        count(name::RECORDS_SUCCEEDED, service, tally.succeeded);
        count(name::RECORDS_REPLAYED, service, tally.replayed);
        count(name::RECORDS_FAILED, service, failed);
        tally.times.sort_by(|a, b| a.0.cmp(&b.0));
        for group in tally.times.chunk_by(|a, b| a.0 == b.0) {
            let event_type = group[0].0.clone();
            let age = metrics::histogram!(name::EVENT_AGE, SERVICE => service, EVENT_TYPE => event_type.clone());
            let processing = metrics::histogram!(name::PROCESSING_TIME, SERVICE => service, EVENT_TYPE => event_type);
            for (_, started_at_age, took) in group {
                if let Some(started_at_age) = started_at_age {
                    age.record(*started_at_age);
                }
                processing.record(*took);
            }
        }
    }
}

/// How long ago `time` was (zero for a time in the future: clocks differ by a little).
pub fn age(time: SystemTime) -> Duration {
    SystemTime::now().duration_since(time).unwrap_or_default()
}

tokio::task_local! {
    static REPLAYED: std::cell::Cell<bool>;
}

/// Runs `work` (one record's processing) and answers, with its output, whether it found its
/// effect applied already ([`mark_replayed`] was called inside it).
pub async fn watch_replay<F: Future>(work: F) -> (F::Output, bool) {
    REPLAYED
        .scope(std::cell::Cell::new(false), async {
            let output = work.await;
            (output, REPLAYED.with(std::cell::Cell::get))
        })
        .await
}

/// Says that the record being processed had its effect applied before (a redelivery); counted
/// as replayed rather than succeeded. Outside [`watch_replay`] it does nothing.
pub fn mark_replayed() {
    let _ = REPLAYED.try_with(|replayed| replayed.set(true));
}

/// Tells the installed recorder each metric's unit and meaning (EMF documents carry the unit).
pub fn describe() {
    use metrics::Unit::{Count, Milliseconds};
    for (metric, help) in [
        (name::PROCESSING_TIME, "time to apply one event"),
        (
            name::EVENT_AGE,
            "how old an event is when its consumer starts on it",
        ),
        (
            name::TIME_TO_DECISION,
            "from an order's placement to its announced decision",
        ),
    ] {
        metrics::describe_histogram!(metric, Milliseconds, help);
    }
    for (metric, help) in [
        (name::RECORDS_RECEIVED, "records handed to the consumer"),
        (
            name::RECORDS_SUCCEEDED,
            "records whose effect was applied now",
        ),
        (
            name::RECORDS_REPLAYED,
            "records whose effect had been applied before",
        ),
        (name::RECORDS_FAILED, "records reported as failed"),
        (
            name::COLD_START,
            "first invocation of an execution environment",
        ),
        (name::ORDERS_PLACED, "orders accepted"),
        (name::ORDERS_CONFIRMED, "orders confirmed"),
        (name::ORDERS_CANCELLED, "orders cancelled"),
        (name::PAYMENT_DECLINES, "authorizations declined"),
    ] {
        metrics::describe_counter!(metric, Count, help);
    }
}

static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

/// On Lambda: installs the EMF recorder (namespace `METRICS_NAMESPACE`, or
/// [`DEFAULT_NAMESPACE`]) and counts this cold start; its document goes out with the first
/// invocation's. Does nothing if a recorder is installed already.
pub fn init_on_lambda(service: &'static str) {
    let namespace = std::env::var("METRICS_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    match metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace)
        .init()
    {
        Ok(collector) => {
            let _ = COLLECTOR.set(collector);
            describe();
            count(name::COLD_START, service, 1);
        }
        Err(e) => tracing::warn!(error = %e, "metrics recorder not installed"),
    }
}

/// Writes what was recorded since the last flush as EMF documents to stdout, tagged with the
/// invocation's request id and trace id (so a metric leads to its logs). Once per invocation.
pub fn flush(request_id: &str, xray_trace_id: Option<&str>) {
    flush_into(std::io::stdout().lock(), request_id, xray_trace_id);
}

/// [`flush`] into `writer`.
pub fn flush_into(writer: impl std::io::Write, request_id: &str, xray_trace_id: Option<&str>) {
    let Some(collector) = COLLECTOR.get() else {
        return;
    };
    collector.set_property("requestId", request_id.to_owned());
    if let Some(trace) = xray_trace_id {
        collector.set_property("xrayTraceId", trace.to_owned());
    }
    if let Err(e) = collector.flush(writer) {
        tracing::warn!(error = %e, "metrics not written");
    }
}

/// What a piece of work recorded, for tests.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    pub use metrics_util::debugging::DebugValue;
    use metrics_util::debugging::DebuggingRecorder;

    /// One metric as recorded: its name, its dimensions as `name=value`, its value.
    pub type Recorded = (String, Vec<String>, DebugValue);

    /// Runs `work` on a current-thread runtime with a recorder of its own; what it answered and
    /// every metric it recorded.
    pub fn recorded<T>(work: impl std::future::Future<Output = T>) -> (T, Vec<Recorded>) {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let answer = metrics::with_local_recorder(&recorder, || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime")
                .block_on(work)
        });
        let metrics = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                (key.name().to_owned(), labels, value)
            })
            .collect();
        (answer, metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_record_is_replayed_only_when_its_processing_says_so() {
        let (value, replayed) = watch_replay(async { 1 }).await;
        assert_eq!((value, replayed), (1, false));
        let (_, replayed) = watch_replay(async { mark_replayed() }).await;
        assert!(replayed);
        // Outside a record: nothing to mark, and no panic.
        mark_replayed();
    }
}
