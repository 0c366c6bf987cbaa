//! Section 5 - Cold start and size: each function's stripped release binary, and the time from process
//! start to ready for its first event under a local Lambda Runtime API.

use std::path::Path;
use std::time::Duration;

use local_runtime::emulator::project_root;
use local_runtime::template::{FunctionSpec, Resolver, Topology};

use crate::report::Table;
use crate::runtime_api::run_function;
use crate::stats::{ms, Summary};
use crate::steps::Steps;
use crate::system::BenchResult;

pub struct Row {
    pub binary: String,
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

/// The function's environment as the template gives it, with placeholders for the resources
/// (nothing is provisioned: a function's init reads its configuration and builds its clients,
/// and calls no AWS API), and dummy credentials.
fn environment(spec: &FunctionSpec, parameters: &Resolver) -> Vec<(String, String)> {
    let mut environment: Vec<(String, String)> = spec
        .environment
        .iter()
        .map(|(name, value)| {
            let resolved = parameters.string(value).unwrap_or_else(|_| {
                let resource = value["Ref"].as_str().unwrap_or("placeholder");
                if name.ends_with("_ARN") {
                    format!("arn:aws:sns:us-east-1:123456789012:{resource}")
                } else {
                    resource.to_owned()
                }
            });
            (name.clone(), resolved)
        })
        .collect();
    for (name, value) in [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ] {
        environment.push((name.to_owned(), value.to_owned()));
    }
    environment
}

pub async fn run(
    binaries: &Path,
    profile: &str,
    runs: usize,
    steps: &Steps,
) -> BenchResult<Results> {
    let template = project_root().join("template.yaml");
    let topology = Topology::load(&template, &Default::default())?;
    let parameters = Resolver {
        parameters: topology.parameters.clone(),
        ..Resolver::default()
    };
    let mut rows = Vec::new();
    for spec in &topology.functions {
        steps.start("5. cold start and size", &spec.binary);
        let binary = spec.binary.clone();
        let path = binaries.join(&binary);
        let arm64 = project_root()
            .join(".aws-sam/build")
            .join(&spec.logical_id)
            .join("bootstrap");
        let environment = environment(spec, &parameters);
        let mut inits = Vec::new();
        let mut init_cpu = Vec::new();
        let mut rss_kib = 0;
        for _ in 0..runs {
            let run = run_function(&path, &[], &environment, Vec::new()).await?;
            inits.push(run.init);
            init_cpu.push(run.init_cpu);
            rss_kib = rss_kib.max(run.peak_rss_kib);
        }
        let row = Row {
            binary: binary.clone(),
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
                row.binary.clone(),
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
