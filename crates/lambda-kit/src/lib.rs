//! The shared mechanisms every function of the order fan-out stands on:
//!
//! - [`batch`]: SQS batch processing with a partial batch response (`batchItemFailures`),
//!   bounded concurrency, and panic isolation per record.
//! - [`idempotency`]: idempotency records in DynamoDB (Powertools attribute layout), with a
//!   transactional mode that commits a DynamoDB effect and its COMPLETED record together, and a
//!   claim/complete mode for effects outside DynamoDB.
//! - [`consumer`]: the [`consumer::SqsConsumer`] trait, running one on Lambda, configuration.
//! - [`record`]: one record per entity written once per event, in DynamoDB or in memory.
//! - [`telemetry`]: `tracing` set-up (JSON on Lambda, compact text locally).

pub mod batch;
pub mod consumer;
pub mod idempotency;
pub mod record;
pub mod telemetry;

/// The error type handlers return for one record; its message is logged with the failure.
pub type RecordError = Box<dyn std::error::Error + Send + Sync + 'static>;
