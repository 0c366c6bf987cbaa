//! Shared set-up of the end-to-end tests: two moto servers for the test binary (they die with
//! the process), one for the failure scenarios and one for every other test, and one local
//! runtime per test with its own resource names.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use inventory::DynamoInventory;
use lambda_kit::spec::ServiceSpec;
use local_runtime::emulator::Emulator;
use local_runtime::runtime::{LocalRuntime, RuntimeOptions};
use local_runtime::sdk::Endpoints;
use local_runtime::template::FunctionSpec;

/// Which emulator a test runs on. The scenarios run one at a time on one of their own, so their
/// bulk loads and timeouts are nobody else's; the other tests share the other one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulators {
    Shared,
    Scenarios,
}

/// The endpoints of `which` emulator; `None` when `AWS_ENDPOINT_URL` (with any per-service
/// variants) says where AWS is.
pub fn endpoints_of(which: Emulators) -> Option<Endpoints> {
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
    Some(emulator.endpoints())
}

/// The shared emulator's endpoints.
pub fn endpoints() -> Option<Endpoints> {
    endpoints_of(Emulators::Shared)
}

/// Options for a fast local runtime on the shared emulator (see [`options_on`]).
pub fn options() -> RuntimeOptions {
    options_on(Emulators::Shared)
}

/// Options for a fast local runtime on `which` emulator: unique names, a free port, short
/// visibility timeouts ([`VISIBILITY_TIMEOUT`]), one-second long polls, no batching window, and
/// `MaxReceiveCount` 3, so retries and DLQ moves take seconds.
pub fn options_on(which: Emulators) -> RuntimeOptions {
    let mut options = RuntimeOptions {
        endpoints: endpoints_of(which),
        http_address: SocketAddr::from(([127, 0, 0, 1], 0)),
        long_poll_seconds: 1,
        ..RuntimeOptions::default()
    };
    let unique = uuid::Uuid::now_v7().simple().to_string();
    options.provision.prefix = format!("t{}-", &unique[unique.len() - 10..]);
    options.provision.visibility_timeout_override = Some(VISIBILITY_TIMEOUT);
    // Batches are invoked as soon as they have a record, for speed (the mappings' own tests
    // play the template's window).
    options.provision.parameter_overrides = BTreeMap::from([
        ("MaxReceiveCount".to_owned(), MAX_RECEIVE_COUNT.to_string()),
        ("BatchingWindowSeconds".to_owned(), "0".to_owned()),
    ]);
    options
}

pub const MAX_RECEIVE_COUNT: u32 = 3;

/// `options` with the template's `Ordering` parameter set to `ordering` (`standard`, `fifo`).
pub fn ordered(mut options: RuntimeOptions, ordering: &str) -> RuntimeOptions {
    options
        .provision
        .parameter_overrides
        .insert("Ordering".to_owned(), ordering.to_owned());
    options
}

/// Every queue's visibility timeout in the tests (seconds): short, so that retries and DLQ
/// moves take seconds, and longer than a batch takes on a loaded machine with every mapping
/// running its five batches at once. Shorter, a record still being handled is handed out again
/// and counts a receive towards the DLQ; and SQS refuses to delete a FIFO message whose
/// visibility timeout ran out (its receipt handle expired).
pub const VISIBILITY_TIMEOUT: u32 = 5;

pub async fn start(options: RuntimeOptions) -> LocalRuntime {
    let runtime = LocalRuntime::start(options, orderflow::services::registry())
        .await
        .expect("the runtime starts");
    stock_catalogue(&runtime).await;
    runtime
}

/// Puts [`CATALOGUE`] (prices and stock) on the runtime's inventory table.
pub async fn stock_catalogue(runtime: &LocalRuntime) {
    for (sku, price, stock) in CATALOGUE {
        let inventory = inventory(runtime);
        inventory.set_stock(sku, stock).await.expect("stock is set");
        inventory
            .set_price(sku, price, "EUR")
            .await
            .expect("the price is set");
    }
}

/// The skus the tests order: catalogue price (what [`order`] displays) and stock. The webcam
/// is sold out.
pub const CATALOGUE: [(&str, i64, u64); 3] = [
    ("SKU-KEYBOARD", 4_999, 100),
    ("SKU-MOUSE", 1_999, 100),
    ("SKU-WEBCAM", 5_900, 0),
];

pub fn inventory(runtime: &LocalRuntime) -> DynamoInventory {
    DynamoInventory::new(
        aws_sdk_dynamodb::Client::new(runtime.sdk()),
        runtime
            .deployment()
            .reference(&table_of(runtime, &inventory::SPEC)),
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

/// The table `spec`'s service owns (a logical id: what its function's table variable refers to).
pub fn table_of(runtime: &LocalRuntime, spec: &ServiceSpec) -> String {
    let function = function_of(runtime, spec);
    let variable = spec.table_variable.expect("the service owns a table");
    function.environment[variable]["Ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{variable} of {} is no Ref", spec.name))
        .to_owned()
}

/// The table of every service that owns one (logical ids), with the service.
pub fn service_tables(runtime: &LocalRuntime) -> Vec<(&'static str, String)> {
    orderflow::services::registry()
        .specs()
        .filter(|spec| spec.table_variable.is_some())
        .map(|spec| (spec.name, table_of(runtime, spec)))
        .collect()
}

/// The queue feeding `spec`'s consumer (a logical id).
pub fn queue_of(runtime: &LocalRuntime, spec: &ServiceSpec) -> String {
    function_of(runtime, spec)
        .sqs_sources
        .first()
        .map(|s| s.queue.clone())
        .unwrap_or_else(|| panic!("{} has no queue in the template", spec.name))
}

/// The template's function of `spec`'s service.
fn function_of<'a>(runtime: &'a LocalRuntime, spec: &ServiceSpec) -> &'a FunctionSpec {
    runtime
        .topology()
        .functions
        .iter()
        .find(|f| f.binary == spec.name)
        .unwrap_or_else(|| panic!("{} is not in the template", spec.name))
}

/// The dead-letter queue of `queue` (logical ids).
pub fn dlq_of(runtime: &LocalRuntime, queue: &str) -> String {
    runtime
        .topology()
        .dead_letter_queue_of(queue)
        .unwrap_or_else(|| panic!("{queue} has no dead-letter queue"))
        .to_owned()
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

/// A valid order body: two keyboards and a mouse. It names no customer: the token does.
pub fn order() -> serde_json::Value {
    orderflow::shop::order_body(&[
        ("SKU-KEYBOARD", 2, price_of("SKU-KEYBOARD")),
        ("SKU-MOUSE", 1, price_of("SKU-MOUSE")),
    ])
}

/// The catalogue price of `sku` in [`CATALOGUE`].
pub fn price_of(sku: &str) -> i64 {
    CATALOGUE
        .iter()
        .find(|(listed, _, _)| *listed == sku)
        .map(|(_, price, _)| *price)
        .expect("a catalogue sku")
}

/// The customer the tests order as.
pub const CUSTOMER: &str = "e2e@example.com";

/// `Bearer <ID token>` of `customer`, signed in to the runtime's user pool.
pub async fn bearer_of(runtime: &LocalRuntime, customer: &str) -> String {
    runtime
        .bearer(customer)
        .await
        .expect("the customer signs in")
        .expect("the API takes tokens")
}

/// `Bearer <ID token>` of [`CUSTOMER`].
pub async fn bearer(runtime: &LocalRuntime) -> String {
    bearer_of(runtime, CUSTOMER).await
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

pub use order_events::CONFIRMED_ORDER_EVENTS;

/// The event types `consumer`'s queue subscribes to (its filter policy in the template).
pub fn subscribed_types(runtime: &LocalRuntime, consumer: &str) -> Vec<String> {
    let topology = runtime.topology();
    topology
        .function(consumer)
        .and_then(|f| f.sqs_sources.first())
        .map(|source| topology.event_types_of(&source.queue))
        .unwrap_or_default()
}

/// How many of `events` reach `consumer`: the records it gets for one order that has them.
pub fn records_per_order(runtime: &LocalRuntime, consumer: &str, events: &[&str]) -> u64 {
    let subscribed = subscribed_types(runtime, consumer);
    events
        .iter()
        .filter(|e| subscribed.iter().any(|s| s == *e))
        .count() as u64
}

/// Waits until every consumer's event source mapping has finished invocations covering the
/// records of `orders` confirmed orders (the tables can show an effect a moment before its
/// invocation ends).
pub async fn wait_for_records(runtime: &LocalRuntime, orders: u64) {
    eventually(
        Duration::from_secs(60),
        "every consumer's invocations ended",
        || async {
            consumers(runtime).iter().all(|c| {
                runtime.stats(c).records
                    >= orders * records_per_order(runtime, c, CONFIRMED_ORDER_EVENTS)
            })
        },
    )
    .await;
}

/// Waits until every queue is empty and the saga's audit of `accepted` is clean: every order
/// decided and every service done with it. Panics with the last audit after `timeout`.
pub async fn wait_settled(
    runtime: &LocalRuntime,
    accepted: &std::collections::BTreeSet<String>,
    initial_stock: BTreeMap<String, u64>,
    timeout: Duration,
) -> orderflow::audit::AuditReport {
    let expectations = orderflow::audit::Expectations {
        accepted_orders: Some(accepted.clone()),
        initial_stock,
        sent_email_subjects: None,
    };
    let started = Instant::now();
    loop {
        // The queue depths are cheap to read; the audit scans every table, which on one
        // emulator process slows the consumers down: it runs once the queues are empty.
        let mut queued = 0;
        for queue in &queues(runtime) {
            queued += depth(runtime, queue).await;
        }
        let report = if queued == 0 {
            let report =
                orderflow::audit::audit(runtime.sdk(), runtime.deployment(), &expectations)
                    .await
                    .expect("the audit reads the tables");
            if report.is_clean() {
                return report;
            }
            report.to_string()
        } else {
            String::from("(the audit waits for the queues)")
        };
        assert!(
            started.elapsed() < timeout,
            "not settled after {timeout:?}: {queued} messages queued; {report}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
