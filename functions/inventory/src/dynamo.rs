//! The DynamoDB inventory store.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use lambda_kit::consumer::{ConfigError, Effect, FunctionEnv};
use lambda_kit::idempotency::{n, s, Commit, DynamoIdempotency};
use lambda_kit::RecordError;
use order_events::OrderPlacedEvent;

use crate::{quantities_by_sku, Decision, InventoryStore, Rejection, SERVICE};

/// Stock and decisions in DynamoDB, committed with the idempotency record.
#[derive(Debug, Clone)]
pub struct DynamoInventory {
    client: aws_sdk_dynamodb::Client,
    table: String,
    idempotency: DynamoIdempotency,
}

fn sku_key(sku: &str) -> AttributeValue {
    s(format!("SKU#{sku}"))
}

fn order_key(event: &OrderPlacedEvent) -> AttributeValue {
    s(format!("ORDER#{}", event.order_id()))
}

impl DynamoInventory {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, idempotency_table: String) -> Self {
        let idempotency = DynamoIdempotency::new(client.clone(), idempotency_table, SERVICE);
        Self {
            client,
            table,
            idempotency,
        }
    }

    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        Ok(Self::new(
            aws_sdk_dynamodb::Client::new(sdk),
            env.require("INVENTORY_TABLE")?,
            env.require("IDEMPOTENCY_TABLE")?,
        ))
    }

    /// Sets the available stock of `sku` (operators and tests stock the shelves with this).
    pub async fn set_stock(&self, sku: &str, available: u64) -> Result<(), RecordError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", sku_key(sku))
            .item("available", n(available))
            .send()
            .await?;
        Ok(())
    }

    /// The available stock of `sku`, `None` for an unknown sku.
    pub async fn stock(&self, sku: &str) -> Result<Option<u64>, RecordError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", sku_key(sku))
            .consistent_read(true)
            .send()
            .await?
            .item;
        Ok(item.as_ref().and_then(available))
    }

    fn decision_put(&self, event: &OrderPlacedEvent, decision: &Decision) -> TransactWriteItem {
        let (status, reason) = match decision {
            Decision::Reserved => ("RESERVED", String::new()),
            Decision::Rejected(reason) => ("REJECTED", reason.to_string()),
        };
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("pk", order_key(event))
            .item("decision", s(status))
            .item("eventId", s(event.id.to_string()))
            // What the decision covers, so an audit can recompute stock from decisions.
            .item("lines", s(lines_json(event)))
            .item("decidedAt", s(chrono::Utc::now().to_rfc3339()))
            // One decision per order, even if two distinct events name the same order.
            .condition_expression("attribute_not_exists(pk)");
        if !reason.is_empty() {
            put = put.item("reason", s(reason));
        }
        TransactWriteItem::builder()
            .put(put.build().expect("table, item and condition are set"))
            .build()
    }

    fn decrement(&self, sku: &str, quantity: u64) -> TransactWriteItem {
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", sku_key(sku))
            .update_expression("SET available = available - :q")
            .condition_expression("attribute_exists(pk) AND available >= :q")
            .expression_attribute_values(":q", n(quantity))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("table, key and update expression are set");
        TransactWriteItem::builder().update(update).build()
    }
}

/// `{"sku": quantity, ...}` of the order.
fn lines_json(event: &OrderPlacedEvent) -> String {
    serde_json::to_string(&quantities_by_sku(&event.data)).unwrap_or_default()
}

fn available(item: &HashMap<String, AttributeValue>) -> Option<u64> {
    item.get("available")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

impl InventoryStore for DynamoInventory {
    async fn reserve(&self, event: &OrderPlacedEvent) -> Result<Effect<Decision>, RecordError> {
        let key = event.idempotency_key();
        let wanted: Vec<(&str, u64)> = quantities_by_sku(&event.data).into_iter().collect();

        let mut writes = vec![self.decision_put(event, &Decision::Reserved)];
        writes.extend(wanted.iter().map(|(sku, q)| self.decrement(sku, *q)));
        let rejection = match self.idempotency.commit(&key, writes).await? {
            Commit::Committed => return Ok(Effect::Applied(Decision::Reserved)),
            Commit::AlreadyCompleted | Commit::EffectConditionFailed { index: 0, .. } => {
                return Ok(Effect::AlreadyApplied)
            }
            Commit::EffectConditionFailed { index, item } => {
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
        };

        let decision = Decision::Rejected(rejection);
        let writes = vec![self.decision_put(event, &decision)];
        match self.idempotency.commit(&key, writes).await? {
            Commit::Committed => Ok(Effect::Applied(decision)),
            Commit::AlreadyCompleted | Commit::EffectConditionFailed { .. } => {
                Ok(Effect::AlreadyApplied)
            }
        }
    }
}
