//! Section 5 - Cold start and size: each function's stripped release binary, and the time from process
//! start to ready for its first event under a local Lambda Runtime API.

use std::path::Path;
use std::time::Duration;

use orderflow::emulator::project_root;

use crate::report::Table;
use crate::runtime_api::run_function;
use crate::stats::{ms, Summary};
use crate::system::BenchResult;

/// (cargo binary, the template's function) of the five functions.
pub const FUNCTIONS: [(&str, &str); 5] = [
    ("order-api", "OrderApiFunction"),
    ("inventory", "InventoryFunction"),
    ("payment", "PaymentFunction"),
    ("shipping", "ShippingFunction"),
    ("notification", "NotificationFunction"),
];

pub struct Row {
    pub binary: &'static str,
    pub x86_64_bytes: Option<u64>,
    pub arm64_bytes: Option<u64>,
    pub init: Summary,
    pub init_cpu: Duration,
    pub rss_kib: u64,
}

pub struct Results {
    pub profile: String,
    pub rows: Vec<Row>,
}

/// Every setting any function reads at start, with placeholder values: a function's init
/// reads its configuration and builds its clients, and calls no AWS API.
fn environment() -> Vec<(String, String)> {
    [
        ("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:orders"),
        ("IDEMPOTENCY_TABLE", "idempotency"),
        ("INVENTORY_TABLE", "inventory"),
        ("PAYMENTS_TABLE", "payments"),
        ("SHIPMENTS_TABLE", "shipments"),
        ("NOTIFICATIONS_TABLE", "notifications"),
        ("SENDER_EMAIL", "orders@example.com"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub async fn run(binaries: &Path, profile: &str, runs: usize) -> BenchResult<Results> {
    let mut rows = Vec::new();
    for (binary, function) in FUNCTIONS {
        let path = binaries.join(binary);
        let arm64 = project_root()
            .join(".aws-sam/build")
            .join(function)
            .join("bootstrap");
        let mut inits = Vec::new();
        let mut init_cpu = Vec::new();
        let mut rss_kib = 0;
        for _ in 0..runs {
            let run = run_function(&path, &[], &environment(), Vec::new()).await?;
            inits.push(run.init);
            init_cpu.push(run.init_cpu);
            rss_kib = rss_kib.max(run.peak_rss_kib);
        }
        let row = Row {
            binary,
            x86_64_bytes: std::fs::metadata(&path).ok().map(|m| m.len()),
            arm64_bytes: std::fs::metadata(&arm64).ok().map(|m| m.len()),
            init: Summary::of(&inits),
            init_cpu: crate::stats::median(&init_cpu),
            rss_kib,
        };
        println!(
            "  {binary}: {} bytes x86_64, init p50 {} (max {})",
            row.x86_64_bytes.unwrap_or(0),
            ms(row.init.p50),
            ms(row.init.max)
        );
        rows.push(row);
    }
    Ok(Results {
        profile: profile.to_owned(),
        rows,
    })
}

fn size(bytes: Option<u64>) -> String {
    bytes.map_or("not built".to_owned(), |b| {
        format!("{:.2} MiB", b as f64 / (1024.0 * 1024.0))
    })
}

impl Results {
    pub fn table(&self) -> Table {
        let mut table = Table::new(&[
            "function",
            &format!("x86_64 ({} profile)", self.profile),
            "arm64 (sam build)",
            "ready for first event p50",
            "max",
            "CPU in init",
            "resident memory at ready",
        ]);
        for row in &self.rows {
            table.row(vec![
                row.binary.to_owned(),
                size(row.x86_64_bytes),
                size(row.arm64_bytes),
                ms(row.init.p50),
                ms(row.init.max),
                crate::stats::cpu(row.init_cpu),
                format!("{:.1} MiB", row.rss_kib as f64 / 1024.0),
            ]);
        }
        table
    }
}
