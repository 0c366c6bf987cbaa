//! The demo: brings the system up, sends sample orders, and tells the saga's story: orders with
//! stock are confirmed, captured, shipped and confirmed by e-mail; ken's order for a sold-out
//! webcam is cancelled (stock rejected), his authorization voided, nothing shipped, the reason
//! e-mailed; linus cancels his order himself. Each timeline is read from `GET /orders/{id}`.
//! The API answers in milliseconds while the (deliberately slow) payment gateway takes seconds:
//! the order service is decoupled from the others in time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use order_events::CancelReason;
use order_state::Status;
use payment::{PaymentItem, PaymentStatus};
use shipping::{ShipmentItem, ShipmentStatus};

use crate::audit::{audit, Expectations};
use crate::report::{order_report, OrderReport};
use crate::shop::{customers, order_body, order_request, seed_catalogue, CATALOGUE};
use local_runtime::client::{post_order, send};
use local_runtime::progress::Progress;
use local_runtime::runtime::{LocalRuntime, RuntimeError, RuntimeOptions};

/// Payment gateway latency in the demo.
pub const DEMO_PAYMENT_LATENCY_MS: u64 = 3_000;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How an order's story ends; the demo fails when one ends otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Story {
    /// Confirmed, captured once, shipped, the confirmation e-mailed.
    Ships,
    /// Cancelled for stock: never charged, nothing shipped, the reason e-mailed.
    SoldOut,
    /// Cancelled by the customer before shipment: the hold voided, never charged.
    CustomerCancels,
    /// Refused by the API with this status: nothing ordered.
    Refused(u16),
}

/// One of the demo's orders.
struct SampleOrder {
    label: &'static str,
    customer: &'static str,
    lines: &'static [(&'static str, i64, i64)],
    story: Story,
}

const SAMPLE_ORDERS: &[SampleOrder] = &[
    SampleOrder {
        label: "ada",
        customer: "ada",
        lines: &[("SKU-KEYBOARD", 1, 8_999), ("SKU-MOUSE", 2, 2_499)],
        story: Story::Ships,
    },
    SampleOrder {
        label: "grace",
        customer: "grace",
        lines: &[("SKU-MONITOR", 1, 24_900)],
        story: Story::Ships,
    },
    SampleOrder {
        label: "linus (cancels)",
        customer: "linus",
        lines: &[("SKU-MOUSE", 1, 2_499)],
        story: Story::CustomerCancels,
    },
    SampleOrder {
        label: "barbara",
        customer: "barbara",
        lines: &[("SKU-KEYBOARD", 2, 8_999), ("SKU-MONITOR", 2, 24_900)],
        story: Story::Ships,
    },
    SampleOrder {
        label: "ken (sold-out sku)",
        customer: "ken",
        lines: &[("SKU-WEBCAM", 1, 5_900)],
        story: Story::SoldOut,
    },
    // Shows last week's price: refused with the current one, nothing ordered.
    SampleOrder {
        label: "edsger (stale price)",
        customer: "edsger",
        lines: &[("SKU-MONITOR", 1, 19_900)],
        story: Story::Refused(409),
    },
    SampleOrder {
        label: "dennis (invalid)",
        customer: "dennis",
        lines: &[("SKU-MOUSE", 0, 2_499)],
        story: Story::Refused(422),
    },
];

struct Placed {
    label: &'static str,
    story: Story,
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
    let live = crate::live::serve(&runtime, customers());
    println!("Live view: {live} (beside the API, same port)");
    let result = demo(&runtime).await;
    println!("\nShutting down ...");
    runtime.shutdown().await;
    println!("Stopped: no process left running.");
    result
}

/// What the demo is waiting for: orders not yet decided, and the services with events still in
/// their queues.
async fn waiting_for(runtime: &LocalRuntime, reports: &[OrderReport]) -> String {
    let undecided = reports
        .iter()
        .filter(|r| !matches!(r.status(), Some(Status::Confirmed | Status::Cancelled)))
        .count();
    let mut busy = Vec::new();
    for consumer in runtime.topology().consumers() {
        for source in &consumer.sqs_sources {
            let url = runtime.deployment().reference(&source.queue);
            if let Ok(n @ 1..) = crate::dlq::depth(runtime.sdk(), &url).await {
                busy.push(format!("{} {n}", consumer.binary));
            }
        }
    }
    let busy = match busy.is_empty() {
        true => "none".to_owned(),
        false => busy.join(", "),
    };
    format!("{undecided} undecided; events in flight: {busy}")
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
    // What did not go as the stories say, by order (label).
    let mut problems: Vec<String> = Vec::new();
    println!("POST /orders");
    for sample in SAMPLE_ORDERS {
        let (bearer, body) = order_request(runtime, sample.customer, sample.lines).await?;
        let sent_at = Utc::now();
        let answer = post_order(&runtime.api_url(), bearer.as_deref(), &body).await?;
        let api_ms = answer.elapsed.as_secs_f64() * 1000.0;
        let reply = answer.json();
        println!(
            "  {:<20} -> {} in {api_ms:>5.1} ms  {reply}",
            sample.label, answer.status
        );
        let expected = match sample.story {
            Story::Refused(status) => status,
            _ => 202,
        };
        if answer.status != expected {
            problems.push(format!(
                "{}: answered {}, expected {expected}",
                sample.label, answer.status
            ));
        }
        if answer.status == 202 {
            if let Some(order_id) = reply["orderId"].as_str() {
                placed.push(Placed {
                    label: sample.label,
                    story: sample.story,
                    bearer,
                    order_id: order_id.to_owned(),
                    sent_at,
                    api_ms,
                });
            }
        }
    }

    problems.extend(identity_checks(runtime, &placed).await?);

    for order in placed.iter().filter(|o| o.story == Story::CustomerCancels) {
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
    let progress = Progress::new("settled", Some(placed.len() as u64));
    let mut reports: Vec<OrderReport> = Vec::new();
    loop {
        reports.clear();
        for order in &placed {
            reports.push(order_report(runtime.sdk(), runtime.deployment(), &order.order_id).await?);
        }
        let settled = reports.iter().filter(|r| r.is_settled()).count();
        progress.set(settled as u64, waiting_for(runtime, &reports).await);
        if settled == reports.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    progress.finish("every service is done");

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
            (
                payment::SPEC.name,
                report.payment.as_ref().map(payment_summary),
            ),
            (
                shipping::SPEC.name,
                report.shipment.as_ref().map(shipment_summary),
            ),
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
    for (order, report) in placed.iter().zip(&reports) {
        if let Some(problem) = story_problem(order.story, report) {
            problems.push(format!("{}: {problem}", order.label));
        }
    }
    let expectations = Expectations {
        accepted_orders: Some(placed.iter().map(|o| o.order_id.clone()).collect()),
        initial_stock: CATALOGUE
            .iter()
            .map(|(sku, _, stock)| ((*sku).to_owned(), *stock))
            .collect(),
        sent_email_subjects: None,
    };
    let audit = audit(runtime.sdk(), runtime.deployment(), &expectations).await?;
    if !audit.is_clean() {
        problems.push(format!("the audit: {audit}"));
    }
    if !problems.is_empty() {
        println!("\nNot as the stories say:");
        for problem in &problems {
            println!("  - {problem}");
        }
        return Err(format!(
            "{} of the demo's orders and requests did not end as their stories say",
            problems.len()
        )
        .into());
    }
    println!(
        "Every order ended as its story says: the shipped orders captured once, the sold-out and\n\
         the customer's cancelled orders never charged, the refused requests refused.\n\
         Audit: {}",
        audit.to_string().trim_end()
    );
    Ok(())
}

/// What is wrong with an accepted order's end, as the services' tables tell it, for its story:
/// what the story expects that did not happen, and where the order stands.
fn story_problem(story: Story, report: &OrderReport) -> Option<String> {
    let order = report.order.as_ref();
    let status = report.status();
    let reason = order.and_then(|o| o.cancelled.as_ref()).map(|c| c.reason);
    let payment = report.payment.as_ref().map(|p| p.status);
    let never_charged = matches!(
        payment,
        Some(PaymentStatus::Voided | PaymentStatus::Cancelled | PaymentStatus::Declined)
    );
    let shipped = report.shipment.as_ref().is_some_and(ShipmentItem::is_live);
    // A cancellation for `wanted` gives everything back and says why.
    let cancelled = |wanted, said| {
        vec![
            (
                status == Some(Status::Cancelled) && reason == Some(wanted),
                said,
            ),
            (never_charged, "never charged"),
            (!shipped, "nothing shipped"),
            (report.cancellation.is_some(), "a cancellation e-mail"),
        ]
    };
    // (holds, what the story says)
    let checks: Vec<(bool, &str)> = match story {
        Story::Ships => vec![
            (status == Some(Status::Confirmed), "confirmed"),
            (payment == Some(PaymentStatus::Captured), "captured"),
            (shipped, "shipped"),
            (report.confirmation.is_some(), "a confirmation e-mail"),
        ],
        Story::SoldOut => cancelled(CancelReason::StockRejected, "cancelled for stock"),
        Story::CustomerCancels => {
            cancelled(CancelReason::CustomerRequest, "cancelled by the customer")
        }
        Story::Refused(_) => vec![(order.is_none(), "nothing ordered")],
    };
    let unmet: Vec<&str> = checks
        .into_iter()
        .filter(|(holds, _)| !holds)
        .map(|(_, expected)| expected)
        .collect();
    (!unmet.is_empty()).then(|| {
        format!(
            "expected {}; the order is {status:?} (cancellation reason {reason:?}), payment {payment:?}, shipped: {shipped}",
            unmet.join(", ")
        )
    })
}

/// Shows the API refusing what a customer may not do: ordering without a token (401), and
/// reading another customer's order (404, as for an unknown id). Nothing to show without
/// tokens. Returns what was not refused as it should be.
async fn identity_checks(
    runtime: &LocalRuntime,
    placed: &[Placed],
) -> Result<Vec<String>, BoxError> {
    let (Some(first), Some(second)) = (placed.first(), placed.get(1)) else {
        return Ok(Vec::new());
    };
    if second.bearer.is_none() {
        return Ok(Vec::new());
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
    let mut problems = Vec::new();
    if anonymous.status != 401 {
        problems.push(format!(
            "an order without a token answered {}, expected 401",
            anonymous.status
        ));
    }
    if foreign.status != 404 {
        problems.push(format!(
            "another customer's order answered {}, expected 404",
            foreign.status
        ));
    }
    Ok(problems)
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
        (ShipmentStatus::Created, Some(tracking)) => match &shipment.ship_to {
            Some(to) => format!("shipped ({tracking}) to {}, {}", to.city, to.country),
            None => format!("shipped ({tracking})"),
        },
        (ShipmentStatus::Cancelled, Some(tracking)) => format!("shipment {tracking} called back"),
        (_, None) => "none".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    /// The live view lets the shop's customers sign in: every customer of the demo is one.
    #[test]
    fn every_sample_order_is_by_a_customer_of_the_shop() {
        for order in super::SAMPLE_ORDERS {
            assert!(
                crate::shop::CUSTOMERS.contains(&order.customer),
                "{} orders in the demo: add them to shop::CUSTOMERS",
                order.customer
            );
        }
    }
}
