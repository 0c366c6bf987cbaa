//! The decision does not depend on arrival order: every permutation of one order's events, each
//! delivered twice, ends in the same state having announced the same decisions.

use chrono::{DateTime, Duration, Utc};
use order_events::testing::sample_order;
use order_events::*;

use super::*;
use crate::state::placed_key;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(1_790_000_000_000 + ms).unwrap_or_default()
}

/// Every ordering of `items` (Heap's algorithm).
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    fn heap<T: Clone>(k: usize, items: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
        if k <= 1 {
            out.push(items.clone());
            return;
        }
        for i in 0..k {
            heap(k - 1, items, out);
            let j = if k.is_multiple_of(2) { i } else { 0 };
            items.swap(j, k - 1);
        }
    }
    let mut out = Vec::new();
    heap(items.len(), &mut items.to_vec(), &mut out);
    out
}

/// Delivers `facts` in order to a new order; its final state and the decisions it announced.
fn deliver(order_id: uuid::Uuid, facts: &[(Fact, DateTime<Utc>)]) -> (OrderItem, Vec<Decision>) {
    let mut item = OrderItem::new(order_id);
    let mut announced = Vec::new();
    for (fact, time) in facts {
        let before = item.status;
        if item.apply(fact.clone(), *time) && item.status != before {
            announced.extend(item.decision());
        }
    }
    (item, announced)
}

fn all_orders_agree(facts: Vec<(Fact, DateTime<Utc>)>) -> (OrderItem, Vec<Decision>) {
    let order_id = match &facts[0].0 {
        Fact::Placed(order) => order.order_id,
        _ => unreachable!("the first fact is the order"),
    };
    // Each fact twice: a duplicate delivery may come at any point.
    let doubled: Vec<_> = facts.iter().chain(facts.iter()).cloned().collect();
    let expected = deliver(order_id, &facts);
    let mut runs = 0;
    for once in permutations(&facts) {
        assert_eq!(deliver(order_id, &once), expected, "order {once:?}");
        runs += 1;
    }
    // Duplicates interleaved: every rotation of every permutation of the doubled list would be
    // 10! runs; the permutations of the first half followed by the reversed second half cover
    // "duplicate before the original" and "duplicate after everything".
    for mut once in permutations(&facts) {
        let mut tail = once.clone();
        tail.reverse();
        once.extend(tail);
        assert_eq!(deliver(order_id, &once), expected);
        once.reverse();
        assert_eq!(deliver(order_id, &once), expected);
    }
    assert_eq!(deliver(order_id, &doubled), expected);
    assert!(runs >= 2);
    expected
}

fn placed() -> OrderPlaced {
    sample_order()
}

fn authorized(order: &OrderPlaced) -> Fact {
    Fact::PaymentAuthorized(PaymentAuthorized {
        order_id: order.order_id,
        authorization_id: "auth_1".into(),
        amount_minor: order.total_minor,
        currency: order.currency.clone(),
    })
}

fn rejected(order: &OrderPlaced) -> Fact {
    Fact::StockRejected(StockRejected {
        order_id: order.order_id,
        reason: "insufficient stock for SKU-MOUSE: 1 requested, 0 available".into(),
    })
}

fn declined(order: &OrderPlaced) -> Fact {
    Fact::PaymentDeclined(PaymentDeclined {
        order_id: order.order_id,
        reason: "card declined".into(),
    })
}

#[test]
fn reserved_and_authorized_confirm_once_in_any_order() {
    let order = placed();
    let (item, announced) = all_orders_agree(vec![
        (Fact::Placed(order.clone()), at(0)),
        (Fact::StockReserved, at(30)),
        (authorized(&order), at(900)),
    ]);
    assert_eq!(item.status, Status::Confirmed);
    assert_eq!(item.confirmed_at, Some(at(900)));
    assert_eq!(
        announced,
        vec![Decision::Confirmed(OrderConfirmed::from(&order))]
    );
}

#[test]
fn rejected_stock_cancels_once_whatever_payment_says_and_when() {
    let order = placed();
    let (item, announced) = all_orders_agree(vec![
        (Fact::Placed(order.clone()), at(0)),
        (rejected(&order), at(20)),
        (authorized(&order), at(700)),
    ]);
    assert_eq!(item.status, Status::Cancelled);
    let cancellation = item.cancelled.clone().unwrap();
    assert_eq!(cancellation.reason, CancelReason::StockRejected);
    assert!(cancellation.detail.contains("SKU-MOUSE"));
    assert_eq!(cancellation.at, at(20));
    assert!(
        matches!(&announced[..], [Decision::Cancelled(c)] if c.reason == CancelReason::StockRejected)
    );
}

#[test]
fn a_declined_payment_cancels_once_in_any_order() {
    let order = placed();
    let (item, announced) = all_orders_agree(vec![
        (Fact::Placed(order.clone()), at(0)),
        (Fact::StockReserved, at(25)),
        (declined(&order), at(800)),
    ]);
    assert_eq!(item.status, Status::Cancelled);
    assert!(
        matches!(&announced[..], [Decision::Cancelled(c)] if c.reason == CancelReason::PaymentDeclined && c.total_minor == order.total_minor)
    );
}

#[test]
fn a_confirmed_order_states_capture_and_shipment_without_deciding_again() {
    let order = placed();
    let (item, announced) = all_orders_agree(vec![
        (Fact::Placed(order.clone()), at(0)),
        (Fact::StockReserved, at(30)),
        (authorized(&order), at(900)),
        (
            Fact::PaymentCaptured(PaymentCaptured {
                order_id: order.order_id,
                capture_id: "cap_1".into(),
                amount_minor: order.total_minor,
                currency: order.currency.clone(),
            }),
            at(1500),
        ),
        (
            Fact::ShipmentCreated(ShipmentCreated {
                order_id: order.order_id,
                shipment_id: "shp_1".into(),
                carrier: "DHL".into(),
                tracking_number: "TRK1".into(),
            }),
            at(1400),
        ),
    ]);
    assert_eq!(item.status, Status::Confirmed);
    assert!(item.captured.is_some() && item.shipped.is_some());
    assert!(!item.cancellable());
    assert_eq!(announced.len(), 1);
}

#[test]
fn both_failures_cancel_once_with_the_reason_first_known() {
    let order = placed();
    for (first, second, reason) in [
        (
            rejected(&order),
            declined(&order),
            CancelReason::StockRejected,
        ),
        (
            declined(&order),
            rejected(&order),
            CancelReason::PaymentDeclined,
        ),
    ] {
        let (item, announced) = deliver(
            order.order_id,
            &[
                (Fact::Placed(order.clone()), at(0)),
                (first, at(10)),
                (second, at(20)),
            ],
        );
        assert_eq!(item.status, Status::Cancelled);
        assert!(matches!(&announced[..], [Decision::Cancelled(c)] if c.reason == reason));
    }
}

#[test]
fn the_customer_may_cancel_until_the_order_ships() {
    let order = placed();
    let cancel = Fact::CancellationRequested(CancellationRequested {
        order_id: order.order_id,
        customer_id: order.customer_id.clone(),
    });
    let shipped = Fact::ShipmentCreated(ShipmentCreated {
        order_id: order.order_id,
        shipment_id: "shp_1".into(),
        carrier: "DHL".into(),
        tracking_number: "TRK1".into(),
    });
    let confirmed = [
        (Fact::Placed(order.clone()), at(0)),
        (Fact::StockReserved, at(30)),
        (authorized(&order), at(900)),
    ];

    // Before confirmation: cancelled, never confirmed, in any order.
    let (item, announced) = all_orders_agree(
        [
            (Fact::Placed(order.clone()), at(0)),
            (cancel.clone(), at(5)),
            (Fact::StockReserved, at(30)),
        ]
        .to_vec(),
    );
    assert_eq!(item.status, Status::Cancelled);
    assert!(
        matches!(&announced[..], [Decision::Cancelled(c)] if c.reason == CancelReason::CustomerRequest)
    );

    // After confirmation, before shipment: confirmed, then cancelled.
    let mut facts = confirmed.to_vec();
    facts.push((cancel.clone(), at(1000)));
    let (item, announced) = deliver(order.order_id, &facts);
    assert_eq!(item.status, Status::Cancelled);
    assert_eq!(item.confirmed_at, Some(at(900)));
    assert!(matches!(
        &announced[..],
        [Decision::Confirmed(_), Decision::Cancelled(_)]
    ));

    // After shipment: the request is recorded and refused, with the shipment as the reason.
    let mut facts = confirmed.to_vec();
    facts.push((shipped, at(1000)));
    facts.push((cancel.clone(), at(1000) + Duration::seconds(1)));
    let (mut item, announced) = deliver(order.order_id, &facts);
    assert_eq!(item.status, Status::Confirmed);
    assert!(item.cancellation_requested_at.is_some());
    assert_eq!(announced.len(), 1);
    assert!(matches!(announced[0], Decision::Confirmed(_)));
    let refusal = item.refusal().expect("the request is refused");
    assert_eq!(refusal.reason, RefusalReason::AlreadyShipped);
    assert_eq!(refusal.detail, "DHL tracking TRK1");
    assert_eq!(refusal.customer_email, order.customer_email);
    let refused_at = item.cancellation_refused.as_ref().map(|r| r.at);
    assert_eq!(refused_at, Some(at(1000) + Duration::seconds(1)));
    // A duplicate of the request changes nothing: the refusal is recorded once.
    assert!(!item.apply(cancel, at(1000) + Duration::seconds(1)));
    assert_eq!(item.cancellation_refused.as_ref().map(|r| r.at), refused_at);
}

#[test]
fn a_cancellation_known_before_the_shipment_is_never_refused() {
    let order = placed();
    let mut item = OrderItem::new(order.order_id);
    item.apply(Fact::Placed(order.clone()), at(0));
    item.apply(Fact::StockReserved, at(30));
    item.apply(authorized(&order), at(900));
    item.apply(
        Fact::CancellationRequested(CancellationRequested {
            order_id: order.order_id,
            customer_id: order.customer_id.clone(),
        }),
        at(1000),
    );
    item.apply(
        Fact::ShipmentCreated(ShipmentCreated {
            order_id: order.order_id,
            shipment_id: "shp_1".into(),
            carrier: "DHL".into(),
            tracking_number: "TRK1".into(),
        }),
        at(999),
    );
    assert_eq!(item.status, Status::Cancelled);
    assert_eq!(item.refusal(), None);
}

#[test]
fn outcomes_before_the_order_wait_for_it() {
    let order = placed();
    let mut item = OrderItem::new(order.order_id);
    assert!(item.apply(Fact::StockReserved, at(30)));
    assert!(item.apply(authorized(&order), at(40)));
    assert_eq!(item.status, Status::Pending);
    assert_eq!(item.decision(), None);
    assert!(item.apply(Fact::Placed(order.clone()), at(0)));
    assert_eq!(item.status, Status::Confirmed);
}

#[test]
fn an_item_from_before_the_index_gets_its_keys_with_its_next_change() {
    let order = placed();
    let mut item = OrderItem::new(order.order_id);
    item.apply(Fact::Placed(order.clone()), at(0));
    assert_eq!(
        item.customer_id.as_deref(),
        Some(order.customer_id.as_str())
    );
    assert_eq!(item.placed_at, Some(placed_key(at(0))));
    // As read from a table written before the index: no index attributes.
    item.customer_id = None;
    item.placed_at = None;
    assert!(item.apply(Fact::StockReserved, at(30)));
    assert_eq!(
        item.customer_id.as_deref(),
        Some(order.customer_id.as_str())
    );
    assert_eq!(item.placed_at, Some(placed_key(at(0))));
}
