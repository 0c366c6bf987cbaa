//! Shared set-up of the end-to-end tests: two moto servers for the test binary (they die with
//! the process), one for the failure scenarios and one for every other test, and one local
//! runtime per test with its own resource names.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use inventory::DynamoInventory;
use local_runtime::emulator::Emulator;
use local_runtime::runtime::{LocalRuntime, RuntimeOptions};

/// Which emulator a test runs on. The scenarios run one at a time on one of their own, so their
/// bulk loads and timeouts are nobody else's; the other tests share the other one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulators {
    Shared,
    Scenarios,
}

/// The endpoint of `which` emulator; `None` when `AWS_ENDPOINT_URL` (with any per-service
/// variants) says where AWS is.
pub fn endpoint_of(which: Emulators) -> Option<String> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        return None;
    }
    static SHARED: OnceLock<Emulator> = OnceLock::new();
    static SCENARIOS: OnceLock<Emulator> = OnceLock::new();
    let cell = match which {
        Emulators::Shared => &SHARED,
        Emulators::Scenarios => &SCENARIOS,
    };
    let emulator = cell.get_or_init(|| Emulator::start().expect("the emulator starts"));
    Some(emulator.endpoint().to_owned())
}

/// The shared emulator's endpoint.
pub fn endpoint() -> Option<String> {
    endpoint_of(Emulators::Shared)
}

/// Options for a fast local runtime on the shared emulator (see [`options_on`]).
pub fn options() -> RuntimeOptions {
    options_on(Emulators::Shared)
}

/// Options for a fast local runtime on `which` emulator: unique names, a free port, one-second
/// visibility timeouts and long polls, and `MaxReceiveCount` 3, so retries and DLQ moves take
/// seconds.
pub fn options_on(which: Emulators) -> RuntimeOptions {
    let mut options = RuntimeOptions {
        endpoint: endpoint_of(which),
        http_address: SocketAddr::from(([127, 0, 0, 1], 0)),
        long_poll_seconds: 1,
        ..RuntimeOptions::default()
    };
    let unique = uuid::Uuid::now_v7().simple().to_string();
    options.provision.prefix = format!("t{}-", &unique[unique.len() - 10..]);
    options.provision.visibility_timeout_override = Some(1);
    options.provision.parameter_overrides =
        BTreeMap::from([("MaxReceiveCount".to_owned(), MAX_RECEIVE_COUNT.to_string())]);
    options
}

pub const MAX_RECEIVE_COUNT: u32 = 3;

pub async fn start(options: RuntimeOptions) -> LocalRuntime {
    let runtime = LocalRuntime::start(options, orderflow::services::registry())
        .await
        .expect("the runtime starts");
    inventory(&runtime)
        .set_stock("SKU-KEYBOARD", 100)
        .await
        .expect("stock is set");
    inventory(&runtime)
        .set_stock("SKU-MOUSE", 100)
        .await
        .expect("stock is set");
    runtime
}

pub fn inventory(runtime: &LocalRuntime) -> DynamoInventory {
    DynamoInventory::new(
        aws_sdk_dynamodb::Client::new(runtime.sdk()),
        runtime.deployment().reference("InventoryTable"),
        runtime.deployment().reference("IdempotencyTable"),
    )
}

/// The template's consumers: the functions fed by an SQS event source (logical ids).
pub fn consumers(runtime: &LocalRuntime) -> Vec<String> {
    runtime
        .topology()
        .consumers()
        .map(|f| f.logical_id.clone())
        .collect()
}

/// The queues the consumers are fed by (logical ids).
pub fn queues(runtime: &LocalRuntime) -> Vec<String> {
    runtime
        .topology()
        .consumers()
        .flat_map(|f| f.sqs_sources.iter().map(|s| s.queue.clone()))
        .collect()
}

/// Waits until `check` is true, polling; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < timeout,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Messages in a queue (a logical id): visible plus in flight.
pub async fn depth(runtime: &LocalRuntime, queue: &str) -> u64 {
    orderflow::dlq::depth(runtime.sdk(), &runtime.deployment().reference(queue))
        .await
        .expect("queue attributes")
}

/// A valid order body: two keyboards and a mouse.
pub fn order() -> serde_json::Value {
    orderflow::demo::order_body(
        "e2e",
        &[("SKU-KEYBOARD", 2, 4_999), ("SKU-MOUSE", 1, 1_999)],
    )
}

/// Deletes the order events topic, so every publish fails.
pub async fn delete_topic(runtime: &LocalRuntime) {
    aws_sdk_sns::Client::new(runtime.sdk())
        .delete_topic()
        .topic_arn(runtime.deployment().reference("OrderEventsTopic"))
        .send()
        .await
        .expect("the topic is deleted");
}

/// Waits until every consumer's event source mapping has finished invocations covering at
/// least `n` records (the tables can show an effect a moment before its invocation ends).
pub async fn wait_for_records(runtime: &LocalRuntime, n: u64) {
    eventually(
        Duration::from_secs(60),
        "every consumer's invocations ended",
        || async {
            consumers(runtime)
                .iter()
                .all(|c| runtime.stats(c).records >= n)
        },
    )
    .await;
}
