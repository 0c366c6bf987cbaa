//! `orderflow picture`: a PNG of the live view during a burst while payment is stopped, taken
//! by headless Chromium (the picture in the README and docs/operations.md).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use local_runtime::client::post_order;
use local_runtime::runtime::{LocalRuntime, RuntimeOptions};

use super::browser::Browser;
use crate::shop;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The consumer stopped for the picture.
const STOPPED: &str = "PaymentFunction";

/// Starts the system on free ports with payment's event source disabled, places `orders`
/// orders from the demo's customers, lets the backlog age a few seconds, and writes the page
/// as `out`.
pub async fn take(out: &Path, orders: usize) -> Result<(), BoxError> {
    let mut options = RuntimeOptions {
        http_address: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..RuntimeOptions::default()
    };
    options.disabled_sources.insert(STOPPED.to_owned());
    println!("Starting the system with {STOPPED}'s event source disabled ...");
    let runtime = LocalRuntime::start(options, crate::services::registry()).await?;
    let result = picture(&runtime, out, orders).await;
    runtime.shutdown().await;
    result
}

async fn picture(runtime: &LocalRuntime, out: &Path, orders: usize) -> Result<(), BoxError> {
    shop::seed_catalogue(runtime).await?;
    let url = super::serve(runtime, shop::customers());
    let browser = Browser::start(1400, 1150).await?;
    browser.client.goto(&url).await?;
    let customers = shop::customers();
    let lines = [("SKU-MOUSE", 1, 2_499), ("SKU-KEYBOARD", 1, 8_999)];
    println!("Placing {orders} orders ...");
    for i in 0..orders {
        let name = customers[i % customers.len()]
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned();
        let (bearer, body) = shop::order_request(runtime, &name, &lines[i % 2..i % 2 + 1]).await?;
        post_order(&runtime.api_url(), bearer.as_deref(), &body).await?;
    }
    // Payment's backlog ages while the others keep up.
    browser
        .wait_for(
            "const lane = document.querySelector('.lane[data-service=\"payment\"]');
             return lane && Number(lane.querySelector('.lag').dataset.ms) >= 5000",
            Duration::from_secs(60),
        )
        .await?;
    let png = browser.client.screenshot().await?;
    browser.close().await;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, &png)?;
    println!("Wrote {} ({} KiB)", out.display(), png.len() / 1024);
    Ok(())
}
