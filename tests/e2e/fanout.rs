//! End-to-end: the order API, SNS, the five queues and the five consumers, through the local
//! runtime against the emulator, with the real SDK clients: one order's whole saga.

use std::time::Duration;

use crate::common::*;
use crate::openapi::{post_order, send};
use aws_sdk_sns::types::MessageAttributeValue;
use local_runtime::{
    faults::Acknowledgements,
    runtime::{LocalRuntime, RuntimeOptions},
};
use order_events::OrderPlacedEvent;
use order_state::Status;
use orderflow::report::{count_items, order_report};

const WAIT: Duration = Duration::from_secs(60);

async fn place(runtime: &LocalRuntime) -> String {
    let answer = post_order(&runtime.api_url(), &bearer(runtime).await, &order())
        .await
        .expect("POST /orders");
    assert_eq!(answer.status, 202, "{:?}", answer.json());
    assert_eq!(answer.json()["status"], "ACCEPTED");
    answer.json()["orderId"]
        .as_str()
        .expect("orderId")
        .to_owned()
}

async fn wait_complete(runtime: &LocalRuntime, order_id: &str) {
    eventually(WAIT, "the order settled in every service", || async {
        order_report(runtime.sdk(), runtime.deployment(), order_id)
            .await
            .expect("report")
            .is_settled()
    })
    .await;
}

/// Every effect exists exactly once: one order, one decision, one payment, one shipment, one
/// e-mail, and the stock went down by the ordered quantities once.
async fn assert_effects_once(runtime: &LocalRuntime, orders: usize) {
    let (sdk, deployment) = (runtime.sdk(), runtime.deployment());
    let stock_items = CATALOGUE.len();
    for (service, table) in service_tables(runtime) {
        // Inventory's table holds the stock items beside one decision per order.
        let others = if service == inventory::SPEC.name {
            stock_items
        } else {
            0
        };
        assert_eq!(
            count_items(sdk, deployment, &table).await.unwrap(),
            others + orders,
            "{table}"
        );
    }
    let inventory = inventory(runtime);
    assert_eq!(
        inventory.stock("SKU-KEYBOARD").await.unwrap(),
        Some(100 - 2 * orders as u64)
    );
    assert_eq!(
        inventory.stock("SKU-MOUSE").await.unwrap(),
        Some(100 - orders as u64)
    );
}

async fn drained(runtime: &LocalRuntime) -> bool {
    for queue in &queues(runtime) {
        if depth(runtime, queue).await > 0 {
            return false;
        }
    }
    true
}

async fn assert_dead_letter_queues_empty(runtime: &LocalRuntime) {
    for queue in &queues(runtime) {
        let dlq = dlq_of(runtime, queue);
        assert_eq!(depth(runtime, &dlq).await, 0, "{dlq}");
    }
}

#[tokio::test]
async fn one_order_is_confirmed_captured_shipped_and_mailed_once() {
    one_order_s_saga(options()).await;
}

#[tokio::test]
async fn one_order_is_confirmed_captured_shipped_and_mailed_once_on_fifo() {
    one_order_s_saga(ordered(options(), "fifo")).await;
}

async fn one_order_s_saga(options: RuntimeOptions) {
    let runtime = start(options).await;
    let order_id = place(&runtime).await;
    wait_complete(&runtime, &order_id).await;
    eventually(WAIT, "the queues are drained", || drained(&runtime)).await;

    let report = order_report(runtime.sdk(), runtime.deployment(), &order_id)
        .await
        .unwrap();
    assert_eq!(report.status(), Some(Status::Confirmed));
    assert_eq!(
        report.payment.map(|p| (p.status, p.amount_minor)),
        Some((
            payment::PaymentStatus::Captured,
            2 * price_of("SKU-KEYBOARD") + price_of("SKU-MOUSE")
        ))
    );
    assert_effects_once(&runtime, 1).await;
    wait_for_records(&runtime, 1).await;
    for consumer in &consumers(&runtime) {
        let stats = runtime.stats(consumer);
        let expected = records_per_order(&runtime, consumer, CONFIRMED_ORDER_EVENTS);
        assert!(expected >= 1, "{consumer} hears the order");
        assert_eq!(
            (stats.records, stats.failed_records, stats.deleted),
            (expected, 0, expected),
            "{consumer}"
        );
    }
    assert_dead_letter_queues_empty(&runtime).await;
    assert_every_function_s_calls_are_counted();
    runtime.shutdown().await;
}

/// Every function's clients go through the kit's call counter: each service wrote to DynamoDB,
/// and each that announces events published them, counted under its own name. (Other tests run
/// orders in the same process, so only presence is checked here; the counts per order are the
/// benchmarks'.)
fn assert_every_function_s_calls_are_counted() {
    let counted = lambda_kit::calls::snapshot();
    let made = |function: &str, service: &str| {
        counted.iter().any(|(key, tally)| {
            key.function == function && key.service == service && tally.calls > 0
        })
    };
    for spec in orderflow::services::registry().specs() {
        assert!(
            made(spec.name, "DynamoDB"),
            "no DynamoDB call of {} counted",
            spec.name
        );
        if !spec.publishes.is_empty() {
            assert!(
                made(spec.name, "SNS"),
                "no SNS call of {} counted",
                spec.name
            );
        }
    }
}

#[tokio::test]
async fn an_event_of_another_type_reaches_no_consumer() {
    let runtime = start(options()).await;
    let sns = aws_sdk_sns::Client::new(runtime.sdk());
    let attribute = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .unwrap()
    };
    let mut other = serde_json::to_value(OrderPlacedEvent::new(
        order_events::testing::sample_order(),
        "other-type",
    ))
    .unwrap();
    other["type"] = "InvoiceIssued".into();
    sns.publish()
        .topic_arn(runtime.deployment().reference("OrderEventsTopic"))
        .message(other.to_string())
        .message_attributes("eventType", attribute("InvoiceIssued"))
        .message_attributes("eventVersion", attribute("1"))
        .send()
        .await
        .expect("publish");

    // A real order afterwards: once it is through, the other event would have been too.
    let order_id = place(&runtime).await;
    wait_complete(&runtime, &order_id).await;
    eventually(WAIT, "the queues are drained", || drained(&runtime)).await;
    wait_for_records(&runtime, 1).await;
    for consumer in &consumers(&runtime) {
        assert_eq!(
            runtime.stats(consumer).records,
            records_per_order(&runtime, consumer, CONFIRMED_ORDER_EVENTS),
            "{consumer} saw the order's events only"
        );
    }
    assert_dead_letter_queues_empty(&runtime).await;
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_redelivered_message_produces_one_effect() {
    let runtime = start(options()).await;
    for consumer in &consumers(&runtime) {
        runtime.set_acknowledgements(consumer, Acknowledgements::FirstLost);
    }
    let order_id = place(&runtime).await;
    // Each consumer applies its effect, "crashes" before acknowledging, and gets the same
    // message again after the visibility timeout.
    wait_complete(&runtime, &order_id).await;
    eventually(WAIT, "the queues are drained", || drained(&runtime)).await;
    wait_for_records(&runtime, 2).await;
    assert_effects_once(&runtime, 1).await;
    assert_dead_letter_queues_empty(&runtime).await;
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_poison_record_goes_to_the_dlq_at_once_while_its_batch_succeeds() {
    a_poison_record_goes_to_the_dlq_at_once("standard").await;
}

#[tokio::test]
async fn a_poison_record_goes_to_the_dlq_at_once_while_its_batch_succeeds_on_fifo() {
    a_poison_record_goes_to_the_dlq_at_once("fifo").await;
}

async fn a_poison_record_goes_to_the_dlq_at_once(ordering: &str) {
    let fifo = ordering == "fifo";
    let mut options = ordered(options(), ordering);
    options.disabled_sources.insert("InventoryFunction".into());
    let runtime = start(options).await;
    let sqs = aws_sdk_sqs::Client::new(runtime.sdk());
    let inventory_queue = queue_of(&runtime, &inventory::SPEC);
    let inventory_dlq = dlq_of(&runtime, &inventory_queue);
    let queue = runtime.deployment().reference(&inventory_queue);

    // Three good events and one poison message, queued while the consumer is off so that
    // they arrive in one batch.
    let events: Vec<OrderPlacedEvent> = (0..3)
        .map(|_| OrderPlacedEvent::new(order_events::testing::sample_order(), "batch"))
        .collect();
    let poison =
        r#"{"specversion":"1.0","type":"OrderPlaced","eventversion":"1","data":{"orderId":42}}"#;
    // On FIFO, each in its order's message group (the poison's own, "42").
    for (group, body) in events
        .iter()
        .map(|e| (e.subject.clone(), serde_json::to_string(e).unwrap()))
        .chain([("42".to_owned(), poison.to_owned())])
    {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(body)
            .set_message_group_id(fifo.then_some(group))
            .set_message_deduplication_id(fifo.then(|| uuid::Uuid::now_v7().to_string()))
            .send()
            .await
            .unwrap();
    }
    runtime.set_source_enabled("InventoryFunction", true);

    eventually(
        WAIT,
        "the poison message is in the inventory DLQ",
        || async { depth(&runtime, &inventory_dlq).await == 1 },
    )
    .await;
    let dead = sqs
        .receive_message()
        .queue_url(runtime.deployment().reference(&inventory_dlq))
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body.as_deref(), Some(poison));
    let reason = dead[0]
        .message_attributes
        .as_ref()
        .and_then(|a| a.get(lambda_kit::dead_letters::attribute::REASON))
        .and_then(|v| v.string_value.clone())
        .unwrap_or_default();
    assert!(reason.contains("unreadable message"), "{reason:?}");

    // A schema violation fails permanently: sent to the DLQ by the consumer at once, never
    // retried; the batch's answer lists no failure, so all four records are deleted.
    eventually(WAIT, "the batch's invocation ended", || async {
        runtime.stats("InventoryFunction").records >= 4
    })
    .await;
    let stats = runtime.stats("InventoryFunction");
    assert_eq!(stats.failed_records, 0, "{stats:?}");
    assert_eq!(stats.deleted, 4, "{stats:?}");
    let inventory = inventory(&runtime);
    assert_eq!(
        inventory.stock("SKU-KEYBOARD").await.unwrap(),
        Some(100 - 3 * 2)
    );
    assert_eq!(depth(&runtime, &inventory_queue).await, 0);
    runtime.shutdown().await;
}

#[tokio::test]
async fn every_bad_request_gets_its_code_and_nothing_is_published() {
    let runtime = start(options()).await;
    let url = format!("{}/orders", runtime.api_url());
    let bearer = bearer(&runtime).await;
    let json = [
        ("content-type", "application/json"),
        ("authorization", bearer.as_str()),
    ];

    // API Gateway's JWT authorizer: no token, or one that is not the issuer's, never reaches
    // the function.
    for authorization in [
        None,
        Some("Bearer not-a-token"),
        Some(&bearer[..bearer.len() - 4]),
    ] {
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(authorization.map(|value| ("authorization", value)));
        let refused = send("POST", &url, &headers, order().to_string())
            .await
            .unwrap();
        assert_eq!(refused.status, 401, "{authorization:?}");
        assert_eq!(refused.json()["message"], "Unauthorized");
    }

    let malformed = send("POST", &url, &json, "{\"customerId\": ")
        .await
        .unwrap();
    assert_eq!(
        (malformed.status, malformed.json()["error"].as_str()),
        (400, Some("malformed_json"))
    );

    let text = send(
        "POST",
        &url,
        &[("content-type", "text/plain"), ("authorization", &bearer)],
        order().to_string(),
    )
    .await
    .unwrap();
    assert_eq!(text.status, 415);

    let mut huge = order();
    huge["currency"] = "x".repeat(70 * 1024).into();
    let too_large = send("POST", &url, &json, huge.to_string()).await.unwrap();
    assert_eq!(too_large.status, 413);

    // Prices are the catalogue's: a displayed price that is not is refused with the current one.
    let mut cheap = order();
    cheap["items"][0]["unitPriceMinor"] = 1.into();
    let refused = post_order(&runtime.api_url(), &bearer, &cheap)
        .await
        .unwrap();
    assert_eq!(refused.status, 409, "{:?}", refused.json());
    assert_eq!(refused.json()["error"], "price_changed");
    assert_eq!(
        refused.json()["prices"][0]["unitPriceMinor"],
        price_of("SKU-KEYBOARD")
    );

    type Mutation = fn(&mut serde_json::Value);
    let invalid: [(&str, Mutation); 7] = [
        ("items[0].sku", |b| {
            b["items"][0]["sku"] = "SKU-UNLISTED".into()
        }),
        ("items", |b| b["items"] = serde_json::json!([])),
        ("items[0].quantity", |b| {
            b["items"][0]["quantity"] = 0.into()
        }),
        ("items", |b| {
            b["items"] = serde_json::Value::Array(vec![b["items"][0].clone(); 101])
        }),
        // The customer is the token's: a body naming one is refused.
        ("customerEmail", |b| {
            b["customerEmail"] = "eve@example.com".into()
        }),
        ("currency", |b| b["currency"] = "ZZZ".into()),
        ("items[1].unitPriceMinor", |b| {
            b["items"][1]["unitPriceMinor"] = (-5).into()
        }),
    ];
    for (field, mutate) in invalid {
        let mut body = order();
        mutate(&mut body);
        let answer = post_order(&runtime.api_url(), &bearer, &body)
            .await
            .unwrap();
        assert_eq!(answer.status, 422, "{field}: {:?}", answer.json());
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let named = answer.json()["details"]
            .as_array()
            .is_some_and(|d| d.iter().any(|p| p["field"] == field));
        assert!(named, "{field} not named in {:?}", answer.json());
    }

    // Nothing of the above was published: after one good order, each consumer saw its events.
    let order_id = place(&runtime).await;
    wait_complete(&runtime, &order_id).await;
    wait_for_records(&runtime, 1).await;
    for consumer in &consumers(&runtime) {
        let expected = records_per_order(&runtime, consumer, CONFIRMED_ORDER_EVENTS);
        assert_eq!(runtime.stats(consumer).records, expected, "{consumer}");
    }
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_publish_failure_answers_503_and_accepts_nothing() {
    let runtime = start(options()).await;
    delete_topic(&runtime).await;
    let answer = post_order(&runtime.api_url(), &bearer(&runtime).await, &order())
        .await
        .unwrap();
    assert_eq!(answer.status, 503, "{:?}", answer.json());
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(answer.json()["error"], "publish_failed");
    let recorded = count_items(runtime.sdk(), runtime.deployment(), "OrdersTable")
        .await
        .unwrap();
    assert_eq!(recorded, 0, "an order whose publish failed never shows");
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_consumer_s_publishes_that_come_together_share_one_publish_batch() {
    let runtime = start(options()).await;
    // The order service's queue keeps what arrives: its consumer is off.
    let orders = runtime
        .topology()
        .functions
        .iter()
        .find(|f| f.binary == orders::SPEC.name)
        .expect("the order service is in the template")
        .logical_id
        .clone();
    runtime.set_source_enabled(&orders, false);
    let topic = runtime.deployment().reference("OrderEventsTopic");
    use order_events::publish::EventPublisher;
    let publisher = order_events::publish::SnsPublisher::new(runtime.sdk(), topic).batched();
    let outcomes: Vec<order_events::CloudEvent<order_events::StockReserved>> = (0..12)
        .map(|_| {
            let data = order_events::StockReserved {
                order_id: uuid::Uuid::now_v7(),
            };
            order_events::CloudEvent::new(data, "publish-batch-test")
        })
        .collect();
    // Twelve records of one invocation announce their outcomes at once: ten go in one batch,
    // the other two in the next.
    let published = lambda_kit::calls::scope(
        "publish-batch-test",
        futures::future::join_all(outcomes.iter().map(|event| publisher.publish(event))),
    )
    .await;
    assert!(published.iter().all(Result::is_ok), "{published:?}");
    let calls: Vec<(String, u64)> = lambda_kit::calls::snapshot()
        .into_iter()
        .filter(|(key, _)| key.function == "publish-batch-test")
        .map(|(key, tally)| (key.operation, tally.calls))
        .collect();
    assert_eq!(calls, [("PublishBatch".to_owned(), 2)]);

    // Each event reached its queue, as a publish of its own would have.
    let queue = runtime
        .deployment()
        .reference(&queue_of(&runtime, &orders::SPEC));
    let sqs = aws_sdk_sqs::Client::new(runtime.sdk());
    let expected: std::collections::BTreeSet<String> =
        outcomes.iter().map(|e| e.subject.clone()).collect();
    let mut subjects = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let messages = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default();
        for message in &messages {
            let body: serde_json::Value =
                serde_json::from_str(message.body().unwrap_or_default()).expect("a JSON body");
            subjects.insert(body["subject"].as_str().unwrap_or_default().to_owned());
            // Deleted, so that it does not come back once its visibility timeout is over.
            sqs.delete_message()
                .queue_url(&queue)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
        if subjects == expected {
            break;
        }
    }
    assert_eq!(subjects, expected);
    runtime.shutdown().await;
}
