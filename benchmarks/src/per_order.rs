//! Section 6 - What one order costs in calls, counted: each kind of order placed on its own
//! through the local runtime, every AWS call its functions make counted by the kit's
//! interceptor (`lambda_kit::calls`: calls by API, DynamoDB write and read units sized by AWS's
//! rules), and the event source mappings' own SQS requests from the runtime's counters.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_kit::calls::{self, CallTally};
use lambda_kit::capacity::item_size;
use local_runtime::event_source::SourceStats;

use crate::report::Table;
use crate::steps::Steps;
use crate::system::{call, BenchResult, System};

/// The kinds of order whose calls are counted, and the status each ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Confirmed,
    StockRejected,
    Declined,
    CancelledByCustomer,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Confirmed,
        Kind::StockRejected,
        Kind::Declined,
        Kind::CancelledByCustomer,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Confirmed => "confirmed (and shipped)",
            Kind::StockRejected => "cancelled: out of stock",
            Kind::Declined => "cancelled: payment declined",
            Kind::CancelledByCustomer => "cancelled by the customer",
        }
    }

    /// The status its item ends in (a confirmed order is shipped too).
    fn ends(self) -> &'static str {
        match self {
            Kind::Confirmed => "CONFIRMED",
            _ => "CANCELLED",
        }
    }
}

/// What one function did per order of one kind (means over the orders measured).
#[derive(Debug, Clone, Default)]
pub struct FunctionCalls {
    /// Calls per order by "Service API" (`DynamoDB PutItem`).
    pub calls: BTreeMap<String, f64>,
    pub write_units: f64,
    pub read_units: f64,
    /// Writes counted at their lower bound (updates and deletes; see `lambda_kit::calls`).
    pub unsized_writes: f64,
    /// Records its event source mapping delivered, and its `ReceiveMessage` (those that brought
    /// records) and `DeleteMessageBatch` requests.
    pub deliveries: f64,
    pub receives: f64,
    pub deletes: f64,
}

impl FunctionCalls {
    /// SNS requests: `Publish` and `PublishBatch` calls (SNS bills a batch of small events as
    /// one request).
    pub fn sns_requests(&self) -> f64 {
        self.calls_to("SNS")
    }

    /// SQS requests made for this function: the function's own (a DLQ send) and its event
    /// source mapping's, with one request per delivery (SNS sending to the queue).
    pub fn sqs_requests(&self) -> f64 {
        self.calls_to("SQS") + self.deliveries + self.receives + self.deletes
    }

    /// Calls to one AWS service (as the SDK names it), every API together.
    fn calls_to(&self, service: &str) -> f64 {
        self.calls
            .iter()
            .filter(|(api, _)| api.split(' ').next() == Some(service))
            .map(|(_, n)| n)
            .sum()
    }
}

/// What a confirmed order costs in calls, counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counted {
    pub publishes: f64,
    pub deliveries: f64,
    pub write_units: f64,
    pub read_units: f64,
}

/// Per kind of order: each function's calls, in the order of the template's functions.
pub struct Results {
    pub orders_per_kind: u64,
    pub kinds: BTreeMap<Kind, Vec<(String, FunctionCalls)>>,
    /// A confirmed order's item in the orders table after each write, in bytes as DynamoDB
    /// sizes it: (what was written, size).
    pub order_item_steps: Vec<(&'static str, usize)>,
}

impl Results {
    pub fn of(&self, kind: Kind) -> &[(String, FunctionCalls)] {
        self.kinds.get(&kind).map(Vec::as_slice).unwrap_or_default()
    }

    /// One order of `kind`, all functions together.
    pub fn total(&self, kind: Kind) -> FunctionCalls {
        let mut total = FunctionCalls::default();
        for (_, f) in self.of(kind) {
            for (api, n) in &f.calls {
                *total.calls.entry(api.clone()).or_default() += n;
            }
            total.write_units += f.write_units;
            total.read_units += f.read_units;
            total.unsized_writes += f.unsized_writes;
            total.deliveries += f.deliveries;
            total.receives += f.receives;
            total.deletes += f.deletes;
        }
        total
    }

    /// What the cost estimate takes from one order of `kind`.
    pub fn counted(&self, kind: Kind) -> Counted {
        let total = self.total(kind);
        Counted {
            publishes: total.sns_requests(),
            deliveries: total.deliveries,
            write_units: total.write_units,
            read_units: total.read_units,
        }
    }

    /// A confirmed order's item after each write.
    pub fn item_table(&self) -> Table {
        let mut table = Table::new(&["after", "bytes", "write units per write"]);
        for (write, bytes) in &self.order_item_steps {
            table.row(vec![
                (*write).to_owned(),
                bytes.to_string(),
                number(lambda_kit::capacity::write_units(*bytes, false)),
            ]);
        }
        table
    }

    /// One row per kind: the order's calls, units, publishes and SQS requests.
    pub fn summary_table(&self) -> Table {
        let mut table = Table::new(&[
            "order",
            "DynamoDB calls",
            "write units",
            "read units",
            "SNS requests (Publish, PublishBatch)",
            "SQS requests (deliveries + receives + deletes)",
            "other calls",
        ]);
        for kind in Kind::ALL {
            let t = self.total(kind);
            let other: Vec<String> = t
                .calls
                .iter()
                .filter(|(k, _)| {
                    !k.starts_with("DynamoDB ") && !k.starts_with("SQS ") && !k.starts_with("SNS ")
                })
                .map(|(k, n)| format!("{k} {}", number(*n)))
                .collect();
            table.row(vec![
                kind.describe().to_owned(),
                number(t.calls_to("DynamoDB")),
                units(t.write_units, t.unsized_writes),
                number(t.read_units),
                number(t.sns_requests()),
                format!(
                    "{} ({} + {} + {})",
                    number(t.sqs_requests()),
                    number(t.deliveries),
                    number(t.receives),
                    number(t.deletes)
                ),
                if other.is_empty() {
                    "-".to_owned()
                } else {
                    other.join(", ")
                },
            ]);
        }
        table
    }

    /// One row per kind and function: its calls by API.
    pub fn functions_table(&self) -> Table {
        let mut table = Table::new(&[
            "order",
            "function",
            "calls by API",
            "write units",
            "read units",
            "SQS: deliveries, receives, deletes",
        ]);
        for kind in Kind::ALL {
            for (function, f) in self.of(kind) {
                let apis: Vec<String> = f
                    .calls
                    .iter()
                    .map(|(k, n)| format!("{k} {}", number(*n)))
                    .collect();
                if apis.is_empty() && f.deliveries == 0.0 {
                    continue;
                }
                table.row(vec![
                    kind.describe().to_owned(),
                    function.clone(),
                    if apis.is_empty() {
                        "-".to_owned()
                    } else {
                        apis.join(", ")
                    },
                    units(f.write_units, f.unsized_writes),
                    number(f.read_units),
                    format!(
                        "{}, {}, {}",
                        number(f.deliveries),
                        number(f.receives),
                        number(f.deletes)
                    ),
                ]);
            }
        }
        table
    }
}

fn number(n: f64) -> String {
    if (n - n.round()).abs() < 0.005 {
        format!("{n:.0}")
    } else {
        format!("{n:.2}")
    }
}

fn units(write_units: f64, unsized_writes: f64) -> String {
    if unsized_writes > 0.0 {
        format!(
            ">= {} ({} updates at their lower bound)",
            number(write_units),
            number(unsized_writes)
        )
    } else {
        number(write_units)
    }
}

/// Steps this section reports: one per kind.
pub const STEPS: u64 = Kind::ALL.len() as u64;

/// Places `orders` orders of each kind, one at a time, each left to settle before the next.
pub async fn run(system: &System, orders: u64, steps: &Steps) -> BenchResult<Results> {
    let gateway = system.gateway()?;
    gateway.set_latency(Duration::ZERO);
    let mut kinds = BTreeMap::new();
    let mut order_item_steps = Vec::new();
    for kind in Kind::ALL {
        steps.start("6. calls per order", kind.describe());
        settle(system).await?;
        calls::reset();
        let before = stats(system);
        let mut last = None;
        for _ in 0..orders {
            last = Some(place(system, kind).await?);
        }
        if let (Kind::Confirmed, Some(order_id)) = (kind, last) {
            order_item_steps = item_steps(order_item(system, &order_id).await?);
        }
        let after = stats(system);
        let counted = calls::snapshot();
        let mut functions = Vec::new();
        for function in system.runtime.topology().functions.iter() {
            let name = function.binary.as_str();
            let mut f = FunctionCalls::default();
            for (key, tally) in counted.iter().filter(|(k, _)| k.function == name) {
                add(&mut f, &format!("{} {}", key.service, key.operation), tally);
            }
            if let (Some(b), Some(a)) = (
                before.get(&function.logical_id),
                after.get(&function.logical_id),
            ) {
                f.deliveries = (a.records - b.records) as f64;
                f.receives = (a.receive_requests - b.receive_requests) as f64;
                f.deletes = (a.delete_requests - b.delete_requests) as f64;
            }
            per_order(&mut f, orders as f64);
            functions.push((name.to_owned(), f));
        }
        kinds.insert(kind, functions);
    }
    gateway.set_latency(Duration::ZERO);
    gateway.set_decline_rate(0.0);
    Ok(Results {
        orders_per_kind: orders,
        kinds,
        order_item_steps,
    })
}

fn add(f: &mut FunctionCalls, api: &str, tally: &CallTally) {
    *f.calls.entry(api.to_owned()).or_default() += tally.calls as f64;
    f.write_units += tally.write_units;
    f.read_units += tally.read_units;
    f.unsized_writes += tally.unsized_writes as f64;
}

fn per_order(f: &mut FunctionCalls, orders: f64) {
    for n in f.calls.values_mut() {
        *n /= orders;
    }
    for n in [
        &mut f.write_units,
        &mut f.read_units,
        &mut f.unsized_writes,
        &mut f.deliveries,
        &mut f.receives,
        &mut f.deletes,
    ] {
        *n /= orders;
    }
}

fn stats(system: &System) -> BTreeMap<String, SourceStats> {
    system
        .runtime
        .topology()
        .functions
        .iter()
        .map(|f| (f.logical_id.clone(), system.runtime.stats(&f.logical_id)))
        .collect()
}

/// Places one order of `kind` and waits until it has ended as it should and every queue is
/// quiet; its id.
async fn place(system: &System, kind: Kind) -> BenchResult<String> {
    let gateway = system.gateway()?;
    let body = match kind {
        Kind::StockRejected => orderflow::shop::order_body(&[
            ("SKU-WEBCAM", 1, price_of("SKU-WEBCAM")?),
            ("SKU-MOUSE", 1, price_of("SKU-MOUSE")?),
        ]),
        _ => system.order.clone(),
    };
    gateway.set_decline_rate(if kind == Kind::Declined { 1.0 } else { 0.0 });
    // Payment is slow while the customer cancels, so the cancellation comes before a decision.
    gateway.set_latency(if kind == Kind::CancelledByCustomer {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    });
    let api = system.fanout.as_ref();
    let (status, placed) = call(
        api,
        order_api::PLACE_ORDER,
        "/orders",
        &[],
        body.to_string().into_bytes(),
    )
    .await;
    let order_id = placed["orderId"]
        .as_str()
        .ok_or(format!("POST /orders answered {status}: {placed}"))?
        .to_owned();
    if kind == Kind::CancelledByCustomer {
        let path = format!("/orders/{order_id}/cancel");
        let key = [("idempotency-key", uuid::Uuid::now_v7().to_string())];
        let (status, answer) = call(api, order_api::CANCEL_ORDER, &path, &key, Vec::new()).await;
        if status != 202 {
            return Err(format!("the cancellation was answered {status}: {answer}").into());
        }
    }
    settle(system).await?;
    let mut item = order_item(system, &order_id).await?;
    let status = item.remove("status");
    let status = status.as_ref().and_then(|s| s.as_s().ok()).cloned();
    let shipped = item.contains_key("shipped");
    if status.as_deref() != Some(kind.ends()) || shipped != (kind == Kind::Confirmed) {
        return Err(format!(
            "a {} order ended {status:?}, shipped: {shipped}",
            kind.describe()
        )
        .into());
    }
    Ok(order_id)
}

type Item = std::collections::HashMap<String, AttributeValue>;

/// The order's item as stored (read outside any function's scope: not counted).
async fn order_item(system: &System, order_id: &str) -> BenchResult<Item> {
    let client = aws_sdk_dynamodb::Client::new(system.runtime.sdk());
    Ok(client
        .get_item()
        .table_name(system.runtime.deployment().reference("OrdersTable"))
        .key(
            order_state::OrderItem::KEY,
            AttributeValue::S(order_id.to_owned()),
        )
        .consistent_read(true)
        .send()
        .await?
        .item
        .ok_or(format!("order {order_id} is not in the orders table"))?)
}

/// A confirmed and shipped order's item, taken back write by write: the attributes each of the
/// order service's writes added (and the key it recorded), the last write first.
const ORDER_WRITES: [(&str, &[&str], &str); 4] = [
    ("ShipmentCreated", &["shipped"], "ShipmentCreated"),
    ("PaymentCaptured", &["captured"], "PaymentCaptured"),
    (
        "PaymentAuthorized (and the confirmation)",
        &["payment", "confirmedAt", "decidedBy"],
        "PaymentAuthorized",
    ),
    ("StockReserved", &["stock"], "StockReserved"),
];

/// The size of a confirmed order's item after each write, the API's insert first.
fn item_steps(mut item: Item) -> Vec<(&'static str, usize)> {
    let mut steps = Vec::new();
    for (write, attributes, key) in ORDER_WRITES {
        steps.push((write, item_size(&item)));
        for attribute in attributes {
            item.remove(*attribute);
        }
        if let Some(AttributeValue::M(applied)) =
            item.get_mut(lambda_kit::effect::APPLIED_ATTRIBUTE)
        {
            applied.remove(key);
        }
    }
    item.remove(lambda_kit::effect::APPLIED_ATTRIBUTE);
    item.insert("status".into(), AttributeValue::S("PENDING".into()));
    steps.push(("the order API's insert", item_size(&item)));
    steps.reverse();
    steps
}

fn price_of(sku: &str) -> BenchResult<i64> {
    orderflow::shop::CATALOGUE
        .iter()
        .find(|(s, ..)| *s == sku)
        .map(|(_, price, _)| *price)
        .ok_or_else(|| format!("{sku} is not in the catalogue").into())
}

/// Waits until the consumers have received nothing for three long polls (longer than the
/// slow payment call of a cancellation by the customer) and have deleted or failed every
/// record they received.
async fn settle(system: &System) -> BenchResult<()> {
    const QUIET: Duration = Duration::from_millis(3_000);
    let started = Instant::now();
    let mut last = (u64::MAX, Instant::now());
    loop {
        let received = system.records_received();
        let open = system.consumers.iter().any(|c| {
            let s = system.runtime.stats(&c.function);
            s.deleted + s.failed_records < s.records
        });
        if received != last.0 || open {
            last = (received, Instant::now());
        } else if last.1.elapsed() >= QUIET {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err("the queues did not settle in 2 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
