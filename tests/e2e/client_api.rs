//! End-to-end: what a client developer relies on beyond one order: a 202's `Location`, the
//! customer's own orders listed newest first a page at a time, and CORS as API Gateway plays it
//! when the template allows a browser origin (and refuses it when it does not). Every answer is
//! checked against `events/openapi.yaml`, the preflights too.

use std::time::Duration;

use crate::common::*;
use crate::openapi::{post_order, send};
use local_runtime::client::Answer;
use local_runtime::runtime::LocalRuntime;

const SHOP: &str = "https://shop.example";

async fn place_as(runtime: &LocalRuntime, customer: &str) -> Answer {
    let bearer = bearer_of(runtime, customer).await;
    let answer = post_order(&runtime.api_url(), &bearer, &order())
        .await
        .expect("POST /orders");
    assert_eq!(answer.status, 202, "{:?}", answer.json());
    answer
}

async fn get_as(runtime: &LocalRuntime, customer: &str, path_and_query: &str) -> Answer {
    let url = format!("{}{path_and_query}", runtime.api_url());
    let bearer = bearer_of(runtime, customer).await;
    send("GET", &url, &[("authorization", &bearer)], Vec::new())
        .await
        .expect("GET")
}

/// Every order of `customer`'s list, following `nextCursor` page by page of `limit`.
async fn list_all(runtime: &LocalRuntime, customer: &str, limit: usize) -> (Vec<String>, usize) {
    let (mut ids, mut pages) = (Vec::new(), 0);
    let mut query = format!("limit={limit}");
    loop {
        let page = get_as(runtime, customer, &format!("/orders?{query}")).await;
        assert_eq!(page.status, 200, "{:?}", page.json());
        pages += 1;
        let body = page.json();
        for order in body["orders"].as_array().expect("orders") {
            ids.push(order["orderId"].as_str().expect("orderId").to_owned());
        }
        match body["nextCursor"].as_str() {
            Some(cursor) => query = format!("limit={limit}&cursor={cursor}"),
            None => return (ids, pages),
        }
    }
}

#[tokio::test]
async fn a_customer_follows_each_order_from_its_202_and_lists_only_their_own_newest_first() {
    let runtime = start(options()).await;
    let (ada, eve) = ("ada@example.com", "eve@example.com");
    let mut adas = Vec::new();
    for customer in [ada, eve, ada, ada, ada, eve, ada] {
        let answer = place_as(&runtime, customer).await;
        let order_id = answer.json()["orderId"].as_str().unwrap().to_owned();
        // The 202 names where the order is; following it finds the order at once.
        let location = answer.header("location").expect("Location").to_owned();
        assert_eq!(location, format!("/orders/{order_id}"));
        let followed = get_as(&runtime, customer, &location).await;
        assert_eq!(followed.status, 200);
        assert_eq!(followed.json()["orderId"], order_id.as_str());
        if customer == ada {
            adas.push(order_id);
        }
    }
    adas.reverse();
    // The index follows the table within a moment.
    eventually(
        Duration::from_secs(10),
        "ada's five orders listed",
        || async { list_all(&runtime, ada, 100).await.0.len() == adas.len() },
    )
    .await;
    let (listed, pages) = list_all(&runtime, ada, 2).await;
    assert_eq!(listed, adas, "newest first, each once, none of eve's");
    assert_eq!(pages, 3);
    let (eves, _) = list_all(&runtime, eve, 20).await;
    assert_eq!(eves.len(), 2);
    assert!(eves.iter().all(|id| !adas.contains(id)));

    // A cancellation's 202 names the order too.
    let url = format!("{}/orders/{}/cancel", runtime.api_url(), adas[0]);
    let bearer = bearer_of(&runtime, ada).await;
    let cancel = send("POST", &url, &[("authorization", &bearer)], Vec::new())
        .await
        .unwrap();
    // 409 when the warehouse already shipped it; a 202 only with its Location.
    assert!(
        [202, 409].contains(&cancel.status),
        "{}: {:?}",
        cancel.status,
        cancel.json()
    );
    if cancel.status == 202 {
        assert_eq!(
            cancel.header("location"),
            Some(format!("/orders/{}", adas[0]).as_str())
        );
    }

    let bad = get_as(&runtime, ada, "/orders?cursor=0123").await;
    assert_eq!(
        (bad.status, bad.json()["error"].as_str()),
        (400, Some("invalid_cursor"))
    );
    let bad = get_as(&runtime, ada, "/orders?limit=1000").await;
    assert_eq!(
        (bad.status, bad.json()["error"].as_str()),
        (400, Some("invalid_limit"))
    );

    // No CORS by default: a preflight is routed like any request, and nothing takes OPTIONS.
    let preflight = send(
        "OPTIONS",
        &format!("{}/orders", runtime.api_url()),
        &[("origin", SHOP), ("access-control-request-method", "POST")],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(preflight.status, 404);
    let from_shop = get_as(&runtime, ada, "/orders").await;
    assert_eq!(from_shop.header("access-control-allow-origin"), None);
    runtime.shutdown().await;
}

#[tokio::test]
async fn an_allowed_origin_gets_its_preflight_and_headers_and_another_origin_does_not() {
    let mut options = options();
    options.provision.parameter_overrides.insert(
        "CorsAllowedOrigins".to_owned(),
        format!("{SHOP},http://localhost:5173"),
    );
    let runtime = start(options).await;
    let api = runtime.api_url();
    let preflight = |path: String, origin: &'static str| async move {
        let headers = [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization,content-type",
            ),
        ];
        send("OPTIONS", &path, &headers, Vec::new()).await.unwrap()
    };

    // Answered by the gateway on any path, without a token.
    for path in [
        format!("{api}/orders"),
        format!("{api}/orders/{}/cancel", uuid::Uuid::now_v7()),
    ] {
        let allowed = preflight(path, SHOP).await;
        assert_eq!(allowed.status, 204);
        assert_eq!(allowed.header("access-control-allow-origin"), Some(SHOP));
        let methods = allowed
            .header("access-control-allow-methods")
            .unwrap_or_default();
        assert!(
            methods.contains("POST") && methods.contains("GET"),
            "{methods}"
        );
        let headers = allowed
            .header("access-control-allow-headers")
            .unwrap_or_default();
        assert!(headers.contains("authorization") && headers.contains("idempotency-key"));
        assert_eq!(allowed.header("access-control-max-age"), Some("600"));
    }
    let refused = preflight(format!("{api}/orders"), "https://evil.example").await;
    assert_eq!(refused.status, 204);
    assert_eq!(refused.header("access-control-allow-origin"), None);

    // The real request from the page: the function's answer with the CORS headers, so the page
    // can read the 202 and its Location.
    let bearer = bearer(&runtime).await;
    let body = serde_json::to_vec(&order()).unwrap();
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
        ("origin", SHOP),
    ];
    let placed = send("POST", &format!("{api}/orders"), &headers, body.clone())
        .await
        .unwrap();
    assert_eq!(placed.status, 202);
    assert_eq!(placed.header("access-control-allow-origin"), Some(SHOP));
    let exposed = placed
        .header("access-control-expose-headers")
        .unwrap_or_default();
    assert!(exposed.contains("location"), "{exposed}");
    // From another origin the order is still placed (CORS is the browser's check), but the
    // answer carries nothing that lets a page there read it.
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
        ("origin", "https://evil.example"),
    ];
    let elsewhere = send("POST", &format!("{api}/orders"), &headers, body)
        .await
        .unwrap();
    assert_eq!(elsewhere.status, 202);
    assert_eq!(elsewhere.header("access-control-allow-origin"), None);
    runtime.shutdown().await;
}
