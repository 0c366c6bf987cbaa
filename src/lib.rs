//! The local runtime and operator CLI of the order fan-out.
//!
//! [`runtime::LocalRuntime`] reads `template.yaml`, creates the same resources on an AWS
//! emulator ([`emulator`] runs moto unless `AWS_ENDPOINT_URL` points elsewhere), serves the HTTP
//! API on localhost and plays Lambda's SQS event source mapping for every consumer, running the
//! functions' own handler code in this process.

pub mod client;
pub mod demo;
pub mod emulator;
pub mod functions;
pub mod provision;
pub mod report;
pub mod runtime;
pub mod template;
