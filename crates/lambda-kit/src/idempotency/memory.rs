//! Idempotency entries in memory: the same rules as [`super::DynamoIdempotency`] (one
//! [`decide`]), for tests and examples.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::verdict::{decide, Entry, Status, Verdict};
use super::{
    lock, Claim, IdempotencyError, IdempotencyKey, IdempotencyStore, DEFAULT_EXPIRES_AFTER,
};

/// An in-memory [`IdempotencyStore`].
#[derive(Debug)]
pub struct MemoryIdempotency {
    expires_after: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Default for MemoryIdempotency {
    fn default() -> Self {
        Self {
            expires_after: DEFAULT_EXPIRES_AFTER,
            entries: Mutex::default(),
        }
    }
}

impl MemoryIdempotency {
    /// Drops every entry (as if the store were emptied).
    #[cfg(test)]
    pub(crate) fn forget_all(&self) {
        lock(&self.entries).clear();
    }
}

impl IdempotencyStore for MemoryIdempotency {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        in_progress_until: SystemTime,
    ) -> Result<Claim, IdempotencyError> {
        let now = SystemTime::now();
        let mut entries = lock(&self.entries);
        match decide(entries.get(&key.key), &key.payload_hash, now) {
            Verdict::Claim | Verdict::Takeover => {
                let entry = Entry {
                    status: Status::InProgress {
                        until: in_progress_until,
                    },
                    payload_hash: key.payload_hash.clone(),
                    expires_at: now + self.expires_after,
                };
                entries.insert(key.key.clone(), entry);
                Ok(Claim::Acquired)
            }
            decision => decision.into_claim(key),
        }
    }

    async fn is_completed(&self, key: &IdempotencyKey) -> Result<bool, IdempotencyError> {
        let entries = lock(&self.entries);
        decide(entries.get(&key.key), &key.payload_hash, SystemTime::now()).completed(key)
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        data: Option<String>,
    ) -> Result<(), IdempotencyError> {
        let mut entries = lock(&self.entries);
        match entries.get_mut(&key.key) {
            Some(entry) if entry.payload_hash == key.payload_hash => {
                if let Status::InProgress { .. } = entry.status {
                    entry.status = Status::Completed { data };
                    entry.expires_at = SystemTime::now() + self.expires_after;
                }
                Ok(())
            }
            _ => Err(IdempotencyError::Store(format!(
                "no claim of {:?} to complete",
                key.key
            ))),
        }
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), IdempotencyError> {
        let mut entries = lock(&self.entries);
        if entries
            .get(&key.key)
            .is_some_and(|e| matches!(e.status, Status::InProgress { .. }))
        {
            entries.remove(&key.key);
        }
        Ok(())
    }
}
