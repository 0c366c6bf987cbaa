use std::sync::Mutex;
use std::time::Duration;

use lambda_kit::effect::MemoryEffectStore;
use order_events::testing::{event_batch, sample_event, sample_order};

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

fn deadline() -> SystemTime {
    SystemTime::now() + Duration::from_secs(60)
}

#[test]
fn the_confirmation_lists_lines_and_total() {
    let order = sample_order();
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
    let notification =
        Notification::new(MemoryMailer::default(), MemoryEffectStore::new("orderId"));
    let event = sample_event();
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
    let notification =
        Notification::new(MemoryMailer::default(), MemoryEffectStore::new("orderId"));
    let event = sample_event();
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
