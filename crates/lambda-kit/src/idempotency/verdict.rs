//! The entry state machine, in one place: what an existing idempotency entry means for a new
//! attempt. Both stores ask [`decide`]; the DynamoDB store also writes the same rules as the
//! conditions of its writes, so DynamoDB applies them atomically.

use std::time::SystemTime;

use super::{Claim, IdempotencyError, IdempotencyKey};

/// Where an entry stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// Claimed; the attempt that holds it has until `until`.
    InProgress { until: SystemTime },
    /// Done; `data` is the stored result.
    Completed { data: Option<String> },
}

/// An idempotency entry as both stores keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub status: Status,
    pub payload_hash: String,
    pub expires_at: SystemTime,
}

/// What an attempt may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No live entry (none, or expired): claim the key.
    Claim,
    /// An entry in progress past its holder's deadline (the attempt crashed or timed out):
    /// take it over.
    Takeover,
    /// Completed with the same payload: already done; its stored result.
    AlreadyDone(Option<String>),
    /// Another attempt holds the key: retry later.
    InProgress,
    /// The key was used with another payload.
    Mismatch,
}

impl Verdict {
    /// Whether the key's work is done: a replay is; a mismatch is an error; anything else is not
    /// (yet).
    pub(crate) fn completed(self, key: &IdempotencyKey) -> Result<bool, IdempotencyError> {
        match self {
            Verdict::AlreadyDone(_) => {
                crate::metrics::mark_replayed();
                Ok(true)
            }
            Verdict::Mismatch => Err(IdempotencyError::PayloadMismatch(key.key.clone())),
            Verdict::Claim | Verdict::Takeover | Verdict::InProgress => Ok(false),
        }
    }

    /// What an attempt that may not write its claim answers: a replay, or why not.
    pub(crate) fn into_claim(self, key: &IdempotencyKey) -> Result<Claim, IdempotencyError> {
        match self {
            Verdict::AlreadyDone(data) => {
                crate::metrics::mark_replayed();
                Ok(Claim::AlreadyDone(data))
            }
            Verdict::Mismatch => Err(IdempotencyError::PayloadMismatch(key.key.clone())),
            // Held by another attempt, or (a race with an expiry) free again: retry later.
            Verdict::InProgress | Verdict::Claim | Verdict::Takeover => {
                Err(IdempotencyError::InProgress(key.key.clone()))
            }
        }
    }
}

/// What `existing` means, at `now`, for an attempt on its key with `payload_hash`.
pub(crate) fn decide(existing: Option<&Entry>, payload_hash: &str, now: SystemTime) -> Verdict {
    let Some(entry) = existing else {
        return Verdict::Claim;
    };
    if entry.expires_at < now {
        return Verdict::Claim;
    }
    if let Status::InProgress { until } = entry.status {
        if until < now {
            return Verdict::Takeover;
        }
    }
    if entry.payload_hash != payload_hash {
        return Verdict::Mismatch;
    }
    match &entry.status {
        Status::Completed { data } => Verdict::AlreadyDone(data.clone()),
        Status::InProgress { .. } => Verdict::InProgress,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_state_and_time_decides_one_way() {
        let now = SystemTime::now();
        let (past, future) = (now - Duration::from_secs(5), now + Duration::from_secs(5));
        let entry = |status: Status, payload: &str, expires_at| Entry {
            status,
            payload_hash: payload.to_owned(),
            expires_at,
        };
        let done = || Status::Completed {
            data: Some("7".into()),
        };
        let held = |until| Status::InProgress { until };
        let table = [
            (None, "p", Verdict::Claim),
            (Some(entry(done(), "p", past)), "p", Verdict::Claim),
            (Some(entry(done(), "other", past)), "p", Verdict::Claim),
            (Some(entry(held(future), "p", past)), "p", Verdict::Claim),
            (Some(entry(held(past), "p", future)), "p", Verdict::Takeover),
            (
                Some(entry(held(past), "other", future)),
                "p",
                Verdict::Takeover,
            ),
            (
                Some(entry(done(), "p", future)),
                "p",
                Verdict::AlreadyDone(Some("7".into())),
            ),
            (Some(entry(done(), "other", future)), "p", Verdict::Mismatch),
            (
                Some(entry(held(future), "p", future)),
                "p",
                Verdict::InProgress,
            ),
            (
                Some(entry(held(future), "other", future)),
                "p",
                Verdict::Mismatch,
            ),
        ];
        for (existing, payload, expected) in table {
            assert_eq!(
                decide(existing.as_ref(), payload, now),
                expected,
                "{existing:?} with payload {payload}"
            );
        }
    }
}
