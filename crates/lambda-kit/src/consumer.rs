//! What a queue consumer function is, and how it runs on Lambda.
//!
//! A consumer implements [`EventHandler`]: its event type (a [`QueueEvent`]: how a record body
//! becomes one, and the span its processing logs in) and what to do with one event. The kit makes it an [`SqsConsumer`]; its
//! `main` is then `run_on_lambda(consumer).await`.
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use lambda_kit::consumer::{EventHandler, QueueEvent, SqsConsumer};
//! use lambda_kit::spec::ServiceSpec;
//! use lambda_kit::RecordError;
//!
//! struct Name(String);
//!
//! impl QueueEvent for Name {
//!     type Error = std::convert::Infallible;
//!     fn from_body(body: &str) -> Result<Self, Self::Error> {
//!         Ok(Name(body.to_owned()))
//!     }
//!     fn span(&self) -> tracing::Span {
//!         tracing::info_span!("greet", name = %self.0)
//!     }
//!     fn event_type(&self) -> &str {
//!         "Name"
//!     }
//! }
//!
//! struct Greeter;
//!
//! impl EventHandler for Greeter {
//!     const SPEC: ServiceSpec = ServiceSpec {
//!         name: "greeter",
//!         table_variable: None,
//!         consumes: &["Name"],
//!         publishes: &[],
//!     };
//!     type Event = Name;
//!
//!     async fn apply(&self, Name(name): Name, _deadline: SystemTime) -> Result<(), RecordError> {
//!         if name.is_empty() {
//!             return Err("nobody to greet".into());
//!         }
//!         tracing::info!("hello");
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main] async fn main() {
//! let mut batch = aws_lambda_events::sqs::SqsEvent::default();
//! for (id, body) in [("m1", "ada"), ("m2", "")] {
//!     let mut record = aws_lambda_events::sqs::SqsMessage::default();
//!     record.message_id = Some(id.into());
//!     record.body = Some(body.into());
//!     batch.records.push(record);
//! }
//! let deadline = SystemTime::now() + Duration::from_secs(30);
//! let response = Greeter.handle(batch, deadline).await.unwrap();
//! assert_eq!(response.batch_item_failures[0].item_identifier, "m2");
//! # }
//! ```

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
pub use futures::future::BoxFuture;
use lambda_runtime::{service_fn, LambdaEvent};

use crate::batch::BatchProcessor;
pub use crate::config::{ConfigError, FunctionEnv};
use crate::dead_letters::{DeadLetters, SqsDeadLetters};
use crate::metrics::{self, BatchTally, Processed};
use crate::spec::ServiceSpec;
use crate::RecordError;

/// A function fed by an SQS event source that answers with a partial batch response.
///
/// Object-safe so the local runtime can hold every consumer behind one type and feed it the
/// same events Lambda would.
pub trait SqsConsumer: Send + Sync {
    /// Handles one batch; `deadline` is when the invocation times out.
    fn handle(
        &self,
        batch: SqsEvent,
        deadline: SystemTime,
    ) -> BoxFuture<'_, Result<SqsBatchResponse, InvocationError>>;

    /// The service this consumer is: the `service` dimension of its metrics.
    fn service(&self) -> &'static str;
}

/// A failed invocation, as Lambda sees a function error: every record of the batch is retried.
pub type InvocationError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A message body type: how a record body becomes one, and the span its processing logs in.
pub trait QueueEvent: Sized + Send {
    type Error: std::error::Error + Send + Sync + 'static;
    /// Reads a record body.
    fn from_body(body: &str) -> Result<Self, Self::Error>;
    /// The span every log line of this event's processing is in.
    fn span(&self) -> tracing::Span;
    /// The event's type: the `event_type` dimension of its metrics.
    fn event_type(&self) -> &str;
    /// When the event happened, if it says: its age when processing starts is how far behind
    /// the consumer is.
    fn time(&self) -> Option<SystemTime> {
        None
    }
}

/// A consumer that handles one typed event per record. Every `EventHandler` is an
/// [`SqsConsumer`]: its batches go through its [`BatchProcessor`] (partial batch response,
/// unreadable bodies and panics failing only their record, nothing started near the deadline).
pub trait EventHandler: Send + Sync {
    /// What the service is: its name is the `service` dimension of its metrics.
    const SPEC: ServiceSpec;
    type Event: QueueEvent;

    /// How batches are processed. From a standard queue: concurrently. From a FIFO queue
    /// (`fifo`: its records carry a `MessageGroupId`): each message group in order, groups
    /// concurrently, and a failure holds back only the later records of its own group. That
    /// suits every consumer whose groups are independent, as orders are here (what one order's
    /// events do never waits on another order's); a consumer whose groups depend on each other
    /// overrides it with [`BatchProcessor::fifo`] (stop at the first failure).
    fn batch_processor(&self, fifo: bool) -> BatchProcessor {
        if fifo {
            BatchProcessor::fifo_skip_group()
        } else {
            BatchProcessor::default()
        }
    }

    /// Applies one event; `deadline` is when the invocation times out. Must be idempotent.
    fn apply(
        &self,
        event: Self::Event,
        deadline: SystemTime,
    ) -> impl Future<Output = Result<(), RecordError>> + Send;
}

impl<H: EventHandler> SqsConsumer for H {
    fn handle(
        &self,
        batch: SqsEvent,
        deadline: SystemTime,
    ) -> BoxFuture<'_, Result<SqsBatchResponse, InvocationError>> {
        Box::pin(handle_batch(self, batch, deadline, None))
    }

    fn service(&self) -> &'static str {
        H::SPEC.name
    }
}

/// A consumer whose permanently failed records go to its dead-letter queue at once, not after
/// `maxReceiveCount` tries: what [`main`] and the local runtime run.
pub struct WithDeadLetters<H> {
    handler: H,
    dead_letters: Option<SqsDeadLetters>,
}

impl<H: EventHandler> WithDeadLetters<H> {
    /// `handler` with the DLQ its environment names (`DEAD_LETTER_QUEUE_URL`); without one,
    /// permanent failures are retried like the others.
    pub fn from_env(handler: H, sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Self {
        let dead_letters = SqsDeadLetters::from_env(sdk, env, H::SPEC.name);
        if dead_letters.is_none() {
            tracing::warn!(
                variable = crate::dead_letters::URL_VARIABLE,
                "no dead-letter queue: permanent failures are retried until the redrive policy moves them"
            );
        }
        Self {
            handler,
            dead_letters,
        }
    }

    pub fn handler(&self) -> &H {
        &self.handler
    }
}

impl<H: EventHandler> SqsConsumer for WithDeadLetters<H> {
    fn handle(
        &self,
        batch: SqsEvent,
        deadline: SystemTime,
    ) -> BoxFuture<'_, Result<SqsBatchResponse, InvocationError>> {
        let dead_letters = self.dead_letters.as_ref().map(|d| d as &dyn DeadLetters);
        Box::pin(handle_batch(&self.handler, batch, deadline, dead_letters))
    }

    fn service(&self) -> &'static str {
        H::SPEC.name
    }
}

/// One batch through the handler's [`BatchProcessor`], with its metrics.
async fn handle_batch<H: EventHandler>(
    handler: &H,
    batch: SqsEvent,
    deadline: SystemTime,
    dead_letters: Option<&dyn DeadLetters>,
) -> Result<SqsBatchResponse, InvocationError> {
    let received = batch.records.len() as u64;
    let tally = BatchTally::default();
    let fifo = batch
        .records
        .iter()
        .any(|r| r.attributes.contains_key(crate::batch::MESSAGE_GROUP_ID));
    let processor = handler.batch_processor(fifo);
    let processing = processor.process_events(
        batch,
        deadline,
        dead_letters,
        H::Event::from_body,
        H::Event::span,
        |event| handler.apply_measured(event, deadline, &tally),
    );
    let outcome = crate::calls::scope(H::SPEC.name, processing).await?;
    let failed = (outcome.response.batch_item_failures.len() + outcome.dead_lettered) as u64;
    tally.publish(H::SPEC.name, received, failed);
    Ok(outcome.response)
}

/// [`EventHandler::apply`] with the per-event metrics: how old the event is when processing
/// starts, how long it takes, and whether it was applied now or before, kept in the batch's
/// `tally`. (Failures are counted per batch, from the response, so that records never started
/// count too.)
trait MeasuredApply: EventHandler {
    fn apply_measured<'a>(
        &'a self,
        event: Self::Event,
        deadline: SystemTime,
        tally: &'a BatchTally,
    ) -> impl Future<Output = Result<(), RecordError>> + Send + 'a {
        let event_type = event.event_type().to_owned();
        let age = event.time().map(metrics::age);
        let started = Instant::now();
        // Boxed: the handler's future nested in the kit's wrappers is deep enough that the
        // compiler's layout computation would overflow for the larger consumers.
        let work: BoxFuture<'_, _> = Box::pin(self.apply(event, deadline));
        async move {
            let (result, replayed) = metrics::watch_replay(work).await;
            let how = match (&result, replayed) {
                (Err(_), _) => Processed::Failed,
                (Ok(()), true) => Processed::Replayed,
                (Ok(()), false) => Processed::Applied,
            };
            tally.record(&event_type, age, started.elapsed(), how);
            result
        }
    }
}

impl<H: EventHandler> MeasuredApply for H {}

/// A consumer function's whole `main`: builds the handler with `build` (its `from_env`), gives
/// it the dead-letter queue its environment names ([`WithDeadLetters`]) and runs it on Lambda.
/// A consumer's `main.rs` is this one call:
/// `fn main() -> Result<(), lambda_kit::LambdaError> { lambda_kit::consumer::main(shipping::Shipping::from_env) }`.
pub fn main<H: EventHandler>(
    build: impl FnOnce(&aws_config::SdkConfig, &FunctionEnv) -> Result<H, ConfigError>,
) -> Result<(), lambda_runtime::Error> {
    let build = |sdk: &aws_config::SdkConfig, env: &FunctionEnv| {
        Ok(WithDeadLetters::from_env(build(sdk, env)?, sdk, env))
    };
    crate::start(build, run_on_lambda)
}

/// Runs `consumer` under the Lambda runtime until the process ends, with its metrics written
/// in embedded metric format once per invocation.
pub async fn run_on_lambda(consumer: impl SqsConsumer) -> Result<(), lambda_runtime::Error> {
    metrics::init_on_lambda(consumer.service());
    let consumer = &consumer;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        let deadline = invocation_deadline(event.context.deadline, SystemTime::now());
        let answer = consumer.handle(event.payload, deadline).await;
        let context = &event.context;
        metrics::flush(&context.request_id, context.xray_trace_id.as_deref());
        answer
    }))
    .await
}

/// Epoch milliseconds no Lambda deadline is ever below (2001-09-09).
const EARLIEST_DEADLINE_MS: u64 = 1_000_000_000_000;

/// When the invocation times out, from the runtime API's `Lambda-Runtime-Deadline-Ms`: on
/// Lambda, epoch milliseconds. A local Runtime API may send the time allowed instead (`cargo
/// lambda watch` sends 600000, ten minutes), which read as a date lies in 1970, so that every
/// record would be refused as started too late; a value that early is taken as the time left.
fn invocation_deadline(deadline_ms: u64, now: SystemTime) -> SystemTime {
    if deadline_ms < EARLIEST_DEADLINE_MS {
        now + Duration::from_millis(deadline_ms)
    } else {
        SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body `new`, `again` (its effect was applied before) or anything else (fails); each
    /// event happened two seconds ago.
    struct Body(String);

    impl QueueEvent for Body {
        type Error = std::convert::Infallible;
        fn from_body(body: &str) -> Result<Self, Self::Error> {
            Ok(Body(body.to_owned()))
        }
        fn span(&self) -> tracing::Span {
            tracing::info_span!("body")
        }
        fn event_type(&self) -> &str {
            "Body"
        }
        fn time(&self) -> Option<SystemTime> {
            Some(SystemTime::now() - Duration::from_secs(2))
        }
    }

    struct Counted;

    impl EventHandler for Counted {
        const SPEC: ServiceSpec = ServiceSpec {
            name: "counted",
            table_variable: None,
            consumes: &["Body"],
            publishes: &[],
        };
        type Event = Body;

        async fn apply(&self, Body(body): Body, _: SystemTime) -> Result<(), RecordError> {
            match body.as_str() {
                "new" => Ok(()),
                "again" => {
                    crate::metrics::mark_replayed();
                    Ok(())
                }
                _ => Err("refused".into()),
            }
        }
    }

    #[test]
    fn a_batch_counts_its_records_by_outcome_and_times_each_event() {
        use crate::metrics::name;
        use crate::metrics::testing::{recorded, DebugValue};
        let mut batch = SqsEvent::default();
        for (i, body) in ["new", "again", "bad", "new"].iter().enumerate() {
            let mut record = aws_lambda_events::sqs::SqsMessage::default();
            record.message_id = Some(format!("m{i}"));
            record.body = Some((*body).into());
            batch.records.push(record);
        }
        let deadline = SystemTime::now() + Duration::from_secs(30);
        let (answer, metrics) = recorded(Counted.handle(batch, deadline));
        assert!(answer.is_ok());
        let mut counters = std::collections::BTreeMap::new();
        let mut ages = Vec::new();
        for (metric, labels, value) in metrics {
            match value {
                DebugValue::Counter(n) => {
                    assert_eq!(labels, ["service=counted"]);
                    counters.insert(metric, n);
                }
                DebugValue::Histogram(values) if metric == name::EVENT_AGE => {
                    assert_eq!(labels, ["service=counted", "event_type=Body"]);
                    ages.extend(values.into_iter().map(|v| v.into_inner()));
                }
                _ => {}
            }
        }
        assert_eq!(counters[name::RECORDS_RECEIVED], 4);
        assert_eq!(counters[name::RECORDS_SUCCEEDED], 2);
        assert_eq!(counters[name::RECORDS_REPLAYED], 1);
        assert_eq!(counters[name::RECORDS_FAILED], 1);
        assert_eq!(ages.len(), 4);
        assert!(
            ages.iter().all(|age| (2000.0..3000.0).contains(age)),
            "{ages:?}"
        );
    }

    #[test]
    fn a_deadline_is_lambda_s_epoch_milliseconds_or_a_local_runtime_s_time_allowed() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_112_000);
        let lambda = 1_796_112_030_000;
        assert_eq!(
            invocation_deadline(lambda, now),
            SystemTime::UNIX_EPOCH + Duration::from_millis(lambda)
        );
        assert_eq!(
            invocation_deadline(600_000, now),
            now + Duration::from_secs(600)
        );
    }
}
