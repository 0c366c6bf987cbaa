//! Section 8 - Standard against FIFO ordering (the template's `Ordering`): the same orders on
//! each, a fresh system per setting. First a burst of orders alone: throughput, POST latency,
//! time to the order service's `OrderConfirmed`. Then a poisoned order (the payment gateway fails
//! every authorization of it, a poison that never heals) which its customer cancels at once,
//! followed by the same burst: what the poison costs its own order (how long payment takes to
//! hear of the cancellation, which on FIFO waits in the order's message group behind the failing
//! `OrderPlaced` until that reaches the DLQ) and what it costs the other orders.

use std::time::{Duration, Instant};

use futures::StreamExt;
use payment::PaymentStatus;

use crate::curve::{place, Confirmations, Sent};
use crate::report::Table;
use crate::stats::{ms, Summary};
use crate::steps::Steps;
use crate::system::{call, BenchResult, Deploy, System};

/// Receives before a message moves to its DLQ, and the visibility timeout: a poison reaches the
/// DLQ in about their product.
pub const MAX_RECEIVE_COUNT: u32 = 3;
pub const VISIBILITY_TIMEOUT: u32 = 5;
/// Orders in flight at once.
pub const CONCURRENCY: usize = 8;
const PATIENCE: Duration = Duration::from_secs(180);

/// The settings compared: (label, template parameters).
const SETTINGS: [(&str, &[(&str, &str)]); 3] = [
    ("standard, 1 s batching window (default)", &[]),
    (
        "standard, no batching window",
        &[("BatchingWindowSeconds", "0")],
    ),
    ("fifo (no batching window)", &[("Ordering", "fifo")]),
];

pub fn steps() -> u64 {
    SETTINGS.len() as u64
}

/// A burst's numbers.
#[derive(Debug, Clone, Default)]
pub struct Burst {
    pub orders: usize,
    pub orders_per_second: f64,
    pub post: Summary,
    pub confirmed: Summary,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub label: &'static str,
    pub alone: Burst,
    pub poisoned: Burst,
    /// From the poisoned order's cancellation to payment's record of it.
    pub poisoned_cancellation_heard: Duration,
}

pub struct Results {
    pub rows: Vec<Row>,
}

pub async fn run(orders: usize, steps: &Steps) -> BenchResult<Results> {
    let mut rows = Vec::new();
    for (label, parameters) in SETTINGS {
        steps.start("8. ordering", label);
        let mut deploy = Deploy {
            visibility_timeout: VISIBILITY_TIMEOUT,
            ..Deploy::default()
        }
        .with("MaxReceiveCount", MAX_RECEIVE_COUNT);
        for (name, value) in parameters {
            deploy = deploy.with(name, value);
        }
        let system = System::start_with(deploy).await?;
        let row = compare(&system, label, orders).await;
        system.runtime.shutdown().await;
        let row = row?;
        println!(
            "  {label}: {:.1} orders/s, confirmed p99 {} alone / {} beside the poison; the poisoned order's cancellation heard by payment after {}",
            row.alone.orders_per_second,
            ms(row.alone.confirmed.p99),
            ms(row.poisoned.confirmed.p99),
            ms(row.poisoned_cancellation_heard)
        );
        rows.push(row);
    }
    Ok(Results { rows })
}

async fn compare(system: &System, label: &'static str, orders: usize) -> BenchResult<Row> {
    let confirmations = Confirmations::watch(system)?;
    let alone = burst(system, &confirmations, orders).await?;

    // The poisoned order: placed while payment is off, so that its first authorization already
    // meets the failing gateway; cancelled by its customer at once.
    let gateway = system.gateway()?;
    system.set_enabled(&["PaymentFunction"], false).await;
    let (status, answer) = call(
        system.fanout.as_ref(),
        order_api::PLACE_ORDER,
        "/orders",
        &[],
        system.order.to_string().into_bytes(),
    )
    .await;
    let poisoned = answer["orderId"]
        .as_str()
        .filter(|_| status == 202)
        .ok_or(format!(
            "the poisoned order was answered {status}: {answer}"
        ))?
        .to_owned();
    gateway.set_unavailable_for(Some(poisoned.clone()));
    system.set_enabled(&["PaymentFunction"], true).await;
    let cancelled_at = Instant::now();
    let path = format!("/orders/{poisoned}/cancel");
    let (status, answer) = call(
        system.fanout.as_ref(),
        order_api::CANCEL_ORDER,
        &path,
        &[],
        Vec::new(),
    )
    .await;
    if status != 202 {
        return Err(format!("the cancellation was answered {status}: {answer}").into());
    }
    let poisoned_burst = burst(system, &confirmations, orders).await;
    let heard = loop {
        let report = orderflow::report::order_report(
            system.runtime.sdk(),
            system.runtime.deployment(),
            &poisoned,
        )
        .await?;
        if report
            .payment
            .is_some_and(|p| p.status == PaymentStatus::Cancelled)
        {
            break cancelled_at.elapsed();
        }
        if cancelled_at.elapsed() > PATIENCE {
            return Err(format!("payment never heard of {poisoned}'s cancellation").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    gateway.set_unavailable_for(None);
    Ok(Row {
        label,
        alone,
        poisoned: poisoned_burst?,
        poisoned_cancellation_heard: heard,
    })
}

/// Places `orders` orders, [`CONCURRENCY`] at a time, and waits for each's confirmation.
async fn burst(
    system: &System,
    confirmations: &Confirmations,
    orders: usize,
) -> BenchResult<Burst> {
    let body = system.order.to_string();
    let started = Instant::now();
    let answers: Vec<(Option<Sent>, Duration)> = futures::stream::iter(0..orders)
        .map(|_| place(system.fanout.as_ref(), body.clone().into_bytes()))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let latencies: Vec<Duration> = answers.iter().map(|(_, latency)| *latency).collect();
    let accepted: Vec<_> = answers.into_iter().filter_map(|(order, _)| order).collect();
    let to_confirmed = loop {
        let to_confirmed = confirmations.since_sent(&accepted);
        if to_confirmed.len() >= accepted.len() {
            break to_confirmed;
        }
        if started.elapsed() > PATIENCE {
            return Err(format!(
                "{} of {} orders confirmed",
                to_confirmed.len(),
                accepted.len()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    Ok(Burst {
        orders: accepted.len(),
        orders_per_second: accepted.len() as f64 / started.elapsed().as_secs_f64(),
        post: Summary::of(&latencies),
        confirmed: Summary::of(&to_confirmed),
    })
}

impl Results {
    pub fn table(&self) -> Table {
        let mut table = Table::new(&[
            "ordering",
            "orders/s (POST to last confirmed)",
            "POST p50 / p99",
            "POST -> OrderConfirmed p50 / p99",
            "beside a poisoned order: POST -> OrderConfirmed p50 / p99",
            "the poisoned order's cancellation reaches payment after",
        ]);
        for row in &self.rows {
            let pair = |s: &Summary| format!("{} / {}", ms(s.p50), ms(s.p99));
            table.row(vec![
                row.label.to_owned(),
                format!("{:.1}", row.alone.orders_per_second),
                pair(&row.alone.post),
                pair(&row.alone.confirmed),
                pair(&row.poisoned.confirmed),
                ms(row.poisoned_cancellation_heard),
            ]);
        }
        table
    }
}

/// What a poison costs its own message group on FIFO at most: every receive of it, each
/// waiting out the visibility timeout.
pub fn fifo_hold() -> Duration {
    Duration::from_secs(u64::from(MAX_RECEIVE_COUNT * VISIBILITY_TIMEOUT))
}
