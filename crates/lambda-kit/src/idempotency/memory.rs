//! Idempotency records in memory: the same rules as [`super::DynamoIdempotency`], for tests and
//! examples.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::{
    lock, Claim, IdempotencyError, IdempotencyKey, IdempotencyStore, DEFAULT_EXPIRES_AFTER,
};

#[derive(Debug, Clone)]
struct Record {
    completed: bool,
    payload_hash: String,
    data: Option<String>,
    expires_at: SystemTime,
    in_progress_until: SystemTime,
}

/// An in-memory [`IdempotencyStore`].
#[derive(Debug)]
pub struct MemoryIdempotency {
    expires_after: Duration,
    records: Mutex<HashMap<String, Record>>,
}

impl Default for MemoryIdempotency {
    fn default() -> Self {
        Self {
            expires_after: DEFAULT_EXPIRES_AFTER,
            records: Mutex::default(),
        }
    }
}

impl MemoryIdempotency {
    pub fn expires_after(mut self, expires_after: Duration) -> Self {
        self.expires_after = expires_after;
        self
    }

    /// Drops every record (as if the store were emptied).
    pub fn forget_all(&self) {
        lock(&self.records).clear();
    }

    /// How many records exist.
    pub fn len(&self) -> usize {
        lock(&self.records).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether an unexpired COMPLETED record exists for `key` (of the same payload).
    pub fn is_completed(&self, key: &IdempotencyKey) -> Result<bool, IdempotencyError> {
        match lock(&self.records).get(&key.key) {
            Some(record) if record.completed && record.expires_at >= SystemTime::now() => {
                if record.payload_hash != key.payload_hash {
                    return Err(IdempotencyError::PayloadMismatch(key.key.clone()));
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl IdempotencyStore for MemoryIdempotency {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        in_progress_until: SystemTime,
    ) -> Result<Claim, IdempotencyError> {
        let now = SystemTime::now();
        let mut records = lock(&self.records);
        if let Some(existing) = records.get(&key.key) {
            let expired = existing.expires_at < now;
            let abandoned = !existing.completed && existing.in_progress_until < now;
            if !expired && !abandoned {
                if existing.payload_hash != key.payload_hash {
                    return Err(IdempotencyError::PayloadMismatch(key.key.clone()));
                }
                if existing.completed {
                    return Ok(Claim::AlreadyCompleted(existing.data.clone()));
                }
                return Err(IdempotencyError::InProgress(key.key.clone()));
            }
        }
        records.insert(
            key.key.clone(),
            Record {
                completed: false,
                payload_hash: key.payload_hash.clone(),
                data: None,
                expires_at: now + self.expires_after,
                in_progress_until,
            },
        );
        Ok(Claim::Acquired)
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        data: Option<String>,
    ) -> Result<(), IdempotencyError> {
        let mut records = lock(&self.records);
        match records.get_mut(&key.key) {
            Some(record) if !record.completed && record.payload_hash == key.payload_hash => {
                record.completed = true;
                record.data = data;
                record.expires_at = SystemTime::now() + self.expires_after;
                Ok(())
            }
            Some(record) if record.completed => Ok(()),
            _ => Err(IdempotencyError::Store(format!(
                "no claim of {:?} to complete",
                key.key
            ))),
        }
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), IdempotencyError> {
        let mut records = lock(&self.records);
        if records.get(&key.key).is_some_and(|r| !r.completed) {
            records.remove(&key.key);
        }
        Ok(())
    }
}
