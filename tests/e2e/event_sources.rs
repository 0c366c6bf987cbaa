//! End-to-end: the local event source mappings play the template's `BatchSize`,
//! `MaximumBatchingWindowInSeconds` and `ScalingConfig.MaximumConcurrency` as Lambda does.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use local_runtime::runtime::{LocalRuntime, RuntimeOptions};
use order_api::{EventPublisher, SnsPublisher};
use order_events::OrderPlacedEvent;

use crate::common::*;

const WAIT: Duration = Duration::from_secs(120);

/// The shared emulator's options with the template's batching window and visibility timeouts
/// (long enough for the window and a slow gateway).
fn as_deployed() -> RuntimeOptions {
    let mut options = options();
    options.provision.visibility_timeout_override = None;
    options
        .provision
        .parameter_overrides
        .remove("BatchingWindowSeconds");
    options
}

fn maximum_concurrency(runtime: &LocalRuntime, function: &str) -> u64 {
    let spec = runtime.topology().function(function).expect("the function");
    u64::from(
        spec.sqs_sources[0]
            .maximum_concurrency
            .expect("a MaximumConcurrency"),
    )
}

/// Publishes `n` orders' `OrderPlaced`, 8 at a time, as the order API does.
async fn publish_orders(runtime: &LocalRuntime, n: usize) {
    let topic = runtime.deployment().reference("OrderEventsTopic");
    let publisher = SnsPublisher::new(runtime.sdk(), topic);
    futures::stream::iter(0..n)
        .map(|_| {
            let event = OrderPlacedEvent::new(order_events::testing::sample_order(), "burst");
            let publisher = &publisher;
            async move { publisher.publish(&event).await.expect("published") }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
}

#[tokio::test]
async fn a_burst_behind_a_slow_gateway_takes_maximum_concurrency_batches_and_inventory_keeps_pace()
{
    let n = 40;
    let mut options = as_deployed();
    options.environment_overrides.insert(
        "PaymentFunction".into(),
        BTreeMap::from([("PAYMENT_LATENCY_MS".into(), "2000".into())]),
    );
    let runtime = start(options).await;
    publish_orders(&runtime, n).await;

    // Inventory works off the burst at its own pace: payment, behind its gateway, is still
    // authorizing when inventory has decided every order.
    eventually(WAIT, "inventory handled the burst", || async {
        runtime.stats("InventoryFunction").records >= n as u64
    })
    .await;
    let payment = runtime.stats("PaymentFunction");
    assert!(
        payment.records < n as u64,
        "payment had handled {} of {n} records when inventory was done",
        payment.records
    );
    eventually(WAIT, "payment authorized the burst", || async {
        runtime.stats("PaymentFunction").records >= n as u64
    })
    .await;

    // Payment took as many batches at once as its MaximumConcurrency allows, and no more; no
    // consumer went over its own.
    let payment = runtime.stats("PaymentFunction");
    assert_eq!(
        payment.peak_concurrency,
        maximum_concurrency(&runtime, "PaymentFunction"),
        "{payment:?}"
    );
    for consumer in consumers(&runtime) {
        let stats = runtime.stats(&consumer);
        assert!(
            stats.peak_concurrency <= maximum_concurrency(&runtime, &consumer),
            "{consumer}: {stats:?}"
        );
        assert!(
            stats.records <= 10 * stats.invocations,
            "{consumer}: {stats:?}"
        );
    }
    runtime.shutdown().await;
}

#[tokio::test]
async fn batches_scale_up_with_a_backlog_and_back_down_when_it_drains() {
    let n = 200;
    let mut options = as_deployed();
    options.disabled_sources.insert("InventoryFunction".into());
    let runtime = start(options).await;
    publish_orders(&runtime, n).await;
    let steady = runtime.stats("InventoryFunction").pollers;
    assert_eq!(steady, 5, "five pollers while the queue waits");

    runtime.set_source_enabled("InventoryFunction", true);
    eventually(WAIT, "inventory worked off its backlog", || async {
        runtime.stats("InventoryFunction").records >= n as u64
    })
    .await;
    let inventory = runtime.stats("InventoryFunction");
    let maximum = maximum_concurrency(&runtime, "InventoryFunction");
    assert!(
        inventory.peak_concurrency > steady && inventory.peak_concurrency <= maximum,
        "a backlog of {n} adds batches up to {maximum}: {inventory:?}"
    );
    eventually(WAIT, "inventory is back to five pollers", || async {
        runtime.stats("InventoryFunction").pollers == steady
    })
    .await;
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_lone_record_waits_out_the_batching_window() {
    let runtime = start(as_deployed()).await;
    let window = Duration::from_secs(u64::from(
        runtime
            .topology()
            .function("ShippingFunction")
            .expect("shipping")
            .sqs_sources[0]
            .batching_window_seconds,
    ));
    assert!(
        window >= Duration::from_secs(1),
        "the template gathers batches"
    );
    let mut handed = runtime.observe("InventoryFunction").expect("inventory");
    let published = Instant::now();
    publish_orders(&runtime, 1).await;
    tokio::time::timeout(WAIT, handed.recv())
        .await
        .expect("inventory was invoked")
        .expect("a record");
    let waited = published.elapsed();
    assert!(
        waited >= window,
        "invoked {waited:?} after the publish, inside the {window:?} window"
    );
    runtime.shutdown().await;
}
