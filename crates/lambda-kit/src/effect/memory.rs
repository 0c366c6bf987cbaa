//! The effect store in memory, for unit tests of consumers.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{serialization, Commit, EffectStore, Index, Page, Position, Read, Versioned};
use crate::idempotency::{lock, IdempotencyError, IdempotencyKey, MemoryIdempotency};

/// Items in memory, with the versions and recorded keys of [`super::DynamoEffectStore`], for
/// unit tests of consumers.
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
            applied: stored.applied,
            item,
        }))
    }

    async fn insert<T: Serialize + Sync>(&self, item: &T) -> Result<bool, IdempotencyError> {
        let item = serde_json::to_value(item).map_err(serialization)?;
        let entity = self.entity_of(&item);
        let mut items = lock(&self.items);
        if items.contains_key(&entity) {
            return Ok(false);
        }
        items.insert(
            entity,
            Versioned {
                version: 1,
                applied: Default::default(),
                item,
            },
        );
        Ok(true)
    }

    async fn page(
        &self,
        index: &Index,
        owner: &str,
        limit: usize,
        after: Option<&Position>,
    ) -> Result<Page<String>, IdempotencyError> {
        let text = |item: &Value, attribute: &str| item.get(attribute)?.as_str().map(str::to_owned);
        let mut listed: Vec<(Position, String)> = lock(&self.items)
            .iter()
            .filter(|(_, stored)| text(&stored.item, index.partition).as_deref() == Some(owner))
            .filter_map(|(entity, stored)| {
                let sort = text(&stored.item, index.sort)?;
                let position = Position {
                    sort,
                    entity: entity.clone(),
                };
                Some((position, entity.clone()))
            })
            .filter(|(position, _)| after.is_none_or(|after| position < after))
            .collect();
        listed.sort_by(|a, b| b.0.cmp(&a.0));
        listed.truncate(limit + 1);
        Ok(Page::of(listed, limit, false))
    }

    async fn load_many<T: DeserializeOwned + Send>(
        &self,
        entities: &[String],
    ) -> Result<Vec<T>, IdempotencyError> {
        let mut items = Vec::new();
        for entity in entities {
            if let Some(stored) = self.load::<T>(entity).await? {
                items.push(stored.item);
            }
        }
        Ok(items)
    }

    async fn commit<T: Serialize + Sync>(
        &self,
        key: &IdempotencyKey,
        item: &T,
        read: Option<Read<'_>>,
    ) -> Result<Commit, IdempotencyError> {
        let item = serde_json::to_value(item).map_err(serialization)?;
        let entity = self.entity_of(&item);
        let mut items = lock(&self.items);
        if let Some(stored) = items.get(&entity) {
            if read.map(|r| r.version) != Some(stored.version) {
                return Ok(if stored.applied.contains(key, &entity)? {
                    Commit::AlreadyDone
                } else {
                    Commit::Conflict
                });
            }
        } else if read.is_some() {
            return Ok(Commit::Conflict);
        }
        let applied = read.map_or_else(Default::default, |r| r.applied.clone());
        items.insert(
            entity.clone(),
            Versioned {
                version: read.map_or(0, |r| r.version) + 1,
                applied: applied.with(key, &entity),
                item,
            },
        );
        Ok(Commit::Written)
    }
}
