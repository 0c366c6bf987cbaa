//! The demo: brings the system up, sends sample orders, and tells the saga's story: orders with
//! stock are confirmed, captured, shipped and confirmed by e-mail; ken's order for a sold-out
//! webcam is cancelled (stock rejected), his authorization voided, nothing shipped, the reason
//! e-mailed; linus cancels his order himself. Each timeline is read from `GET /orders/{id}`.
//! The API answers in milliseconds while the (deliberately slow) payment gateway takes seconds:
//! the order service is decoupled from the others in time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use inventory::DynamoInventory;
use payment::{PaymentItem, PaymentStatus};
use serde_json::{json, Value};
use shipping::{ShipmentItem, ShipmentStatus};

use crate::report::{order_report, OrderReport};
use local_runtime::client::{post_order, send};
use local_runtime::runtime::{LocalRuntime, RuntimeError, RuntimeOptions};

/// The local system's catalogue: (sku, price in euro cents, stock). `SKU-WEBCAM` is sold out.
pub const CATALOGUE: &[(&str, i64, u64)] = &[
    ("SKU-KEYBOARD", 8_999, 50),
    ("SKU-MOUSE", 2_499, 100),
    ("SKU-MONITOR", 24_900, 20),
    ("SKU-WEBCAM", 5_900, 0),
];

/// Payment gateway latency in the demo.
pub const DEMO_PAYMENT_LATENCY_MS: u64 = 3_000;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Puts [`CATALOGUE`] (prices and stock) on the inventory table.
pub async fn seed_catalogue(runtime: &LocalRuntime) -> Result<(), BoxError> {
    let inventory = DynamoInventory::new(
        aws_sdk_dynamodb::Client::new(runtime.sdk()),
        runtime.deployment().reference("InventoryTable"),
        runtime.deployment().reference("IdempotencyTable"),
    );
    for (sku, price, stock) in CATALOGUE {
        inventory.set_stock(sku, *stock).await?;
        inventory.set_price(sku, *price, "EUR").await?;
    }
    Ok(())
}

/// The e-mail address of the sample customer `name`.
pub fn email_of(name: &str) -> String {
    format!("{name}@example.com")
}

/// A request body for a sample order: its lines. Who orders is the token's business.
pub fn order_body(lines: &[(&str, i64, i64)]) -> Value {
    json!({
        "currency": "EUR",
        "items": lines.iter().map(|(sku, quantity, price)| json!({
            "sku": sku, "quantity": quantity, "unitPriceMinor": price
        })).collect::<Vec<_>>(),
    })
}

/// How the customer `name` orders `lines` on `runtime`: their `Authorization` header value and
/// the body; where the API takes no tokens (ApiAuthorization=NONE), no header and a body that
/// names the customer.
pub async fn order_request(
    runtime: &LocalRuntime,
    name: &str,
    lines: &[(&str, i64, i64)],
) -> Result<(Option<String>, Value), BoxError> {
    let mut body = order_body(lines);
    let bearer = runtime.bearer(&email_of(name)).await?;
    if bearer.is_none() {
        body["customerId"] = name.into();
        body["customerEmail"] = email_of(name).into();
    }
    Ok((bearer, body))
}

/// (label, customer, lines) of the demo's orders.
type SampleOrder = (
    &'static str,
    &'static str,
    &'static [(&'static str, i64, i64)],
);

const SAMPLE_ORDERS: &[SampleOrder] = &[
    (
        "ada",
        "ada",
        &[("SKU-KEYBOARD", 1, 8_999), ("SKU-MOUSE", 2, 2_499)],
    ),
    ("grace", "grace", &[("SKU-MONITOR", 1, 24_900)]),
    ("linus (cancels)", "linus", &[("SKU-MOUSE", 1, 2_499)]),
    (
        "barbara",
        "barbara",
        &[("SKU-KEYBOARD", 2, 8_999), ("SKU-MONITOR", 2, 24_900)],
    ),
    ("ken (sold-out sku)", "ken", &[("SKU-WEBCAM", 1, 5_900)]),
    // Shows last week's price: refused with the current one, nothing ordered.
    (
        "edsger (stale price)",
        "edsger",
        &[("SKU-MONITOR", 1, 19_900)],
    ),
    ("dennis (invalid)", "dennis", &[("SKU-MOUSE", 0, 2_499)]),
];

struct Placed {
    label: &'static str,
    /// The customer's `Authorization` header value, if the API takes tokens.
    bearer: Option<String>,
    order_id: String,
    sent_at: DateTime<Utc>,
    api_ms: f64,
}

impl Placed {
    /// The customer's own headers: they read and cancel their order with their token.
    fn authorization(&self) -> Vec<(&str, &str)> {
        self.bearer
            .iter()
            .map(|bearer| ("authorization", bearer.as_str()))
            .collect()
    }
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
        runtime.endpoints()
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
        "Catalogue (stock at EUR each): {}",
        CATALOGUE
            .iter()
            .map(|(sku, price, stock)| format!("{sku}={stock} at {:.2}", *price as f64 / 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("Payment gateway latency: {DEMO_PAYMENT_LATENCY_MS} ms\n");

    let mut placed = Vec::new();
    println!("POST /orders");
    for &(label, customer, lines) in SAMPLE_ORDERS {
        let (bearer, body) = order_request(runtime, customer, lines).await?;
        let sent_at = Utc::now();
        let answer = post_order(&runtime.api_url(), bearer.as_deref(), &body).await?;
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
                    bearer,
                    order_id: order_id.to_owned(),
                    sent_at,
                    api_ms,
                });
            }
        }
    }

    identity_checks(runtime, &placed).await?;

    for order in placed.iter().filter(|o| o.label.contains("cancels")) {
        let url = format!("{}/orders/{}/cancel", runtime.api_url(), order.order_id);
        let answer = send("POST", &url, &order.authorization(), Vec::new()).await?;
        println!(
            "\nPOST /orders/{}/cancel ({}) -> {} {}",
            order.order_id,
            order.label,
            answer.status,
            answer.json()
        );
    }

    println!("\nWaiting for every order to settle (decided, and every service done) ...");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reports: Vec<OrderReport> = Vec::new();
    loop {
        reports.clear();
        for order in &placed {
            reports.push(order_report(runtime.sdk(), runtime.deployment(), &order.order_id).await?);
        }
        if reports.iter().all(OrderReport::is_settled) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let mut slowest_api: f64 = 0.0;
    for (order, report) in placed.iter().zip(&reports) {
        slowest_api = slowest_api.max(order.api_ms);
        let url = format!("{}/orders/{}", runtime.api_url(), order.order_id);
        let view = send("GET", &url, &order.authorization(), Vec::new())
            .await?
            .json();
        println!(
            "\norder {} ({}): {}{}",
            order.order_id,
            order.label,
            view["status"].as_str().unwrap_or("?"),
            view["cancellation"]["detail"]
                .as_str()
                .map(|d| format!(" - {d}"))
                .unwrap_or_default()
        );
        println!(
            "  {:>9.3} s  api                    202 Accepted",
            order.api_ms / 1000.0
        );
        for step in view["timeline"].as_array().into_iter().flatten() {
            let at = step["at"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| (t.with_timezone(&Utc) - order.sent_at).num_milliseconds() as f64 / 1000.0)
                .unwrap_or_default();
            println!(
                "  {at:>9.3} s  {:<22} {:<6} {}",
                step["step"].as_str().unwrap_or("?"),
                step["outcome"].as_str().unwrap_or("?"),
                step["detail"].as_str().unwrap_or_default()
            );
        }
        let services = [
            ("payment", report.payment.as_ref().map(payment_summary)),
            ("shipping", report.shipment.as_ref().map(shipment_summary)),
            (
                "e-mail",
                match (&report.confirmation, &report.cancellation) {
                    (_, Some(_)) => Some("cancellation sent".to_owned()),
                    (Some(_), None) => Some("confirmation sent".to_owned()),
                    (None, None) => None,
                },
            ),
        ];
        let summary: Vec<String> = services
            .iter()
            .map(|(service, state)| format!("{service}: {}", state.as_deref().unwrap_or("-")))
            .collect();
        println!("  {:>11}  {}", "", summary.join(", "));
    }
    let settled = reports.iter().filter(|r| r.is_settled()).count();
    println!(
        "\n{settled}/{} accepted orders settled. The API answered within {slowest_api:.0} ms; the order\n\
         service decided each order from the services' events without waiting for any of them.",
        placed.len()
    );
    if settled < placed.len() {
        return Err("some orders did not settle".into());
    }
    Ok(())
}

/// Shows the API refusing what a customer may not do: ordering without a token, and reading
/// another customer's order (the same 404 as an unknown id). Nothing to show without tokens.
async fn identity_checks(runtime: &LocalRuntime, placed: &[Placed]) -> Result<(), BoxError> {
    let (Some(first), Some(second)) = (placed.first(), placed.get(1)) else {
        return Ok(());
    };
    if second.bearer.is_none() {
        return Ok(());
    }
    let body = order_body(&[("SKU-MOUSE", 1, 2_499)]);
    let anonymous = post_order(&runtime.api_url(), None, &body).await?;
    println!(
        "\nPOST /orders without a token -> {} {}",
        anonymous.status,
        anonymous.json()
    );
    let url = format!("{}/orders/{}", runtime.api_url(), first.order_id);
    let foreign = send("GET", &url, &second.authorization(), Vec::new()).await?;
    println!(
        "GET {}'s order as {} -> {} {}",
        first.label,
        second.label,
        foreign.status,
        foreign.json()
    );
    Ok(())
}

/// What the customer's money went through, as the payments table says.
fn payment_summary(payment: &PaymentItem) -> String {
    let hold = payment.authorization_id.as_deref().unwrap_or("?");
    match payment.status {
        PaymentStatus::Authorized => format!("held ({hold})"),
        PaymentStatus::Declined => "declined".to_owned(),
        PaymentStatus::Captured => "captured".to_owned(),
        // A hold made after the cancellation is voided at once, before it is ever announced:
        // it shows here, not on the order's timeline.
        PaymentStatus::Voided => format!("hold {hold} voided (nothing charged)"),
        PaymentStatus::Refunded => "refunded after capture".to_owned(),
        PaymentStatus::Cancelled => "none".to_owned(),
    }
}

/// Whether a parcel left, as the shipments table says. A cancelled record without a tracking
/// number is the marker that keeps a late confirmation from shipping: nothing was ever sent.
fn shipment_summary(shipment: &ShipmentItem) -> String {
    match (shipment.status, &shipment.tracking_number) {
        (ShipmentStatus::Created, Some(tracking)) => format!("shipped ({tracking})"),
        (ShipmentStatus::Cancelled, Some(tracking)) => format!("shipment {tracking} called back"),
        (_, None) => "none".to_owned(),
    }
}
