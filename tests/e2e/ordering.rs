//! End-to-end: with `Ordering=fifo`, one order's events reach a service in the order they were
//! published, while other orders' events are handled between them.

use std::collections::BTreeMap;
use std::time::Duration;

use order_api::{EventPublisher, SnsPublisher};
use order_events::{CancellationRequested, CloudEvent, OrderPlacedEvent};

use crate::common::*;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn on_fifo_each_order_s_events_are_handled_in_publish_order_and_orders_interleave() {
    let mut options = ordered(options(), "fifo");
    // The order service's queue fills first, so that its batches hold many orders' events.
    options.disabled_sources.insert("OrdersFunction".into());
    let runtime = start(options).await;
    let publisher = SnsPublisher::new(
        runtime.sdk(),
        runtime.deployment().reference("OrderEventsTopic"),
    );

    // Round one: every order placed; round two: every order's cancellation requested. Each
    // publish is answered before the next is made: this is the publish order.
    let placed: Vec<OrderPlacedEvent> = (0..10)
        .map(|_| OrderPlacedEvent::new(order_events::testing::sample_order(), "ordering"))
        .collect();
    let mut published = Vec::new();
    for event in &placed {
        publisher.publish(event).await.expect("published");
        published.push((event.subject.clone(), event.id));
    }
    for event in &placed {
        let request = CloudEvent::new(
            CancellationRequested {
                order_id: event.order_id(),
                customer_id: event.data.customer_id.clone(),
            },
            "ordering",
        );
        publisher.publish(&request).await.expect("published");
        published.push((request.subject.clone(), request.id));
    }

    // What the order service is handed, in the order it is handed (the services' own events
    // about these orders come in between; only the test's are followed).
    let mut handed_to_orders = runtime.observe("OrdersFunction").expect("orders");
    runtime.set_source_enabled("OrdersFunction", true);
    let ours: BTreeMap<uuid::Uuid, String> =
        published.iter().map(|(o, id)| (*id, o.clone())).collect();
    let mut handed: Vec<(String, uuid::Uuid)> = Vec::new();
    while handed.len() < published.len() {
        let body = tokio::time::timeout(WAIT, handed_to_orders.recv())
            .await
            .expect("the order service was handed every event")
            .expect("a record");
        let envelope: serde_json::Value = serde_json::from_str(&body).expect("an event");
        let id: uuid::Uuid = envelope["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("an event id");
        if let Some(order) = ours.get(&id) {
            handed.push((order.clone(), id));
        }
    }

    // Each order's events, in the order handed, are its events in the order published.
    for event in &placed {
        let of_order = |list: &[(String, uuid::Uuid)]| -> Vec<uuid::Uuid> {
            list.iter()
                .filter(|(o, _)| *o == event.subject)
                .map(|(_, id)| *id)
                .collect()
        };
        assert_eq!(
            of_order(&handed),
            of_order(&published),
            "order {}",
            event.subject
        );
    }
    // And orders interleave: some order's two events have another order's between them.
    let interleaved = handed.windows(2).any(|pair| pair[0].0 != pair[1].0)
        && placed.iter().any(|event| {
            let positions: Vec<usize> = handed
                .iter()
                .enumerate()
                .filter(|(_, (o, _))| *o == event.subject)
                .map(|(i, _)| i)
                .collect();
            positions.windows(2).any(|p| p[1] > p[0] + 1)
        });
    assert!(interleaved, "{handed:?}");
    runtime.shutdown().await;
}
