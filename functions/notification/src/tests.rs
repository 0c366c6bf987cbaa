use std::sync::Mutex;
use std::time::Duration;

use lambda_kit::effect::MemoryEffectStore;
use order_events::testing::{cancellation_of, event_batch, sample_order};
use order_events::CancelReason;

use lambda_kit::consumer::SqsConsumer;

use super::*;

/// Keeps sent e-mails; fails every send while `down` is set.
#[derive(Default)]
struct MemoryMailer {
    sent: Mutex<Vec<Email>>,
    down: std::sync::atomic::AtomicBool,
}

impl Mailer for MemoryMailer {
    async fn send(&self, email: &Email) -> Result<String, RecordError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("mail service unavailable".into());
        }
        let mut sent = self.sent.lock().unwrap();
        sent.push(email.clone());
        Ok(format!("msg-{}", sent.len()))
    }
}

fn confirmed_event() -> CloudEvent<OrderConfirmed> {
    CloudEvent::new(OrderConfirmed::from(&sample_order()), "corr")
}

fn cancelled_event(order: &OrderConfirmed) -> CloudEvent<OrderCancelled> {
    let placed = order_events::OrderPlaced {
        order_id: order.order_id,
        customer_id: order.customer_id.clone(),
        customer_email: order.customer_email.clone(),
        lines: order.lines.clone(),
        currency: order.currency.clone(),
        total_minor: order.total_minor,
        shipping_address: None,
    };
    let detail = "insufficient stock for SKU-WEBCAM: 1 requested, 0 available";
    CloudEvent::new(
        cancellation_of(&placed, CancelReason::StockRejected, detail),
        "corr",
    )
}

fn deadline() -> SystemTime {
    SystemTime::now() + Duration::from_secs(60)
}

#[test]
fn the_confirmation_lists_lines_and_total() {
    let order = OrderConfirmed::from(&sample_order());
    let email = confirmation(&order);
    assert_eq!(email.to, "ada@example.com");
    assert!(email.subject.contains(&order.order_id.to_string()));
    assert!(
        email.body.contains("2 x SKU-KEYBOARD  99.98 EUR"),
        "{}",
        email.body
    );
    assert!(email.body.contains("Total: 119.97 EUR"), "{}", email.body);
}

#[tokio::test]
async fn sends_one_email_per_event_however_often_delivered() {
    let notification = Notification::new(
        MemoryMailer::default(),
        MemoryEffectStore::new(NotificationItem::KEY),
    );
    let event = confirmed_event();
    for _ in 0..2 {
        let response = notification
            .handle(event_batch([&event]), deadline())
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(notification.mailer().sent.lock().unwrap().len(), 1);
    let items = notification.store().items::<NotificationItem>();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].message_id, "msg-1");
    assert_eq!(items[0].recipient, "ada@example.com");
}

#[tokio::test]
async fn a_failed_send_releases_the_claim_so_the_retry_sends() {
    let notification = Notification::new(
        MemoryMailer::default(),
        MemoryEffectStore::new(NotificationItem::KEY),
    );
    let event = confirmed_event();
    notification
        .mailer()
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let response = notification
        .handle(event_batch([&event]), deadline())
        .await
        .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert!(notification.store().items::<NotificationItem>().is_empty());

    notification
        .mailer()
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let response = notification
        .handle(event_batch([&event]), deadline())
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(notification.mailer().sent.lock().unwrap().len(), 1);
    assert_eq!(notification.store().items::<NotificationItem>().len(), 1);
}

#[tokio::test]
async fn a_cancellation_is_mailed_once_with_its_reason_and_stops_a_late_confirmation() {
    let notification = Notification::new(
        MemoryMailer::default(),
        MemoryEffectStore::new(NotificationItem::KEY),
    );
    let confirmed = confirmed_event();
    let cancelled = cancelled_event(&confirmed.data);
    for _ in 0..2 {
        let response = notification
            .handle(event_batch([&cancelled]), deadline())
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    let response = notification
        .handle(event_batch([&confirmed]), deadline())
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    let sent = notification.mailer().sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].subject.contains("cancelled"));
    assert!(sent[0].body.contains("stock rejected"), "{}", sent[0].body);
    assert!(sent[0].body.contains("SKU-WEBCAM"), "{}", sent[0].body);
    let items = notification.store().items::<NotificationItem>();
    assert_eq!(items[0].kind, EmailKind::Cancellation);
}

#[tokio::test]
async fn a_refused_cancellation_is_mailed_once_beside_the_confirmation() {
    let notification = Notification::new(
        MemoryMailer::default(),
        MemoryEffectStore::new(NotificationItem::KEY),
    );
    let confirmed = confirmed_event();
    let refused = CloudEvent::new(
        CancellationRefused {
            order_id: confirmed.data.order_id,
            customer_id: confirmed.data.customer_id.clone(),
            customer_email: confirmed.data.customer_email.clone(),
            reason: order_events::RefusalReason::AlreadyShipped,
            detail: "DHL tracking TRK1".into(),
        },
        "corr",
    );
    let batches = [
        event_batch([&confirmed]),
        event_batch([&refused]),
        event_batch([&refused]),
    ];
    for batch in batches {
        let response = notification.handle(batch, deadline()).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    let sent = notification.mailer().sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert!(sent[1].subject.contains("cancellation not possible"));
    assert!(
        sent[1].body.contains("could not cancel") && sent[1].body.contains("already shipped"),
        "{}",
        sent[1].body
    );
    assert!(sent[1].body.contains("TRK1"), "{}", sent[1].body);
    let mut kinds: Vec<_> = notification
        .store()
        .items::<NotificationItem>()
        .iter()
        .map(|item| item.kind)
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [EmailKind::Confirmation, EmailKind::CancellationRefused]
    );
}
