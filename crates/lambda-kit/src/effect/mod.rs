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

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::idempotency::{Effect, IdempotencyError, IdempotencyKey, IdempotencyStore};
use crate::RecordError;

mod dynamodb;
mod memory;
pub use dynamodb::DynamoEffectStore;
pub use memory::MemoryEffectStore;

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
    AlreadyDone,
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
    /// (another event about the same order did it) is [`Effect::AlreadyDone`] too.
    fn create<T: Serialize + Sync>(
        &self,
        key: &IdempotencyKey,
        item: &T,
        claimed: bool,
    ) -> impl Future<Output = Result<Effect<()>, IdempotencyError>> + Send {
        async move {
            Ok(match self.commit(key, item, None, claimed).await? {
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
        if store.entries().is_completed(key).await? {
            return Ok(Effect::AlreadyDone(current.map(|c| c.item)));
        }
        let read = current.as_ref().map(|c| c.version);
        let Some(next) = decide(current.as_ref().map(|c| &c.item)) else {
            return Ok(Effect::AlreadyDone(current.map(|c| c.item)));
        };
        match store.commit(key, &next, read, false).await? {
            Commit::Written => return Ok(Effect::Applied(next)),
            Commit::AlreadyDone | Commit::Conflict => continue,
        }
    }
    Err(format!("{entity} kept changing during {TRANSITION_ATTEMPTS} attempts; retry later").into())
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
            Commit::AlreadyDone
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
        assert_eq!(kept, Effect::AlreadyDone(None));
        assert!(!store.entries().is_completed(&key).await.unwrap());
    }
}
