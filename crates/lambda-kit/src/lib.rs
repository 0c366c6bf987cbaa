//! The shared mechanisms every function of the order fan-out stands on:
//!
//! - [`batch`]: SQS batch processing with a partial batch response (`batchItemFailures`):
//!   standard (bounded concurrency) and FIFO modes, panic isolation per record, and no record
//!   started when the invocation deadline is near.
//! - [`idempotency`]: run work once per key with Powertools semantics (INPROGRESS/COMPLETED
//!   entries, stored results, payload validation, expiry checked in code), over DynamoDB (with a
//!   transactional mode that commits a DynamoDB effect and its COMPLETED entry together) or
//!   memory, with an optional cache of completed entries.
//! - [`calls`]: every AWS call a function makes, counted by one SDK interceptor, with
//!   DynamoDB's units.
//! - [`capacity`]: DynamoDB item sizes and capacity units as AWS computes them.
//! - [`config`]: a function's environment variables, and the error naming a bad one.
//! - [`dead_letters`]: a consumer's DLQ, where a permanently failed record ([`RecordError`])
//!   goes at once, with its reason.
//! - [`consumer`]: [`consumer::EventHandler`] (one typed event per record) and
//!   [`consumer::SqsConsumer`], running one on Lambda, configuration from the environment.
//! - `http` (feature `http`): `HttpFunction`, a handler behind API Gateway, run on Lambda.
//! - [`effect`]: one item per entity, each write one conditional put that records the event's
//!   key in the item (the item is the idempotency entry), in DynamoDB or in memory.
//! - [`transaction`]: several DynamoDB items written together, and which write refused them.
//! - [`metrics`]: what every function measures (consumers' counts, times and lag, business
//!   facts, cold starts), as CloudWatch embedded metric format on Lambda.
//! - [`telemetry`]: `tracing` set-up (JSON on Lambda, compact text locally).
//! - [`spec`]: [`spec::ServiceSpec`], what a service is, stated once in its crate.

pub mod batch;
pub mod calls;
pub mod capacity;
pub mod config;
pub mod consumer;
pub mod dead_letters;
pub mod effect;
#[cfg(feature = "http")]
pub mod http;
pub mod idempotency;
pub mod metrics;
mod record_error;
pub mod spec;
pub mod telemetry;
pub mod transaction;

pub use record_error::RecordError;

/// What a function's `main` returns when it cannot start (a missing variable) or the runtime
/// fails: Lambda reports it as an initialization or runtime error.
pub use lambda_runtime::Error as LambdaError;

/// A function process, start to end: JSON logs, the SDK's configuration from the environment,
/// the function built from its environment variables by `build`, then `run` until Lambda ends
/// the process. Every function's `main` is one call of [`consumer::main`] or `http::main`.
fn start<F>(
    build: impl FnOnce(
        &aws_config::SdkConfig,
        &consumer::FunctionEnv,
    ) -> Result<F, consumer::ConfigError>,
    run: impl AsyncFnOnce(F) -> Result<(), lambda_runtime::Error>,
) -> Result<(), lambda_runtime::Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            telemetry::init();
            let sdk = aws_config::load_from_env().await;
            run(build(&sdk, &consumer::FunctionEnv::from_process())?).await
        })
}
