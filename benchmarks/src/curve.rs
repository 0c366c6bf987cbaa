//! Section 7 - The throughput-latency curve: orders offered at steady rates (open loop: each
//! order is sent on its tick, whether or not the earlier ones were answered), each rate on a
//! fresh system for a fixed time; at each, the POST's latency and the time from the POST to
//! the order service's `OrderConfirmed` (its own time, as its readers receive it). The knee is the highest rate whose p99 to confirmation stays under 2 s. Batches are invoked as soon as
//! they have a record (`BatchingWindowSeconds=0`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use order_events::{EventData, OrderConfirmed};

use serde::{Deserialize, Serialize};

use crate::report::{log_bar_chart, BarGroup, Table};
use crate::stats::{ms, Summary};
use crate::steps::Steps;
use crate::system::{call, BenchResult, Deploy, System};
use lambda_kit::http::HttpFunction;

/// What "keeps up" means at a rate: p99 from placement to confirmation under this.
pub const KNEE: Duration = Duration::from_secs(2);
/// A rate whose orders are not all confirmed this long after the last was sent has saturated
/// the system: higher rates are not measured.
const DRAIN: Duration = Duration::from_secs(60);
/// Nor are they past a rate whose p99 to confirmation exceeds this: far past the knee, the
/// backlog only grows.
const SATURATED: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    /// Orders per second offered.
    pub rate: f64,
    pub sent: usize,
    pub accepted: usize,
    /// Orders confirmed by the end of the drain.
    pub confirmed: usize,
    pub post_p50_ms: f64,
    pub post_p99_ms: f64,
    pub confirmed_p50_ms: f64,
    pub confirmed_p99_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Curve {
    pub seconds: u64,
    pub points: Vec<Point>,
}

impl Curve {
    /// The highest rate whose every order was confirmed with p99 under [`KNEE`].
    pub fn knee(&self) -> Option<f64> {
        self.points
            .iter()
            .filter(|p| p.confirmed == p.accepted && p.confirmed_p99_ms < KNEE.as_secs_f64() * 1e3)
            .map(|p| p.rate)
            .reduce(f64::max)
    }

    pub fn table(&self) -> Table {
        let mut table = Table::new(&[
            "offered (orders/s)",
            "accepted",
            "confirmed",
            "POST p50",
            "POST p99",
            "POST -> OrderConfirmed published p50",
            "p99",
        ]);
        for p in &self.points {
            let millis = |v: f64| ms(Duration::from_secs_f64(v / 1e3));
            table.row(vec![
                format!("{}", p.rate),
                format!("{}/{}", p.accepted, p.sent),
                format!("{}/{}", p.confirmed, p.accepted),
                millis(p.post_p50_ms),
                millis(p.post_p99_ms),
                millis(p.confirmed_p50_ms),
                millis(p.confirmed_p99_ms),
            ]);
        }
        table
    }

    pub fn knee_text(&self) -> String {
        match self.knee() {
            Some(rate) => format!("{rate} orders/s"),
            None => "below the lowest rate measured".to_owned(),
        }
    }

    pub fn chart(&self, title: &str) -> String {
        let groups: Vec<BarGroup> = self
            .points
            .iter()
            .map(|p| BarGroup {
                label: format!("{} /s", p.rate),
                values: vec![p.post_p99_ms, p.confirmed_p50_ms, p.confirmed_p99_ms],
            })
            .collect();
        log_bar_chart(
            title,
            "ms",
            &["POST p99", "to confirmed p50", "to confirmed p99"],
            &groups,
        )
    }
}

/// Steps this section reports: one per rate.
pub fn steps(rates: &[f64]) -> u64 {
    rates.len() as u64
}

/// Offers each of `rates` for `seconds`, lowest first, each on a fresh system, and stops after
/// the first rate the system cannot drain, or drains only far past the knee.
pub async fn run(rates: &[f64], seconds: u64, steps: &Steps) -> BenchResult<Curve> {
    let mut points = Vec::new();
    for &rate in rates {
        steps.start("7. curve", format!("{rate} orders/s for {seconds} s"));
        // Batches are invoked as soon as they have a record (`BatchingWindowSeconds=0`): the
        // curve is about capacity; the window adds up to a second per hop at light load.
        let system = System::start_with(Deploy::default().with("BatchingWindowSeconds", 0)).await?;
        system.gateway()?.set_latency(Duration::ZERO);
        let point = offer(&system, rate, seconds).await;
        system.runtime.shutdown().await;
        let point = point?;
        println!(
            "  {rate} orders/s: POST p99 {:.0} ms, to confirmed p50 {:.0} ms p99 {:.0} ms, {}/{} confirmed",
            point.post_p99_ms, point.confirmed_p50_ms, point.confirmed_p99_ms, point.confirmed, point.accepted
        );
        let saturated = point.confirmed < point.accepted
            || point.confirmed_p99_ms > SATURATED.as_secs_f64() * 1e3;
        points.push(point);
        if saturated {
            break;
        }
    }
    Ok(Curve { seconds, points })
}

async fn offer(system: &System, rate: f64, seconds: u64) -> BenchResult<Point> {
    let confirmations = Confirmations::watch(system)?;
    let orders = (rate * seconds as f64).round() as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let body = system.order.to_string();
    let mut posts = tokio::task::JoinSet::new();
    for _ in 0..orders {
        ticker.tick().await;
        let api = system.fanout.clone();
        let body = body.clone().into_bytes();
        posts.spawn(async move { place(api.as_ref(), body).await });
    }
    let mut latencies = Vec::new();
    let mut accepted = Vec::new();
    while let Some(answer) = posts.join_next().await {
        let (order, latency) = answer?;
        latencies.push(latency);
        accepted.extend(order);
    }
    let drained = Instant::now();
    let to_confirmed = loop {
        let to_confirmed = confirmations.since_sent(&accepted);
        if to_confirmed.len() >= accepted.len() || drained.elapsed() > DRAIN {
            break to_confirmed;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let post = Summary::of(&latencies);
    let confirmed = Summary::of(&to_confirmed);
    let millis = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(Point {
        rate,
        sent: orders,
        accepted: accepted.len(),
        confirmed: to_confirmed.len(),
        post_p50_ms: millis(post.p50),
        post_p99_ms: millis(post.p99),
        confirmed_p50_ms: millis(confirmed.p50),
        confirmed_p99_ms: millis(confirmed.p99),
    })
}

/// An accepted order: its id, and when its POST was sent.
pub type Sent = (String, chrono::DateTime<chrono::Utc>);

/// POSTs the order `body` to `api`: the order, if it was accepted, and the POST's latency.
pub async fn place(api: &dyn HttpFunction, body: Vec<u8>) -> (Option<Sent>, Duration) {
    let (sent, started) = (chrono::Utc::now(), Instant::now());
    let (status, answer) = call(api, order_api::PLACE_ORDER, "/orders", &[], body).await;
    let accepted = (status == 202)
        .then(|| answer["orderId"].as_str().map(|id| (id.to_owned(), sent)))
        .flatten();
    (accepted, started.elapsed())
}

/// When each order's `OrderConfirmed` was published (the event's own time), as its readers'
/// event source mappings hand it to them.
pub struct Confirmations {
    published: Arc<Mutex<HashMap<String, chrono::DateTime<chrono::Utc>>>>,
    listener: tokio::task::JoinHandle<()>,
}

impl Confirmations {
    pub fn watch(system: &System) -> BenchResult<Self> {
        let reader = system
            .consumers
            .iter()
            .find(|c| c.event_types.iter().any(|t| t == OrderConfirmed::TYPE))
            .ok_or("no consumer reads OrderConfirmed")?;
        let mut bodies = system
            .runtime
            .observe(&reader.function)
            .ok_or("the OrderConfirmed reader has no event source")?;
        let published = Arc::new(Mutex::new(HashMap::new()));
        let seen = published.clone();
        let listener = tokio::spawn(async move {
            loop {
                match bodies.recv().await {
                    Ok(body) => {
                        if let Some((order, at)) = confirmed(&body) {
                            if let Ok(mut seen) = seen.lock() {
                                seen.entry(order).or_insert(at);
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Self {
            published,
            listener,
        })
    }

    /// For each of `orders` (id, when its POST was sent) whose confirmation was seen: how long
    /// after the POST it was published.
    pub fn since_sent(&self, orders: &[Sent]) -> Vec<Duration> {
        let Ok(published) = self.published.lock() else {
            return Vec::new();
        };
        orders
            .iter()
            .filter_map(|(id, sent)| (*published.get(id)? - *sent).to_std().ok())
            .collect()
    }
}

impl Drop for Confirmations {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// The order id and time of an `OrderConfirmed` record body.
fn confirmed(body: &str) -> Option<(String, chrono::DateTime<chrono::Utc>)> {
    let event: serde_json::Value = serde_json::from_str(body).ok()?;
    if event["type"] != OrderConfirmed::TYPE {
        return None;
    }
    let time = event["time"].as_str()?.parse().ok()?;
    Some((event["subject"].as_str()?.to_owned(), time))
}
