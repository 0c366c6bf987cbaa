use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use lambda_kit::consumer::SqsConsumer;
use lambda_kit::effect::MemoryEffectStore;
use order_events::publish::{MemoryPublisher, PublishError};
use order_events::testing::{sample_order, sqs_batch};
use order_events::*;

use order_state::{insert_placed, OrderView};

use super::*;

/// Refuses publishes while `down` is set, otherwise keeps them.
#[derive(Default)]
struct Publisher {
    kept: MemoryPublisher,
    down: AtomicBool,
}

impl EventPublisher for Publisher {
    async fn publish<T: EventData>(&self, event: &CloudEvent<T>) -> Result<(), PublishError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PublishError("broker unavailable".into()));
        }
        self.kept.publish(event).await
    }
}

fn body<T: EventData>(data: T) -> String {
    String::from_utf8(CloudEvent::new(data, "corr").canonical_json()).unwrap()
}

fn service() -> Orders<MemoryEffectStore, Publisher> {
    Orders::new(MemoryEffectStore::new(OrderItem::KEY), Publisher::default())
}

async fn deliver(
    orders: &Orders<MemoryEffectStore, Publisher>,
    bodies: Vec<String>,
) -> Vec<String> {
    let deadline = SystemTime::now() + Duration::from_secs(30);
    let response = orders.handle(sqs_batch(bodies), deadline).await.unwrap();
    response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

#[tokio::test]
async fn an_order_reserved_and_authorized_is_confirmed_once() {
    let orders = service();
    let order = sample_order();
    let authorized = PaymentAuthorized {
        order_id: order.order_id,
        authorization_id: "auth_1".into(),
        amount_minor: order.total_minor,
        currency: order.currency.clone(),
    };
    let reserved = StockReserved {
        order_id: order.order_id,
    };
    for batch in [
        vec![body(reserved.clone())],
        vec![body(order.clone()), body(reserved)],
        vec![body(authorized.clone()), body(authorized)],
    ] {
        assert!(deliver(&orders, batch).await.is_empty());
    }
    // Decided once, by the authorization; its duplicate cannot tell whether the first
    // delivery's publish happened, so it announces the decision again, with the same data
    // (consumers apply it once). The earlier events announce nothing.
    let confirmed = orders.publisher().kept.events::<OrderConfirmed>();
    assert_eq!(
        orders.publisher().kept.types(),
        ["OrderConfirmed", "OrderConfirmed"]
    );
    assert_eq!(confirmed[0].data, OrderConfirmed::from(&order));
    assert_eq!(confirmed[1].data, confirmed[0].data);
    let items = orders.store().items::<OrderItem>();
    assert_eq!(items[0].status, Status::Confirmed);
    assert_eq!(items[0].decided_by.as_deref(), Some("PaymentAuthorized"));
}

#[tokio::test]
async fn a_decision_whose_publish_failed_is_announced_when_the_event_comes_again() {
    let orders = service();
    let order = sample_order();
    let rejected = StockRejected {
        order_id: order.order_id,
        reason: "unknown sku SKU-NOPE".into(),
    };
    assert!(deliver(&orders, vec![body(order.clone())]).await.is_empty());
    orders.publisher().down.store(true, Ordering::SeqCst);
    assert_eq!(deliver(&orders, vec![body(rejected.clone())]).await, ["m0"]);
    assert_eq!(
        orders.store().items::<OrderItem>()[0].status,
        Status::Cancelled
    );
    orders.publisher().down.store(false, Ordering::SeqCst);
    assert!(deliver(&orders, vec![body(rejected)]).await.is_empty());
    let cancelled = orders.publisher().kept.events::<OrderCancelled>();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].data.reason, CancelReason::StockRejected);
    assert_eq!(cancelled[0].data.detail, "unknown sku SKU-NOPE");
    assert_eq!(cancelled[0].data.customer_email, order.customer_email);
}

#[tokio::test]
async fn events_it_does_not_read_fail_their_record_only() {
    let orders = service();
    let order = sample_order();
    let mut wrong_version: serde_json::Value = serde_json::from_str(&body(StockReserved {
        order_id: order.order_id,
    }))
    .unwrap();
    wrong_version["eventversion"] = "2".into();
    let failed = deliver(
        &orders,
        vec![
            body(order.clone()),
            body(OrderConfirmed::from(&order)),
            wrong_version.to_string(),
            "{}".into(),
        ],
    )
    .await;
    assert_eq!(failed, ["m1", "m2", "m3"]);
}

#[tokio::test]
async fn the_api_records_a_placed_order_once_and_the_view_shows_it() {
    let store = MemoryEffectStore::new(OrderItem::KEY);
    let event = CloudEvent::new(sample_order(), "corr");
    insert_placed(&store, &event).await.unwrap();
    insert_placed(&store, &event).await.unwrap();
    let items = store.items::<OrderItem>();
    assert_eq!(items.len(), 1);
    let view = OrderView::of(&items[0]).unwrap();
    assert_eq!(view.status, "PENDING");
    assert_eq!(view.total_minor, event.data.total_minor);
    assert_eq!(view.timeline.len(), 1);
    assert_eq!(view.timeline[0].step, "placed");
}

#[tokio::test]
async fn a_repeated_capture_or_shipment_announces_nothing() {
    let orders = service();
    let order = sample_order();
    let captured = PaymentCaptured {
        order_id: order.order_id,
        capture_id: "cap_1".into(),
        amount_minor: order.total_minor,
        currency: order.currency.clone(),
    };
    let authorized = PaymentAuthorized {
        order_id: order.order_id,
        authorization_id: "auth_1".into(),
        amount_minor: order.total_minor,
        currency: order.currency.clone(),
    };
    let batch = vec![
        body(order.clone()),
        body(StockReserved {
            order_id: order.order_id,
        }),
        body(authorized),
    ];
    assert!(deliver(&orders, batch).await.is_empty());
    orders.publisher().kept.clear();
    for _ in 0..3 {
        assert!(deliver(&orders, vec![body(captured.clone())])
            .await
            .is_empty());
    }
    assert!(orders.publisher().kept.types().is_empty());
}

#[tokio::test]
async fn a_cancellation_after_the_shipment_is_refused_and_the_refusal_announced() {
    let orders = service();
    let order = sample_order();
    let confirm = vec![
        body(order.clone()),
        body(StockReserved {
            order_id: order.order_id,
        }),
        body(PaymentAuthorized {
            order_id: order.order_id,
            authorization_id: "auth_1".into(),
            amount_minor: order.total_minor,
            currency: order.currency.clone(),
        }),
        body(ShipmentCreated {
            order_id: order.order_id,
            shipment_id: "shp_1".into(),
            carrier: "DHL".into(),
            tracking_number: "TRK1".into(),
        }),
    ];
    assert!(deliver(&orders, confirm).await.is_empty());
    orders.publisher().kept.clear();
    let cancel = body(CancellationRequested {
        order_id: order.order_id,
        customer_id: order.customer_id.clone(),
    });
    // The refusal is recorded even when its announcement fails; the redelivered request
    // announces it, with the same data.
    orders.publisher().down.store(true, Ordering::SeqCst);
    assert_eq!(deliver(&orders, vec![cancel.clone()]).await, ["m0"]);
    orders.publisher().down.store(false, Ordering::SeqCst);
    assert!(deliver(&orders, vec![cancel]).await.is_empty());
    assert_eq!(orders.publisher().kept.types(), ["CancellationRefused"]);
    let refused = orders.publisher().kept.events::<CancellationRefused>();
    assert_eq!(refused[0].data.reason, RefusalReason::AlreadyShipped);
    assert_eq!(refused[0].data.detail, "DHL tracking TRK1");
    assert_eq!(refused[0].data.customer_email, order.customer_email);
    let view = OrderView::of(&orders.store().items::<OrderItem>()[0]).unwrap();
    assert_eq!(view.status, "SHIPPED");
    let last = view.timeline.last().unwrap();
    assert_eq!((last.step, last.outcome), ("cancellationRefused", "failed"));
    assert!(last.detail.contains("already shipped"), "{}", last.detail);
}

/// The decision's business metrics are counted once per order, however often its events come.
#[test]
fn a_decision_is_counted_once_with_the_time_it_took() {
    use lambda_kit::metrics::name;
    use lambda_kit::metrics::testing::{recorded, DebugValue};
    let orders = service();
    let order = sample_order();
    let declined = PaymentDeclined {
        order_id: order.order_id,
        reason: "card declined".into(),
    };
    let ((), metrics) = recorded(async {
        for batch in [
            vec![body(order.clone())],
            vec![body(declined.clone())],
            vec![body(declined.clone()), body(declined)],
        ] {
            assert!(deliver(&orders, batch).await.is_empty());
        }
    });
    let mut cancelled = Vec::new();
    let mut decision_times = 0;
    for (metric, labels, value) in metrics {
        match (metric.as_str(), value) {
            (name::ORDERS_CANCELLED, DebugValue::Counter(n)) => cancelled.push((labels, n)),
            (name::ORDERS_CONFIRMED, DebugValue::Counter(n)) => assert_eq!(n, 0),
            (name::TIME_TO_DECISION, DebugValue::Histogram(times)) => decision_times += times.len(),
            _ => {}
        }
    }
    assert_eq!(
        cancelled,
        [(
            vec![
                "service=orders".to_owned(),
                "reason=PaymentDeclined".to_owned()
            ],
            1
        )]
    );
    assert_eq!(decision_times, 1);
}
