//! `orderflow`: run the order fan-out locally, and operate it.
//!
//! ```text
//! orderflow demo                       bring everything up, push sample orders through, shut down
//! orderflow up [--port N]              bring everything up and serve until Ctrl-C
//! orderflow setup                      install the pinned emulator into .local/venv
//! orderflow audit                      check the end state of every order
//! orderflow dlq list <consumer>        what is in a consumer's dead-letter queue
//! orderflow dlq redrive <consumer>     move it back to the consumer's queue
//! orderflow dlq purge <consumer> --yes delete it
//! ```
//!
//! The operator commands reach the system at `--endpoint URL` (or `AWS_ENDPOINT_URL`, or AWS)
//! with resource names prefixed `--prefix P` (default `orderflow-`, what `up` uses).

use std::net::SocketAddr;
use std::process::ExitCode;

use orderflow::provision::{locate, Deployment};
use orderflow::runtime::{sdk_config, LocalRuntime, RuntimeOptions};
use orderflow::template::Topology;

const USAGE: &str = "usage: orderflow <demo | up [--port N] | setup | audit | dlq <list|redrive|purge> <consumer> [--yes]>
  operator commands take [--endpoint URL] [--prefix PREFIX]";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The demo prints its own account of what happened; the services' logs would drown it.
    let quiet = args.first().is_some_and(|a| a == "demo");
    lambda_kit::telemetry::init_with_default(if quiet { "warn" } else { "info" });
    let result = match args.first().map(String::as_str) {
        Some("demo") => {
            orderflow::demo::run(RuntimeOptions {
                http_address: SocketAddr::from(([127, 0, 0, 1], 0)),
                ..RuntimeOptions::default()
            })
            .await
        }
        Some("up") => up(&args[1..]).await,
        Some("setup") => orderflow::emulator::install()
            .map(|python| println!("emulator installed: {}", python.display()))
            .map_err(Into::into),
        Some("audit") => audit(&args[1..]).await,
        Some("dlq") => dlq(&args[1..]).await,
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--name value` from `args`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

async fn up(args: &[String]) -> Result<(), BoxError> {
    let mut options = RuntimeOptions::default();
    if let Some(port) = flag(args, "--port") {
        let port = port.parse().map_err(|_| format!("bad port {port:?}"))?;
        options.http_address.set_port(port);
    }
    let prefix = options.provision.prefix.clone();
    let runtime = LocalRuntime::start(options).await?;
    orderflow::demo::seed_catalogue(&runtime).await?;
    let endpoint = runtime.endpoint().unwrap_or_default();
    println!(
        "HTTP API: {}/orders   (AWS emulator: {endpoint})",
        runtime.api_url()
    );
    println!(
        "try: curl -s -XPOST {}/orders -H 'content-type: application/json' -d '{}'",
        runtime.api_url(),
        orderflow::demo::order_body("ada", &[("SKU-MOUSE", 1, 2499)])
    );
    println!("operate: cargo run -- audit --endpoint {endpoint} --prefix {prefix}");
    println!("Ctrl-C stops everything.");
    tokio::signal::ctrl_c().await?;
    runtime.shutdown().await;
    Ok(())
}

/// The SDK configuration, template and deployment the operator commands work on.
async fn operated(
    args: &[String],
) -> Result<(aws_config::SdkConfig, Topology, Deployment), BoxError> {
    let sdk = sdk_config(flag(args, "--endpoint")).await;
    let topology = Topology::load(&orderflow::emulator::project_root().join("template.yaml"))?;
    let prefix = flag(args, "--prefix").unwrap_or("orderflow-");
    let deployment = locate(&topology, &sdk, prefix).await?;
    Ok((sdk, topology, deployment))
}

async fn audit(args: &[String]) -> Result<(), BoxError> {
    let (sdk, _, deployment) = operated(args).await?;
    let expectations = orderflow::audit::Expectations::default();
    let report = orderflow::audit::audit(&sdk, &deployment, &expectations).await?;
    print!("{report}");
    if report.is_clean() {
        Ok(())
    } else {
        Err("the audit found problems".into())
    }
}

async fn dlq(args: &[String]) -> Result<(), BoxError> {
    let (Some(action), Some(consumer)) = (args.first(), args.get(1)) else {
        return Err(USAGE.into());
    };
    let (sdk, topology, deployment) = operated(args).await?;
    let (source, dead_letters) =
        orderflow::dlq::queues_of(&topology, consumer).ok_or_else(|| {
            format!("no consumer {consumer:?} with a dead-letter queue in the template")
        })?;
    let dlq_url = deployment.reference(&dead_letters);
    match action.as_str() {
        "list" => {
            let listed = orderflow::dlq::list(&sdk, &dlq_url, 100).await?;
            println!("{} message(s) in {dead_letters}", listed.len());
            for letter in listed {
                println!(
                    "{}  event {}  order {}  received {}x  {}",
                    letter.message_id,
                    letter.event_id.as_deref().unwrap_or("-"),
                    letter.order_id.as_deref().unwrap_or("-"),
                    letter.receive_count,
                    letter.excerpt
                );
            }
        }
        "redrive" => {
            let outcome =
                orderflow::dlq::redrive(&sdk, &deployment, &source, &dead_letters).await?;
            println!("{dead_letters} -> {source}: {outcome:?}");
        }
        "purge" => {
            orderflow::dlq::purge(&sdk, &dlq_url, args.iter().any(|a| a == "--yes")).await?;
            println!("{dead_letters} purged");
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}
