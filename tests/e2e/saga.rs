//! End-to-end: the saga of single orders through the local runtime on the emulator: a sold-out
//! order is cancelled and everything done for it undone; a customer cancels before shipment and
//! is refused after; a cancellation that loses the race to the shipment is refused visibly; an
//! accepted order is visible from the moment the API answers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::common::*;
use crate::openapi::{post_order, send};
use local_runtime::client::Answer;
use local_runtime::runtime::LocalRuntime;
use orderflow::report::order_report;

const WAIT: Duration = Duration::from_secs(60);

async fn place(runtime: &LocalRuntime, body: &serde_json::Value) -> String {
    place_as(runtime, CUSTOMER, body).await
}

async fn place_as(runtime: &LocalRuntime, customer: &str, body: &serde_json::Value) -> String {
    let bearer = bearer_of(runtime, customer).await;
    let answer = post_order(&runtime.api_url(), &bearer, body)
        .await
        .expect("POST /orders");
    assert_eq!(answer.status, 202, "{:?}", answer.json());
    answer.json()["orderId"]
        .as_str()
        .expect("orderId")
        .to_owned()
}

async fn get(runtime: &LocalRuntime, order_id: &str) -> Answer {
    get_as(runtime, CUSTOMER, order_id).await
}

async fn get_as(runtime: &LocalRuntime, customer: &str, order_id: &str) -> Answer {
    let url = format!("{}/orders/{order_id}", runtime.api_url());
    let bearer = bearer_of(runtime, customer).await;
    send("GET", &url, &[("authorization", &bearer)], Vec::new())
        .await
        .expect("GET")
}

async fn cancel(runtime: &LocalRuntime, order_id: &str, key: &str) -> Answer {
    cancel_as(runtime, CUSTOMER, order_id, key).await
}

async fn cancel_as(runtime: &LocalRuntime, customer: &str, order_id: &str, key: &str) -> Answer {
    let url = format!("{}/orders/{order_id}/cancel", runtime.api_url());
    let bearer = bearer_of(runtime, customer).await;
    let headers = [("idempotency-key", key), ("authorization", &bearer)];
    send("POST", &url, &headers, Vec::new())
        .await
        .expect("POST cancel")
}

fn stock() -> BTreeMap<String, u64> {
    BTreeMap::from([
        ("SKU-KEYBOARD".to_owned(), 100),
        ("SKU-MOUSE".to_owned(), 100),
        ("SKU-WEBCAM".to_owned(), 0),
    ])
}

#[tokio::test]
async fn a_sold_out_order_is_cancelled_and_nothing_is_kept_for_it() {
    let runtime = start(options()).await;
    inventory(&runtime)
        .set_stock("SKU-WEBCAM", 0)
        .await
        .unwrap();
    let sold_out = place(
        &runtime,
        &orderflow::shop::order_body(&[
            ("SKU-WEBCAM", 1, price_of("SKU-WEBCAM")),
            ("SKU-MOUSE", 1, price_of("SKU-MOUSE")),
        ]),
    )
    .await;
    let fine = place(&runtime, &order()).await;
    let accepted = BTreeSet::from([sold_out.clone(), fine.clone()]);
    let audit = wait_settled(&runtime, &accepted, stock(), WAIT).await;
    assert_eq!((audit.confirmed, audit.cancelled), (1, 1), "{audit}");

    let view = get(&runtime, &sold_out).await;
    assert_eq!(view.status, 200);
    let view = view.json();
    assert_eq!(view["status"], "CANCELLED");
    assert_eq!(view["cancellation"]["reason"], "stockRejected");
    assert!(view["cancellation"]["detail"]
        .as_str()
        .is_some_and(|d| d.contains("SKU-WEBCAM")));
    let steps: Vec<&str> = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert!(
        steps.contains(&"stock") && steps.contains(&"cancelled"),
        "{steps:?}"
    );

    let report = order_report(runtime.sdk(), runtime.deployment(), &sold_out)
        .await
        .unwrap();
    assert!(report.cancellation.is_some() && report.confirmation.is_none());
    assert!(!report.shipment.unwrap().is_live());
    // Nothing held or charged at the gateway for it: the one captured hold is the other order.
    let gateway = runtime.handle::<payment::SimulatedGateway>().unwrap();
    assert_eq!(gateway.captured(), 1);
    assert!(gateway
        .holds()
        .iter()
        .all(|hold| hold.state != payment::HoldState::Authorized));
    assert_eq!(get(&runtime, &fine).await.json()["status"], "SHIPPED");
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_customer_cancels_before_shipment_and_is_refused_after() {
    let runtime = start(options()).await;
    // Payment is slow, so the cancellation arrives while the order is undecided.
    let gateway = runtime.handle::<payment::SimulatedGateway>().unwrap();
    gateway.set_latency(Duration::from_millis(1_500));
    let order_id = place(&runtime, &order()).await;
    let requested = cancel(&runtime, &order_id, "cancel-1").await;
    assert_eq!(requested.status, 202, "{:?}", requested.json());
    assert_eq!(requested.json()["status"], "CANCELLATION_REQUESTED");
    let retried = cancel(&runtime, &order_id, "cancel-1").await;
    assert_eq!(retried.status, 202);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));

    gateway.set_latency(Duration::ZERO);
    let shipped = place(&runtime, &order()).await;
    let accepted = BTreeSet::from([order_id.clone(), shipped.clone()]);
    let audit = wait_settled(&runtime, &accepted, Default::default(), WAIT).await;
    assert_eq!((audit.confirmed, audit.cancelled), (1, 1), "{audit}");
    let view = get(&runtime, &order_id).await.json();
    assert_eq!(view["status"], "CANCELLED");
    assert_eq!(view["cancellation"]["reason"], "customerRequest");

    for (id, key) in [(&order_id, "cancel-2"), (&shipped, "cancel-3")] {
        let refused = cancel(&runtime, id, key).await;
        assert_eq!(refused.status, 409, "{:?}", refused.json());
        assert_eq!(refused.json()["error"], "order_not_cancellable");
    }
    let unknown = cancel(&runtime, &uuid::Uuid::now_v7().to_string(), "cancel-4").await;
    assert_eq!(unknown.status, 404);
    let malformed = get(&runtime, "not-an-order").await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["error"], "invalid_order_id");
    runtime.shutdown().await;
}

/// The race a customer can lose: the API accepts a cancellation while the order service has not
/// yet heard of the shipment. Each round holds the order service while the warehouse ships, so
/// that its queue holds both the `ShipmentCreated` and the `CancellationRequested` of each order,
/// then lets it apply them in whatever order they come; rounds go on until one cancellation
/// came second. A granted one must undo the shipment; a refused one must say so everywhere.
#[tokio::test]
async fn a_cancellation_that_loses_the_race_to_the_shipment_is_refused_visibly() {
    const ORDERS_PER_ROUND: usize = 4;
    const ROUNDS: usize = 5;
    let runtime = start(options()).await;
    let mut accepted = BTreeSet::new();
    let (mut refused, mut granted) = (Vec::new(), 0);
    for round in 1..=ROUNDS {
        runtime.set_source_enabled("ShippingFunction", false);
        let mut ids = Vec::new();
        for _ in 0..ORDERS_PER_ROUND {
            ids.push(place(&runtime, &order()).await);
        }
        accepted.extend(ids.iter().cloned());
        eventually(WAIT, "every order of the round confirmed", || async {
            let mut confirmed = 0;
            for id in &ids {
                confirmed += usize::from(get(&runtime, id).await.json()["status"] == "CONFIRMED");
            }
            confirmed == ids.len()
        })
        .await;
        // The order service stops hearing; the warehouse ships every order.
        runtime.set_source_enabled("OrdersFunction", false);
        runtime.set_source_enabled("ShippingFunction", true);
        eventually(WAIT, "every order of the round shipped", || async {
            let mut shipped = 0;
            for id in &ids {
                let report = order_report(runtime.sdk(), runtime.deployment(), id).await;
                shipped += usize::from(report.is_ok_and(|r| r.shipment.is_some()));
            }
            shipped == ids.len()
        })
        .await;
        // The API still sees confirmed orders: it accepts every cancellation.
        for (n, id) in ids.iter().enumerate() {
            let requested = cancel(&runtime, id, &format!("race-{round}-{n}")).await;
            assert_eq!(requested.status, 202, "{:?}", requested.json());
        }
        runtime.set_source_enabled("OrdersFunction", true);
        wait_settled(&runtime, &accepted, Default::default(), WAIT).await;
        for id in &ids {
            let view = get(&runtime, id).await.json();
            let report = order_report(runtime.sdk(), runtime.deployment(), id)
                .await
                .unwrap();
            match view["status"].as_str() {
                Some("CANCELLED") => {
                    assert_eq!(view["cancellation"]["reason"], "customerRequest");
                    assert!(!report.shipment.as_ref().unwrap().is_live());
                    assert!(report.cancellation_refused.is_none());
                    granted += 1;
                }
                Some("SHIPPED") => refused.push((view, report)),
                other => panic!("{id} ended {other:?}: {view}"),
            }
        }
        if !refused.is_empty() {
            break;
        }
    }
    assert!(
        !refused.is_empty(),
        "in {ROUNDS} rounds every cancellation reached the order service before its shipment \
         ({granted} granted)"
    );
    for (view, report) in refused {
        // The status says the order shipped; the refusal says why.
        assert_eq!(view["cancellationRefusal"]["reason"], "alreadyShipped");
        let shipment = report.shipment.as_ref().unwrap();
        let tracking = shipment.tracking_number.as_deref().unwrap();
        let detail = view["cancellationRefusal"]["detail"].as_str().unwrap();
        assert!(detail.contains(tracking), "{detail}");
        // The timeline ends with the refusal, after the shipment.
        let timeline = view["timeline"].as_array().unwrap();
        let steps: Vec<&str> = timeline.iter().filter_map(|s| s["step"].as_str()).collect();
        assert_eq!(steps.last(), Some(&"cancellationRefused"), "{steps:?}");
        let last = timeline.last().unwrap();
        assert_eq!(last["outcome"], "failed");
        assert!(last["detail"].as_str().unwrap().contains("already shipped"));
        let shipped_at = steps.iter().position(|s| *s == "shipped").unwrap();
        let requested_at = steps.iter().position(|s| *s == "cancellationRequested");
        assert!(
            requested_at.is_some() && shipped_at < steps.len() - 1,
            "{steps:?}"
        );
        // The customer was told, and only of the refusal: no cancellation e-mail.
        let told = report.cancellation_refused.expect("the refusal e-mail");
        assert_eq!(told.recipient, CUSTOMER);
        assert!(report.cancellation.is_none());
        assert!(report.shipment.unwrap().is_live());
    }
    runtime.shutdown().await;
}

#[tokio::test]
async fn an_accepted_order_is_visible_from_the_moment_of_its_202() {
    let runtime = start(options()).await;
    for _ in 0..10 {
        let order_id = place(&runtime, &order()).await;
        let view = get(&runtime, &order_id).await;
        assert_eq!(view.status, 200, "{order_id}: {:?}", view.json());
        assert_eq!(view.json()["orderId"], order_id.as_str());
    }
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_customer_reads_and_cancels_only_their_own_orders() {
    let runtime = start(options()).await;
    let ada = "ada@example.com";
    let eve = "eve@example.com";
    let order_id = place_as(&runtime, ada, &order()).await;
    let unknown = uuid::Uuid::now_v7().to_string();

    // Eve gets for ada's order exactly what she gets for an order that does not exist.
    let theirs = get_as(&runtime, eve, &order_id).await;
    let nobodys = get_as(&runtime, eve, &unknown).await;
    assert_eq!((theirs.status, nobodys.status), (404, 404));
    assert_eq!(theirs.json()["error"], nobodys.json()["error"]);
    let refused = cancel_as(&runtime, eve, &order_id, "eve-cancels").await;
    assert_eq!(refused.status, 404, "{:?}", refused.json());

    // Ada sees her order, placed under her token's subject and e-mail, and it was not cancelled.
    let view = get_as(&runtime, ada, &order_id).await;
    assert_eq!(view.status, 200);
    assert_ne!(view.json()["status"], "CANCELLED");
    let report = order_report(runtime.sdk(), runtime.deployment(), &order_id)
        .await
        .unwrap();
    let placed = report
        .order
        .and_then(|order| order.placed)
        .expect("recorded");
    assert_eq!(placed.customer_email, ada);
    assert!(!placed.customer_id.is_empty() && placed.customer_id != ada);
    runtime.shutdown().await;
}
