//! The seed's promises under failure, end to end through the local runtime on the emulator:
//! a service that is down resumes where it left off; nothing is lost; no effect happens twice;
//! the order service keeps accepting orders whatever the downstream services do. Each scenario
//! ends with the audit of every table.
//!
//! Sizes: `SCENARIO_ORDERS` (default 80: each order is about ten messages and forty emulator calls) orders for the bulk scenarios.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::openapi::{post_order, send};
use aws_sdk_sns::types::MessageAttributeValue;
use futures::StreamExt;
use local_runtime::faults::FaultRates;
use local_runtime::{
    faults::Acknowledgements,
    runtime::{LocalRuntime, RuntimeOptions},
};
use order_api::{EventPublisher, SnsPublisher};
use order_events::{attribute, OrderPlacedEvent};
use orderflow::audit::{audit, AuditReport, Expectations};
use orderflow::dlq::Redrive;
use orderflow::report::count_items;

const WAIT: Duration = Duration::from_secs(300);

/// The scenarios' runtime options: on their own emulator.
fn options() -> RuntimeOptions {
    options_on(Emulators::Scenarios)
}

/// The scenarios run one at a time: each gets the whole emulator, so its numbers mean something
/// and its timeouts are not another scenario's load.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every log line of this test binary, captured by a global subscriber.
fn log() -> &'static CapturedLog {
    static LOG: std::sync::OnceLock<CapturedLog> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = CapturedLog::default();
        let writer = log.clone();
        let _already_set = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init();
        log
    })
}
const STOCK: u64 = 100_000;

fn bulk() -> usize {
    std::env::var("SCENARIO_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(80)
}

/// Starts a runtime with plenty of stock.
async fn start_stocked(options: RuntimeOptions) -> LocalRuntime {
    let runtime = start(options).await;
    for sku in ["SKU-KEYBOARD", "SKU-MOUSE"] {
        inventory(&runtime).set_stock(sku, STOCK).await.unwrap();
    }
    runtime
}

fn initial_stock() -> BTreeMap<String, u64> {
    ["SKU-KEYBOARD", "SKU-MOUSE"]
        .into_iter()
        .map(|sku| (sku.to_owned(), STOCK))
        .collect()
}

/// Places `n` orders through the API, 8 at a time, each with its own `Idempotency-Key`; a 409
/// or 503 is retried with the same key, as a well-behaved client does. Returns the order ids and
/// each request's latency (first attempt).
async fn place_orders(runtime: &LocalRuntime, n: usize) -> (BTreeSet<String>, Vec<Duration>) {
    let url = format!("{}/orders", runtime.api_url());
    let bearer = bearer(runtime).await;
    let results: Vec<(String, Duration)> = futures::stream::iter(0..n)
        .map(|i| {
            let url = url.clone();
            let bearer = bearer.clone();
            async move {
                let key = format!("scenario-{}-{i}", uuid::Uuid::now_v7());
                let headers = [
                    ("content-type", "application/json"),
                    ("idempotency-key", key.as_str()),
                    ("authorization", bearer.as_str()),
                ];
                let mut first_latency = None;
                let mut last = None;
                for _ in 0..60 {
                    let answer = send("POST", &url, &headers, order().to_string())
                        .await
                        .unwrap();
                    first_latency.get_or_insert(answer.elapsed);
                    match answer.status {
                        202 => {
                            let id = answer.json()["orderId"].as_str().unwrap().to_owned();
                            return (id, first_latency.unwrap_or_default());
                        }
                        409 | 503 => tokio::time::sleep(Duration::from_millis(500)).await,
                        other => panic!("unexpected {other}: {:?}", answer.json()),
                    }
                    last = Some((answer.status, answer.json()));
                }
                panic!("order {i} was never accepted; the last answer: {last:?}");
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let latencies = results.iter().map(|(_, l)| *l).collect();
    (results.into_iter().map(|(id, _)| id).collect(), latencies)
}

fn percentile(latencies: &[Duration], p: f64) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

/// Where the system stands: items per service table, queue and DLQ depths, mapping counters.
async fn progress(runtime: &LocalRuntime) -> (Vec<usize>, String) {
    let mut counts = Vec::new();
    let mut text = String::new();
    for (_, table) in service_tables(runtime) {
        let count = count_items(runtime.sdk(), runtime.deployment(), &table)
            .await
            .unwrap();
        text.push_str(&format!("{table}={count} "));
        counts.push(count);
    }
    for queue in &queues(runtime) {
        let dlq = dlq_of(runtime, queue);
        text.push_str(&format!(
            "{queue}={} {dlq}={} ",
            depth(runtime, queue).await,
            depth(runtime, &dlq).await
        ));
    }
    for consumer in &consumers(runtime) {
        text.push_str(&format!("{consumer}={:?} ", runtime.stats(consumer)));
    }
    (counts, text)
}

/// Waits until every accepted order has settled and the queues are drained.
async fn wait_for_all(runtime: &LocalRuntime, accepted: &BTreeSet<String>) -> AuditReport {
    wait_settled(runtime, accepted, initial_stock(), WAIT).await
}

/// The audit of every table, with the e-mails the emulator's SES accepted, must be clean.
async fn assert_audit_clean(runtime: &LocalRuntime, accepted: &BTreeSet<String>) -> AuditReport {
    let sent_email_subjects = match endpoints_of(Emulators::Scenarios) {
        Some(_) => Some(
            local_runtime::emulator::sent_email_subjects(runtime.endpoints().of("SESv2"))
                .await
                .unwrap(),
        ),
        None => None,
    };
    let expectations = Expectations {
        accepted_orders: Some(accepted.clone()),
        initial_stock: initial_stock(),
        sent_email_subjects,
    };
    let report = audit(runtime.sdk(), runtime.deployment(), &expectations)
        .await
        .unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(
        report.confirmed + report.cancelled,
        accepted.len(),
        "{report}"
    );
    for queue in &queues(runtime) {
        let dlq = dlq_of(runtime, queue);
        let dead = depth(runtime, &dlq).await;
        if dead > 0 {
            let url = runtime.deployment().reference(&dlq);
            let letters = orderflow::dlq::list(runtime.sdk(), &url, 3).await.unwrap();
            panic!(
                "{dead} messages in {dlq}, e.g. {letters:?}; {}",
                progress(runtime).await.1
            );
        }
    }
    report
}

/// Publishes `event` as the order API does.
async fn publish(runtime: &LocalRuntime, event: &OrderPlacedEvent) {
    let topic = runtime.deployment().reference("OrderEventsTopic");
    SnsPublisher::new(runtime.sdk(), topic)
        .publish(event)
        .await
        .expect("published");
}

#[tokio::test]
async fn a_consumer_down_loses_nothing_and_the_api_keeps_accepting() {
    a_consumer_down_loses_nothing_and_the_api_keeps_accepting_on("standard").await;
}

#[tokio::test]
async fn a_consumer_down_loses_nothing_and_the_api_keeps_accepting_on_fifo() {
    a_consumer_down_loses_nothing_and_the_api_keeps_accepting_on("fifo").await;
}

async fn a_consumer_down_loses_nothing_and_the_api_keeps_accepting_on(ordering: &str) {
    let _serial = ONE_AT_A_TIME.lock().await;
    log();
    let n = bulk();
    let warm_up = 20;
    let runtime = start_stocked(ordered(options(), ordering)).await;

    // All four services up: the API's usual latency on this emulator.
    let (mut accepted, usual) = place_orders(&runtime, warm_up).await;
    wait_for_all(&runtime, &accepted).await;

    // Payment goes down for the rest of the run; the API keeps accepting.
    runtime.set_source_enabled("PaymentFunction", false);
    let started = Instant::now();
    let (during_outage, latencies) = place_orders(&runtime, n).await;
    assert_eq!(
        during_outage.len(),
        n,
        "every order accepted while payment is down"
    );
    eprintln!(
        "consumer down: {n} orders accepted in {:.1} s while payment was down; API latency \
         p50 {:?} p99 {:?} (all services up: p50 {:?} p99 {:?})",
        started.elapsed().as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&usual, 0.5),
        percentile(&usual, 0.99),
    );
    accepted.extend(during_outage);
    let total = accepted.len();

    // Inventory reserves every order; the orders wait, undecided, for payment: nothing is
    // confirmed, shipped or mailed meanwhile, and payment's queue holds every order.
    eventually(WAIT, "inventory reserved every order", || async {
        if depth(&runtime, "InventoryQueue").await + depth(&runtime, "OrdersQueue").await > 0 {
            return false;
        }
        let decisions = count_items(runtime.sdk(), runtime.deployment(), "InventoryTable")
            .await
            .unwrap();
        decisions == total + CATALOGUE.len()
    })
    .await;
    for table in ["PaymentTable", "ShippingTable"] {
        let count = count_items(runtime.sdk(), runtime.deployment(), table)
            .await
            .unwrap();
        assert_eq!(count, warm_up, "{table} while payment is down");
    }
    assert_eq!(depth(&runtime, "PaymentQueue").await, n as u64);

    // Payment comes back and catches up.
    let back = Instant::now();
    runtime.set_source_enabled("PaymentFunction", true);
    wait_for_all(&runtime, &accepted).await;
    let report = assert_audit_clean(&runtime, &accepted).await;
    assert_eq!(report.confirmed, total, "{report}");
    eprintln!(
        "consumer down: payment caught up with {n} held orders in {:.1} s",
        back.elapsed().as_secs_f64()
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn duplicate_publishes_and_deliveries_have_one_effect() {
    duplicate_publishes_and_deliveries_have_one_effect_on("standard").await;
}

#[tokio::test]
async fn duplicate_publishes_and_deliveries_have_one_effect_on_fifo() {
    duplicate_publishes_and_deliveries_have_one_effect_on("fifo").await;
}

async fn duplicate_publishes_and_deliveries_have_one_effect_on(ordering: &str) {
    let _serial = ONE_AT_A_TIME.lock().await;
    log();
    let n = bulk() / 2;
    let mut options = ordered(options(), ordering);
    // On standard queues: several batches at once and a payment slower than the visibility
    // timeout, so a message is delivered again while its first attempt is still running. A FIFO
    // queue hands out none of a group in flight, and refuses to delete a message whose timeout
    // ran out: there payment answers well within it.
    let latency_ms = match ordering {
        "fifo" => 1500,
        _ => u64::from(VISIBILITY_TIMEOUT) * 1000 + 1500,
    };
    options.environment_overrides.insert(
        "PaymentFunction".into(),
        BTreeMap::from([("PAYMENT_LATENCY_MS".into(), latency_ms.to_string())]),
    );
    options
        .provision
        .parameter_overrides
        .insert("MaxReceiveCount".into(), "10".into());
    // Inventory is off while the events are published, then loses its answer to the first
    // delivery of every message: each comes twice more from SQS on top of the duplicate
    // publishes.
    options.disabled_sources.insert("InventoryFunction".into());
    let runtime = start_stocked(options).await;

    let events: Vec<OrderPlacedEvent> = (0..n)
        .map(|_| OrderPlacedEvent::new(order_events::testing::sample_order(), "duplicates"))
        .collect();
    let mut publishes = 0;
    for (i, event) in events.iter().enumerate() {
        for _ in 0..(2 + i % 2) {
            publish(&runtime, event).await;
            publishes += 1;
        }
    }
    runtime.set_acknowledgements("InventoryFunction", Acknowledgements::FirstLost);
    runtime.set_source_enabled("InventoryFunction", true);

    let accepted: BTreeSet<String> = events.iter().map(|e| e.order_id().to_string()).collect();
    wait_for_all(&runtime, &accepted).await;
    let report = assert_audit_clean(&runtime, &accepted).await;
    assert_eq!(report.confirmed, n, "{report}");
    // On FIFO, SNS drops a second publish of an event id within five minutes: each event
    // reaches the queue once (and comes twice from SQS).
    let distinct = if ordering == "fifo" { n } else { publishes };
    eventually(WAIT, "inventory got every message twice", || async {
        runtime.stats("InventoryFunction").records >= 2 * distinct as u64
    })
    .await;
    let gateway = runtime.handle::<payment::SimulatedGateway>().unwrap();
    assert_eq!(gateway.captured(), n, "one capture per order");
    assert_eq!(gateway.holds().len(), n, "one authorization per order");
    let deliveries: u64 = consumers(&runtime)
        .iter()
        .map(|c| runtime.stats(c).records)
        .sum();
    eprintln!(
        "duplicates: {n} orders, {publishes} publishes, {deliveries} deliveries, {} gateway calls, {} captures",
        gateway.calls(),
        gateway.captured()
    );
    // On standard queues a message whose handling outlasts its visibility timeout is handed
    // out again meanwhile; a FIFO queue holds its message group until the first is done.
    if ordering == "standard" {
        assert!(
            gateway.calls() > n as u64,
            "payment saw concurrent duplicates"
        );
    }
    runtime.shutdown().await;
}

/// The payment gateway is another company's service: it does not die with our process. Its
/// stand-in is shared by the runtimes before and after the crash.
fn lasting_gateway() -> Arc<payment::SimulatedGateway> {
    static GATEWAY: std::sync::OnceLock<Arc<payment::SimulatedGateway>> =
        std::sync::OnceLock::new();
    GATEWAY.get_or_init(Default::default).clone()
}

fn registry_with_a_lasting_gateway() -> local_runtime::functions::Registry {
    orderflow::services::registry().register(payment::SPEC, |sdk, env| {
        let payment = payment::Payment::from_env(sdk, env)?.with_gateway(lasting_gateway());
        let payment = lambda_kit::consumer::WithDeadLetters::from_env(payment, sdk, env);
        Ok(local_runtime::functions::Built::queue_with_handle(
            payment,
            |p| p.handler().gateway().clone(),
        ))
    })
}

#[tokio::test]
async fn a_crash_after_the_effect_redelivers_without_a_second_effect() {
    let _serial = ONE_AT_A_TIME.lock().await;
    log();
    let n = bulk() / 4;
    let mut options = options();
    // Deliveries never acknowledged must not reach the DLQ meanwhile.
    options
        .provision
        .parameter_overrides
        .insert("MaxReceiveCount".into(), "50".into());
    let resume_options = options.clone();
    let runtime = LocalRuntime::start(options, registry_with_a_lasting_gateway())
        .await
        .unwrap();
    stock_catalogue(&runtime).await;
    for sku in ["SKU-KEYBOARD", "SKU-MOUSE"] {
        inventory(&runtime).set_stock(sku, STOCK).await.unwrap();
    }
    // Every consumer applies its effects and "crashes" before acknowledging each message's
    // first delivery: every message comes back. (Not every delivery: a consumer that announces
    // its outcome announces it again on each redelivery, which only `MaxReceiveCount` bounds.)
    for consumer in &consumers(&runtime) {
        runtime.set_acknowledgements(consumer, Acknowledgements::FirstLost);
    }
    let (accepted, _) = place_orders(&runtime, n).await;
    eventually(WAIT, "every consumer saw each message twice", || async {
        consumers(&runtime).iter().all(|c| {
            let per_order = records_per_order(&runtime, c, CONFIRMED_ORDER_EVENTS);
            runtime.stats(c).records >= 2 * n as u64 * per_order
        })
    })
    .await;
    // The process dies, messages in flight. A new one starts on the same resources and resumes.
    runtime.shutdown().await;
    let resumed = LocalRuntime::start(resume_options, registry_with_a_lasting_gateway())
        .await
        .unwrap();
    wait_for_all(&resumed, &accepted).await;
    let report = assert_audit_clean(&resumed, &accepted).await;
    assert_eq!(report.confirmed, n, "{report}");
    let gateway = resumed.handle::<payment::SimulatedGateway>().unwrap();
    eprintln!(
        "crash: {n} orders; after the restart {} gateway calls, {} new captures",
        gateway.calls(),
        gateway.captured()
    );
    resumed.shutdown().await;
}

#[tokio::test]
async fn transient_failures_are_absorbed_by_retries() {
    let _serial = ONE_AT_A_TIME.lock().await;
    log();
    let n = bulk() / 2;
    let mut options = options();
    options.faults = Some(FaultRates {
        before: 0.05,
        after: 0.05,
    });
    // The SDK's own retries absorb the faults; short backoffs keep every invocation well inside
    // its timeout (a timed-out invocation is the window where an e-mail can go out twice).
    options.retry = Some(
        aws_config::retry::RetryConfig::standard()
            .with_max_attempts(6)
            .with_initial_backoff(Duration::from_millis(20))
            .with_max_backoff(Duration::from_millis(500)),
    );
    options.environment_overrides.insert(
        "PaymentFunction".into(),
        BTreeMap::from([("PAYMENT_FAILURE_RATE".into(), "0.3".into())]),
    );
    // A claim whose answer was lost holds its key until the invocation deadline (10 s); with
    // short visibility timeouts that takes several receives.
    options
        .provision
        .parameter_overrides
        .insert("MaxReceiveCount".into(), "30".into());
    let runtime = start_stocked(options).await;

    let (accepted, _) = place_orders(&runtime, n).await;
    wait_for_all(&runtime, &accepted).await;
    let report = assert_audit_clean(&runtime, &accepted).await;
    assert_eq!(report.confirmed, n, "{report}");

    let counts = runtime.fault_proxy().unwrap().counts();
    let (before, after) = (
        counts
            .failed_before
            .load(std::sync::atomic::Ordering::Relaxed),
        counts
            .failed_after
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    let gateway = runtime.handle::<payment::SimulatedGateway>().unwrap();
    eprintln!(
        "transient failures: {n} orders; {before} calls failed before reaching AWS, {after} after; \
         {} gateway calls for {} captures",
        gateway.calls(),
        gateway.captured()
    );
    assert!(before > 0 && after > 0, "faults were injected");
    assert!(gateway.calls() > n as u64, "the gateway failed some calls");
    assert_eq!(gateway.captured(), n);
    runtime.shutdown().await;
}

/// Log lines written while a test runs on this thread.
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn text_since(&self, start: usize) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()[start..]).into_owned()
    }
}

#[tokio::test]
async fn poison_messages_end_in_the_dlqs_and_the_log_says_why() {
    poison_messages_end_in_the_dlqs_and_the_log_says_why_on("standard").await;
}

#[tokio::test]
async fn poison_messages_end_in_the_dlqs_and_the_log_says_why_on_fifo() {
    poison_messages_end_in_the_dlqs_and_the_log_says_why_on("fifo").await;
}

async fn poison_messages_end_in_the_dlqs_and_the_log_says_why_on(ordering: &str) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let log_start = log().len();
    let runtime = start_stocked(ordered(options(), ordering)).await;
    // A good order, completed first.
    let good = OrderPlacedEvent::new(order_events::testing::sample_order(), "poison");
    publish(&runtime, &good).await;
    eventually(WAIT, "the good order settled", || async {
        orderflow::report::order_report(
            runtime.sdk(),
            runtime.deployment(),
            &good.order_id().to_string(),
        )
        .await
        .unwrap()
        .is_settled()
    })
    .await;

    // Three poison messages, each to every queue that reads OrderPlaced, among good ones.
    let mut conflicting = good.clone();
    conflicting.id = uuid::Uuid::now_v7();
    conflicting.data.total_minor += 1; // another order claiming the same id
    let mut future_version = serde_json::to_value(OrderPlacedEvent::new(
        order_events::testing::sample_order(),
        "poison",
    ))
    .unwrap();
    // A major no reader has yet (OrderPlaced has 1 and 2).
    future_version["eventversion"] = "3".into();
    let sns = aws_sdk_sns::Client::new(runtime.sdk());
    let event_type = MessageAttributeValue::builder()
        .data_type("String")
        .string_value("OrderPlaced")
        .build()
        .unwrap();
    let fifo = ordering == "fifo";
    for body in [
        "{\"this is\": not json".to_owned(),
        future_version.to_string(),
    ] {
        sns.publish()
            .topic_arn(runtime.deployment().reference("OrderEventsTopic"))
            .message(body)
            .message_attributes(attribute::EVENT_TYPE, event_type.clone())
            .set_message_group_id(fifo.then(|| "poison".to_owned()))
            .set_message_deduplication_id(fifo.then(|| uuid::Uuid::now_v7().to_string()))
            .send()
            .await
            .unwrap();
    }
    publish(&runtime, &conflicting).await;
    let others: Vec<OrderPlacedEvent> = (0..5)
        .map(|_| OrderPlacedEvent::new(order_events::testing::sample_order(), "neighbours"))
        .collect();
    for event in &others {
        publish(&runtime, event).await;
    }

    let readers: Vec<String> = consumers(&runtime)
        .into_iter()
        .filter(|c| records_per_order(&runtime, c, &["OrderPlaced"]) == 1)
        .collect();
    assert_eq!(
        readers.len(),
        3,
        "orders, inventory and payment read OrderPlaced"
    );
    // Each reader's DLQ (logical ids), with the reader.
    let dead_letter_queues: Vec<(&String, String)> = readers
        .iter()
        .map(|consumer| {
            let queue = runtime
                .topology()
                .consumers()
                .find(|f| &f.logical_id == consumer)
                .map(|f| f.sqs_sources[0].queue.clone())
                .unwrap();
            (consumer, dlq_of(&runtime, &queue))
        })
        .collect();
    for (_, dlq) in &dead_letter_queues {
        eventually(WAIT, &format!("three poison messages in {dlq}"), || async {
            depth(&runtime, dlq).await == 3
        })
        .await;
    }
    let mut accepted: BTreeSet<String> = others.iter().map(|e| e.order_id().to_string()).collect();
    accepted.insert(good.order_id().to_string());
    eventually(WAIT, "the good orders settled", || async {
        let expectations = Expectations {
            accepted_orders: Some(accepted.clone()),
            ..Expectations::default()
        };
        let report = audit(runtime.sdk(), runtime.deployment(), &expectations).await;
        report.is_ok_and(|r| r.is_clean())
    })
    .await;
    let report = audit(
        runtime.sdk(),
        runtime.deployment(),
        &Expectations {
            accepted_orders: Some(accepted),
            ..Expectations::default()
        },
    )
    .await
    .unwrap();
    assert!(report.is_clean(), "{report}");

    // Each failed permanently: sent to its DLQ at once (one failure each, no retries), with
    // the reason on the message and in the log.
    let log = log().text_since(log_start);
    let reasons = [
        "unreadable message: message body is not JSON",
        "unsupported OrderPlaced schema version \"3\"",
        "was already used with a different payload",
    ];
    for reason in reasons {
        let lines = log
            .lines()
            .filter(|l| l.contains(reason) && l.contains("sent to the dead-letter queue"))
            .count();
        assert_eq!(lines, readers.len(), "log lines saying {reason:?}:\n{log}");
    }
    for (consumer, dlq) in &dead_letter_queues {
        let url = runtime.deployment().reference(dlq);
        let letters = orderflow::dlq::list(runtime.sdk(), &url, 10).await.unwrap();
        for reason in reasons {
            assert!(
                letters
                    .iter()
                    .any(|l| l.reason.as_deref().is_some_and(|r| r.contains(reason))),
                "{consumer}: no dead letter says {reason:?}: {letters:?}"
            );
        }
    }
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_dead_letter_is_redriven_once_its_cause_is_fixed() {
    let _serial = ONE_AT_A_TIME.lock().await;
    log();
    let runtime = start_stocked(options()).await;
    let gateway = runtime.handle::<payment::SimulatedGateway>().unwrap();
    gateway.set_failure_rate(1.0);
    let (accepted, _) = place_orders(&runtime, 1).await;
    let order_id = accepted.iter().next().unwrap().clone();

    eventually(WAIT, "the payment is in the payment DLQ", || async {
        depth(&runtime, "PaymentDeadLetterQueue").await == 1
    })
    .await;
    let dlq_url = runtime.deployment().reference("PaymentDeadLetterQueue");
    let listed = orderflow::dlq::list(runtime.sdk(), &dlq_url, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].order_id.as_deref(), Some(order_id.as_str()));
    assert!(listed[0].receive_count >= 1);
    // A gateway failure is retryable: the redrive policy moved it, after MaxReceiveCount
    // receives, so it carries no permanent failure's reason.
    assert_eq!(listed[0].reason, None);
    assert_eq!(
        depth(&runtime, "PaymentDeadLetterQueue").await,
        1,
        "listing consumed nothing"
    );

    // The gateway recovers; the operator redrives.
    gateway.set_failure_rate(0.0);
    let outcome = orderflow::dlq::redrive(
        runtime.sdk(),
        runtime.deployment(),
        "PaymentQueue",
        "PaymentDeadLetterQueue",
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, Redrive::Moved(1) | Redrive::MoveTaskStarted(_)),
        "{outcome:?}"
    );
    wait_for_all(&runtime, &accepted).await;
    let report = assert_audit_clean(&runtime, &accepted).await;
    assert_eq!(report.confirmed, 1, "{report}");
    assert_eq!(gateway.captured(), 1);

    // Purging needs the explicit confirmation.
    let unconfirmed = orderflow::dlq::purge(runtime.sdk(), &dlq_url, false).await;
    assert!(unconfirmed.is_err());
    orderflow::dlq::purge(runtime.sdk(), &dlq_url, true)
        .await
        .unwrap();
    runtime.shutdown().await;
}

#[tokio::test]
async fn payment_declines_a_share_of_orders_and_each_ends_consistent() {
    let _serial = ONE_AT_A_TIME.lock().await;
    log();
    let n = (bulk() / 4).max(40);
    let mut options = options();
    options.environment_overrides.insert(
        "PaymentFunction".into(),
        BTreeMap::from([("PAYMENT_DECLINE_RATE".into(), "0.3".into())]),
    );
    let runtime = start_stocked(options).await;
    let (accepted, _) = place_orders(&runtime, n).await;
    wait_for_all(&runtime, &accepted).await;
    let report = assert_audit_clean(&runtime, &accepted).await;
    eprintln!(
        "declines: {n} orders, {} confirmed, {} cancelled (payment declined)",
        report.confirmed, report.cancelled
    );
    assert!(report.cancelled > 0 && report.confirmed > 0, "{report}");
    let gateway = runtime.handle::<payment::SimulatedGateway>().unwrap();
    assert_eq!(
        gateway.captured(),
        report.confirmed,
        "declined orders are never charged"
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn stock_running_out_mid_burst_oversells_nothing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    log();
    // Each order wants two keyboards; 20 are left, so 10 orders can have them.
    let (n, keyboards) = (40, 20);
    let runtime = start_stocked(options()).await;
    inventory(&runtime)
        .set_stock("SKU-KEYBOARD", keyboards)
        .await
        .unwrap();
    let (accepted, _) = place_orders(&runtime, n).await;
    let mut stock = initial_stock();
    stock.insert("SKU-KEYBOARD".into(), keyboards);
    let report = wait_settled(&runtime, &accepted, stock, WAIT).await;
    eprintln!(
        "stock out: {n} orders for {keyboards} keyboards: {} confirmed, {} cancelled",
        report.confirmed, report.cancelled
    );
    assert_eq!(report.confirmed, (keyboards / 2) as usize, "{report}");
    assert_eq!(report.cancelled, n - (keyboards / 2) as usize, "{report}");
    assert_eq!(
        inventory(&runtime).stock("SKU-KEYBOARD").await.unwrap(),
        Some(0)
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_customer_cancelling_while_the_order_is_confirmed_ends_consistent() {
    let _serial = ONE_AT_A_TIME.lock().await;
    log();
    let n = 40;
    let runtime = start_stocked(options()).await;
    let api = runtime.api_url();
    let bearer = bearer(&runtime).await;
    // Each order is cancelled a little after its 202, from at once to later than its
    // confirmation usually takes, so the request meets every stage of the saga.
    let outcomes: Vec<(String, u16)> = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let bearer = bearer.clone();
            async move {
                let answer = post_order(&api, &bearer, &order()).await.unwrap();
                assert_eq!(answer.status, 202);
                let order_id = answer.json()["orderId"].as_str().unwrap().to_owned();
                tokio::time::sleep(Duration::from_millis(50 * (i % 20) as u64)).await;
                let url = format!("{api}/orders/{order_id}/cancel");
                let key = format!("cancel-{order_id}");
                let cancel = send(
                    "POST",
                    &url,
                    &[
                        ("idempotency-key", key.as_str()),
                        ("authorization", &bearer),
                    ],
                    Vec::new(),
                )
                .await
                .unwrap();
                (order_id, cancel.status)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let accepted: BTreeSet<String> = outcomes.iter().map(|(id, _)| id.clone()).collect();
    let report = wait_for_all(&runtime, &accepted).await;
    let mut by_answer: BTreeMap<(u16, String), usize> = BTreeMap::new();
    for (order_id, status) in &outcomes {
        let url = format!("{api}/orders/{order_id}");
        let view = send("GET", &url, &[("authorization", &bearer)], Vec::new())
            .await
            .unwrap()
            .json();
        let final_status = view["status"].as_str().unwrap_or_default().to_owned();
        match status {
            // Refused: it had shipped, and stays so.
            409 => assert_eq!(final_status, "SHIPPED", "{order_id}"),
            // Requested: cancelled, unless it shipped before the order service read the request.
            202 => assert!(
                final_status == "CANCELLED" || final_status == "SHIPPED",
                "{order_id}: {final_status}"
            ),
            other => panic!("{order_id}: cancel answered {other}"),
        }
        *by_answer.entry((*status, final_status)).or_default() += 1;
    }
    eprintln!("cancel races: {n} orders; (answer, final status): {by_answer:?}; {report}");
    assert!(report.cancelled > 0, "{report}");
    assert_audit_clean(&runtime, &accepted).await;
    runtime.shutdown().await;
}
