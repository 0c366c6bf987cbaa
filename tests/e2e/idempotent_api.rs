//! End-to-end: `POST /orders` with the `Idempotency-Key` header, through the local runtime,
//! with the idempotency entries in the emulator's DynamoDB.

use std::time::{Duration, SystemTime};

use crate::common::*;
use crate::openapi::send;
use lambda_kit::idempotency::{Claim, DynamoIdempotency, IdempotencyStore};
use local_runtime::client::Answer;
use local_runtime::runtime::LocalRuntime;
use orderflow::report::{count_items, order_report};

async fn post_with_key(runtime: &LocalRuntime, key: &str, body: &serde_json::Value) -> Answer {
    let bearer = bearer(runtime).await;
    send(
        "POST",
        &format!("{}/orders", runtime.api_url()),
        &[
            ("content-type", "application/json"),
            ("idempotency-key", key),
            ("authorization", &bearer),
        ],
        body.to_string(),
    )
    .await
    .expect("POST /orders")
}

#[tokio::test]
async fn a_retried_request_gets_the_same_order_and_publishes_nothing_again() {
    let runtime = start(options()).await;
    let first = post_with_key(&runtime, "\"checkout-7f3a\"", &order()).await;
    let retry = post_with_key(&runtime, "\"checkout-7f3a\"", &order()).await;
    assert_eq!((first.status, retry.status), (202, 202));
    assert_eq!(first.json()["orderId"], retry.json()["orderId"]);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));

    let order_id = first.json()["orderId"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(60), "the order is complete", || async {
        order_report(runtime.sdk(), runtime.deployment(), &order_id)
            .await
            .unwrap()
            .is_settled()
    })
    .await;
    wait_for_records(&runtime, 1).await;
    for consumer in &consumers(&runtime) {
        assert_eq!(
            runtime.stats(consumer).records,
            records_per_order(&runtime, consumer, CONFIRMED_ORDER_EVENTS),
            "{consumer}: the order was published once"
        );
    }

    let mut changed = order();
    changed["items"][1]["quantity"] = 5.into();
    let reused = post_with_key(&runtime, "\"checkout-7f3a\"", &changed).await;
    assert_eq!(reused.status, 422);
    assert_eq!(reused.json()["error"], "idempotency_key_reused");
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_request_in_flight_answers_409_and_a_malformed_key_400() {
    let runtime = start(options()).await;
    // Another instance is processing this key right now.
    let store = DynamoIdempotency::new(
        aws_sdk_dynamodb::Client::new(runtime.sdk()),
        runtime.deployment().reference("IdempotencyTable"),
        order_api::SPEC.name,
    );
    // The key as the API scopes it: within the signed-in customer's (their token's subject).
    bearer(&runtime).await;
    let customers = runtime.customers().expect("the template's user pool");
    let subject = customers.subject(CUSTOMER).await.unwrap();
    let key = order_api::request_key(Some(&subject), "in-flight-1", &order());
    let lease = SystemTime::now() + Duration::from_secs(30);
    assert_eq!(store.claim(&key, lease).await.unwrap(), Claim::Acquired);

    let busy = post_with_key(&runtime, "in-flight-1", &order()).await;
    assert_eq!(busy.status, 409, "{:?}", busy.json());
    assert_eq!(busy.header("retry-after"), Some("1"));

    let malformed = post_with_key(&runtime, "\"no-closing-quote", &order()).await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["error"], "invalid_idempotency_key");
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_publish_failure_leaves_no_completed_entry() {
    let runtime = start(options()).await;
    delete_topic(&runtime).await;
    let failed = post_with_key(&runtime, "publish-fails", &order()).await;
    assert_eq!(failed.status, 503);
    let records = count_items(runtime.sdk(), runtime.deployment(), "IdempotencyTable")
        .await
        .unwrap();
    assert_eq!(records, 0, "the claim was released, nothing completed");
    runtime.shutdown().await;
}
