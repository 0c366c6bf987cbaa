//! `orderflow`: run the order fan-out locally.
//!
//! ```text
//! orderflow demo            bring everything up, push sample orders through, shut down
//! orderflow up [--port N]   bring everything up and serve until Ctrl-C
//! orderflow setup           install the pinned emulator into .local/venv
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;

use orderflow::runtime::{LocalRuntime, RuntimeOptions};

const USAGE: &str = "usage: orderflow <demo | up [--port N] | setup>";

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
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn up(args: &[String]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut options = RuntimeOptions::default();
    match args {
        [] => {}
        [flag, port] if flag == "--port" => options
            .http_address
            .set_port(port.parse().map_err(|_| format!("bad port {port:?}"))?),
        _ => return Err(USAGE.into()),
    }
    let runtime = LocalRuntime::start(options).await?;
    orderflow::demo::seed_catalogue(&runtime).await?;
    println!(
        "HTTP API: {}/orders   (AWS emulator: {})",
        runtime.api_url(),
        runtime.endpoint().unwrap_or_default()
    );
    println!(
        "try: curl -s -XPOST {}/orders -H 'content-type: application/json' -d '{}'",
        runtime.api_url(),
        orderflow::demo::order_body("ada", &[("SKU-MOUSE", 1, 2499)])
    );
    println!("Ctrl-C stops everything.");
    tokio::signal::ctrl_c().await?;
    runtime.shutdown().await;
    Ok(())
}
