//! A service's effect as one item per entity (an order's payment, shipment, e-mail) that moves
//! through states, each write recording the idempotency key it applies in the item itself.
//!
//! [`EffectStore`] is what a consumer whose effect is "write this item" depends on;
//! [`DynamoEffectStore`] is the real one, [`MemoryEffectStore`] the in-memory one for unit tests.
//! Items are the service's own serde types, turned into DynamoDB items by `serde_dynamo`; the
//! store adds two attributes:
//!
//! - `version`, so that a write based on a stale read is refused (optimistic concurrency: two
//!   events about one order may be processed at the same time);
//! - `applied`, the idempotency keys whose effect the item holds (each with a hash of its
//!   payload). Where the effect is one item, that item is the key's idempotency entry: one
//!   conditional write applies the effect and records the key, and a key found in the item is
//!   done (or, with another payload, refused). No entry in another table, no transaction.
//!
//! [`transition`] is the one read-decide-write loop: read the item, let the service decide its
//! next state, write it unless it changed meanwhile (then read and decide again).

use std::collections::BTreeMap;
use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::idempotency::{sha256_hex, Effect, IdempotencyError, IdempotencyKey, IdempotencyStore};
use crate::RecordError;

mod dynamodb;
mod index;
mod memory;
pub use dynamodb::DynamoEffectStore;
pub use index::{Index, Page, Position};
pub use memory::MemoryEffectStore;

/// The attribute holding an item's version (1 for a new item).
pub const VERSION_ATTRIBUTE: &str = "version";
/// The attribute holding the idempotency keys an item's writes applied.
pub const APPLIED_ATTRIBUTE: &str = "applied";

/// The most entities one [`EffectStore::load_many`] reads (DynamoDB's `BatchGetItem` limit).
pub const MAX_LOAD_MANY: usize = 100;

/// Hex digits of a payload's sha256 kept in an item: 64 bits tell two payloads apart.
const PAYLOAD_HASH_DIGITS: usize = 16;

/// The idempotency keys whose effect an item holds: for each, the start of its payload's hash.
/// A key about the item's own entity (`OrderConfirmed#<order id>` in the order's item) is kept
/// without the entity (`OrderConfirmed`); any other by the start of its hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Applied(BTreeMap<String, String>);

impl Applied {
    fn name(key: &IdempotencyKey, entity: &str) -> String {
        match key
            .key
            .strip_suffix(entity)
            .and_then(|k| k.strip_suffix('#'))
        {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => sha256_hex(&key.key)[..PAYLOAD_HASH_DIGITS].to_owned(),
        }
    }

    fn hash(key: &IdempotencyKey) -> &str {
        key.payload_hash
            .get(..PAYLOAD_HASH_DIGITS)
            .unwrap_or(&key.payload_hash)
    }

    /// Whether `key` was applied to `entity`'s item; the key applied with another payload is
    /// [`IdempotencyError::PayloadMismatch`].
    pub fn contains(&self, key: &IdempotencyKey, entity: &str) -> Result<bool, IdempotencyError> {
        match self.0.get(&Self::name(key, entity)) {
            None => Ok(false),
            Some(hash) if hash == Self::hash(key) => Ok(true),
            Some(_) => Err(IdempotencyError::PayloadMismatch(key.key.clone())),
        }
    }

    /// These keys and `key`.
    pub fn with(&self, key: &IdempotencyKey, entity: &str) -> Self {
        let mut applied = self.clone();
        applied
            .0
            .insert(Self::name(key, entity), Self::hash(key).to_owned());
        applied
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// An item as read, with what a write based on it must find and carry on: its version and the
/// keys applied to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub version: u64,
    pub applied: Applied,
    pub item: T,
}

impl<T> Versioned<T> {
    /// The version and keys, for a write based on this read.
    pub fn read(&self) -> Read<'_> {
        Read {
            version: self.version,
            applied: &self.applied,
        }
    }
}

/// What a write is based on: the item's version and the keys applied to it.
#[derive(Debug, Clone, Copy)]
pub struct Read<'a> {
    pub version: u64,
    pub applied: &'a Applied,
}

/// How a [`EffectStore::commit`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// The item was written, with the key recorded in it.
    Written,
    /// The item holds the key already: nothing was written.
    AlreadyDone,
    /// The item is not at the version the write was based on (or exists, for a new item):
    /// nothing was written.
    Conflict,
}

/// Where a consumer keeps one item per entity, each write recording the key it applies.
pub trait EffectStore: Send + Sync {
    /// Where idempotency entries for effects outside the store live (an e-mail's claim).
    type Entries: IdempotencyStore;

    /// The idempotency entries, to claim a key before an effect outside the store (and
    /// release it if the effect fails).
    fn entries(&self) -> &Self::Entries;

    /// The entity's item, read consistently.
    fn load<T: DeserializeOwned>(
        &self,
        entity: &str,
    ) -> impl Future<Output = Result<Option<Versioned<T>>, IdempotencyError>> + Send;

    /// Writes `item` with `key` recorded in it, if the item is still as `read` (`None`: if
    /// there is no item): one conditional write.
    fn commit<T: Serialize + Sync>(
        &self,
        key: &IdempotencyKey,
        item: &T,
        read: Option<Read<'_>>,
    ) -> impl Future<Output = Result<Commit, IdempotencyError>> + Send;

    /// Writes `item` as the entity's first version unless the entity has an item: one write, no
    /// key recorded (for an item that states a fact the writer has just made true).
    /// Whether it was written.
    fn insert<T: Serialize + Sync>(
        &self,
        item: &T,
    ) -> impl Future<Output = Result<bool, IdempotencyError>> + Send;

    /// The entities whose item's `index.partition` is `owner`, highest `index.sort` first: at
    /// most `limit`, after `after` (the previous page's end). The index holds only keys (its
    /// entry is written once, when the keys appear, not at every write of the item) and is read
    /// eventually consistently: an item written a moment ago may not be listed yet.
    fn page(
        &self,
        index: &Index,
        owner: &str,
        limit: usize,
        after: Option<&Position>,
    ) -> impl Future<Output = Result<Page<String>, IdempotencyError>> + Send;

    /// The items of `entities` (at most [`MAX_LOAD_MANY`]) that exist, in that order, read
    /// consistently: one batch read.
    fn load_many<T: DeserializeOwned + Send>(
        &self,
        entities: &[String],
    ) -> impl Future<Output = Result<Vec<T>, IdempotencyError>> + Send;

    /// Writes a new item for its entity, once: an item that already exists for the entity
    /// (another event about the same order did it) is [`Effect::AlreadyDone`] too.
    fn create<T: Serialize + Sync>(
        &self,
        key: &IdempotencyKey,
        item: &T,
    ) -> impl Future<Output = Result<Effect<()>, IdempotencyError>> + Send {
        async move {
            Ok(match self.commit(key, item, None).await? {
                Commit::Written => Effect::Applied(()),
                Commit::AlreadyDone | Commit::Conflict => Effect::AlreadyDone(()),
            })
        }
    }
}

/// The result of a [`transition`]: the item this call wrote, or (already done, or nothing to
/// do) the entity's item as it is.
pub type Transitioned<T> = Effect<T, Option<T>>;

impl<T> Effect<T, Option<T>> {
    /// The entity's item as it now is.
    pub fn item(&self) -> Option<&T> {
        match self {
            Effect::Applied(item) => Some(item),
            Effect::AlreadyDone(item) => item.as_ref(),
        }
    }

    /// [`Self::item`], owned.
    pub fn into_item(self) -> Option<T> {
        match self {
            Effect::Applied(item) => Some(item),
            Effect::AlreadyDone(item) => item,
        }
    }
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
        if let Some(read) = &current {
            if read.applied.contains(key, entity)? {
                return Ok(Effect::AlreadyDone(current.map(|c| c.item)));
            }
        }
        let Some(next) = decide(current.as_ref().map(|c| &c.item)) else {
            return Ok(Effect::AlreadyDone(current.map(|c| c.item)));
        };
        match store
            .commit(key, &next, current.as_ref().map(Versioned::read))
            .await?
        {
            Commit::Written => return Ok(Effect::Applied(next)),
            // Read again: the item now holds the key (done) or another write (decide again).
            Commit::AlreadyDone | Commit::Conflict => continue,
        }
    }
    Err(format!("{entity} kept changing during {TRANSITION_ATTEMPTS} attempts; retry later").into())
}

/// [`transition`] from the item as already read (`read`; `None`: an entity that usually has
/// no item yet, a first effect for an order): the first attempt writes what `decide` answers
/// for it without reading again, and only a refused write (the item changed, or this key's
/// redelivery finds it applied) reads and decides again. One conditional write in the usual
/// case.
pub async fn transition_from<S, T, F>(
    store: &S,
    key: &IdempotencyKey,
    entity: &str,
    read: Option<&Versioned<T>>,
    mut decide: F,
) -> Result<Transitioned<T>, RecordError>
where
    S: EffectStore,
    T: Serialize + DeserializeOwned + Send + Sync,
    F: FnMut(Option<&T>) -> Option<T>,
{
    if let Some(first) = decide(read.map(|r| &r.item)) {
        if store.commit(key, &first, read.map(Versioned::read)).await? == Commit::Written {
            return Ok(Effect::Applied(first));
        }
    }
    transition(store, key, entity, decide).await
}

fn serialization(error: impl std::fmt::Display) -> IdempotencyError {
    IdempotencyError::Store(format!("the item does not serialize: {error}"))
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
        assert_eq!(
            (done.item().map(|c| c.count), done.is_applied()),
            (Some(1), true)
        );
        let again = transition(&store, &first, "o-1", bump("o-1"))
            .await
            .unwrap();
        assert_eq!(
            (again.item().map(|c| c.count), again.is_applied()),
            (Some(1), false)
        );
        let next = transition(&store, &second, "o-1", bump("o-1"))
            .await
            .unwrap();
        assert_eq!(
            (next.item().map(|c| c.count), next.is_applied()),
            (Some(2), true)
        );
    }

    #[tokio::test]
    async fn a_write_based_on_a_stale_read_is_a_conflict_and_a_recorded_key_is_done() {
        let store = MemoryEffectStore::new("id");
        let item = Counter {
            id: "o-1".into(),
            count: 1,
        };
        let key = |k: &str| IdempotencyKey::new(format!("{k}#o-1"), k);
        let no_keys = Applied::default();
        let at = |version| {
            Some(Read {
                version,
                applied: &no_keys,
            })
        };
        assert_eq!(
            store.commit(&key("a"), &item, None).await.unwrap(),
            Commit::Written
        );
        // "b" writes a new item where one exists; "c" builds on a version that never was.
        assert_eq!(
            store.commit(&key("b"), &item, None).await.unwrap(),
            Commit::Conflict
        );
        assert_eq!(
            store.commit(&key("c"), &item, at(7)).await.unwrap(),
            Commit::Conflict
        );
        // "a" again, on a stale read: the item holds it, so it is done, not a conflict.
        assert_eq!(
            store.commit(&key("a"), &item, at(0)).await.unwrap(),
            Commit::AlreadyDone
        );
        let loaded = store.load::<Counter>("o-1").await.unwrap().unwrap();
        assert_eq!(
            store
                .commit(&key("d"), &item, Some(loaded.read()))
                .await
                .unwrap(),
            Commit::Written
        );
        let loaded = store.load::<Counter>("o-1").await.unwrap().unwrap();
        assert_eq!(loaded.version, 2);
        assert!(loaded.applied.contains(&key("a"), "o-1").unwrap());
        assert!(loaded.applied.contains(&key("d"), "o-1").unwrap());
        assert!(!loaded.applied.contains(&key("b"), "o-1").unwrap());
    }

    #[tokio::test]
    async fn a_recorded_key_with_another_payload_is_refused() {
        let store = MemoryEffectStore::new("id");
        let key = IdempotencyKey::new("A#o-1", "one payload");
        transition(&store, &key, "o-1", bump("o-1")).await.unwrap();
        let other = IdempotencyKey::new("A#o-1", "another payload");
        let refused = transition(&store, &other, "o-1", bump("o-1")).await;
        assert!(refused.is_err_and(|e| e.is_permanent()));
    }

    #[test]
    fn keys_about_the_entity_are_kept_by_name_and_others_by_hash() {
        let key = IdempotencyKey::new("OrderConfirmed#o-1", "p");
        let applied = Applied::default().with(&key, "o-1");
        assert_eq!(applied.0.keys().collect::<Vec<_>>(), ["OrderConfirmed"]);
        assert_eq!(applied.0["OrderConfirmed"].len(), PAYLOAD_HASH_DIGITS);
        let elsewhere = Applied::default().with(&key, "o-2");
        assert_eq!(
            elsewhere.0.keys().next().map(String::len),
            Some(PAYLOAD_HASH_DIGITS)
        );
        assert!(elsewhere.contains(&key, "o-2").unwrap());
        assert!(!elsewhere.contains(&key, "o-1").unwrap());
    }

    #[tokio::test]
    async fn a_new_entity_is_written_without_a_read_and_an_existing_one_is_decided_again() {
        let store = MemoryEffectStore::new("id");
        let first = IdempotencyKey::new("A#o-1", "a");
        let written = transition_from(&store, &first, "o-1", None, bump("o-1"))
            .await
            .unwrap();
        assert_eq!(
            written,
            Effect::Applied(Counter {
                id: "o-1".into(),
                count: 1
            })
        );
        // A redelivery finds its key; another event builds on the item.
        let again = transition_from(&store, &first, "o-1", None, bump("o-1"))
            .await
            .unwrap();
        assert!(!again.is_applied());
        let second = IdempotencyKey::new("B#o-1", "b");
        let next = transition_from(&store, &second, "o-1", None, bump("o-1"))
            .await
            .unwrap();
        assert_eq!(next.item().map(|c| c.count), Some(2));
    }

    #[tokio::test]
    async fn leaving_the_item_as_it_is_writes_nothing() {
        let store = MemoryEffectStore::new("id");
        let key = IdempotencyKey::new("A#o-1", "a");
        let kept = transition(&store, &key, "o-1", |_: Option<&Counter>| None)
            .await
            .unwrap();
        assert_eq!(kept, Effect::AlreadyDone(None));
        assert!(store.items::<Counter>().is_empty());
    }
}
