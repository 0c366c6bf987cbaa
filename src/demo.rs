//! The demo: brings the system up, sends sample orders, and shows what each service did and
//! when. The API answers in milliseconds while the (deliberately slow) payment service takes
//! seconds: the order service is decoupled from the others in time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use inventory::DynamoInventory;
use serde_json::{json, Value};

use crate::report::{order_report, OrderReport};
use local_runtime::client::post_order;
use local_runtime::runtime::{LocalRuntime, RuntimeError, RuntimeOptions};

/// Stock the local system starts with. `SKU-WEBCAM` is sold out.
pub const CATALOGUE: &[(&str, u64)] = &[
    ("SKU-KEYBOARD", 50),
    ("SKU-MOUSE", 100),
    ("SKU-MONITOR", 20),
    ("SKU-WEBCAM", 0),
];

/// Payment gateway latency in the demo.
pub const DEMO_PAYMENT_LATENCY_MS: u64 = 3_000;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Puts [`CATALOGUE`] on the inventory table.
pub async fn seed_catalogue(runtime: &LocalRuntime) -> Result<(), BoxError> {
    let inventory = DynamoInventory::new(
        aws_sdk_dynamodb::Client::new(runtime.sdk()),
        runtime.deployment().reference("InventoryTable"),
        runtime.deployment().reference("IdempotencyTable"),
    );
    for (sku, stock) in CATALOGUE {
        inventory.set_stock(sku, *stock).await?;
    }
    Ok(())
}

/// A request body for a sample order.
pub fn order_body(customer: &str, lines: &[(&str, i64, i64)]) -> Value {
    json!({
        "customerId": customer,
        "customerEmail": format!("{customer}@example.com"),
        "currency": "EUR",
        "items": lines.iter().map(|(sku, quantity, price)| json!({
            "sku": sku, "quantity": quantity, "unitPriceMinor": price
        })).collect::<Vec<_>>(),
    })
}

fn sample_orders() -> Vec<(&'static str, Value)> {
    vec![
        (
            "ada",
            order_body(
                "ada",
                &[("SKU-KEYBOARD", 1, 8_999), ("SKU-MOUSE", 2, 2_499)],
            ),
        ),
        ("grace", order_body("grace", &[("SKU-MONITOR", 1, 24_900)])),
        ("linus", order_body("linus", &[("SKU-MOUSE", 1, 2_499)])),
        (
            "barbara",
            order_body(
                "barbara",
                &[("SKU-KEYBOARD", 2, 8_999), ("SKU-MONITOR", 2, 24_900)],
            ),
        ),
        (
            "ken (sold-out sku)",
            order_body("ken", &[("SKU-WEBCAM", 1, 5_900)]),
        ),
        (
            "dennis (invalid)",
            order_body("dennis", &[("SKU-MOUSE", 0, 2_499)]),
        ),
    ]
}

struct Placed {
    label: &'static str,
    order_id: String,
    sent_at: DateTime<Utc>,
    api_ms: f64,
}

/// Runs the demo, printing as it goes, and shuts everything down.
pub async fn run(mut options: RuntimeOptions) -> Result<(), BoxError> {
    options.environment_overrides.insert(
        "PaymentFunction".into(),
        BTreeMap::from([(
            "PAYMENT_LATENCY_MS".into(),
            DEMO_PAYMENT_LATENCY_MS.to_string(),
        )]),
    );
    println!("Starting the emulator and provisioning template.yaml ...");
    let started = Instant::now();
    let runtime = LocalRuntime::start(options, crate::services::registry())
        .await
        .map_err(boxed)?;
    println!(
        "Up in {:.1} s: HTTP API at {}, AWS emulator at {}",
        started.elapsed().as_secs_f64(),
        runtime.api_url(),
        runtime.endpoint().unwrap_or_default()
    );
    let result = demo(&runtime).await;
    println!("\nShutting down ...");
    runtime.shutdown().await;
    println!("Stopped: no process left running.");
    result
}

fn boxed(error: RuntimeError) -> BoxError {
    Box::new(error)
}

async fn demo(runtime: &LocalRuntime) -> Result<(), BoxError> {
    seed_catalogue(runtime).await?;
    println!(
        "Stock: {}",
        CATALOGUE
            .iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("Payment gateway latency: {DEMO_PAYMENT_LATENCY_MS} ms\n");

    let mut placed = Vec::new();
    println!("POST /orders");
    for (label, body) in sample_orders() {
        let sent_at = Utc::now();
        let answer = post_order(&runtime.api_url(), &body).await?;
        let api_ms = answer.elapsed.as_secs_f64() * 1000.0;
        let reply = answer.json();
        println!(
            "  {label:<20} -> {} in {api_ms:>5.1} ms  {reply}",
            answer.status
        );
        if answer.status == 202 {
            if let Some(order_id) = reply["orderId"].as_str() {
                placed.push(Placed {
                    label,
                    order_id: order_id.to_owned(),
                    sent_at,
                    api_ms,
                });
            }
        }
    }

    println!("\nWaiting for the four services ...");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reports: Vec<OrderReport> = Vec::new();
    loop {
        reports.clear();
        for order in &placed {
            reports.push(order_report(runtime.sdk(), runtime.deployment(), &order.order_id).await?);
        }
        if reports.iter().all(OrderReport::is_complete) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let mut slowest_api: f64 = 0.0;
    let mut slowest_payment: f64 = 0.0;
    for (order, report) in placed.iter().zip(&reports) {
        slowest_api = slowest_api.max(order.api_ms);
        println!("\norder {} ({})", order.order_id, order.label);
        println!(
            "  {:>9.3} s  api           202 Accepted",
            order.api_ms / 1000.0
        );
        for (service, step) in report.steps() {
            match step {
                Some(step) => {
                    let after = (step.at - order.sent_at).num_milliseconds() as f64 / 1000.0;
                    if service == "payment" {
                        slowest_payment = slowest_payment.max(after);
                    }
                    println!("  {after:>9.3} s  {service:<13} {}", step.summary);
                }
                None => println!("  {:>11}  {service:<13} not done within a minute", "-"),
            }
        }
    }
    let complete = reports.iter().filter(|r| r.is_complete()).count();
    println!(
        "\n{complete}/{} accepted orders reached all four services. The API answered within {slowest_api:.0} ms;\n\
         payment finished up to {slowest_payment:.1} s later. The order service did not wait for it.",
        placed.len()
    );
    if complete < placed.len() {
        return Err("some orders did not complete".into());
    }
    Ok(())
}
