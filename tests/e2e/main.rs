//! The end-to-end tests, one binary: the order API, SNS, the queues and the consumers through
//! the local runtime against the emulator, with the real SDK clients. One moto server serves
//! them all (`common`). Every HTTP answer is checked against `events/openapi.yaml` (`openapi`).

mod cli;
mod client_api;
mod common;
mod event_sources;
mod evolution;
mod fanout;
mod idempotency;
mod idempotent_api;
mod live_view;
mod openapi;
mod ordering;
mod saga;
mod scenarios;
