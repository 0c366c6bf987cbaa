//! Section 1 - Time decoupling: the fan-out against the synchronous chain, on latency and availability.

use std::time::{Duration, Instant};

use crate::report::{log_bar_chart, BarGroup, Table};
use crate::stats::{ms, Summary};
use lambda_kit::http::HttpFunction;

use crate::steps::Steps;
use crate::system::{post_orders, BenchResult, Client, System, CAREFUL, PATIENT};

pub struct Settings {
    pub orders: usize,
    /// Orders of the burst with the consumers paused: more than the others, so that its p99 is
    /// not decided by one or two requests.
    pub paused_orders: usize,
    pub concurrency: usize,
    pub payment_latencies: Vec<Duration>,
    /// Times each payment latency is measured.
    pub runs: usize,
}

impl Settings {
    /// One burst of `orders` orders from `concurrency` clients against `endpoint`.
    async fn burst(
        &self,
        system: &System,
        endpoint: &dyn HttpFunction,
        client: Client,
    ) -> Vec<(u16, Duration)> {
        self.burst_of(system, endpoint, client, self.orders).await
    }

    async fn burst_of(
        &self,
        system: &System,
        endpoint: &dyn HttpFunction,
        client: Client,
        orders: usize,
    ) -> Vec<(u16, Duration)> {
        post_orders(endpoint, &system.order, orders, self.concurrency, client).await
    }
}

/// One payment latency, measured [`Settings::runs`] times.
pub struct LatencyRow {
    pub payment_latency: Duration,
    pub runs: Vec<LatencyRun>,
}

/// One run of one payment latency: the three bursts.
pub struct LatencyRun {
    /// The fan-out with its consumers working on the same emulator meanwhile.
    pub fanout: Summary,
    /// The fan-out with its consumers paused during the burst: on AWS, SNS does not slow down
    /// because consumers are busy; on one emulator process it does.
    pub fanout_alone: Summary,
    /// The paused burst's slowest requests: (position in the burst, from 1; latency).
    pub fanout_alone_slowest: Vec<(usize, Duration)>,
    pub chain: Summary,
    /// From POST to the order service's confirmation, and to the shipment (consumers busy).
    pub to_confirmed: Summary,
    pub to_shipped: Summary,
    /// Messages the consumers received per order (every queue together).
    pub messages_per_order: f64,
}

pub struct AvailabilityRow {
    pub design: &'static str,
    pub outage: &'static str,
    pub orders: usize,
    pub accepted: usize,
    /// Orders whose stock was reserved although the client was told the order failed.
    pub half_applied: u64,
    /// Charges made once payment was back (for orders placed during the outage).
    pub completed_after_recovery: u64,
    pub recovery: Option<Duration>,
}

pub struct Results {
    pub latency: Vec<LatencyRow>,
    pub availability: Vec<AvailabilityRow>,
}

/// The section's name in the progress line.
const SECTION: &str = "1. time decoupling";

/// Steps this section reports: one per payment latency and run, and two outages.
pub fn steps(settings: &Settings) -> u64 {
    (settings.payment_latencies.len() * settings.runs) as u64 + 2
}

pub async fn run(system: &System, settings: &Settings, steps: &Steps) -> BenchResult<Results> {
    let gateway = system.gateway()?;
    let mut latency = Vec::new();
    let mut completed = system.completed_by_all();
    for &payment_latency in &settings.payment_latencies {
        let mut runs = Vec::new();
        for run in 1..=settings.runs {
            steps.start(
                SECTION,
                format!("payment latency {payment_latency:?}, run {run}"),
            );
            runs.push(measure(system, settings, payment_latency, &mut completed).await?);
        }
        latency.push(LatencyRow {
            payment_latency,
            runs,
        });
    }
    gateway.set_latency(Duration::ZERO);
    system.chain_gateway.set_latency(Duration::ZERO);

    let mut availability = Vec::new();
    for outage in ["failing", "stopped"] {
        steps.start(SECTION, format!("payment {outage}"));
        availability.push(fanout_outage(system, settings, outage, &mut completed).await?);
        availability.push(chain_outage(system, settings, outage).await?);
    }
    for row in &availability {
        println!(
            "  payment {}: {} accepted {}/{}, half-applied {}, completed after recovery {}",
            row.outage,
            row.design,
            row.accepted,
            row.orders,
            row.half_applied,
            row.completed_after_recovery
        );
    }
    Ok(Results {
        latency,
        availability,
    })
}

/// One run at `payment_latency`: the fan-out with its consumers working, then paused, then the
/// chain.
async fn measure(
    system: &System,
    settings: &Settings,
    payment_latency: Duration,
    completed: &mut u64,
) -> BenchResult<LatencyRun> {
    let gateway = system.gateway()?;
    gateway.set_latency(payment_latency);
    system.chain_gateway.set_latency(payment_latency);
    let since = chrono::Utc::now() - chrono::Duration::milliseconds(1);
    let records_before = system.records_received();
    let fanout = settings
        .burst(system, system.fanout.as_ref(), PATIENT)
        .await;
    expect_all(&fanout, 202, "fan-out")?;
    *completed += settings.orders as u64;
    system
        .wait_completed(*completed, Duration::from_secs(600))
        .await?;
    let messages_per_order =
        (system.records_received() - records_before) as f64 / settings.orders.max(1) as f64;
    let (to_confirmed, to_shipped) = system.saga_times(since).await?;

    system.set_consumers_enabled(false).await;
    let fanout_alone = settings
        .burst_of(
            system,
            system.fanout.as_ref(),
            PATIENT,
            settings.paused_orders,
        )
        .await;
    // The paused burst measured only the API: its orders are worked off with a gateway that
    // answers at once, so the next burst starts on quiet consumers.
    gateway.set_latency(Duration::ZERO);
    system.set_consumers_enabled(true).await;
    expect_all(&fanout_alone, 202, "fan-out, consumers paused")?;
    *completed += settings.paused_orders as u64;
    system
        .wait_completed(*completed, Duration::from_secs(600))
        .await?;
    gateway.set_latency(payment_latency);

    let chain = settings.burst(system, system.chain.as_ref(), PATIENT).await;
    expect_all(&chain, 202, "chain")?;
    let run = LatencyRun {
        fanout: summary(&fanout),
        fanout_alone: summary(&fanout_alone),
        fanout_alone_slowest: slowest(&fanout_alone, 5),
        chain: summary(&chain),
        to_confirmed: Summary::of(&to_confirmed),
        to_shipped: Summary::of(&to_shipped),
        messages_per_order,
    };
    println!(
        "  payment {:>7}: fan-out p50 {} p99 {} (consumers paused: p50 {} p99 {}, slowest {}) | chain p50 {} p99 {} | \
         to confirmed p50 {} p99 {}, to shipped p50 {} p99 {}, {:.1} messages per order",
        ms(payment_latency),
        ms(run.fanout.p50),
        ms(run.fanout.p99),
        ms(run.fanout_alone.p50),
        ms(run.fanout_alone.p99),
        positions(&run.fanout_alone_slowest),
        ms(run.chain.p50),
        ms(run.chain.p99),
        ms(run.to_confirmed.p50),
        ms(run.to_confirmed.p99),
        ms(run.to_shipped.p50),
        ms(run.to_shipped.p99),
        run.messages_per_order,
    );
    Ok(run)
}

/// Payment failing (every gateway call fails) or stopped (its event source mapping disabled)
/// while orders come in; then back.
async fn fanout_outage(
    system: &System,
    settings: &Settings,
    outage: &'static str,
    completed: &mut u64,
) -> BenchResult<AvailabilityRow> {
    let gateway = system.gateway()?;
    let charges_before = gateway.captured();
    match outage {
        "failing" => gateway.set_failure_rate(1.0),
        _ => system.runtime.set_source_enabled("PaymentFunction", false),
    }
    let answers = settings
        .burst(system, system.fanout.as_ref(), CAREFUL)
        .await;
    // Let the outage last while the other services work through the orders.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let recovered = Instant::now();
    gateway.set_failure_rate(0.0);
    system.runtime.set_source_enabled("PaymentFunction", true);
    *completed += settings.orders as u64;
    system
        .wait_completed(*completed, Duration::from_secs(600))
        .await?;
    Ok(AvailabilityRow {
        design: "fan-out",
        outage,
        orders: settings.orders,
        accepted: accepted(&answers),
        half_applied: 0,
        completed_after_recovery: (gateway.captured() - charges_before) as u64,
        recovery: Some(recovered.elapsed()),
    })
}

async fn chain_outage(
    system: &System,
    settings: &Settings,
    outage: &'static str,
) -> BenchResult<AvailabilityRow> {
    let gateway = &system.chain_gateway;
    let charges_before = gateway.captured();
    let stock_before = system.stock("SKU-MOUSE").await?;
    match outage {
        "failing" => gateway.set_failure_rate(1.0),
        _ => system.chain.publisher().set_down(payment::SPEC.name, true),
    }
    let answers = settings.burst(system, system.chain.as_ref(), CAREFUL).await;
    gateway.set_failure_rate(0.0);
    system.chain.publisher().set_down(payment::SPEC.name, false);
    let accepted = accepted(&answers);
    // Every order takes one SKU-MOUSE: the stock it lost beyond the accepted orders was
    // reserved for orders the client was told had failed.
    let reserved = stock_before.saturating_sub(system.stock("SKU-MOUSE").await?);
    Ok(AvailabilityRow {
        design: "synchronous chain",
        outage,
        orders: settings.orders,
        accepted,
        half_applied: reserved.saturating_sub(accepted as u64),
        completed_after_recovery: (gateway.captured() - charges_before) as u64,
        recovery: None,
    })
}

fn expect_all(answers: &[(u16, Duration)], status: u16, design: &str) -> BenchResult<()> {
    match answers.iter().find(|(s, _)| *s != status) {
        Some((other, _)) => Err(format!("{design}: an order got {other}, not {status}").into()),
        None => Ok(()),
    }
}

fn accepted(answers: &[(u16, Duration)]) -> usize {
    answers.iter().filter(|(status, _)| *status == 202).count()
}

/// The `count` slowest answers: (position in the burst, from 1; latency), slowest first.
fn slowest(answers: &[(u16, Duration)], count: usize) -> Vec<(usize, Duration)> {
    let mut by_latency: Vec<(usize, Duration)> = answers
        .iter()
        .enumerate()
        .map(|(index, (_, latency))| (index + 1, *latency))
        .collect();
    by_latency.sort_by_key(|(_, latency)| std::cmp::Reverse(*latency));
    by_latency.truncate(count);
    by_latency
}

/// "#7 105 ms, #6 98.0 ms": requests by their position in the burst.
fn positions(slowest: &[(usize, Duration)]) -> String {
    slowest
        .iter()
        .map(|(position, latency)| format!("#{position} {}", ms(*latency)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary(answers: &[(u16, Duration)]) -> Summary {
    Summary::of(&answers.iter().map(|(_, d)| *d).collect::<Vec<_>>())
}

impl LatencyRow {
    fn each<T>(&self, measure: impl Fn(&LatencyRun) -> T) -> Vec<T> {
        self.runs.iter().map(measure).collect()
    }

    /// The run whose paused fan-out p99 is the median of the runs.
    pub fn median_run(&self) -> Option<&LatencyRun> {
        let mut runs: Vec<&LatencyRun> = self.runs.iter().collect();
        runs.sort_by_key(|run| run.fanout_alone.p99);
        runs.get(runs.len() / 2).copied()
    }
}

/// The median of the runs, with the lowest and highest: "81.6 ms (78.0 ms - 89.1 ms)".
fn spread(mut values: Vec<Duration>) -> String {
    values.sort();
    match (values.first(), values.last()) {
        (Some(low), Some(high)) if values.len() > 1 => format!(
            "{} ({} - {})",
            ms(values[values.len() / 2]),
            ms(*low),
            ms(*high)
        ),
        (Some(only), _) => ms(*only),
        _ => "-".to_owned(),
    }
}

/// Each run's ratio `a / b`, lowest first: "118x, 130x, 142x".
fn ratios(
    row: &LatencyRow,
    a: impl Fn(&LatencyRun) -> Duration,
    b: impl Fn(&LatencyRun) -> Duration,
) -> String {
    let mut each = row.each(|run| a(run).as_secs_f64() / b(run).as_secs_f64().max(1e-9));
    each.sort_by(f64::total_cmp);
    each.iter()
        .map(|r| format!("{r:.0}x"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Results {
    /// Per payment latency, each measure's median over the runs (lowest - highest), and each
    /// run's ratios.
    pub fn latency_table(&self) -> Table {
        let mut table = Table::new(&[
            "payment latency",
            "fan-out p50",
            "fan-out p99",
            "fan-out, consumers paused: p50",
            "p99",
            "chain p50",
            "chain p99",
            "chain p99 / fan-out p99, each run",
            "chain p99 / paused fan-out p99, each run",
            "chain p50 / paused fan-out p50, each run",
        ]);
        for row in &self.latency {
            table.row(vec![
                ms(row.payment_latency),
                spread(row.each(|r| r.fanout.p50)),
                spread(row.each(|r| r.fanout.p99)),
                spread(row.each(|r| r.fanout_alone.p50)),
                spread(row.each(|r| r.fanout_alone.p99)),
                spread(row.each(|r| r.chain.p50)),
                spread(row.each(|r| r.chain.p99)),
                ratios(row, |r| r.chain.p99, |r| r.fanout.p99),
                ratios(row, |r| r.chain.p99, |r| r.fanout_alone.p99),
                ratios(row, |r| r.chain.p50, |r| r.fanout_alone.p50),
            ]);
        }
        table
    }

    /// The paused bursts' slowest requests, a line per payment latency and run.
    pub fn slowest_lines(&self) -> String {
        let mut lines = String::new();
        for row in &self.latency {
            for (index, run) in row.runs.iter().enumerate() {
                lines.push_str(&format!(
                    "- payment {}, run {}: {}\n",
                    ms(row.payment_latency),
                    index + 1,
                    positions(&run.fanout_alone_slowest)
                ));
            }
        }
        lines
    }

    /// How long the saga takes behind the 202, and what it costs in messages.
    pub fn saga_table(&self) -> Table {
        let mut table = Table::new(&[
            "payment latency",
            "POST -> confirmed p50",
            "p99",
            "POST -> shipped p50",
            "p99",
            "messages per order",
        ]);
        for row in &self.latency {
            let messages = row.each(|r| r.messages_per_order);
            table.row(vec![
                ms(row.payment_latency),
                spread(row.each(|r| r.to_confirmed.p50)),
                spread(row.each(|r| r.to_confirmed.p99)),
                spread(row.each(|r| r.to_shipped.p50)),
                spread(row.each(|r| r.to_shipped.p99)),
                format!(
                    "{:.1}",
                    messages.iter().sum::<f64>() / messages.len().max(1) as f64
                ),
            ]);
        }
        table
    }

    pub fn availability_table(&self) -> Table {
        let mut table = Table::new(&[
            "payment",
            "design",
            "accepted",
            "left half-applied (stock reserved, order refused)",
            "charged once payment was back",
            "time to catch up",
        ]);
        for row in &self.availability {
            table.row(vec![
                row.outage.to_owned(),
                row.design.to_owned(),
                format!(
                    "{}/{} ({:.0} %)",
                    row.accepted,
                    row.orders,
                    100.0 * row.accepted as f64 / row.orders.max(1) as f64
                ),
                row.half_applied.to_string(),
                format!("{}/{}", row.completed_after_recovery, row.orders),
                row.recovery
                    .map_or("-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64())),
            ]);
        }
        table
    }

    pub fn chart(&self) -> String {
        let groups: Vec<_> = self
            .latency
            .iter()
            .filter_map(|row| {
                let run = row.median_run()?;
                Some(BarGroup {
                    label: format!("payment takes {}", ms(row.payment_latency)),
                    values: vec![
                        run.fanout_alone.p99.as_secs_f64() * 1000.0,
                        run.fanout.p99.as_secs_f64() * 1000.0,
                        run.chain.p99.as_secs_f64() * 1000.0,
                    ],
                })
            })
            .collect();
        log_bar_chart(
            "POST /orders p99 latency (log scale)",
            "ms",
            &[
                "fan-out, consumers paused",
                "fan-out, consumers busy",
                "synchronous chain",
            ],
            &groups,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_answers_keep_their_position_in_the_burst() {
        let answers: Vec<(u16, Duration)> = [3, 9, 1, 7]
            .into_iter()
            .map(|ms| (202, Duration::from_millis(ms)))
            .collect();
        let two = slowest(&answers, 2);
        assert_eq!(
            two,
            vec![(2, Duration::from_millis(9)), (4, Duration::from_millis(7))]
        );
        assert_eq!(positions(&two), "#2 9.00 ms, #4 7.00 ms");
    }
}
