//! End-to-end: a mixed deployment. `OrderPlaced` v1 events wait in the queues while the
//! consumers are off; the system comes back with the order API writing v2; every order, of
//! either major, with or without a shipping address, settles; the only event that reaches a DLQ
//! is one of a major no reader has, with the reason the rules give.

use std::time::Duration;

use local_runtime::runtime::{LocalRuntime, RuntimeOptions};
use order_state::Status;
use orderflow::report::order_report;
use serde_json::json;

use crate::common::*;
use crate::openapi::post_order;

const WAIT: Duration = Duration::from_secs(120);

fn with_version(mut options: RuntimeOptions, version: &str) -> RuntimeOptions {
    options
        .provision
        .parameter_overrides
        .insert("OrderPlacedVersion".to_owned(), version.to_owned());
    options
}

fn address(city: &str) -> serde_json::Value {
    json!({
        "recipient": "Grace Hopper",
        "line1": "1 Navy Yard",
        "postalCode": "20374",
        "city": city,
        "country": "US"
    })
}

/// Places `n` orders, every other one with a shipping address; their ids, with the address's
/// city where there is one.
async fn place(runtime: &LocalRuntime, n: usize, city: &str) -> Vec<(String, Option<String>)> {
    let bearer = bearer(runtime).await;
    let mut placed = Vec::new();
    for i in 0..n {
        let mut body = order();
        let city = (i % 2 == 0).then(|| city.to_owned());
        if let Some(city) = &city {
            body["shippingAddress"] = address(city);
        }
        let answer = post_order(&runtime.api_url(), &bearer, &body)
            .await
            .expect("POST /orders");
        assert_eq!(answer.status, 202, "{:?}", answer.json());
        placed.push((answer.json()["orderId"].as_str().unwrap().to_owned(), city));
    }
    placed
}

#[tokio::test]
async fn v1_events_in_the_queues_and_a_v2_producer_every_order_settles() {
    // The deployment before: the API writes v1; the consumers are off, so the events wait.
    let before = with_version(options(), "1");
    let after = with_version(before.clone(), "2");
    let mut before = before;
    for consumer in ["OrdersFunction", "InventoryFunction", "PaymentFunction"] {
        before.disabled_sources.insert(consumer.into());
    }
    let old = start(before).await;
    let mut orders = place(&old, 4, "Arlington").await;
    // SNS delivers to the queues a moment after the publish.
    eventually(WAIT, "the v1 events wait in the queues", || async {
        depth(&old, "InventoryQueue").await >= 4
    })
    .await;
    old.shutdown().await;

    // The deployment after, on the same resources: the API writes v2, every consumer is on.
    let new = start(after).await;
    orders.extend(place(&new, 4, "Boston").await);
    // And an event of a major that does not exist yet: unreadable, by the rules.
    let mut v3 = serde_json::to_value(order_events::OrderPlacedEvent::new(
        order_events::testing::sample_order(),
        "evolution",
    ))
    .unwrap();
    v3["eventversion"] = "3".into();
    let event_type = aws_sdk_sns::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value("OrderPlaced")
        .build()
        .unwrap();
    aws_sdk_sns::Client::new(new.sdk())
        .publish()
        .topic_arn(new.deployment().reference("OrderEventsTopic"))
        .message(v3.to_string())
        .message_attributes(order_events::attribute::EVENT_TYPE, event_type)
        .send()
        .await
        .unwrap();
    for (order_id, city) in &orders {
        eventually(WAIT, &format!("order {order_id} settled"), || async {
            order_report(new.sdk(), new.deployment(), order_id)
                .await
                .unwrap()
                .is_settled()
        })
        .await;
        let report = order_report(new.sdk(), new.deployment(), order_id)
            .await
            .unwrap();
        assert_eq!(report.status(), Some(Status::Confirmed), "{order_id}");
        // The address, given to either major, reached the shipment.
        let shipped_to = report
            .shipment
            .and_then(|s| s.ship_to)
            .map(|address| address.city);
        assert_eq!(&shipped_to, city, "{order_id}");
    }
    // Only the v3 event is in a DLQ: in each of its readers', with the reason.
    for queue in queues(&new) {
        let dlq = dlq_of(&new, &queue);
        let reads_order_placed = new
            .topology()
            .event_types_of(&queue)
            .iter()
            .any(|t| t == "OrderPlaced");
        if !reads_order_placed {
            assert_eq!(depth(&new, &dlq).await, 0, "{dlq}");
            continue;
        }
        eventually(WAIT, &format!("the v3 event in {dlq}"), || async {
            depth(&new, &dlq).await == 1
        })
        .await;
        let url = new.deployment().reference(&dlq);
        let letters = orderflow::dlq::list(new.sdk(), &url, 10).await.unwrap();
        let reason = letters[0].reason.clone().unwrap_or_default();
        assert!(
            reason.contains(
                "unsupported OrderPlaced schema version \"3\", this consumer reads version \"1\" or \"2\""
            ),
            "{dlq}: {reason}"
        );
    }
    new.shutdown().await;
}
