//! The DynamoDB inventory store.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use lambda_kit::consumer::{ConfigError, FunctionEnv};
use lambda_kit::idempotency::{n, s, DynamoIdempotency, Effect, IdempotencyError};
use lambda_kit::RecordError;

/// The error of the operators' calls (stocking shelves, setting prices, reading stock).
pub type OperatorError = Box<dyn std::error::Error + Send + Sync>;
use order_events::{CloudEvent, OrderCancelled, OrderPlacedEvent};
use uuid::Uuid;

use crate::items::{self, ReservationItem, ReservationStatus, StockItem, AVAILABLE, KEY};
use crate::{quantities_by_sku, InventoryStore, Rejection, Reservation, SPEC};

/// Stock and decisions in DynamoDB, committed with the idempotency entry.
#[derive(Debug, Clone)]
pub struct DynamoInventory {
    client: aws_sdk_dynamodb::Client,
    table: String,
    idempotency: DynamoIdempotency,
}

impl DynamoInventory {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, idempotency_table: String) -> Self {
        let idempotency = DynamoIdempotency::new(client.clone(), idempotency_table, SPEC.name);
        Self {
            client,
            table,
            idempotency,
        }
    }

    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        Ok(Self::new(
            lambda_kit::calls::dynamodb_client(sdk),
            env.require(lambda_kit::spec::SERVICE_TABLE)?,
            env.require("IDEMPOTENCY_TABLE")?,
        ))
    }

    /// Sets the available stock of `sku` (operators and tests stock the shelves with this); its
    /// price stays.
    pub async fn set_stock(&self, sku: &str, available: u64) -> Result<(), OperatorError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(items::sku_key(sku)))
            .update_expression("SET #available = :available")
            .expression_attribute_names("#available", AVAILABLE)
            .expression_attribute_values(":available", n(available))
            .send()
            .await?;
        Ok(())
    }

    /// Sets the catalogue price of `sku`: what every order for it is charged from now on.
    pub async fn set_price(
        &self,
        sku: &str,
        unit_price_minor: i64,
        currency: &str,
    ) -> Result<(), OperatorError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(items::sku_key(sku)))
            .update_expression("SET #price = :price, #currency = :currency")
            .expression_attribute_names("#price", items::UNIT_PRICE_MINOR)
            .expression_attribute_names("#currency", items::CURRENCY)
            .expression_attribute_values(":price", n(unit_price_minor))
            .expression_attribute_values(":currency", s(currency))
            .send()
            .await?;
        Ok(())
    }

    /// The available stock of `sku`, `None` for an unknown sku.
    pub async fn stock(&self, sku: &str) -> Result<Option<u64>, OperatorError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, s(items::sku_key(sku)))
            .consistent_read(true)
            .send()
            .await?
            .item;
        Ok(item.as_ref().and_then(available))
    }

    fn decision_put(
        &self,
        event: &OrderPlacedEvent,
        decision: &Reservation,
    ) -> Result<TransactWriteItem, RecordError> {
        let (outcome, reason) = match decision {
            Reservation::Reserved => (ReservationStatus::Reserved, None),
            Reservation::Rejected(reason) => {
                (ReservationStatus::Rejected, Some(reason.to_string()))
            }
        };
        let item = ReservationItem {
            pk: items::order_key(event.order_id()),
            decision: outcome,
            reason,
            event_id: event.id,
            lines: quantities_by_sku(&event.data)
                .into_iter()
                .map(|(sku, quantity)| (sku.to_owned(), quantity))
                .collect(),
            decided_at: chrono::Utc::now(),
            released_at: None,
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(item)?))
            // One decision per order, even if two distinct events name the same order.
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", KEY)
            .build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The order's decision item, read consistently.
    async fn decision_item(&self, order_id: Uuid) -> Result<Option<ReservationItem>, RecordError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, s(items::order_key(order_id)))
            .consistent_read(true)
            .send()
            .await?
            .item;
        Ok(item.map(serde_dynamo::from_item).transpose()?)
    }

    /// `item` replacing the decision, if the decision is still `expected` (`None`: absent).
    fn decision_replace(
        &self,
        item: &ReservationItem,
        expected: Option<ReservationStatus>,
    ) -> Result<TransactWriteItem, RecordError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(item)?));
        let put = match expected {
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", KEY),
            Some(outcome) => put
                .condition_expression("#decision = :expected")
                .expression_attribute_names("#decision", "decision")
                .expression_attribute_values(
                    ":expected",
                    serde_dynamo::to_attribute_value(outcome)?,
                ),
        };
        Ok(TransactWriteItem::builder().put(put.build()?).build())
    }

    fn increment(&self, sku: &str, quantity: u64) -> Result<TransactWriteItem, RecordError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(KEY, s(items::sku_key(sku)))
            .update_expression("SET #available = #available + :q")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", KEY)
            .expression_attribute_names("#available", AVAILABLE)
            .expression_attribute_values(":q", n(quantity))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn decrement(&self, sku: &str, quantity: u64) -> Result<TransactWriteItem, RecordError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(KEY, s(items::sku_key(sku)))
            .update_expression("SET #available = #available - :q")
            .condition_expression("attribute_exists(#pk) AND #available >= :q")
            .expression_attribute_names("#pk", KEY)
            .expression_attribute_names("#available", AVAILABLE)
            .expression_attribute_values(":q", n(quantity))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

fn available(item: &HashMap<String, AttributeValue>) -> Option<u64> {
    serde_dynamo::from_item::<_, StockItem>(item.clone())
        .ok()
        .map(|stock| stock.available)
}

impl InventoryStore for DynamoInventory {
    async fn reserve(&self, event: &OrderPlacedEvent) -> Result<Effect<Reservation>, RecordError> {
        let key = event.idempotency_key();
        let wanted: Vec<(&str, u64)> = quantities_by_sku(&event.data).into_iter().collect();

        let mut writes = vec![self.decision_put(event, &Reservation::Reserved)?];
        for (sku, quantity) in &wanted {
            writes.push(self.decrement(sku, *quantity)?);
        }
        let rejection = match self.idempotency.commit(&key, writes).await {
            Ok(Effect::Applied(())) => return Ok(Effect::Applied(Reservation::Reserved)),
            Ok(Effect::AlreadyDone(()))
            | Err(IdempotencyError::EffectConditionFailed { index: 0, .. }) => {
                return Ok(Effect::AlreadyDone(()))
            }
            Err(IdempotencyError::EffectConditionFailed { index, item }) => {
                let (sku, requested) = wanted[index - 1];
                match item.as_ref().and_then(available) {
                    None => Rejection::UnknownSku(sku.to_owned()),
                    Some(available) => Rejection::InsufficientStock {
                        sku: sku.to_owned(),
                        requested,
                        available,
                    },
                }
            }
            Err(other) => return Err(other.into()),
        };

        let decision = Reservation::Rejected(rejection);
        let writes = vec![self.decision_put(event, &decision)?];
        match self.idempotency.commit(&key, writes).await {
            Ok(Effect::Applied(())) => Ok(Effect::Applied(decision)),
            Ok(Effect::AlreadyDone(())) | Err(IdempotencyError::EffectConditionFailed { .. }) => {
                Ok(Effect::AlreadyDone(()))
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn release(&self, event: &CloudEvent<OrderCancelled>) -> Result<Effect<()>, RecordError> {
        let key = event.idempotency_key();
        // A reservation committed between the read and the write fails the condition: read again.
        for _ in 0..4 {
            let current = self.decision_item(event.order_id()).await?;
            let (writes, expected) = match current {
                None => {
                    let tombstone = ReservationItem {
                        pk: items::order_key(event.order_id()),
                        decision: ReservationStatus::Cancelled,
                        reason: Some(event.data.detail.clone()),
                        event_id: event.id,
                        lines: Default::default(),
                        decided_at: chrono::Utc::now(),
                        released_at: None,
                    };
                    (vec![self.decision_replace(&tombstone, None)?], None)
                }
                Some(item) if item.decision == ReservationStatus::Reserved => {
                    let mut writes = Vec::with_capacity(item.lines.len() + 1);
                    for (sku, quantity) in &item.lines {
                        writes.push(self.increment(sku, *quantity)?);
                    }
                    let released = ReservationItem {
                        decision: ReservationStatus::Released,
                        released_at: Some(chrono::Utc::now()),
                        ..item
                    };
                    writes.insert(
                        0,
                        self.decision_replace(&released, Some(ReservationStatus::Reserved))?,
                    );
                    (writes, Some(ReservationStatus::Reserved))
                }
                Some(_) => return Ok(Effect::AlreadyDone(())),
            };
            match self.idempotency.commit(&key, writes).await {
                Ok(effect) => return Ok(effect),
                Err(IdempotencyError::EffectConditionFailed { index: 0, .. }) => {
                    tracing::debug!(
                        ?expected,
                        "the decision changed meanwhile; reading it again"
                    );
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err("the order's decision kept changing; retry later".into())
    }

    async fn decision(
        &self,
        order_id: Uuid,
    ) -> Result<Option<(ReservationStatus, Option<String>)>, RecordError> {
        Ok(self
            .decision_item(order_id)
            .await?
            .map(|item| (item.decision, item.reason)))
    }
}
