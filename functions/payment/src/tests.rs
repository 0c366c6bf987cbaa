use std::time::Duration;

use lambda_kit::consumer::SqsConsumer;
use lambda_kit::effect::MemoryEffectStore;
use order_events::publish::MemoryPublisher;
use order_events::testing::{cancellation_of, sample_event, sqs_batch};
use order_events::{CancelReason, EventData};

use super::*;

type TestPayment = Payment<SimulatedGateway, MemoryEffectStore, MemoryPublisher>;

fn payment(failure_rate: f64) -> TestPayment {
    Payment::new(
        SimulatedGateway::new(Duration::ZERO, failure_rate),
        MemoryEffectStore::new(PaymentItem::KEY),
        MemoryPublisher::default(),
    )
}

fn body<T: EventData>(event: &CloudEvent<T>) -> String {
    String::from_utf8(event.canonical_json()).unwrap()
}

async fn deliver(payment: &TestPayment, bodies: &[String]) -> usize {
    let deadline = SystemTime::now() + Duration::from_secs(60);
    let batch = sqs_batch(bodies.iter().map(String::as_str));
    let response = payment.handle(batch, deadline).await.unwrap();
    response.batch_item_failures.len()
}

fn confirmed(placed: &OrderPlacedEvent) -> CloudEvent<OrderConfirmed> {
    CloudEvent::new(OrderConfirmed::from(&placed.data), "corr")
}

fn cancelled(placed: &OrderPlacedEvent) -> CloudEvent<OrderCancelled> {
    let data = cancellation_of(&placed.data, CancelReason::StockRejected, "unknown sku");
    CloudEvent::new(data, "corr")
}

fn only_item(payment: &TestPayment) -> PaymentItem {
    let items = payment.store().items::<PaymentItem>();
    assert_eq!(items.len(), 1);
    items[0].clone()
}

#[tokio::test]
async fn a_placed_order_is_authorized_once_and_captured_once_when_confirmed() {
    let payment = payment(0.0);
    let placed = sample_event();
    for _ in 0..2 {
        assert_eq!(deliver(&payment, &[body(&placed)]).await, 0);
    }
    assert_eq!(only_item(&payment).status, PaymentStatus::Authorized);
    assert_eq!(payment.gateway().holds().len(), 1);
    for _ in 0..2 {
        assert_eq!(deliver(&payment, &[body(&confirmed(&placed))]).await, 0);
    }
    let item = only_item(&payment);
    assert_eq!(item.status, PaymentStatus::Captured);
    assert_eq!(item.amount_minor, 11_997);
    let holds = payment.gateway().holds();
    assert_eq!((holds.len(), holds[0].state), (1, HoldState::Captured));
    let announced = payment.publisher().types();
    assert_eq!(
        announced,
        [
            "PaymentAuthorized",
            "PaymentAuthorized",
            "PaymentCaptured",
            "PaymentCaptured"
        ]
    );
    let authorized = payment.publisher().events::<PaymentAuthorized>();
    assert_eq!(authorized[0].data, authorized[1].data);
}

#[tokio::test]
async fn a_cancelled_order_is_voided_or_refunded() {
    let payment = payment(0.0);
    let (held, charged) = (sample_event(), sample_event());
    assert_eq!(deliver(&payment, &[body(&held), body(&charged)]).await, 0);
    assert_eq!(deliver(&payment, &[body(&confirmed(&charged))]).await, 0);
    for _ in 0..2 {
        let bodies = [body(&cancelled(&held)), body(&cancelled(&charged))];
        assert_eq!(deliver(&payment, &bodies).await, 0);
    }
    let mut statuses: Vec<_> = payment
        .store()
        .items::<PaymentItem>()
        .into_iter()
        .map(|item| (item.order_id == held.order_id(), item.status))
        .collect();
    statuses.sort_by_key(|(held, _)| *held);
    assert_eq!(
        statuses,
        [
            (false, PaymentStatus::Refunded),
            (true, PaymentStatus::Voided)
        ]
    );
    let mut states: Vec<_> = payment.gateway().holds().iter().map(|h| h.state).collect();
    states.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(states, [HoldState::Refunded, HoldState::Voided]);
}

#[tokio::test]
async fn a_cancellation_before_the_order_leaves_no_hold_and_no_capture() {
    let payment = payment(0.0);
    let placed = sample_event();
    for event in [
        body(&cancelled(&placed)),
        body(&placed),
        body(&confirmed(&placed)),
    ] {
        assert_eq!(deliver(&payment, &[event]).await, 0);
    }
    let item = only_item(&payment);
    assert_eq!(item.status, PaymentStatus::Voided);
    assert!(payment
        .gateway()
        .holds()
        .iter()
        .all(|hold| hold.state == HoldState::Voided));
    assert!(payment.publisher().types().is_empty());
}

#[tokio::test]
async fn a_declined_authorization_is_announced_and_nothing_is_held() {
    let payment = payment(0.0);
    payment.gateway().set_decline_rate(1.0);
    let placed = sample_event();
    assert_eq!(deliver(&payment, &[body(&placed)]).await, 0);
    assert_eq!(only_item(&payment).status, PaymentStatus::Declined);
    assert!(payment.gateway().holds().is_empty());
    let declined = payment.publisher().events::<PaymentDeclined>();
    assert_eq!(declined[0].data.reason, "card declined by the issuer");
    // A later cancellation has nothing to give back.
    assert_eq!(deliver(&payment, &[body(&cancelled(&placed))]).await, 0);
    assert_eq!(only_item(&payment).status, PaymentStatus::Declined);
}

#[tokio::test]
async fn a_gateway_failure_fails_the_record_and_writes_nothing() {
    let payment = payment(1.0);
    assert_eq!(deliver(&payment, &[body(&sample_event())]).await, 1);
    assert!(payment.store().items::<PaymentItem>().is_empty());
    assert!(payment.publisher().types().is_empty());
}

#[tokio::test]
async fn the_gateway_answers_a_repeated_key_the_same_and_refuses_wrong_moves() {
    let gateway = SimulatedGateway::new(Duration::ZERO, 0.0);
    let request = AuthorizeRequest {
        idempotency_key: "k".into(),
        customer_id: "c".into(),
        amount_minor: 100,
        currency: "EUR".into(),
    };
    let first = gateway.authorize(&request).await.unwrap();
    assert_eq!(gateway.authorize(&request).await.unwrap(), first);
    assert_eq!(gateway.holds().len(), 1);
    let Authorization::Approved { authorization_id } = first else {
        panic!("declined")
    };
    let capture = gateway.capture("c1", &authorization_id).await.unwrap();
    assert_eq!(
        gateway.capture("c1", &authorization_id).await.unwrap(),
        capture
    );
    assert!(matches!(
        gateway.void("v1", &authorization_id).await,
        Err(GatewayError::NotAllowed {
            state: HoldState::Captured,
            ..
        })
    ));
    gateway.refund("r1", &authorization_id).await.unwrap();
    assert_eq!(gateway.holds()[0].state, HoldState::Refunded);
}

#[test]
fn an_out_of_range_rate_is_a_configuration_error() {
    for name in ["PAYMENT_FAILURE_RATE", "PAYMENT_DECLINE_RATE"] {
        let env = FunctionEnv::from_map([(name.to_string(), "1.5".to_string())].into());
        assert!(SimulatedGateway::from_env(&env).is_err(), "{name}");
    }
}
