//! Section 6 - Cost per million orders on AWS, from the measured durations and the public list prices.

use std::time::Duration;

use crate::per_order::{self, Counted, Kind};
use crate::report::Table;
use crate::step_functions::{self, Path};
use crate::system::BenchResult;

/// us-east-1 list prices (USD) this estimate assumes; check the pricing pages before relying on
/// it. Free tiers are left out.
pub const HTTP_API_PER_MILLION: f64 = 1.00;
pub const LAMBDA_REQUESTS_PER_MILLION: f64 = 0.20;
pub const LAMBDA_ARM_PER_GB_SECOND: f64 = 0.000_013_333_4;
pub const SNS_PUBLISHES_PER_MILLION: f64 = 0.50;
pub const SQS_REQUESTS_PER_MILLION: f64 = 0.40;
pub const DYNAMODB_WRITE_UNITS_PER_MILLION: f64 = 0.625;
pub const DYNAMODB_READ_UNITS_PER_MILLION: f64 = 0.125;
pub const MEMORY_GB: f64 = 0.25;

/// Step Functions: Standard per state transition, Express per execution and per GB-second of
/// its duration (billed in 64 MB steps; the first duration tier's price).
pub const STEP_FUNCTIONS_STANDARD_TRANSITIONS_PER_MILLION: f64 = 25.0;
pub const STEP_FUNCTIONS_EXPRESS_REQUESTS_PER_MILLION: f64 = 1.00;
pub const STEP_FUNCTIONS_EXPRESS_PER_GB_SECOND: f64 = 0.000_016_67;
pub const STEP_FUNCTIONS_EXPRESS_MEMORY_GB: f64 = 0.0625;
/// SES: an e-mail, the same in every design (kept out of the totals).
pub const SES_EMAILS_PER_MILLION: f64 = 100.0;

/// One consumer's measured invocations.
pub struct ConsumerLoad {
    pub name: String,
    pub invocations: u64,
    pub records: u64,
    pub busy: Duration,
}

/// Durations this estimate assumes for AWS, where each DynamoDB, SQS or SES call takes
/// milliseconds rather than the emulator's tens to hundreds: an API request (validate, one
/// publish) and a consumer invocation (a batch's records run concurrently, each a few calls).
pub const AWS_API_REQUEST: Duration = Duration::from_millis(30);
pub const AWS_CONSUMER_INVOCATION: Duration = Duration::from_millis(60);

pub struct Results {
    /// (item, basis, USD per million orders), compute from the measured durations.
    pub lines: Vec<(String, String, f64)>,
    /// Compute from [`AWS_API_REQUEST`] and [`AWS_CONSUMER_INVOCATION`] instead.
    pub aws_like_compute: (String, f64),
}

pub fn estimate(
    orders: u64,
    api_duration: Duration,
    consumers: &[ConsumerLoad],
    counted: Counted,
) -> Results {
    let orders = orders.max(1) as f64;
    let million = 1_000_000.0;
    let mut lines = Vec::new();
    let mut line = |item: &str, basis: String, usd: f64| lines.push((item.to_owned(), basis, usd));

    line(
        "API Gateway (HTTP API)",
        "1 request per order".to_owned(),
        HTTP_API_PER_MILLION,
    );
    let invocations_per_order: f64 =
        consumers.iter().map(|c| c.invocations as f64).sum::<f64>() / orders;
    line(
        "Lambda requests",
        format!("1 API + {invocations_per_order:.2} consumer invocations per order (batches)"),
        (1.0 + invocations_per_order) * LAMBDA_REQUESTS_PER_MILLION,
    );
    let consumer_seconds: f64 =
        consumers.iter().map(|c| c.busy.as_secs_f64()).sum::<f64>() / orders;
    let seconds = api_duration.as_secs_f64() + consumer_seconds;
    line(
        "Lambda compute (arm64, 256 MB)",
        format!(
            "{:.1} ms per order: API {:.1} ms + consumers {:.1} ms (measured against the emulator)",
            seconds * 1000.0,
            api_duration.as_secs_f64() * 1000.0,
            consumer_seconds * 1000.0
        ),
        seconds * MEMORY_GB * LAMBDA_ARM_PER_GB_SECOND * million,
    );
    let aws_like_seconds = AWS_API_REQUEST.as_secs_f64()
        + invocations_per_order * AWS_CONSUMER_INVOCATION.as_secs_f64();
    let aws_like_compute = (
        format!(
            "{:.1} ms per order: {} ms per API request, {} ms per consumer invocation (assumed)",
            aws_like_seconds * 1000.0,
            AWS_API_REQUEST.as_millis(),
            AWS_CONSUMER_INVOCATION.as_millis()
        ),
        aws_like_seconds * MEMORY_GB * LAMBDA_ARM_PER_GB_SECOND * million,
    );
    let publishes = counted.publishes;
    line(
        "SNS",
        format!(
            "{publishes:.2} requests per order: Publish, and PublishBatch for up to 10 events (counted in the throughput run; deliveries to SQS are free)"
        ),
        publishes * SNS_PUBLISHES_PER_MILLION,
    );
    let deliveries = counted.deliveries;
    let sqs_requests = deliveries + 2.0 * invocations_per_order;
    line(
        "SQS",
        format!("{sqs_requests:.2} requests per order: {deliveries:.2} deliveries (counted), a receive and a batch delete per invocation (throughput run's batches; idle long polls not counted)"),
        sqs_requests * SQS_REQUESTS_PER_MILLION,
    );
    line(
        "DynamoDB (on-demand)",
        format!(
            "{:.2} write units + {:.2} read units per confirmed order (counted)",
            counted.write_units, counted.read_units
        ),
        counted.write_units * DYNAMODB_WRITE_UNITS_PER_MILLION
            + counted.read_units * DYNAMODB_READ_UNITS_PER_MILLION,
    );
    Results {
        lines,
        aws_like_compute,
    }
}

/// The measured consumer invocations the estimate uses.
pub fn loads_table(consumers: &[ConsumerLoad]) -> Table {
    let mut table = Table::new(&[
        "consumer",
        "invocations",
        "records per invocation",
        "mean invocation",
    ]);
    for load in consumers {
        table.row(vec![
            load.name.to_owned(),
            load.invocations.to_string(),
            format!(
                "{:.1}",
                load.records as f64 / load.invocations.max(1) as f64
            ),
            crate::stats::ms(load.busy.div_f64(load.invocations.max(1) as f64)),
        ]);
    }
    table
}

impl Results {
    /// The total with the measured durations.
    pub fn total(&self) -> f64 {
        self.lines.iter().map(|(_, _, usd)| usd).sum()
    }

    /// The total with the AWS-like durations in place of the measured ones.
    pub fn aws_like_total(&self) -> f64 {
        self.total() - self.lines.get(2).map_or(0.0, |l| l.2) + self.aws_like_compute.1
    }

    pub fn table(&self) -> Table {
        let mut table = Table::new(&["item", "per order", "USD per million orders"]);
        for (item, basis, usd) in &self.lines {
            table.row(vec![item.clone(), basis.clone(), format!("{usd:.2}")]);
        }
        table.row(vec![
            "**total**, measured durations".into(),
            String::new(),
            format!("**{:.2}**", self.total()),
        ]);
        table.row(vec![
            "Lambda compute, AWS-like durations".into(),
            self.aws_like_compute.0.clone(),
            format!("{:.2}", self.aws_like_compute.1),
        ]);
        table.row(vec![
            "**total**, AWS-like durations".into(),
            String::new(),
            format!("**{:.2}**", self.aws_like_total()),
        ]);
        table
    }
}

/// A design's cost per million confirmed orders, with what it is made of.
pub struct Peer {
    pub design: String,
    pub basis: String,
    pub usd: f64,
}

/// The same saga priced three more ways, beside ours (AWS-like durations): the Powertools
/// pattern (an idempotency entry written before and after each record's effect), and a Step
/// Functions workflow (`benchmarks/saga.asl.json`), Standard and Express.
pub fn peers(ours: &Results, calls: &per_order::Results) -> BenchResult<Vec<Peer>> {
    let million = 1_000_000.0;
    let confirmed = calls.total(Kind::Confirmed);
    let mut peers = vec![Peer {
        design: "ours: SNS/SQS fan-out, choreographed".into(),
        basis: "the table above".into(),
        usd: ours.aws_like_total(),
    }];
    // Powertools' idempotency: INPROGRESS before, COMPLETED after, each a write of about a unit.
    let entry_writes = 2.0 * confirmed.deliveries;
    peers.push(Peer {
        design: "the Powertools pattern on our fan-out".into(),
        basis: format!(
            "ours + {entry_writes:.0} write units: an entry written before and after the effect of each of the {:.0} records",
            confirmed.deliveries
        ),
        usd: ours.aws_like_total() + entry_writes * DYNAMODB_WRITE_UNITS_PER_MILLION,
    });

    let definition = step_functions::definition()?;
    let execution = step_functions::execute(&definition, Path::FirstRule)?;
    let cancellation = step_functions::execute(&definition, Path::Default)?;
    // The services' own effects stay what ours write (each task must still apply once); the
    // order's item is written by the API and by the workflow's confirmation.
    let services = calls
        .of(Kind::Confirmed)
        .iter()
        .filter(|(function, _)| function != order_state::OWNER);
    let (writes, reads) = services.fold((0.0, 0.0), |(w, r), (_, f)| {
        (w + f.write_units, r + f.read_units)
    });
    let writes = writes + execution.dynamodb_tasks as f64;
    let tasks = execution.lambda_tasks.len() as f64;
    let common = HTTP_API_PER_MILLION
        + (1.0 + tasks) * LAMBDA_REQUESTS_PER_MILLION
        + (AWS_API_REQUEST.as_secs_f64() + tasks * AWS_CONSUMER_INVOCATION.as_secs_f64())
            * MEMORY_GB
            * LAMBDA_ARM_PER_GB_SECOND
            * million
        + writes * DYNAMODB_WRITE_UNITS_PER_MILLION
        + reads * DYNAMODB_READ_UNITS_PER_MILLION;
    let basis = format!(
        "{} state transitions ({} for a cancellation); API + {tasks:.0} Lambda tasks ({} ms each); {writes:.1} write units + {reads:.1} read units",
        execution.transitions,
        cancellation.transitions,
        AWS_CONSUMER_INVOCATION.as_millis()
    );
    peers.push(Peer {
        design: "Step Functions Standard".into(),
        basis: basis.clone(),
        usd: common
            + execution.transitions as f64 * STEP_FUNCTIONS_STANDARD_TRANSITIONS_PER_MILLION,
    });
    let duration = tasks * AWS_CONSUMER_INVOCATION.as_secs_f64();
    peers.push(Peer {
        design: "Step Functions Express".into(),
        basis: format!(
            "{basis}; one execution of {:.0} ms at 64 MB",
            duration * 1000.0
        ),
        usd: common
            + STEP_FUNCTIONS_EXPRESS_REQUESTS_PER_MILLION
            + duration
                * STEP_FUNCTIONS_EXPRESS_MEMORY_GB
                * STEP_FUNCTIONS_EXPRESS_PER_GB_SECOND
                * million,
    });
    Ok(peers)
}

pub fn peers_table(peers: &[Peer]) -> Table {
    let mut table = Table::new(&[
        "design",
        "per confirmed order",
        "USD per million confirmed orders",
    ]);
    for peer in peers {
        table.row(vec![
            peer.design.clone(),
            peer.basis.clone(),
            format!("{:.2}", peer.usd),
        ]);
    }
    table
}

/// What a function's memory size buys on Lambda: memory, and CPU in proportion (a full vCPU at
/// 1,769 MB).
const MB_PER_VCPU: f64 = 1769.0;

/// The measurements the memory sizes are judged by.
pub struct MemoryBasis {
    /// The highest peak resident memory measured of any function.
    pub peak_mib: f64,
    /// CPU per record of our consumer at a full CPU (inventory under the Runtime API).
    pub cpu_per_record: Duration,
    pub records_per_invocation: f64,
    pub invocations_per_order: f64,
}

/// Per memory size: the CPU share, a consumer invocation's AWS-like time with its records' CPU
/// stretched by that share, and the Lambda compute of an order.
pub fn memory_table(basis: &MemoryBasis) -> Table {
    let mut table = Table::new(&[
        "memory",
        "vCPU share",
        "peak memory used",
        "a consumer invocation (AWS-like I/O + its records' CPU at that share)",
        "Lambda compute, USD per million orders",
    ]);
    for mb in [128.0, 256.0, 512.0] {
        let share = mb / MB_PER_VCPU;
        let cpu = basis.cpu_per_record.as_secs_f64() * basis.records_per_invocation / share;
        let invocation = AWS_CONSUMER_INVOCATION.as_secs_f64() + cpu;
        let seconds = AWS_API_REQUEST.as_secs_f64() + basis.invocations_per_order * invocation;
        let usd = seconds * mb / 1024.0 * LAMBDA_ARM_PER_GB_SECOND * 1_000_000.0;
        table.row(vec![
            format!("{mb:.0} MB"),
            format!("{share:.3}"),
            format!("{:.1} %", 100.0 * basis.peak_mib / mb),
            format!(
                "{:.0} ms ({:.1} records: {:.0} ms of CPU)",
                invocation * 1000.0,
                basis.records_per_invocation,
                cpu * 1000.0
            ),
            format!("{usd:.2}"),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_adds_up_its_lines() {
        let consumers = [ConsumerLoad {
            name: "inventory".to_owned(),
            invocations: 100,
            records: 1000,
            busy: Duration::from_secs(10),
        }];
        let counted = Counted {
            publishes: 6.0,
            deliveries: 10.0,
            write_units: 10.0,
            read_units: 4.0,
        };
        let results = estimate(1000, Duration::from_millis(10), &consumers, counted);
        // 0.1 invocations per order; 10 ms + 10 ms of compute per order.
        let lambda_requests = &results.lines[1];
        assert!((lambda_requests.2 - 1.1 * 0.20).abs() < 1e-9);
        let compute = &results.lines[2];
        assert!((compute.2 - 0.020 * 0.25 * LAMBDA_ARM_PER_GB_SECOND * 1e6).abs() < 1e-9);
        let dynamodb = &results.lines[5];
        assert!((dynamodb.2 - (10.0 * 0.625 + 4.0 * 0.125)).abs() < 1e-9);
        let sqs = &results.lines[4];
        assert!((sqs.2 - (10.0 + 2.0 * 0.1) * 0.40).abs() < 1e-9);
        let sum: f64 = results.lines.iter().map(|l| l.2).sum();
        assert!((results.total() - sum).abs() < 1e-12);
        let aws_like = (0.030 + 0.1 * 0.060) * 0.25 * LAMBDA_ARM_PER_GB_SECOND * 1e6;
        assert!((results.aws_like_compute.1 - aws_like).abs() < 1e-9);
        assert!((results.aws_like_total() - (sum - compute.2 + aws_like)).abs() < 1e-9);
    }
}
