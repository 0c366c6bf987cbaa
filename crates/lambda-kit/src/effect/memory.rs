//! The effect store in memory, for unit tests of consumers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{serialization, Commit, EffectStore, Versioned};
use crate::idempotency::{
    lock, Claim, IdempotencyError, IdempotencyKey, IdempotencyStore, MemoryIdempotency,
};

/// Items in memory, with the idempotency rules of [`MemoryIdempotency`] and the versions of
/// [`super::DynamoEffectStore`], for unit tests of consumers.
#[derive(Debug, Default)]
pub struct MemoryEffectStore {
    key_attribute: String,
    items: Mutex<HashMap<String, Versioned<Value>>>,
    idempotency: MemoryIdempotency,
}

impl MemoryEffectStore {
    pub fn new(key_attribute: impl Into<String>) -> Self {
        Self {
            key_attribute: key_attribute.into(),
            ..Self::default()
        }
    }

    fn put_at<T: Serialize>(&self, item: &T, read: Option<u64>) -> Result<bool, IdempotencyError> {
        let item = serde_json::to_value(item).map_err(serialization)?;
        let entity = self.entity_of(&item);
        let mut items = lock(&self.items);
        if items.get(&entity).map(|stored| stored.version) != read {
            return Ok(false);
        }
        let version = read.unwrap_or(0) + 1;
        items.insert(entity, Versioned { version, item });
        Ok(true)
    }

    fn entity_of(&self, item: &Value) -> String {
        match item.get(&self.key_attribute) {
            Some(Value::String(text)) => text.clone(),
            other => other.map(Value::to_string).unwrap_or_default(),
        }
    }

    /// Every item written, in no particular order, as the service's type.
    pub fn items<T: DeserializeOwned>(&self) -> Vec<T> {
        lock(&self.items)
            .values()
            .filter_map(|stored| serde_json::from_value(stored.item.clone()).ok())
            .collect()
    }
}

impl EffectStore for MemoryEffectStore {
    type Entries = MemoryIdempotency;

    fn entries(&self) -> &MemoryIdempotency {
        &self.idempotency
    }

    async fn load<T: DeserializeOwned>(
        &self,
        entity: &str,
    ) -> Result<Option<Versioned<T>>, IdempotencyError> {
        let Some(stored) = lock(&self.items).get(entity).cloned() else {
            return Ok(None);
        };
        let item = serde_json::from_value(stored.item)
            .map_err(|e| IdempotencyError::Store(format!("item {entity} does not read: {e}")))?;
        Ok(Some(Versioned {
            version: stored.version,
            item,
        }))
    }

    async fn insert<T: Serialize + Sync>(&self, item: &T) -> Result<bool, IdempotencyError> {
        self.put_at(item, None)
    }

    async fn replace<T: Serialize + Sync>(
        &self,
        item: &T,
        read: u64,
    ) -> Result<bool, IdempotencyError> {
        self.put_at(item, Some(read))
    }

    async fn commit<T: Serialize + Sync>(
        &self,
        key: &IdempotencyKey,
        item: &T,
        read: Option<u64>,
        claimed: bool,
    ) -> Result<Commit, IdempotencyError> {
        let item = serde_json::to_value(item).map_err(serialization)?;
        if !claimed {
            let until = SystemTime::now() + Duration::from_secs(60);
            if let Claim::AlreadyDone(_) = self.idempotency.claim(key, until).await? {
                return Ok(Commit::AlreadyDone);
            }
        }
        let entity = self.entity_of(&item);
        let written = {
            let mut items = lock(&self.items);
            let found = items.get(&entity).map(|stored| stored.version);
            if found == read {
                let version = read.unwrap_or(0) + 1;
                items.insert(entity, Versioned { version, item });
                true
            } else {
                false
            }
        };
        if !written {
            self.idempotency.release(key).await?;
            return Ok(Commit::Conflict);
        }
        self.idempotency.complete(key, None).await?;
        Ok(Commit::Written)
    }
}
