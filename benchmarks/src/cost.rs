//! Section 6 - Cost per million orders on AWS, from the measured durations and the public list prices.

use std::time::Duration;

use crate::report::Table;

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

/// DynamoDB units per confirmed order, from the code: a transactional write costs 2 units per
/// item, a strongly consistent read of an item under 4 KB one read unit. Inventory: 1
/// transaction of (2 skus + decision + idempotency entry) = 8 WU. Payment: authorize and
/// capture, each a read of the record and a transaction of 2 items = 8 WU, 2 RU. Shipping: 1
/// transaction of 2 items = 4 WU, 1 RU. Notification: the claim (1) and 1 transaction of 2
/// items (4) = 5 WU. Order service: the API's record (1 WU); each of the 5 outcomes it hears
/// (placed, reserved, authorized, captured, shipped) a read and a transaction of 2 items
/// (5 x 4 WU, 5 RU); the decision marked announced (1 WU). Not counted: the API's catalogue
/// read, an eventually consistent `BatchGetItem` of at most one read per sku per warm instance
/// every `CATALOGUE_CACHE_SECONDS` (10 s): next to nothing per order under steady traffic.
pub const WRITE_UNITS_PER_ORDER: f64 = 8.0 + 8.0 + 4.0 + 5.0 + 1.0 + 20.0 + 1.0;
pub const READ_UNITS_PER_ORDER: f64 = 2.0 + 1.0 + 5.0;

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

pub fn estimate(orders: u64, api_duration: Duration, consumers: &[ConsumerLoad]) -> Results {
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
    let publishes = order_events::CONFIRMED_ORDER_EVENTS.len() as f64;
    line(
        "SNS",
        format!("{publishes} publishes per confirmed order, one per saga event (deliveries to SQS are free)"),
        publishes * SNS_PUBLISHES_PER_MILLION,
    );
    let deliveries: f64 = consumers.iter().map(|c| c.records as f64).sum::<f64>() / orders;
    let sqs_requests = deliveries + 2.0 * invocations_per_order;
    line(
        "SQS",
        format!("{sqs_requests:.2} requests per order: {deliveries:.2} deliveries (measured), a receive and a batch delete per invocation (idle long polls not counted)"),
        sqs_requests * SQS_REQUESTS_PER_MILLION,
    );
    line(
        "DynamoDB (on-demand)",
        format!("{WRITE_UNITS_PER_ORDER} write units + {READ_UNITS_PER_ORDER} read units per confirmed order (counted from the code)"),
        WRITE_UNITS_PER_ORDER * DYNAMODB_WRITE_UNITS_PER_MILLION
            + READ_UNITS_PER_ORDER * DYNAMODB_READ_UNITS_PER_MILLION,
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
        let results = estimate(1000, Duration::from_millis(10), &consumers);
        // 0.1 invocations per order; 10 ms + 10 ms of compute per order.
        let lambda_requests = &results.lines[1];
        assert!((lambda_requests.2 - 1.1 * 0.20).abs() < 1e-9);
        let compute = &results.lines[2];
        assert!((compute.2 - 0.020 * 0.25 * LAMBDA_ARM_PER_GB_SECOND * 1e6).abs() < 1e-9);
        let sum: f64 = results.lines.iter().map(|l| l.2).sum();
        assert!((results.total() - sum).abs() < 1e-12);
        let aws_like = (0.030 + 0.1 * 0.060) * 0.25 * LAMBDA_ARM_PER_GB_SECOND * 1e6;
        assert!((results.aws_like_compute.1 - aws_like).abs() < 1e-9);
        assert!((results.aws_like_total() - (sum - compute.2 + aws_like)).abs() < 1e-9);
    }
}
