//! One record per entity (an order's payment, shipment, e-mail), written once per event
//! together with the event's idempotency record.
//!
//! [`RecordStore`] is what a consumer whose effect is "write this record" depends on;
//! [`DynamoRecordStore`] is the real one, [`MemoryRecordStore`] the in-memory one for unit tests.
//! Records are flat JSON objects (strings, numbers, booleans) turned into DynamoDB items.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde_json::Value;

use crate::consumer::Effect;
use crate::idempotency::{
    lock, s, Claim, Commit, DynamoIdempotency, IdempotencyError, IdempotencyKey, IdempotencyStore,
    MemoryIdempotency,
};

/// Where a consumer writes its one record per entity, at most once per idempotency key.
pub trait RecordStore: Send + Sync {
    /// Whether the work for `key` was completed before (a cheap check before a costly effect;
    /// [`RecordStore::commit`] decides atomically).
    fn is_completed(
        &self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<bool, IdempotencyError>> + Send;

    /// Marks `key` in progress before an effect outside the store (see
    /// [`IdempotencyStore::claim`]).
    fn claim(
        &self,
        key: &IdempotencyKey,
        in_progress_until: SystemTime,
    ) -> impl Future<Output = Result<Claim, IdempotencyError>> + Send;

    /// Gives up a claim after the effect failed, so a retry can run.
    fn release(
        &self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<(), IdempotencyError>> + Send;

    /// Writes `record` and marks `key` completed, atomically. `claimed` says whether
    /// [`RecordStore::claim`] was called first. A record that already exists for the same entity
    /// (another event about the same order) is [`Effect::AlreadyApplied`] too: one per entity.
    fn commit(
        &self,
        key: &IdempotencyKey,
        record: Value,
        claimed: bool,
    ) -> impl Future<Output = Result<Effect<()>, IdempotencyError>> + Send;
}

/// Turns a flat JSON object into a DynamoDB item (nested values are stored as JSON strings).
pub fn to_item(record: &Value) -> HashMap<String, AttributeValue> {
    let Value::Object(fields) = record else {
        return HashMap::new();
    };
    fields
        .iter()
        .map(|(name, value)| {
            let attribute = match value {
                Value::String(text) => s(text),
                Value::Number(number) => AttributeValue::N(number.to_string()),
                Value::Bool(flag) => AttributeValue::Bool(*flag),
                Value::Null => AttributeValue::Null(true),
                nested => s(nested.to_string()),
            };
            (name.clone(), attribute)
        })
        .collect()
}

/// Records in a DynamoDB table keyed by `key_attribute`.
#[derive(Debug, Clone)]
pub struct DynamoRecordStore {
    table: String,
    key_attribute: String,
    idempotency: DynamoIdempotency,
}

impl DynamoRecordStore {
    pub fn new(
        table: impl Into<String>,
        key_attribute: impl Into<String>,
        idempotency: DynamoIdempotency,
    ) -> Self {
        Self {
            table: table.into(),
            key_attribute: key_attribute.into(),
            idempotency,
        }
    }
}

impl RecordStore for DynamoRecordStore {
    async fn is_completed(&self, key: &IdempotencyKey) -> Result<bool, IdempotencyError> {
        self.idempotency.is_completed(key).await
    }

    async fn claim(
        &self,
        key: &IdempotencyKey,
        in_progress_until: SystemTime,
    ) -> Result<Claim, IdempotencyError> {
        self.idempotency.claim(key, in_progress_until).await
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), IdempotencyError> {
        self.idempotency.release(key).await
    }

    async fn commit(
        &self,
        key: &IdempotencyKey,
        record: Value,
        claimed: bool,
    ) -> Result<Effect<()>, IdempotencyError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)))
            .condition_expression("attribute_not_exists(#key)")
            .expression_attribute_names("#key", &self.key_attribute)
            .build()
            .map_err(|e| IdempotencyError::Store(e.to_string()))?;
        let writes = vec![TransactWriteItem::builder().put(put).build()];
        let commit = if claimed {
            self.idempotency.complete_with(key, None, writes).await?
        } else {
            self.idempotency.commit(key, writes).await?
        };
        Ok(match commit {
            Commit::Committed => Effect::Applied(()),
            Commit::AlreadyCompleted | Commit::EffectConditionFailed { .. } => {
                Effect::AlreadyApplied
            }
        })
    }
}

/// Records in memory, with the idempotency rules of [`MemoryIdempotency`] and one record per
/// entity, for unit tests of consumers.
#[derive(Debug, Default)]
pub struct MemoryRecordStore {
    key_attribute: String,
    records: Mutex<HashMap<String, Value>>,
    idempotency: MemoryIdempotency,
}

impl MemoryRecordStore {
    pub fn new(key_attribute: impl Into<String>) -> Self {
        Self {
            key_attribute: key_attribute.into(),
            ..Self::default()
        }
    }

    /// Every record written, in no particular order.
    pub fn records(&self) -> Vec<Value> {
        lock(&self.records).values().cloned().collect()
    }
}

impl RecordStore for MemoryRecordStore {
    async fn is_completed(&self, key: &IdempotencyKey) -> Result<bool, IdempotencyError> {
        self.idempotency.is_completed(key)
    }

    async fn claim(
        &self,
        key: &IdempotencyKey,
        in_progress_until: SystemTime,
    ) -> Result<Claim, IdempotencyError> {
        self.idempotency.claim(key, in_progress_until).await
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), IdempotencyError> {
        self.idempotency.release(key).await
    }

    async fn commit(
        &self,
        key: &IdempotencyKey,
        record: Value,
        claimed: bool,
    ) -> Result<Effect<()>, IdempotencyError> {
        if !claimed {
            let until = SystemTime::now() + Duration::from_secs(60);
            if let Claim::AlreadyCompleted(_) = self.idempotency.claim(key, until).await? {
                return Ok(Effect::AlreadyApplied);
            }
        }
        let entity = record
            .get(&self.key_attribute)
            .map(Value::to_string)
            .unwrap_or_default();
        let written = {
            let mut records = lock(&self.records);
            !records.contains_key(&entity) && records.insert(entity, record).is_none()
        };
        if !written {
            self.idempotency.release(key).await?;
            return Ok(Effect::AlreadyApplied);
        }
        self.idempotency.complete(key, None).await?;
        Ok(Effect::Applied(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_json_becomes_typed_attributes() {
        let item = to_item(&serde_json::json!({
            "orderId": "o-1", "amountMinor": 1299, "captured": true, "lines": [1, 2]
        }));
        assert_eq!(item["orderId"], s("o-1"));
        assert_eq!(item["amountMinor"], AttributeValue::N("1299".into()));
        assert_eq!(item["captured"], AttributeValue::Bool(true));
        assert_eq!(item["lines"], s("[1,2]"));
    }
}
