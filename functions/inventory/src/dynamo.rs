//! The DynamoDB inventory store.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use lambda_kit::consumer::{ConfigError, FunctionEnv};
use lambda_kit::effect::Applied;
use lambda_kit::idempotency::{n, s, Effect};
use lambda_kit::transaction::{transact, TransactError};
use lambda_kit::RecordError;

/// The error of the operators' calls (stocking shelves, setting prices, reading stock).
pub type OperatorError = Box<dyn std::error::Error + Send + Sync>;
use order_events::{CloudEvent, OrderCancelled, OrderPlacedEvent};
use uuid::Uuid;

use crate::items::{self, ReservationItem, ReservationStatus, StockItem, AVAILABLE, KEY};
use crate::{quantities_by_sku, InventoryStore, Rejection, Reservation};

/// Stock and decisions in DynamoDB. An order's decision item is its events' idempotency entry:
/// the decision is written once per order, with the key of the event that made it.
#[derive(Debug, Clone)]
pub struct DynamoInventory {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoInventory {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }

    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        Ok(Self::new(
            lambda_kit::calls::dynamodb_client(sdk),
            env.require(lambda_kit::spec::SERVICE_TABLE)?,
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
    ) -> Result<Put, RecordError> {
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
            applied: Applied::default().with(
                &event.idempotency_key(),
                &items::order_key(event.order_id()),
            ),
        };
        Ok(Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(item)?))
            // One decision per order, even if two distinct events name the same order.
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", KEY)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()?)
    }

    /// `put` on its own (one write, not a transaction); whether its condition held.
    async fn put_alone(&self, put: Put) -> Result<bool, RecordError> {
        let written = self
            .client
            .put_item()
            .table_name(put.table_name)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_names(put.expression_attribute_names)
            .set_expression_attribute_values(put.expression_attribute_values)
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(aws_sdk_dynamodb::error::DisplayErrorContext(e)
                .to_string()
                .into()),
        }
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
    ) -> Result<Put, RecordError> {
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
        Ok(put.build()?)
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

/// A write of a transaction.
fn put_write(put: Put) -> TransactWriteItem {
    TransactWriteItem::builder().put(put).build()
}

impl InventoryStore for DynamoInventory {
    async fn reserve(&self, event: &OrderPlacedEvent) -> Result<Effect<Reservation>, RecordError> {
        let key = event.idempotency_key();
        let wanted: Vec<(&str, u64)> = quantities_by_sku(&event.data).into_iter().collect();

        // The decision and the stock it takes, together: one transaction.
        let mut writes = vec![put_write(self.decision_put(event, &Reservation::Reserved)?)];
        for (sku, quantity) in &wanted {
            writes.push(self.decrement(sku, *quantity)?);
        }
        let rejection = match transact(&self.client, writes).await {
            Ok(()) => return Ok(Effect::Applied(Reservation::Reserved)),
            Err(TransactError::ConditionFailed { index: 0, item }) => {
                // Decided before: by this event (a redelivery), or by a cancellation first.
                let decided: Option<ReservationItem> =
                    item.map(serde_dynamo::from_item).transpose()?;
                if let Some(decided) = decided {
                    decided.applied.contains(&key, &decided.pk)?;
                }
                return Ok(Effect::AlreadyDone(()));
            }
            Err(TransactError::ConditionFailed { index, item }) => {
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
            Err(TransactError::Store(error)) => return Err(error.into()),
        };

        // Nothing taken: the decision alone, one conditional write.
        let decision = Reservation::Rejected(rejection);
        if self.put_alone(self.decision_put(event, &decision)?).await? {
            Ok(Effect::Applied(decision))
        } else {
            Ok(Effect::AlreadyDone(()))
        }
    }

    async fn release(&self, event: &CloudEvent<OrderCancelled>) -> Result<Effect<()>, RecordError> {
        let applied = Applied::default().with(
            &event.idempotency_key(),
            &items::order_key(event.order_id()),
        );
        // A reservation committed between the read and the write fails the condition: read again.
        for _ in 0..4 {
            let written = match self.decision_item(event.order_id()).await? {
                None => {
                    let tombstone = ReservationItem {
                        pk: items::order_key(event.order_id()),
                        decision: ReservationStatus::Cancelled,
                        reason: Some(event.data.detail.clone()),
                        event_id: event.id,
                        lines: Default::default(),
                        decided_at: chrono::Utc::now(),
                        released_at: None,
                        applied: applied.clone(),
                    };
                    self.put_alone(self.decision_replace(&tombstone, None)?)
                        .await?
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
                    let replace =
                        self.decision_replace(&released, Some(ReservationStatus::Reserved))?;
                    writes.insert(0, put_write(replace));
                    match transact(&self.client, writes).await {
                        Ok(()) => true,
                        Err(TransactError::ConditionFailed { index: 0, .. }) => false,
                        Err(TransactError::ConditionFailed { index, .. }) => {
                            return Err(format!(
                                "releasing stock line {index} failed its condition"
                            )
                            .into())
                        }
                        Err(TransactError::Store(error)) => return Err(error.into()),
                    }
                }
                Some(_) => return Ok(Effect::AlreadyDone(())),
            };
            if written {
                return Ok(Effect::Applied(()));
            }
            tracing::debug!("the decision changed meanwhile; reading it again");
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
