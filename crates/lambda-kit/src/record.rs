//! One record per entity (an order's payment, shipment, e-mail), written once per event
//! together with the event's idempotency record.
//!
//! [`RecordStore`] is what a consumer whose effect is "write this record" depends on;
//! [`DynamoRecordStore`] is the real one, [`MemoryRecordStore`] the in-memory one for unit tests.
//! Records are flat JSON objects (strings, numbers, booleans) turned into DynamoDB items.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::SystemTime;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde_json::Value;

use crate::consumer::Effect;
use crate::idempotency::{
    s, Claim, Commit, DynamoIdempotency, IdempotencyError, IdempotencyKey, IdempotencyStore,
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

/// Records in memory with the same once-per-key and once-per-entity rules, for unit tests of
/// consumers.
#[derive(Debug, Default)]
pub struct MemoryRecordStore {
    key_attribute: String,
    records: Mutex<HashMap<String, Value>>,
    completed: Mutex<HashMap<String, String>>,
    in_progress: Mutex<HashSet<String>>,
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

    fn check_payload(&self, key: &IdempotencyKey) -> Result<bool, IdempotencyError> {
        match lock(&self.completed).get(&key.key) {
            Some(hash) if *hash != key.payload_hash => {
                Err(IdempotencyError::PayloadMismatch(key.key.clone()))
            }
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RecordStore for MemoryRecordStore {
    async fn is_completed(&self, key: &IdempotencyKey) -> Result<bool, IdempotencyError> {
        self.check_payload(key)
    }

    async fn claim(
        &self,
        key: &IdempotencyKey,
        _in_progress_until: SystemTime,
    ) -> Result<Claim, IdempotencyError> {
        if self.check_payload(key)? {
            return Ok(Claim::AlreadyCompleted(None));
        }
        if !lock(&self.in_progress).insert(key.key.clone()) {
            return Err(IdempotencyError::InProgress(key.key.clone()));
        }
        Ok(Claim::Acquired)
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), IdempotencyError> {
        lock(&self.in_progress).remove(&key.key);
        Ok(())
    }

    async fn commit(
        &self,
        key: &IdempotencyKey,
        record: Value,
        _claimed: bool,
    ) -> Result<Effect<()>, IdempotencyError> {
        if self.check_payload(key)? {
            return Ok(Effect::AlreadyApplied);
        }
        let entity = record
            .get(&self.key_attribute)
            .map(Value::to_string)
            .unwrap_or_default();
        let mut records = lock(&self.records);
        lock(&self.in_progress).remove(&key.key);
        if records.contains_key(&entity) {
            return Ok(Effect::AlreadyApplied);
        }
        records.insert(entity, record);
        lock(&self.completed).insert(key.key.clone(), key.payload_hash.clone());
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
