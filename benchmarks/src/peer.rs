//! Section 4 - The peer a user would pick instead: the inventory consumer written with Powertools for AWS
//! Lambda (Python), against ours, each as a process under the same local Runtime API, on the
//! same batches, against the same emulator (each with tables of its own).

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_config::SdkConfig;
use inventory::DynamoInventory;
use local_runtime::emulator::project_root;
use local_runtime::provision::{provision, ProvisionOptions};
use local_runtime::sdk::Endpoints;
use local_runtime::template::Topology;

use crate::report::Table;
use crate::runtime_api::{run_function, ProcessRun};
use crate::steps::Steps;
use crate::system::{BenchResult, SKUS};

pub struct Row {
    pub name: String,
    pub records: usize,
    pub failed_records: usize,
    pub run: ProcessRun,
}

pub struct Results {
    pub rows: Vec<Row>,
}

/// Creates `.local/bench-venv` with the pinned Powertools, unless it is there already.
pub fn powertools_python() -> BenchResult<PathBuf> {
    Ok(local_runtime::emulator::python_env(
        "bench-venv",
        "benchmarks/powertools/requirements.txt",
        || {},
    )?)
}

/// Steps this section reports: one per peer.
pub const STEPS: u64 = 2;

pub async fn run_peers(
    sdk: &SdkConfig,
    endpoints: &Endpoints,
    rust_inventory: &Path,
    records: usize,
    steps: &Steps,
) -> BenchResult<Results> {
    let python = powertools_python()?;
    let batches: Vec<String> = (0..records.div_ceil(10))
        .map(|_| {
            let events: Vec<_> = (0..10)
                .map(|_| order_events::testing::sample_event())
                .collect();
            serde_json::to_string(&order_events::testing::event_batch(&events))
        })
        .collect::<Result<_, _>>()?;
    let records = batches.len() * 10;
    let topology = Topology::load(&project_root().join("template.yaml"), &Default::default())?;

    let bootstrap = project_root().join("benchmarks/powertools/bootstrap.py");
    let peers: [(&str, &Path, Vec<&str>); STEPS as usize] = [
        ("Rust (this project)", rust_inventory, vec![]),
        (
            "Python 3 + Powertools",
            python.as_path(),
            vec![bootstrap.to_str().unwrap_or_default()],
        ),
    ];
    let mut rows = Vec::new();
    for (i, (name, program, args)) in peers.into_iter().enumerate() {
        steps.start("4. Powertools peer", name);
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let options = ProvisionOptions {
            prefix: format!("p{i}{}-", &unique[unique.len() - 8..]),
            ..ProvisionOptions::default()
        };
        let deployment = provision(&topology, sdk, &options).await?;
        let inventory_table = deployment.reference("InventoryTable");
        let idempotency_table = deployment.reference("IdempotencyTable");
        let stock =
            DynamoInventory::new(aws_sdk_dynamodb::Client::new(sdk), inventory_table.clone());
        for sku in SKUS {
            stock.set_stock(sku, 100_000_000).await?;
        }
        let mut env = vec![
            (lambda_kit::spec::SERVICE_TABLE.to_owned(), inventory_table),
            ("IDEMPOTENCY_TABLE".to_owned(), idempotency_table),
            // Ours announces each outcome (StockReserved) as in the saga; the peer does not.
            (
                "TOPIC_ARN".to_owned(),
                deployment.reference("OrderEventsTopic"),
            ),
            ("AWS_ACCESS_KEY_ID".to_owned(), "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "test".to_owned()),
            ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
            ("AWS_DEFAULT_REGION".to_owned(), "us-east-1".to_owned()),
            ("POWERTOOLS_SERVICE_NAME".to_owned(), "inventory".to_owned()),
        ];
        env.extend(endpoints.environment());
        let run = run_function(program, &args, &env, batches.clone()).await?;
        let failed_records = run
            .answers
            .iter()
            .map(|answer| match answer {
                Ok(body) => serde_json::from_str::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v["batchItemFailures"].as_array().map(Vec::len))
                    .unwrap_or(10),
                Err(_) => 10,
            })
            .sum();
        println!(
            "  {name}: init {}, CPU/1000 records {}, peak {} MiB, failed {failed_records}/{records}",
            crate::stats::ms(run.init),
            crate::stats::ms(cpu_per_thousand(&run, records)),
            run.peak_rss_kib / 1024
        );
        rows.push(Row {
            name: name.to_owned(),
            records,
            failed_records,
            run,
        });
    }
    Ok(Results { rows })
}

fn cpu_per_thousand(run: &ProcessRun, records: usize) -> Duration {
    run.total_cpu
        .saturating_sub(run.init_cpu)
        .mul_f64(1000.0 / records.max(1) as f64)
}

impl Results {
    pub fn table(&self) -> Table {
        let mut table = Table::new(&[
            "inventory consumer",
            "records (failed)",
            "init (start to first next)",
            "CPU in init",
            "CPU per 1,000 records",
            "wall per 10-record batch",
            "peak memory",
        ]);
        for row in &self.rows {
            table.row(vec![
                row.name.clone(),
                format!("{} ({})", row.records, row.failed_records),
                crate::stats::ms(row.run.init),
                crate::stats::cpu(row.run.init_cpu),
                crate::stats::ms(cpu_per_thousand(&row.run, row.records)),
                crate::stats::ms(row.run.processing.div_f64((row.records / 10).max(1) as f64)),
                format!("{:.1} MiB", row.run.peak_rss_kib as f64 / 1024.0),
            ]);
        }
        table
    }
}
