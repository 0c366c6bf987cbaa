//! Idempotency: processing the same event (or request) twice has the effect of processing it
//! once, with the semantics of the Powertools for AWS Lambda idempotency utility.
//!
//! An entry per key moves through `INPROGRESS` (claimed, work running) to `COMPLETED` (work
//! done, result stored); a failed attempt deletes its entry so a retry can run. What an
//! existing entry means for a new attempt is decided in one place (`verdict.rs`), for both
//! stores.
//!
//! | situation | outcome |
//! |---|---|
//! | first call | the work runs; its result is stored |
//! | same key, same payload, completed | the stored result is replayed; the work does not run |
//! | same key while in progress | [`IdempotencyError::InProgress`]: retry later |
//! | in progress past its deadline (the first attempt crashed or timed out) | taken over: the work runs |
//! | completed entry past its expiry | the work runs again |
//! | same key, different payload | [`IdempotencyError::PayloadMismatch`] |
//! | the work fails | the entry is deleted; the error is returned |
//!
//! Stores: [`DynamoIdempotency`] (the Powertools layout, conditional writes, and a
//! transactional mode that commits an effect's own DynamoDB writes with the entry) and
//! [`MemoryIdempotency`] (for tests). [`Idempotent`] runs a piece of work once per key over any
//! store, with an optional bounded cache of completed entries for warm invocations.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use lambda_kit::idempotency::{Idempotent, IdempotencyKey, MemoryIdempotency, Run};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let idempotent = Idempotent::new(MemoryIdempotency::default()).with_cache(1_000);
//! let key = IdempotencyKey::new("order-42", r#"{"amount":100}"#);
//! let deadline = SystemTime::now() + Duration::from_secs(10);
//!
//! let first = idempotent.run(&key, deadline, || async { Ok::<_, std::io::Error>(7_u32) }).await?;
//! let again = idempotent.run(&key, deadline, || async { Ok::<_, std::io::Error>(8_u32) }).await?;
//! assert_eq!(first, Run::Applied(7));
//! assert_eq!(again, Run::AlreadyDone(7)); // the second closure never ran
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

mod dynamodb;
mod memory;
mod verdict;

pub(crate) use dynamodb::store_error;
pub use dynamodb::{n, s, DynamoIdempotency};
pub use memory::MemoryIdempotency;

/// How long a COMPLETED entry protects against a replay unless configured otherwise.
pub const DEFAULT_EXPIRES_AFTER: Duration = Duration::from_secs(3600);

/// sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

/// What identifies one unit of work, and a hash of its payload.
///
/// The same `key` with a different payload is a [`IdempotencyError::PayloadMismatch`], not a
/// replay: it means two different things claim to be the same event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    pub key: String,
    pub payload_hash: String,
}

impl IdempotencyKey {
    pub fn new(key: impl Into<String>, payload: impl AsRef<[u8]>) -> Self {
        Self {
            key: key.into(),
            payload_hash: sha256_hex(payload),
        }
    }
}

/// Attribute names of an idempotency entry. The default is the Powertools layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryAttributes {
    pub id: String,
    pub status: String,
    pub expiration: String,
    pub in_progress_expiration: String,
    pub data: String,
    pub validation: String,
}

impl Default for EntryAttributes {
    fn default() -> Self {
        Self {
            id: "id".into(),
            status: "status".into(),
            expiration: "expiration".into(),
            in_progress_expiration: "in_progress_expiration".into(),
            data: "data".into(),
            validation: "validation".into(),
        }
    }
}

/// The outcome of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This invocation owns the key: run the work, then complete or release.
    Acquired,
    /// The work was done before; its stored result, if any.
    AlreadyDone(Option<String>),
}

/// What became of work done at most once per key: the kit's one outcome type for "applied /
/// already done". `T` describes what was applied now; `D` what is known of the earlier
/// application (nothing by default; the stored result for [`Run`]; the current item for
/// [`crate::effect::transition`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<T, D = ()> {
    /// The effect happened now.
    Applied(T),
    /// The effect had already happened for this key (or this entity), or there was nothing to
    /// do: nothing was done now.
    AlreadyDone(D),
}

impl<T, D> Effect<T, D> {
    /// Whether the effect happened now.
    pub fn is_applied(&self) -> bool {
        matches!(self, Effect::Applied(_))
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IdempotencyError {
    #[error("another invocation is processing key {0:?}; retry later")]
    InProgress(String),
    #[error("key {0:?} was already used with a different payload")]
    PayloadMismatch(String),
    /// In a transaction with an effect: the effect write at `index` failed its own condition,
    /// so nothing was written. `item` holds that write's target item as it was, when the write
    /// asked for it.
    #[error("effect write {index} failed its condition; nothing was written")]
    EffectConditionFailed {
        index: usize,
        item: Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    },
    #[error("idempotency store: {0}")]
    Store(String),
}

impl IdempotencyError {
    /// Whether the same call can never succeed: a key already used with another payload.
    pub fn is_permanent(&self) -> bool {
        matches!(self, IdempotencyError::PayloadMismatch(_))
    }
}

/// Where idempotency entries live.
pub trait IdempotencyStore: Send + Sync {
    /// Marks `key` INPROGRESS until `in_progress_until` (use the invocation deadline), unless an
    /// unexpired entry exists. An INPROGRESS entry past its own deadline is taken over.
    fn claim(
        &self,
        key: &IdempotencyKey,
        in_progress_until: SystemTime,
    ) -> impl Future<Output = Result<Claim, IdempotencyError>> + Send;

    /// Marks a claimed key COMPLETED, storing `data` (the result to replay).
    fn complete(
        &self,
        key: &IdempotencyKey,
        data: Option<String>,
    ) -> impl Future<Output = Result<(), IdempotencyError>> + Send;

    /// Whether an unexpired COMPLETED entry exists for `key` (a cheap check before a costly
    /// effect; a claim or commit decides atomically). The key with another payload is
    /// [`IdempotencyError::PayloadMismatch`].
    fn is_completed(
        &self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<bool, IdempotencyError>> + Send;

    /// Deletes a claimed key's INPROGRESS entry after the work failed, so a retry can run.
    fn release(
        &self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<(), IdempotencyError>> + Send;
}

/// How [`Idempotent::run`] went: the work's result, from running it now or stored from before.
pub type Run<T> = Effect<T, T>;

impl<T> Effect<T, T> {
    /// The result, whether the work ran now or before.
    pub fn into_inner(self) -> T {
        match self {
            Effect::Applied(value) | Effect::AlreadyDone(value) => value,
        }
    }
}

/// Why [`Idempotent::run`] produced no result.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E> {
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// The work failed; its entry was released.
    #[error("{0}")]
    Work(E),
    #[error("stored result cannot be read back: {0}")]
    StoredResult(String),
}

/// Runs work at most once per key (per expiry period) over an [`IdempotencyStore`].
#[derive(Debug)]
pub struct Idempotent<S> {
    store: S,
    cache: Option<CompletedCache>,
}

impl<S: IdempotencyStore> Idempotent<S> {
    pub fn new(store: S) -> Self {
        Self { store, cache: None }
    }

    /// Keeps up to `capacity` completed results in memory, so a warm invocation replays them
    /// without a store round trip. They expire with the entries ([`DEFAULT_EXPIRES_AFTER`]).
    pub fn with_cache(mut self, capacity: usize) -> Self {
        self.cache = Some(CompletedCache::new(capacity, DEFAULT_EXPIRES_AFTER));
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Runs `work` unless `key` was completed before, in which case its stored result is
    /// replayed. `deadline` bounds the claim: past it, another attempt may take the key over.
    ///
    /// When the work succeeded but its result cannot be stored, the result is still returned
    /// (the effect happened; failing now would invite a retry that repeats it) and the failure
    /// is logged; the entry stays INPROGRESS until `deadline`.
    pub async fn run<T, E, F, Fut>(
        &self,
        key: &IdempotencyKey,
        deadline: SystemTime,
        work: F,
    ) -> Result<Run<T>, RunError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(data) = self.cached(key)? {
            return replay(data);
        }
        match self.store.claim(key, deadline).await? {
            Claim::AlreadyDone(data) => {
                self.remember(key, data.clone());
                replay(data)
            }
            Claim::Acquired => match work().await {
                Ok(value) => {
                    let data = serde_json::to_string(&value).ok();
                    match self.store.complete(key, data.clone()).await {
                        Ok(()) => self.remember(key, data),
                        Err(error) => tracing::error!(
                            key = %key.key, %error,
                            "work done but its completion was not recorded"
                        ),
                    }
                    Ok(Run::Applied(value))
                }
                Err(error) => {
                    if let Err(release) = self.store.release(key).await {
                        tracing::warn!(key = %key.key, error = %release, "could not release the claim; it expires at the deadline");
                    }
                    Err(RunError::Work(error))
                }
            },
        }
    }

    fn cached(&self, key: &IdempotencyKey) -> Result<Option<Option<String>>, IdempotencyError> {
        match &self.cache {
            Some(cache) => cache.get(key),
            None => Ok(None),
        }
    }

    fn remember(&self, key: &IdempotencyKey, data: Option<String>) {
        if let Some(cache) = &self.cache {
            cache.put(key, data);
        }
    }
}

fn replay<T: DeserializeOwned, E>(data: Option<String>) -> Result<Run<T>, RunError<E>> {
    crate::metrics::mark_replayed();
    let data = data.unwrap_or_else(|| "null".to_owned());
    serde_json::from_str(&data)
        .map(Run::AlreadyDone)
        .map_err(|e| RunError::StoredResult(e.to_string()))
}

/// A bounded cache of completed entries (oldest evicted first).
#[derive(Debug)]
struct CompletedCache {
    capacity: usize,
    ttl: Duration,
    entries: Mutex<(HashMap<String, CacheEntry>, VecDeque<String>)>,
}

#[derive(Debug, Clone)]
struct CacheEntry {
    payload_hash: String,
    data: Option<String>,
    expires_at: SystemTime,
}

impl CompletedCache {
    fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            capacity,
            ttl,
            entries: Mutex::default(),
        }
    }

    fn get(&self, key: &IdempotencyKey) -> Result<Option<Option<String>>, IdempotencyError> {
        let entries = lock(&self.entries);
        match entries.0.get(&key.key) {
            Some(entry) if entry.expires_at > SystemTime::now() => {
                if entry.payload_hash != key.payload_hash {
                    return Err(IdempotencyError::PayloadMismatch(key.key.clone()));
                }
                Ok(Some(entry.data.clone()))
            }
            _ => Ok(None),
        }
    }

    fn put(&self, key: &IdempotencyKey, data: Option<String>) {
        if self.capacity == 0 {
            return;
        }
        let mut guard = lock(&self.entries);
        let (entries, order) = &mut *guard;
        let entry = CacheEntry {
            payload_hash: key.payload_hash.clone(),
            data,
            expires_at: SystemTime::now() + self.ttl,
        };
        if entries.insert(key.key.clone(), entry).is_none() {
            order.push_back(key.key.clone());
        }
        while entries.len() > self.capacity {
            match order.pop_front() {
                Some(oldest) => entries.remove(&oldest),
                None => break,
            };
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn epoch(time: SystemTime) -> Duration {
    time.duration_since(UNIX_EPOCH).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(30)
    }

    #[tokio::test]
    async fn work_runs_once_and_its_result_is_replayed() {
        let idempotent = Idempotent::new(MemoryIdempotency::default());
        let runs = AtomicUsize::new(0);
        let key = IdempotencyKey::new("k", "p");
        for expected in [Run::Applied(5), Run::AlreadyDone(5)] {
            let run = idempotent
                .run(&key, later(), || async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(5)
                })
                .await
                .unwrap();
            assert_eq!(run, expected);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failed_work_is_released_and_can_run_again() {
        let idempotent = Idempotent::new(MemoryIdempotency::default());
        let key = IdempotencyKey::new("k", "p");
        let failed = idempotent
            .run(&key, later(), || async { Err::<u8, _>("boom") })
            .await;
        assert!(matches!(failed, Err(RunError::Work("boom"))));
        let retried = idempotent
            .run(&key, later(), || async { Ok::<_, &str>(1) })
            .await;
        assert_eq!(retried.unwrap(), Run::Applied(1));
    }

    #[tokio::test]
    async fn the_cache_answers_without_the_store_and_checks_the_payload() {
        let idempotent = Idempotent::new(MemoryIdempotency::default()).with_cache(1);
        let key = IdempotencyKey::new("k", "p");
        idempotent
            .run(&key, later(), || async { Ok::<_, ()>(1) })
            .await
            .unwrap();
        idempotent.store().forget_all();
        let cached = idempotent
            .run(&key, later(), || async { Ok::<_, ()>(2) })
            .await;
        assert_eq!(cached.unwrap(), Run::AlreadyDone(1));

        let other = IdempotencyKey::new("k", "another payload");
        let refused = idempotent
            .run(&other, later(), || async { Ok::<_, ()>(3) })
            .await;
        assert!(matches!(
            refused,
            Err(RunError::Idempotency(IdempotencyError::PayloadMismatch(_)))
        ));

        // Capacity 1: a second key evicts the first, which then runs again (the store forgot it).
        let second = IdempotencyKey::new("k2", "p");
        idempotent
            .run(&second, later(), || async { Ok::<_, ()>(4) })
            .await
            .unwrap();
        idempotent.store().forget_all();
        let evicted = idempotent
            .run(&key, later(), || async { Ok::<_, ()>(5) })
            .await;
        assert_eq!(evicted.unwrap(), Run::Applied(5));
    }
}
