//! A service's effect as one item per entity (an order's payment, shipment, e-mail), written
//! once per event together with the event's idempotency entry.
//!
//! [`EffectStore`] is what a consumer whose effect is "write this item" depends on;
//! [`DynamoEffectStore`] is the real one, [`MemoryEffectStore`] the in-memory one for unit tests.
//! Items are the service's own serde types, turned into DynamoDB items by `serde_dynamo`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::idempotency::{
    lock, Claim, DynamoIdempotency, Effect, IdempotencyError, IdempotencyKey, IdempotencyStore,
    MemoryIdempotency,
};

/// Where a consumer writes its one item per entity, at most once per idempotency key.
pub trait EffectStore: Send + Sync {
    /// Where the idempotency entries live.
    type Entries: IdempotencyStore;

    /// The idempotency entries, to claim a key before an effect outside the store (and
    /// release it if the effect fails), or check it before a costly effect.
    fn entries(&self) -> &Self::Entries;

    /// Writes `item` and marks `key` completed, atomically. `claimed` says whether the key was
    /// claimed first. An item that already exists for the same entity (another event about
    /// the same order) is [`Effect::AlreadyApplied`] too: one per entity.
    fn commit<T: Serialize + Sync>(
        &self,
        key: &IdempotencyKey,
        item: &T,
        claimed: bool,
    ) -> impl Future<Output = Result<Effect<()>, IdempotencyError>> + Send;
}

fn serialization(error: impl std::fmt::Display) -> IdempotencyError {
    IdempotencyError::Store(format!("the item does not serialize: {error}"))
}

/// Items in a DynamoDB table keyed by `key_attribute`.
#[derive(Debug, Clone)]
pub struct DynamoEffectStore {
    table: String,
    key_attribute: String,
    idempotency: DynamoIdempotency,
}

impl DynamoEffectStore {
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

impl EffectStore for DynamoEffectStore {
    type Entries = DynamoIdempotency;

    fn entries(&self) -> &DynamoIdempotency {
        &self.idempotency
    }

    async fn commit<T: Serialize + Sync>(
        &self,
        key: &IdempotencyKey,
        item: &T,
        claimed: bool,
    ) -> Result<Effect<()>, IdempotencyError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(item).map_err(serialization)?))
            .condition_expression("attribute_not_exists(#key)")
            .expression_attribute_names("#key", &self.key_attribute)
            .build()
            .map_err(|e| IdempotencyError::Store(e.to_string()))?;
        let writes = vec![TransactWriteItem::builder().put(put).build()];
        let committed = if claimed {
            self.idempotency.complete_with(key, None, writes).await
        } else {
            self.idempotency.commit(key, writes).await
        };
        match committed {
            // The entity's item exists already: another event about it applied the effect.
            Err(IdempotencyError::EffectConditionFailed { .. }) => Ok(Effect::AlreadyApplied),
            other => other,
        }
    }
}

/// Items in memory, with the idempotency rules of [`MemoryIdempotency`] and one item per
/// entity, for unit tests of consumers.
#[derive(Debug, Default)]
pub struct MemoryEffectStore {
    key_attribute: String,
    items: Mutex<HashMap<String, Value>>,
    idempotency: MemoryIdempotency,
}

impl MemoryEffectStore {
    pub fn new(key_attribute: impl Into<String>) -> Self {
        Self {
            key_attribute: key_attribute.into(),
            ..Self::default()
        }
    }

    /// Every item written, in no particular order, as the service's type.
    pub fn items<T: DeserializeOwned>(&self) -> Vec<T> {
        lock(&self.items)
            .values()
            .filter_map(|item| serde_json::from_value(item.clone()).ok())
            .collect()
    }
}

impl EffectStore for MemoryEffectStore {
    type Entries = MemoryIdempotency;

    fn entries(&self) -> &MemoryIdempotency {
        &self.idempotency
    }

    async fn commit<T: Serialize + Sync>(
        &self,
        key: &IdempotencyKey,
        item: &T,
        claimed: bool,
    ) -> Result<Effect<()>, IdempotencyError> {
        let item = serde_json::to_value(item).map_err(serialization)?;
        if !claimed {
            let until = SystemTime::now() + Duration::from_secs(60);
            if let Claim::AlreadyCompleted(_) = self.idempotency.claim(key, until).await? {
                return Ok(Effect::AlreadyApplied);
            }
        }
        let entity = item
            .get(&self.key_attribute)
            .map(Value::to_string)
            .unwrap_or_default();
        let written = {
            let mut items = lock(&self.items);
            !items.contains_key(&entity) && items.insert(entity, item).is_none()
        };
        if !written {
            self.idempotency.release(key).await?;
            return Ok(Effect::AlreadyApplied);
        }
        self.idempotency.complete(key, None).await?;
        Ok(Effect::Applied(()))
    }
}
