use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use order_events::testing::{event_batch, sample_event, sqs_batch};
use uuid::Uuid;

use lambda_kit::consumer::SqsConsumer;

use super::*;

/// Stock and decisions in memory, applied at most once per order.
#[derive(Default)]
struct MemoryInventory {
    stock: Mutex<HashMap<String, u64>>,
    decisions: Mutex<HashMap<Uuid, Decision>>,
    applied: Mutex<HashSet<Uuid>>,
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
    fn decision(&self, order: Uuid) -> Option<Decision> {
        self.decisions.lock().unwrap().get(&order).cloned()
    }
}

impl InventoryStore for MemoryInventory {
    async fn reserve(&self, event: &OrderPlacedEvent) -> Result<Effect<Decision>, RecordError> {
        if !self.applied.lock().unwrap().insert(event.order_id()) {
            return Ok(Effect::AlreadyApplied);
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
        let decision = match shortfall {
            Some(rejection) => Decision::Rejected(rejection),
            None => {
                for (sku, requested) in wanted {
                    *stock.get_mut(sku).unwrap() -= requested;
                }
                Decision::Reserved
            }
        };
        self.decisions
            .lock()
            .unwrap()
            .insert(event.order_id(), decision.clone());
        Ok(Effect::Applied(decision))
    }
}

fn far_deadline() -> SystemTime {
    SystemTime::now() + std::time::Duration::from_secs(60)
}

#[test]
fn repeated_skus_are_summed() {
    let mut order = order_events::testing::sample_order();
    order.items.push(order.items[0].clone());
    let wanted = quantities_by_sku(&order);
    assert_eq!(wanted["SKU-KEYBOARD"], 4);
    assert_eq!(wanted["SKU-MOUSE"], 1);
}

#[tokio::test]
async fn reserves_stock_once_even_when_delivered_twice() {
    let inventory = Inventory::new(MemoryInventory::with_stock(&[
        ("SKU-KEYBOARD", 10),
        ("SKU-MOUSE", 10),
    ]));
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
        inventory.store().decision(event.order_id()),
        Some(Decision::Reserved)
    );
}

#[tokio::test]
async fn short_stock_rejects_the_order_without_failing_the_record() {
    let inventory = Inventory::new(MemoryInventory::with_stock(&[
        ("SKU-KEYBOARD", 1),
        ("SKU-MOUSE", 10),
    ]));
    let event = sample_event();
    let response = inventory
        .handle(event_batch([&event]), far_deadline())
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(inventory.store().stock("SKU-KEYBOARD"), Some(1));
    assert_eq!(inventory.store().stock("SKU-MOUSE"), Some(10));
    assert!(matches!(
        inventory.store().decision(event.order_id()),
        Some(Decision::Rejected(Rejection::InsufficientStock {
            requested: 2,
            available: 1,
            ..
        }))
    ));
}

#[tokio::test]
async fn an_unreadable_record_fails_alone() {
    let inventory = Inventory::new(MemoryInventory::with_stock(&[
        ("SKU-KEYBOARD", 10),
        ("SKU-MOUSE", 10),
    ]));
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
        inventory.store().decision(event.order_id()),
        Some(Decision::Reserved)
    );
}
