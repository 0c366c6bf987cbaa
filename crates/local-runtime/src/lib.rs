//! The local runtime: a SAM template's system on an AWS emulator, its functions run in this
//! process with the same handler code as on Lambda.
//!
//! One module per concern:
//! - [`template`]: reading `template.yaml` (conditions evaluated from the parameters) and
//!   resolving intrinsic functions against what was provisioned.
//! - [`provision`]: creating the template's resources on the endpoint with the AWS SDK.
//! - [`functions`]: the registry that builds each function (by its cargo binary) in-process.
//! - [`event_source`]: Lambda's SQS event source mapping.
//! - [`gateway`]: API Gateway's HTTP API on localhost, routing by the template's routes;
//!   [`jwt`] its JWT authorizer.
//! - [`customers`]: the customers' Cognito user pool: created, found, signed in to for tokens.
//! - [`emulator`]: the moto server processes; [`sdk`] the SDK configuration that reaches them.
//! - [`faults`]: fault injection (a proxy that fails AWS calls; invocation answers that get lost).
//! - [`runtime`]: [`runtime::LocalRuntime`], which starts and stops all of it.
//! - [`http`]: the one HTTP server loop the gateway and the fault proxy share; [`client`] a small
//!   HTTP client for the local API.

pub mod client;
pub mod cors;
pub mod customers;
pub mod emulator;
pub mod event_source;
pub mod faults;
pub mod functions;
pub mod gateway;
pub mod http;
pub mod jwt;
pub mod metrics;
pub mod progress;
pub mod provision;
pub mod runtime;
pub mod sdk;
pub mod template;

pub use runtime::{LocalRuntime, RuntimeError, RuntimeOptions};
