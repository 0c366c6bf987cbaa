//! The shared mechanisms every function of the order fan-out stands on:
//!
//! - [`batch`]: SQS batch processing with a partial batch response (`batchItemFailures`):
//!   standard (bounded concurrency) and FIFO modes, panic isolation per record, and no record
//!   started when the invocation deadline is near.
//! - [`idempotency`]: run work once per key with Powertools semantics (INPROGRESS/COMPLETED
//!   entries, stored results, payload validation, expiry checked in code), over DynamoDB (with a
//!   transactional mode that commits a DynamoDB effect and its COMPLETED entry together) or
//!   memory, with an optional cache of completed entries.
//! - [`consumer`]: [`consumer::EventHandler`] (one typed event per record) and
//!   [`consumer::SqsConsumer`], running one on Lambda, configuration from the environment.
//! - `http` (feature `http`): `HttpFunction`, a handler behind API Gateway, run on Lambda.
//! - [`effect`]: one item per entity written once per event, in DynamoDB or in memory.
//! - [`metrics`]: what every function measures (consumers' counts, times and lag, business
//!   facts, cold starts), as CloudWatch embedded metric format on Lambda.
//! - [`telemetry`]: `tracing` set-up (JSON on Lambda, compact text locally).

pub mod batch;
pub mod consumer;
pub mod effect;
#[cfg(feature = "http")]
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod telemetry;

/// The error type handlers return for one record; its message is logged with the failure.
pub type RecordError = Box<dyn std::error::Error + Send + Sync + 'static>;
