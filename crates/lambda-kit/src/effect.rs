//! A service's effect as one item per entity (an order's payment, shipment, e-mail) that moves
//! through states, each write made together with the event's idempotency entry.
//!
//! [`EffectStore`] is what a consumer whose effect is "write this item" depends on;
//! [`DynamoEffectStore`] is the real one, [`MemoryEffectStore`] the in-memory one for unit tests.
//! Items are the service's own serde types, turned into DynamoDB items by `serde_dynamo`; the
//! store adds a `version` attribute, so that a write based on a stale read is refused (optimistic
//! concurrency: two events about one order may be processed at the same time).
//!
//! [`transition`] is the one read-decide-write loop: read the item, let the service decide its
//! next state, write it unless it changed meanwhile (then read and decide again).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::idempotency::{
    lock, n, Claim, DynamoIdempotency, Effect, IdempotencyError, IdempotencyKey, IdempotencyStore,
    MemoryIdempotency,
};
use crate::RecordError;

/// The attribute holding an item's version (1 for a new item).
pub const VERSION_ATTRIBUTE: &str = "version";

/// An item as read, with the version a write based on it must find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub version: u64,
    pub item: T,
}

/// How a [`EffectStore::commit`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// The item and the COMPLETED entry were written.
    Written,
    /// The key was completed before: nothing was written.
    AlreadyCompleted,
    /// The item is not at the version the write was based on (or exists, for a new item):
    /// nothing was written.
    Conflict,
}

/// Where a consumer keeps one item per entity, written at most once per idempotency key.
pub trait EffectStore: Send + Sync {
    /// Where the idempotency entries live.
    type Entries: IdempotencyStore;

    /// The idempotency entries, to claim a key before an effect outside the store (and
    /// release it if the effect fails), or check it before a costly effect.
    fn entries(&self) -> &Self::Entries;

    /// The entity's item, read consistently.
    fn load<T: DeserializeOwned>(
        &self,
        entity: &str,
    ) -> impl Future<Output = Result<Option<Versioned<T>>, IdempotencyError>> + Send;

    /// Writes `item` and marks `key` completed, atomically, if the item is still at version
    /// `read` (`None`: if there is no item). `claimed` says whether the key was claimed first.
    fn commit<T: Serialize + Sync>(
        &self,
        key: &IdempotencyKey,
        item: &T,
        read: Option<u64>,
        claimed: bool,
    ) -> impl Future<Output = Result<Commit, IdempotencyError>> + Send;

    /// Writes `item` as the entity's first version unless the entity has an item: one write, no
    /// idempotency entry (for an item that states a fact the writer has just made true).
    /// Whether it was written.
    fn insert<T: Serialize + Sync>(
        &self,
        item: &T,
    ) -> impl Future<Output = Result<bool, IdempotencyError>> + Send;

    /// Writes `item` as the entity's next version if the item is still at version `read`, with
    /// no idempotency entry (for bookkeeping about an effect, such as "announced"). Whether it
    /// was written.
    fn replace<T: Serialize + Sync>(
        &self,
        item: &T,
        read: u64,
    ) -> impl Future<Output = Result<bool, IdempotencyError>> + Send;

    /// Writes a new item for its entity, once: an item that already exists for the entity
    /// (another event about the same order did it) is [`Effect::AlreadyApplied`] too.
    fn create<T: Serialize + Sync>(
        &self,
        key: &IdempotencyKey,
        item: &T,
        claimed: bool,
    ) -> impl Future<Output = Result<Effect<()>, IdempotencyError>> + Send {
        async move {
            Ok(match self.commit(key, item, None, claimed).await? {
                Commit::Written => Effect::Applied(()),
                Commit::AlreadyCompleted | Commit::Conflict => Effect::AlreadyApplied,
            })
        }
    }
}

/// The result of a [`transition`]: the entity's item as it now is, and whether this call wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transitioned<T> {
    pub item: Option<T>,
    pub written: bool,
}

/// How many times [`transition`] reads again after a concurrent write before giving up (the
/// record then fails and is retried by the queue).
const TRANSITION_ATTEMPTS: usize = 8;

/// Moves `entity`'s item to the state `decide` chooses, once per `key`.
///
/// `decide` gets the current item (`None`: none yet) and answers the next one, or `None` to
/// leave it as it is; when the item changed meanwhile it is called again with the new item. A
/// key completed before returns the current item without deciding. Calls to other services
/// (a payment gateway, with its own idempotency key) happen before, and `decide` takes their
/// result into account.
pub async fn transition<S, T, F>(
    store: &S,
    key: &IdempotencyKey,
    entity: &str,
    mut decide: F,
) -> Result<Transitioned<T>, RecordError>
where
    S: EffectStore,
    T: Serialize + DeserializeOwned + Send + Sync,
    F: FnMut(Option<&T>) -> Option<T>,
{
    for _ in 0..TRANSITION_ATTEMPTS {
        let current = store.load::<T>(entity).await?;
        if store.entries().is_completed(key).await? {
            return Ok(Transitioned {
                item: current.map(|c| c.item),
                written: false,
            });
        }
        let read = current.as_ref().map(|c| c.version);
        let Some(next) = decide(current.as_ref().map(|c| &c.item)) else {
            return Ok(Transitioned {
                item: current.map(|c| c.item),
                written: false,
            });
        };
        match store.commit(key, &next, read, false).await? {
            Commit::Written => {
                return Ok(Transitioned {
                    item: Some(next),
                    written: true,
                })
            }
            Commit::AlreadyCompleted | Commit::Conflict => continue,
        }
    }
    Err(format!("{entity} kept changing during {TRANSITION_ATTEMPTS} attempts; retry later").into())
}

fn serialization(error: impl std::fmt::Display) -> IdempotencyError {
    IdempotencyError::Store(format!("the item does not serialize: {error}"))
}

/// Items in a DynamoDB table keyed by `key_attribute` (a string).
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

    async fn load<T: DeserializeOwned>(
        &self,
        entity: &str,
    ) -> Result<Option<Versioned<T>>, IdempotencyError> {
        let output = self
            .idempotency
            .client()
            .get_item()
            .table_name(&self.table)
            .key(&self.key_attribute, AttributeValue::S(entity.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                IdempotencyError::Store(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
            })?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let version = match item.get(VERSION_ATTRIBUTE) {
            Some(AttributeValue::N(number)) => number.parse().unwrap_or(0),
            _ => 0,
        };
        let item = serde_dynamo::from_item(item).map_err(|e| {
            IdempotencyError::Store(format!("{} item {entity} does not read: {e}", self.table))
        })?;
        Ok(Some(Versioned { version, item }))
    }

    async fn insert<T: Serialize + Sync>(&self, item: &T) -> Result<bool, IdempotencyError> {
        self.put_at(item, None).await
    }

    async fn replace<T: Serialize + Sync>(
        &self,
        item: &T,
        read: u64,
    ) -> Result<bool, IdempotencyError> {
        self.put_at(item, Some(read)).await
    }

    async fn commit<T: Serialize + Sync>(
        &self,
        key: &IdempotencyKey,
        item: &T,
        read: Option<u64>,
        claimed: bool,
    ) -> Result<Commit, IdempotencyError> {
        let writes = vec![TransactWriteItem::builder()
            .put(self.versioned_put(item, read)?)
            .build()];
        let committed = if claimed {
            self.idempotency.complete_with(key, None, writes).await
        } else {
            self.idempotency.commit(key, writes).await
        };
        match committed {
            Ok(Effect::Applied(())) => Ok(Commit::Written),
            Ok(Effect::AlreadyApplied) => Ok(Commit::AlreadyCompleted),
            Err(IdempotencyError::EffectConditionFailed { .. }) => Ok(Commit::Conflict),
            Err(other) => Err(other),
        }
    }
}

impl DynamoEffectStore {
    /// `item` as version `read + 1` (1 when `read` is `None`), conditional on the item being at
    /// version `read` (absent when `None`): the one versioned write every path makes.
    fn versioned_put<T: Serialize>(
        &self,
        item: &T,
        read: Option<u64>,
    ) -> Result<Put, IdempotencyError> {
        let mut attributes: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(item).map_err(serialization)?;
        attributes.insert(VERSION_ATTRIBUTE.into(), n(read.unwrap_or(0) + 1));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(attributes))
            .expression_attribute_names("#key", &self.key_attribute);
        let put = match read {
            None => put.condition_expression("attribute_not_exists(#key)"),
            Some(version) => put
                .condition_expression("attribute_exists(#key) AND #version = :read")
                .expression_attribute_names("#version", VERSION_ATTRIBUTE)
                .expression_attribute_values(":read", n(version)),
        };
        put.build()
            .map_err(|e| IdempotencyError::Store(e.to_string()))
    }

    /// [`Self::versioned_put`] on its own, with no idempotency entry. Whether it was written.
    async fn put_at<T: Serialize + Sync>(
        &self,
        item: &T,
        read: Option<u64>,
    ) -> Result<bool, IdempotencyError> {
        let put = self.versioned_put(item, read)?;
        let put = self
            .idempotency
            .client()
            .put_item()
            .table_name(put.table_name)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_names(put.expression_attribute_names)
            .set_expression_attribute_values(put.expression_attribute_values);
        let written = put.send().await;
        match written {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(IdempotencyError::Store(
                aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
            )),
        }
    }
}

/// Items in memory, with the idempotency rules of [`MemoryIdempotency`] and the versions of
/// [`DynamoEffectStore`], for unit tests of consumers.
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
            if let Claim::AlreadyCompleted(_) = self.idempotency.claim(key, until).await? {
                return Ok(Commit::AlreadyCompleted);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
    struct Counter {
        id: String,
        count: u32,
    }

    fn bump(id: &str) -> impl FnMut(Option<&Counter>) -> Option<Counter> + '_ {
        move |current| {
            Some(Counter {
                id: id.to_owned(),
                count: current.map_or(1, |c| c.count + 1),
            })
        }
    }

    #[tokio::test]
    async fn a_transition_applies_once_per_key_and_builds_on_the_current_item() {
        let store = MemoryEffectStore::new("id");
        let first = IdempotencyKey::new("A#o-1", "a");
        let second = IdempotencyKey::new("B#o-1", "b");
        let done = transition(&store, &first, "o-1", bump("o-1"))
            .await
            .unwrap();
        assert_eq!((done.item.map(|c| c.count), done.written), (Some(1), true));
        let again = transition(&store, &first, "o-1", bump("o-1"))
            .await
            .unwrap();
        assert_eq!(
            (again.item.map(|c| c.count), again.written),
            (Some(1), false)
        );
        let next = transition(&store, &second, "o-1", bump("o-1"))
            .await
            .unwrap();
        assert_eq!((next.item.map(|c| c.count), next.written), (Some(2), true));
    }

    #[tokio::test]
    async fn a_write_based_on_a_stale_read_is_a_conflict() {
        let store = MemoryEffectStore::new("id");
        let item = Counter {
            id: "o-1".into(),
            count: 1,
        };
        let key = |k: &str| IdempotencyKey::new(k, k);
        assert_eq!(
            store.commit(&key("a"), &item, None, false).await.unwrap(),
            Commit::Written
        );
        assert_eq!(
            store.commit(&key("b"), &item, None, false).await.unwrap(),
            Commit::Conflict
        );
        assert_eq!(
            store
                .commit(&key("c"), &item, Some(7), false)
                .await
                .unwrap(),
            Commit::Conflict
        );
        assert_eq!(
            store
                .commit(&key("d"), &item, Some(1), false)
                .await
                .unwrap(),
            Commit::Written
        );
        assert_eq!(
            store
                .commit(&key("a"), &item, Some(2), false)
                .await
                .unwrap(),
            Commit::AlreadyCompleted
        );
        let loaded = store.load::<Counter>("o-1").await.unwrap().unwrap();
        assert_eq!(loaded.version, 2);
    }

    #[tokio::test]
    async fn leaving_the_item_as_it_is_writes_nothing() {
        let store = MemoryEffectStore::new("id");
        let key = IdempotencyKey::new("A#o-1", "a");
        let kept = transition(&store, &key, "o-1", |_: Option<&Counter>| None)
            .await
            .unwrap();
        assert_eq!(
            kept,
            Transitioned {
                item: None,
                written: false
            }
        );
        assert!(!store.entries().is_completed(&key).await.unwrap());
    }
}
