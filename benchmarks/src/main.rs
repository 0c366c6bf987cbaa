//! The benchmarks behind one command (`benchmarks/run.sh`): every table of BENCHMARKS.md,
//! measured in one run on this machine, printed as it goes and written with its charts.
//!
//! ```text
//! orderflow-benchmarks [--smoke] [--binaries DIR] [--profile NAME] [--out FILE]
//! orderflow-benchmarks --only calls|curve [--label NAME]
//! ```
//! `--smoke` runs every section on a handful of orders (CI keeps the benchmarks compiling and
//! running with it; no timing is asserted) and writes to `target/benchmarks-smoke/`.
//! `--only` runs one section and prints it; `--only curve --label before` also keeps the curve
//! in `benchmarks/curve-before.json`, which the full run shows beside its own.

mod chain;
mod coldstart;
mod cost;
mod curve;
mod decoupling;
mod floor;
mod ordering;
mod peer;
mod per_order;
mod report;
mod runtime_api;
mod stats;
mod step_functions;
mod steps;
mod system;
mod throughput;

use std::path::{Path, PathBuf};
use std::time::Duration;

use local_runtime::emulator::{project_root, target_dir};

use crate::steps::Steps;
use crate::system::{BenchResult, System};

struct Args {
    smoke: bool,
    binaries: PathBuf,
    profile: String,
    out: PathBuf,
    only: Option<String>,
    label: Option<String>,
}

fn args() -> BenchResult<Args> {
    let root = project_root();
    let mut args = Args {
        smoke: false,
        binaries: target_dir().join("release"),
        profile: "release".to_owned(),
        out: root.join("BENCHMARKS.md"),
        only: None,
        label: None,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        let mut value = || given.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--smoke" => {
                args.smoke = true;
                args.out = target_dir().join("benchmarks-smoke/BENCHMARKS.md");
            }
            "--binaries" => args.binaries = PathBuf::from(value()?),
            "--profile" => args.profile = value()?,
            "--out" => args.out = PathBuf::from(value()?),
            "--only" => args.only = Some(value()?),
            "--label" => args.label = Some(value()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("benchmarks failed: {error}");
        std::process::exit(1);
    }
}

/// The curve's offered rates (orders/s) and seconds per rate.
fn curve_settings(smoke: bool) -> (Vec<f64>, u64) {
    if smoke {
        (vec![2.0], 3)
    } else {
        (
            vec![1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 24.0, 32.0],
            60,
        )
    }
}

/// Orders per kind whose calls are counted.
fn orders_per_kind(smoke: bool) -> u64 {
    if smoke {
        1
    } else {
        3
    }
}

/// Orders per burst of the ordering comparison.
fn ordering_orders(smoke: bool) -> usize {
    if smoke {
        4
    } else {
        100
    }
}

/// Where a labelled curve is kept.
fn curve_file(label: &str) -> PathBuf {
    project_root().join(format!("benchmarks/curve-{label}.json"))
}

/// `--only`: one section, printed (and a labelled curve kept).
async fn run_only(args: &Args, section: &str) -> BenchResult<()> {
    match section {
        "calls" => {
            let steps = Steps::new(per_order::STEPS);
            let system = System::start().await?;
            let calls = per_order::run(&system, orders_per_kind(args.smoke), &steps).await;
            system.runtime.shutdown().await;
            steps.finish();
            let calls = calls?;
            print!(
                "{}\n{}\n{}",
                calls.summary_table().markdown(),
                calls.functions_table().markdown(),
                calls.item_table().markdown()
            );
        }
        "curve" => {
            let (rates, seconds) = curve_settings(args.smoke);
            let steps = Steps::new(curve::steps(&rates));
            let curve = curve::run(&rates, seconds, &steps).await?;
            steps.finish();
            print!("{}", curve.table().markdown());
            println!("knee: {}", curve.knee_text());
            if let Some(label) = &args.label {
                let file = curve_file(label);
                std::fs::write(&file, serde_json::to_string_pretty(&curve)?)?;
                println!("written: {}", file.display());
            }
        }
        "ordering" => {
            let steps = Steps::new(ordering::steps());
            let results = ordering::run(ordering_orders(args.smoke), &steps).await?;
            steps.finish();
            print!("{}", results.table().markdown());
        }
        other => return Err(format!("--only takes calls, curve or ordering, not {other}").into()),
    }
    Ok(())
}

async fn run() -> BenchResult<()> {
    let args = args()?;
    if let Some(section) = &args.only {
        return run_only(&args, section).await;
    }
    let machine = machine();
    println!("{machine}");
    let charts = args
        .out
        .parent()
        .unwrap_or(Path::new("."))
        .join("benchmarks/charts");
    std::fs::create_dir_all(&charts)?;

    let (orders, concurrency, latencies, throughput_orders, peer_records, cold_runs) = if args.smoke
    {
        (4, 4, vec![0, 50], 10, 20, 2)
    } else {
        (100, 8, vec![0, 500, 5000], 200, 1000, 20)
    };

    let settings = decoupling::Settings {
        orders,
        paused_orders: if args.smoke { orders } else { 300 },
        concurrency,
        payment_latencies: latencies.into_iter().map(Duration::from_millis).collect(),
        runs: if args.smoke { 1 } else { 3 },
    };
    let functions = local_runtime::template::Topology::load(
        &project_root().join("template.yaml"),
        &Default::default(),
    )?
    .functions
    .len() as u64;
    let (rates, curve_seconds) = curve_settings(args.smoke);
    let steps = Steps::new(
        decoupling::steps(&settings)
            + throughput::STEPS
            + peer::STEPS
            + functions
            + per_order::STEPS
            + curve::steps(&rates)
            + ordering::steps(),
    );

    println!("\n1. time decoupling");
    let system = System::start().await?;
    let decoupling = decoupling::run(&system, &settings, &steps).await?;
    std::fs::write(charts.join("decoupling-p99.svg"), decoupling.chart())?;

    println!("\n6. calls per order");
    let calls = per_order::run(&system, orders_per_kind(args.smoke), &steps).await?;

    println!("\n2. throughput");
    let throughput = throughput::run(throughput_orders, 8, &steps).await?;

    println!("\n4. Powertools peer");
    let endpoints = system.runtime.endpoints().clone();
    let peers = peer::run_peers(
        system.runtime.sdk(),
        &endpoints,
        &args.binaries.join("inventory"),
        peer_records,
        &steps,
    )
    .await?;
    system.runtime.shutdown().await;

    println!("\n5. cold start and size");
    let cold = coldstart::run(&args.binaries, &args.profile, cold_runs, &steps).await?;

    println!("\n7. throughput-latency curve");
    let curve = curve::run(&rates, curve_seconds, &steps).await?;
    std::fs::write(
        charts.join("curve.svg"),
        curve.chart("Latency by offered rate"),
    )?;
    let before: Option<curve::Curve> = std::fs::read_to_string(curve_file("before"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    if let Some(before) = &before {
        std::fs::write(
            charts.join("curve-before.svg"),
            before.chart("Latency by offered rate, before"),
        )?;
    }
    println!("\n8. standard and FIFO ordering");
    let ordering = ordering::run(ordering_orders(args.smoke), &steps).await?;
    steps.finish();

    println!("\n3. per-record cost (criterion)");
    let (per_record, metrics_cost) = criterion_table();
    print!("{}", per_record.markdown());
    if let Some(cost) = metrics_cost {
        println!("  metrics: {:+.1} % per record", cost * 100.0);
    }

    println!("\n6. cost");
    let api = decoupling
        .latency
        .first()
        .and_then(|row| row.median_run())
        .map(|run| run.fanout.p50)
        .unwrap_or_default();
    // SNS requests as under load, where one invocation's publishes share a batch.
    let counted = per_order::Counted {
        publishes: throughput.sns_requests_per_order,
        ..calls.counted(per_order::Kind::Confirmed)
    };
    let cost = cost::estimate(
        throughput.orders as u64,
        api,
        &throughput.consumers,
        counted,
    );
    print!("{}", cost.table().markdown());
    let peers_cost = cost::peers(&cost, &calls)?;
    let memory = memory_basis(&peers, &cold, &throughput);
    let lines = system_order_lines()?;
    let floors = floor::confirmed(lines);

    let document = document(
        &machine,
        &args,
        &decoupling,
        &throughput,
        &per_record,
        metrics_cost,
        &peers,
        &cold,
        &cost,
        &Costs {
            calls: &calls,
            floors: &floors,
            peers: &peers_cost,
            curve: &curve,
            before: before.as_ref(),
            ordering: &ordering,
            memory: &memory,
        },
    );
    std::fs::write(&args.out, document)?;
    println!("\nwritten: {}", args.out.display());
    Ok(())
}

/// The order lines of the order every benchmark places (`events/order-request.json`).
fn system_order_lines() -> BenchResult<usize> {
    let order: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        project_root().join("events/order-request.json"),
    )?)?;
    Ok(order["items"].as_array().map_or(0, Vec::len))
}

/// What sections 6, 7 and 8 add to the document.
struct Costs<'a> {
    calls: &'a per_order::Results,
    floors: &'a [floor::Floor],
    peers: &'a [cost::Peer],
    curve: &'a curve::Curve,
    before: Option<&'a curve::Curve>,
    ordering: &'a ordering::Results,
    memory: &'a cost::MemoryBasis,
}

/// What the memory sizes are judged by: the highest peak measured (the peer run's, under load;
/// the cold starts', at ready), our consumer's CPU per record, and the throughput run's batches.
fn memory_basis(
    peers: &peer::Results,
    cold: &coldstart::Results,
    throughput: &throughput::Results,
) -> cost::MemoryBasis {
    let ours = peers.rows.first();
    let peak_kib = cold
        .rows
        .iter()
        .map(|r| r.rss_kib)
        .chain(ours.map(|r| r.run.peak_rss_kib))
        .max()
        .unwrap_or_default();
    let cpu_per_record = ours
        .map(|r| r.run.total_cpu.saturating_sub(r.run.init_cpu) / r.records.max(1) as u32)
        .unwrap_or_default();
    let (invocations, records) = throughput
        .consumers
        .iter()
        .fold((0, 0), |(i, r), c| (i + c.invocations, r + c.records));
    cost::MemoryBasis {
        peak_mib: peak_kib as f64 / 1024.0,
        cpu_per_record,
        records_per_invocation: records as f64 / invocations.max(1) as f64,
        invocations_per_order: invocations as f64 / throughput.orders.max(1) as f64,
    }
}

/// The criterion estimates of `cargo bench --bench per_record` (median time per iteration: the
/// mean moves with the outliers a busy 2-core machine produces), and the metrics' cost per
/// record as a fraction of its CPU time, as the benchmark measured it (with and without the
/// recorder interleaved), when it ran.
fn criterion_table() -> (report::Table, Option<f64>) {
    let mut table = report::Table::new(&["benchmark", "per batch or call (median)", "per record"]);
    let root = target_dir().join("criterion");
    let mut found = Vec::new();
    // target/criterion/<benchmark id>/new/estimates.json, ids nested or not by criterion version.
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if !path.is_dir() || path.file_name().is_some_and(|n| n == "report") {
                continue;
            }
            let estimates = path.join("new/estimates.json");
            let Ok(text) = std::fs::read_to_string(&estimates) else {
                dirs.push(path);
                continue;
            };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let Some(ns) = value["median"]["point_estimate"].as_f64() else {
                continue;
            };
            let title = std::fs::read_to_string(path.join("new/benchmark.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["full_id"].as_str().map(str::to_owned))
                .unwrap_or_else(|| entry.file_name().to_string_lossy().into_owned());
            found.push((title, ns));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let metrics_cost = std::fs::read_to_string(target_dir().join("criterion/metrics-cost.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|value| value["cost"].as_f64());
    for (title, ns) in found {
        let per_record = if title.contains("10 records") {
            ns / 10.0
        } else {
            ns
        };
        table.row(vec![title, micros(ns), micros(per_record)]);
    }
    if table.rows.is_empty() {
        table.row(vec![
            "(run `cargo bench --bench per_record` first)".into(),
            "-".into(),
            "-".into(),
        ]);
    }
    (table, metrics_cost)
}

fn micros(ns: f64) -> String {
    format!("{:.2} µs", ns / 1000.0)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or("?".to_owned(), |kib| {
            format!("{:.0} GiB", kib / 1024.0 / 1024.0)
        });
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{} on {cores} cores ({cpu}), {memory} RAM, {} {}; emulator: moto (infra/requirements.txt, with infra/moto_server.py's patches) on loopback",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

#[allow(clippy::too_many_arguments)]
fn document(
    machine: &str,
    args: &Args,
    decoupling: &decoupling::Results,
    throughput: &throughput::Results,
    per_record: &report::Table,
    metrics_cost: Option<f64>,
    peers: &peer::Results,
    cold: &coldstart::Results,
    cost: &cost::Results,
    costs: &Costs,
) -> String {
    let smoke = if args.smoke {
        "\n**Smoke run: a handful of orders, numbers not meaningful.**\n"
    } else {
        ""
    };
    format!(
        r#"# Benchmarks

Measured {machine}.{smoke}

Reproduce every table and chart with one command (about 35 minutes on this machine, a tenth of it
release builds): `benchmarks/run.sh`. Numbers from a shared, noisy machine: read the ratios and
medians, not the third digit. The emulator is moto on loopback, far slower than AWS per call, so
absolute throughput here says little about AWS; the ratios say what our code costs.

## 1. Time decoupling: the seed's headline

The same order API and the same service handlers, wired two ways: the fan-out (the API reads
the lines' prices from the catalogue, publishes `OrderPlaced` to SNS, records the order and
answers 202; the saga runs behind it) and
a synchronous chain (`benchmarks/src/chain.rs`: the API calls inventory and payment (authorize),
then payment again (capture), shipping and notification, and answers when all are done).
{orders} orders per burst ({paused_orders} with the consumers paused), {concurrency} concurrent clients, the simulated payment gateway taking
the given time per call (a confirmed order makes two: authorize and capture). Latency is the
API handler's, in process, for both, until the order is accepted (a client retries a 503); its
requests carry the claims API Gateway's JWT authorizer hands on once it has verified a token.

The fan-out is measured twice: with its consumers busy with the earlier orders on the same
emulator and the same 2 cores (their receives, deletes and publishes queue in the moto process
that serves the API's `Publish`, their transactions in the one that serves its `PutItem`), and
with the consumers paused during the burst (as on AWS, where SNS and DynamoDB do not slow down
because the consumers are busy). The chain's handlers run inside the request either way. The
fan-out's API makes two emulator calls per order (the publish, the order's record; the
catalogue's prices are read once and remembered by the instance for 10 s, as on a warm Lambda),
the chain makes its own plus two gateway calls. With {concurrency} clients on one emulator each
request queues behind the others' calls, so the fan-out's latency is mostly that queue. Each
payment latency is measured {runs} times (a run: the three bursts); each cell is the median of
the runs, with the lowest and the highest, and the ratios are each run's. The paused burst has
{paused_orders} orders, so that its p99 is not one or two requests: a pause of the emulator
under a handful of requests (see the slowest requests below) no longer decides it. Its orders
are then worked off with the gateway answering at once, so each burst starts on quiet
consumers.

{latency}
![POST /orders p99 latency](benchmarks/charts/decoupling-p99.svg)

The slowest requests of each paused burst, by position in the burst (#1 was sent first):

{slowest}
What forms the tail: the slowest requests often come as neighbours in the burst (positions
next to each other in the lists above; on another machine, the last five of a 100-order
burst): requests that were in flight together, held up together. The handler's own work is the same for every
request (a remembered price, one publish, one put), so what holds them is the emulator: one
moto process answers every client's publish and another every put, and a pause there (its
garbage collector, a burst of the consumers' deliveries it is still fanning out) delays each
request waiting on it. With 100 requests, one such pause of five requests was the p99; with
300 it is at most the p99's neighbourhood, and every run reports its own ratio.
The remembered prices have expired by the time a burst starts, so its first {concurrency} requests
read the catalogue; requests that miss together share one read. moto's SQS would make a publish
cost more the fuller the paused queues get (on every send it computed every queue attribute,
passing over the queue's messages); `infra/moto_server.py` has a send read only the attribute it
needs, as SQS's cost does not grow with the queue.

Behind the 202, the saga (fan-out burst, consumers busy): from the order's placement to the
order service's confirmation (inventory and payment in parallel, then the decision) and to the
shipment (after the confirmation), from the events' own times in the orders table; and the
messages every queue together delivered per order (a confirmed order is OrderPlaced to three
queues, StockReserved, PaymentAuthorized, OrderConfirmed to three, PaymentCaptured,
ShipmentCreated: 10 without duplicates).

{saga}

Availability while payment is down: "failing" = every gateway call fails; "stopped" = the
payment consumer does not run (fan-out: its event source mapping disabled; chain: the call is
refused). Then payment comes back. Clients send an `Idempotency-Key` and retry a 503 up to 10
times with it (a retry is the same order, on either design).

{availability}
## 2. Throughput against the emulator's limit

Orders per second end to end (POST to every service done with the confirmed order) through the local runtime, and,
in the same run, a minimal SDK loop making the calls an order
needs at the emulator: the `Publish` of each of a confirmed order's six events (routed by the
template's filter policies: ten messages), then per queue a `ReceiveMessage` of up to 10, per
message a conditional `PutItem` of the effect's item carrying its key, as the consumers write
an effect, and one `DeleteMessageBatch`, on the same template's topic and queues. (The services' reads before they decide are not in the raw loop.) Each run has a fresh emulator of its own. {pollers} pollers per queue in the raw loop; the runtime's mappings keep as many and add more under a backlog, up to the template's `MaximumConcurrency`, and gather batches over its batching window, as Lambda's do. A ratio near 1 means our code adds little to what the emulator itself costs.
The third column is our run again with the live view open: a client listening to
`/live/events` as the page does, so the view takes a picture every 500 ms (five
GetQueueAttributes, the five DLQs' every 2 s, and a BatchGetItem of the latest orders every
second, on the emulator) and sends each change.

{throughput}
The raw loop's calls (where the emulator spends its time):

{calls}
Our consumers do somewhat more per record than the raw loop (inventory's transaction holds the
stock lines too; notification claims, sends through SES, then writes; the order service and
payment read what they need before they decide, which the raw loop does not), and somewhat less
in publishes (one invocation's outcomes share a `PublishBatch`).

## 3. Per-record cost of our code (criterion)

`cargo bench --bench per_record` (`benchmarks/benches/per_record.rs`), in-memory stores, no AWS:

{per_record}
What the metrics cost: the shipping consumer with the recorder it has on Lambda (embedded metric
format, one flush per 10-record invocation into a sink) against the same consumer without one,
batch by batch in turn, in thread CPU time over every iteration of the benchmark above:
{metrics_cost} CPU per record (goal: under 5 %). (Criterion's two estimates are taken a minute
apart; on this 2-core VM they drift by more than the cost itself, so the interleaved figure is
the one to read.) The kit keeps a batch's counts and times while the batch runs and records them
once it is over, one update per metric and event type.

## 4. The peer a user would pick instead: Powertools for AWS Lambda (Python)

The inventory consumer written with Powertools' batch and idempotency utilities
(`benchmarks/powertools/inventory.py`, same tables and events, pinned in
`benchmarks/powertools/requirements.txt`) against ours (`{binaries}/inventory`), each a process
under the same local Lambda Runtime API, on the same {peer_records} records in 10-record
batches, against the same emulator. Init: process start to its first request for an event.
CPU and peak memory from /proc. Powertools' idempotency writes the record before and after
the effect (3 DynamoDB calls per record); ours writes the order's decision, which is the
event's idempotency entry, with the stock lines in one transaction, and then announces the
outcome (one SNS publish of `StockReserved` per record, which the saga
needs and the peer does not do): ours does more work per record here.

{peer_table}
## 5. Cold start and size

Stripped binaries (`panic = "unwind"` kept); arm64 from `sam build` (cargo-lambda + zig), when
it has run. Ready = process start to its first request for an event from a local Lambda Runtime
API ({cold_runs} starts each). On Lambda, add the sandbox's own start.

{cold}
## 6. Calls, units and cost per order

### Counted

Each kind of order placed on its own ({per_kind} of each, one at a time, each left to settle)
through the local runtime, every AWS call its functions make counted by the kit's SDK
interceptor (`lambda_kit::calls`: calls by API; DynamoDB write and read units sized by AWS's
rules from the items in the request and response, transactions twice; an `UpdateItem` only at a
lower bound, flagged), and the event source mappings' own SQS requests (`ReceiveMessage` with
records, `DeleteMessageBatch`) from the runtime's counters. One order at a time is the worst
case for SQS: every receive brings one record. Means per order:

{calls_summary}
Per function:

{calls_functions}
The order's item in the orders table after each write (a confirmed order of {lines} lines, as
DynamoDB sizes it: names and values, `version` and the keys applied included). Under 1 KB, each
write of it is one write unit:

{item_steps}
### The floor

For each function, the fewest calls and units per confirmed order ({lines} order lines, items
under 1 KB) that keep its promise, beside what was counted:

{floor}
SNS: each saga event published once (6 for a confirmed order), alone or, under load, in a
`PublishBatch` with other records' events of the same invocation; SQS: one delivery per queue
an event is routed to (10), and per invocation one receive and one batch delete.

### Cost

From the counts above; durations measured (API: fan-out p50 at payment latency 0; consumers:
their invocations' time in the throughput run) and, since those were measured against the
emulator (tens to hundreds of milliseconds per call, so an upper bound), also AWS-like
(assumed, below); invocations per order from the throughput run's batches; these list prices
(us-east-1, without free tiers; check the pricing pages): HTTP API ${http}/million requests;
Lambda arm64 ${gbs}/GB-s and ${lreq}/million requests; SNS ${sns}/million publishes; SQS
${sqs}/million requests; DynamoDB on-demand ${wru}/million write units and ${rru}/million read
units. Every function has 256 MB. Not in the totals: the e-mail itself (SES, ${ses}/million,
the same in every design).

{loads}
{cost}
The same saga priced as its peers would run it, AWS-like durations (Step Functions: Standard
${sfn_standard}/million state transitions; Express ${sfn_express}/million executions and
${sfn_express_gbs}/GB-s in 64 MB steps; state transitions counted from the workflow
`benchmarks/saga.asl.json` on the confirmed path, by `benchmarks/src/step_functions.rs`; its
tasks write the same effects ours do):

{peers}
What a function's memory size buys (Lambda gives CPU in proportion to memory, a full vCPU at
1,769 MB): the highest peak measured of any function is {peak_mib:.1} MiB (section 4 under
load, section 5 at ready); our consumer's CPU is {cpu_per_record} per record at a full CPU
(inventory, section 4), stretched by the share; invocations as in the throughput run:

{memory}
Every function stays at 256 MB: memory is never the limit (under a tenth of 128 MB is used),
and at 128 MB each hop of the saga (four between a placement and its shipment) would wait
longer for the same records' CPU, to save cents per million orders.

At rest: DynamoDB storage, CloudWatch alarms (USD 0.10 a month each), and the event source
mappings' idle long polls of SQS (each poller about 130,000 requests a month: cents per queue).

## 7. The throughput-latency curve

Orders offered at steady rates, open loop (each order sent on its tick, answered or not), each
rate for {curve_seconds} s on a fresh system (emulator included), the payment gateway answering at
once; the POST's latency (in process, as section 1), and the time from the POST to the
`OrderConfirmed` the order service published (its own time, seen as its readers receive it).
The sweep stops after the first rate whose orders are not all confirmed 60 s after the last was
sent, or whose p99 to confirmation passes 10 s. The knee: the highest rate whose p99 to confirmation stays under 2 s.

{curve_before}
This run: the knee at **{knee}**.

{curve}
![latency by offered rate](benchmarks/charts/curve.svg)

## 8. Standard and FIFO ordering

The template's `Ordering` parameter, compared on the same orders, a fresh system per setting
(`benchmarks/src/ordering.rs`; `orderflow-benchmarks --only ordering`), payment's gateway
answering at once, `MaxReceiveCount` {max_receive_count} and {visibility} s visibility timeouts.
First {ordering_orders} orders alone, {ordering_concurrency} in flight at once. Then a poisoned
order: the gateway fails every authorization of it (a poison that never heals), and its customer
cancels it at once; the same {ordering_orders} orders follow. On standard queues payment hears of
the cancellation at once, whatever happens to the `OrderPlaced` before it; on FIFO the
cancellation waits in the order's message group behind the failing `OrderPlaced` until that has
been received {max_receive_count} times and moved to the DLQ (at most {fifo_hold} here; with the
template's 70 s and 5 receives, about six minutes). The other orders' groups go on meanwhile.

{ordering}
"#,
        orders = decoupling.latency.first().and_then(|r| r.runs.first()).map_or(0, |r| r.fanout.count),
        paused_orders = decoupling
            .latency
            .first()
            .and_then(|r| r.runs.first())
            .map_or(0, |r| r.fanout_alone.count),
        runs = decoupling.latency.first().map_or(0, |r| r.runs.len()),
        concurrency = if args.smoke { 4 } else { 8 },
        latency = decoupling.latency_table().markdown(),
        saga = decoupling.saga_table().markdown(),
        slowest = decoupling.slowest_lines(),
        availability = decoupling.availability_table().markdown(),
        pollers = system::POLLERS,
        throughput = throughput.table().markdown(),
        calls = throughput.calls_table().markdown(),
        per_record = per_record.markdown(),
        metrics_cost = metrics_cost
            .map(|cost| format!("{:+.1} %", cost * 100.0))
            .unwrap_or_else(|| "not measured in this run".to_owned()),
        binaries = args
            .binaries
            .strip_prefix(project_root())
            .unwrap_or(&args.binaries)
            .display(),
        peer_records = peers.rows.first().map_or(0, |r| r.records),
        peer_table = peers.table().markdown(),
        cold_runs = cold.rows.first().map_or(0, |r| r.init.count),
        cold = cold.table().markdown(),
        http = cost::HTTP_API_PER_MILLION,
        gbs = cost::LAMBDA_ARM_PER_GB_SECOND,
        lreq = cost::LAMBDA_REQUESTS_PER_MILLION,
        sns = cost::SNS_PUBLISHES_PER_MILLION,
        sqs = cost::SQS_REQUESTS_PER_MILLION,
        wru = cost::DYNAMODB_WRITE_UNITS_PER_MILLION,
        rru = cost::DYNAMODB_READ_UNITS_PER_MILLION,
        loads = cost::loads_table(&throughput.consumers).markdown(),
        cost = cost.table().markdown(),
        per_kind = costs.calls.orders_per_kind,
        calls_summary = costs.calls.summary_table().markdown(),
        calls_functions = costs.calls.functions_table().markdown(),
        lines = system_order_lines().unwrap_or_default(),
        item_steps = costs.calls.item_table().markdown(),
        floor = floor::table(costs.floors, costs.calls).markdown(),
        ses = cost::SES_EMAILS_PER_MILLION,
        sfn_standard = cost::STEP_FUNCTIONS_STANDARD_TRANSITIONS_PER_MILLION,
        sfn_express = cost::STEP_FUNCTIONS_EXPRESS_REQUESTS_PER_MILLION,
        sfn_express_gbs = cost::STEP_FUNCTIONS_EXPRESS_PER_GB_SECOND,
        peers = cost::peers_table(costs.peers).markdown(),
        curve_seconds = costs.curve.seconds,
        peak_mib = costs.memory.peak_mib,
        cpu_per_record = stats::ms(costs.memory.cpu_per_record),
        memory = cost::memory_table(costs.memory).markdown(),
        curve_before = costs.before.map_or_else(String::new, |before| format!(
            "Before the calls were cut (`benchmarks/curve-before.json`, measured with `orderflow-benchmarks --only curve --label before` on the code of 1ef5726, before each effect became one write, with this benchmark added): the knee at **{}**.\n\n{}\n![before](benchmarks/charts/curve-before.svg)\n",
            before.knee_text(),
            before.table().markdown()
        )),
        knee = costs.curve.knee_text(),
        ordering = costs.ordering.table().markdown(),
        ordering_orders = costs.ordering.rows.first().map_or(0, |r| r.alone.orders),
        ordering_concurrency = ordering::CONCURRENCY,
        max_receive_count = ordering::MAX_RECEIVE_COUNT,
        visibility = ordering::VISIBILITY_TIMEOUT,
        fifo_hold = stats::ms(ordering::fifo_hold()),
        curve = costs.curve.table().markdown(),
    )
}
