use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use order_events::testing::{cancellation_of, event_batch, sample_event, sqs_batch};
use uuid::Uuid;

use lambda_kit::consumer::SqsConsumer;
use order_events::publish::MemoryPublisher;

use super::*;

/// An order's decision: its outcome, why (when rejected), and the quantities it covers.
type StoredDecision = (
    items::ReservationStatus,
    Option<String>,
    BTreeMap<String, u64>,
);

/// Stock and decisions in memory, applied at most once per order.
#[derive(Default)]
struct MemoryInventory {
    stock: Mutex<HashMap<String, u64>>,
    decisions: Mutex<HashMap<Uuid, StoredDecision>>,
}

impl MemoryInventory {
    fn with_stock(stock: &[(&str, u64)]) -> Self {
        let store = Self::default();
        *store.stock.lock().unwrap() = stock.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        store
    }
    fn stock(&self, sku: &str) -> Option<u64> {
        self.stock.lock().unwrap().get(sku).copied()
    }
    fn outcome(&self, order: Uuid) -> Option<items::ReservationStatus> {
        self.decisions.lock().unwrap().get(&order).map(|d| d.0)
    }
}

impl InventoryStore for MemoryInventory {
    async fn reserve(&self, event: &OrderPlacedEvent) -> Result<Effect<Reservation>, RecordError> {
        let mut decisions = self.decisions.lock().unwrap();
        if decisions.contains_key(&event.order_id()) {
            return Ok(Effect::AlreadyDone(()));
        }
        let mut stock = self.stock.lock().unwrap();
        let wanted = quantities_by_sku(&event.data);
        let shortfall = wanted
            .iter()
            .find_map(|(sku, &requested)| match stock.get(*sku) {
                None => Some(Rejection::UnknownSku(sku.to_string())),
                Some(&available) if available < requested => Some(Rejection::InsufficientStock {
                    sku: sku.to_string(),
                    requested,
                    available,
                }),
                Some(_) => None,
            });
        let lines: BTreeMap<String, u64> =
            wanted.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let decision = match shortfall {
            Some(rejection) => {
                let reason = Some(rejection.to_string());
                decisions.insert(
                    event.order_id(),
                    (items::ReservationStatus::Rejected, reason, lines),
                );
                Reservation::Rejected(rejection)
            }
            None => {
                for (sku, requested) in wanted {
                    *stock.get_mut(sku).unwrap() -= requested;
                }
                decisions.insert(
                    event.order_id(),
                    (items::ReservationStatus::Reserved, None, lines),
                );
                Reservation::Reserved
            }
        };
        Ok(Effect::Applied(decision))
    }

    async fn release(&self, event: &CloudEvent<OrderCancelled>) -> Result<Effect<()>, RecordError> {
        let mut decisions = self.decisions.lock().unwrap();
        match decisions.get_mut(&event.order_id()) {
            None => {
                let tombstone = (items::ReservationStatus::Cancelled, None, BTreeMap::new());
                decisions.insert(event.order_id(), tombstone);
                Ok(Effect::Applied(()))
            }
            Some(decision) if decision.0 == items::ReservationStatus::Reserved => {
                let mut stock = self.stock.lock().unwrap();
                for (sku, quantity) in &decision.2 {
                    *stock.get_mut(sku).unwrap() += quantity;
                }
                decision.0 = items::ReservationStatus::Released;
                Ok(Effect::Applied(()))
            }
            Some(_) => Ok(Effect::AlreadyDone(())),
        }
    }

    async fn decision(
        &self,
        order_id: Uuid,
    ) -> Result<Option<(items::ReservationStatus, Option<String>)>, RecordError> {
        Ok(self
            .decisions
            .lock()
            .unwrap()
            .get(&order_id)
            .map(|d| (d.0, d.1.clone())))
    }
}

fn inventory(stock: &[(&str, u64)]) -> Inventory<MemoryInventory, MemoryPublisher> {
    Inventory::new(
        MemoryInventory::with_stock(stock),
        MemoryPublisher::default(),
    )
}

fn cancelled(event: &OrderPlacedEvent) -> CloudEvent<OrderCancelled> {
    let reason = order_events::CancelReason::PaymentDeclined;
    CloudEvent::new(
        cancellation_of(&event.data, reason, "card declined"),
        "corr",
    )
}

fn far_deadline() -> SystemTime {
    SystemTime::now() + std::time::Duration::from_secs(60)
}

#[test]
fn repeated_skus_are_summed() {
    let mut order = order_events::testing::sample_order();
    order.lines.push(order.lines[0].clone());
    let wanted = quantities_by_sku(&order);
    assert_eq!(wanted["SKU-KEYBOARD"], 4);
    assert_eq!(wanted["SKU-MOUSE"], 1);
}

#[tokio::test]
async fn reserves_stock_once_even_when_delivered_twice() {
    let inventory = inventory(&[("SKU-KEYBOARD", 10), ("SKU-MOUSE", 10)]);
    let event = sample_event();
    for _ in 0..2 {
        let response = inventory
            .handle(event_batch([&event]), far_deadline())
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(inventory.store().stock("SKU-KEYBOARD"), Some(8));
    assert_eq!(inventory.store().stock("SKU-MOUSE"), Some(9));
    assert_eq!(
        inventory.store().outcome(event.order_id()),
        Some(items::ReservationStatus::Reserved)
    );
    // Announced each time: a redelivery re-announces what was decided.
    assert_eq!(inventory.publisher().types(), ["StockReserved"; 2]);
}

#[tokio::test]
async fn a_cancelled_order_gives_its_stock_back_once() {
    let inventory = inventory(&[("SKU-KEYBOARD", 10), ("SKU-MOUSE", 10)]);
    let event = sample_event();
    let cancel = cancelled(&event);
    let bodies = [
        String::from_utf8(event.canonical_json()).unwrap(),
        String::from_utf8(cancel.canonical_json()).unwrap(),
    ];
    for body in [&bodies[0], &bodies[1], &bodies[1]] {
        let response = inventory
            .handle(sqs_batch([body.as_str()]), far_deadline())
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(inventory.store().stock("SKU-KEYBOARD"), Some(10));
    assert_eq!(inventory.store().stock("SKU-MOUSE"), Some(10));
    assert_eq!(
        inventory.store().outcome(event.order_id()),
        Some(items::ReservationStatus::Released)
    );
}

#[tokio::test]
async fn a_cancellation_before_the_order_means_nothing_is_ever_held() {
    let inventory = inventory(&[("SKU-KEYBOARD", 10), ("SKU-MOUSE", 10)]);
    let event = sample_event();
    let cancel = String::from_utf8(cancelled(&event).canonical_json()).unwrap();
    let placed = String::from_utf8(event.canonical_json()).unwrap();
    for body in [&cancel, &placed] {
        let response = inventory
            .handle(sqs_batch([body.as_str()]), far_deadline())
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(inventory.store().stock("SKU-KEYBOARD"), Some(10));
    assert_eq!(
        inventory.store().outcome(event.order_id()),
        Some(items::ReservationStatus::Cancelled)
    );
    assert!(inventory.publisher().types().is_empty());
}

#[tokio::test]
async fn short_stock_rejects_the_order_without_failing_the_record() {
    let inventory = inventory(&[("SKU-KEYBOARD", 1), ("SKU-MOUSE", 10)]);
    let event = sample_event();
    let response = inventory
        .handle(event_batch([&event]), far_deadline())
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(inventory.store().stock("SKU-KEYBOARD"), Some(1));
    assert_eq!(inventory.store().stock("SKU-MOUSE"), Some(10));
    assert_eq!(
        inventory.store().outcome(event.order_id()),
        Some(items::ReservationStatus::Rejected)
    );
    let rejected = inventory.publisher().events::<StockRejected>();
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        rejected[0].data.reason,
        "insufficient stock for SKU-KEYBOARD: 2 requested, 1 available"
    );
}

#[tokio::test]
async fn an_unreadable_record_fails_alone() {
    let inventory = inventory(&[("SKU-KEYBOARD", 10), ("SKU-MOUSE", 10)]);
    let event = sample_event();
    let good = String::from_utf8(event.canonical_json()).unwrap();
    let response = inventory
        .handle(sqs_batch([good.as_str(), "{not json"]), far_deadline())
        .await
        .unwrap();
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m1"]);
    assert_eq!(
        inventory.store().outcome(event.order_id()),
        Some(items::ReservationStatus::Reserved)
    );
}
