use std::time::Duration;

use lambda_kit::effect::MemoryEffectStore;
use order_events::testing::{event_batch, sample_event};

use lambda_kit::consumer::SqsConsumer;

use super::*;

fn payment(failure_rate: f64) -> Payment<SimulatedGateway, MemoryEffectStore> {
    Payment::new(
        SimulatedGateway::new(Duration::ZERO, failure_rate),
        MemoryEffectStore::new("orderId"),
    )
}

fn deadline() -> SystemTime {
    SystemTime::now() + Duration::from_secs(60)
}

#[tokio::test]
async fn charges_once_and_writes_the_payment() {
    let payment = payment(0.0);
    let event = sample_event();
    for _ in 0..3 {
        let response = payment
            .handle(event_batch([&event]), deadline())
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(payment.gateway().charges_made(), 1);
    let items = payment.store().items::<PaymentItem>();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].order_id, event.order_id());
    assert_eq!(items[0].amount_minor, 11_997);
    assert_eq!(items[0].event_id, event.id);
    assert!(items[0].charge_id.starts_with("ch_"));
}

#[tokio::test]
async fn a_gateway_failure_fails_the_record_and_writes_nothing() {
    let payment = payment(1.0);
    let response = payment
        .handle(event_batch([&sample_event()]), deadline())
        .await
        .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert!(payment.store().items::<PaymentItem>().is_empty());
}

#[tokio::test]
async fn the_gateway_returns_the_same_charge_for_the_same_key() {
    let gateway = SimulatedGateway::new(Duration::ZERO, 0.0);
    let request = ChargeRequest {
        idempotency_key: "k".into(),
        customer_id: "c".into(),
        amount_minor: 100,
        currency: "EUR".into(),
    };
    let first = gateway.charge(&request).await.unwrap();
    let second = gateway.charge(&request).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(gateway.charges_made(), 1);
}

#[test]
fn an_out_of_range_failure_rate_is_a_configuration_error() {
    let env =
        FunctionEnv::from_map([("PAYMENT_FAILURE_RATE".to_string(), "1.5".to_string())].into());
    assert!(SimulatedGateway::from_env(&env).is_err());
}
