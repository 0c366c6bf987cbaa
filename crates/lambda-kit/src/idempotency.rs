//! Idempotency records in DynamoDB, so that processing an event twice has the effect of
//! processing it once.
//!
//! The record layout follows Powertools for AWS Lambda: `id` (`{function}#{sha256 of the key}`),
//! `status` (`INPROGRESS` / `COMPLETED`), `expiration` (epoch seconds; the table's TTL
//! attribute), `in_progress_expiration` (epoch milliseconds) and `validation` (sha256 of the
//! payload). Expiry is checked in the condition expressions, never left to TTL, which deletes
//! items up to days late.
//!
//! Two modes, chosen by where the effect lives:
//!
//! - **Transactional** ([`Idempotency::commit`]), for effects that are DynamoDB writes: the
//!   effect's writes and the COMPLETED record go into one `TransactWriteItems`. DynamoDB applies
//!   all of it or none of it, so after any crash either both exist (a redelivery finds the record
//!   and does nothing) or neither does (a redelivery applies the effect). They cannot disagree.
//! - **Claim / complete** ([`Idempotency::claim`], [`Idempotency::complete`],
//!   [`Idempotency::release`]), for effects outside DynamoDB (an e-mail): an INPROGRESS record is
//!   written first with one conditional put, the effect runs, then the COMPLETED record and the
//!   effect's own DynamoDB record commit in one transaction. A concurrent duplicate sees
//!   INPROGRESS and fails retryably. If the process dies after the external effect and before
//!   the commit, the INPROGRESS record expires at the invocation deadline and the retry runs the
//!   effect again: the one window where an external call without its own idempotency key can
//!   happen twice. Prefer APIs that take an idempotency key (as the payment gateway does).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::PutBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use sha2::{Digest, Sha256};

/// Attribute names of an idempotency record (the Powertools defaults).
pub mod attr {
    pub const ID: &str = "id";
    pub const STATUS: &str = "status";
    pub const EXPIRATION: &str = "expiration";
    pub const IN_PROGRESS_EXPIRATION: &str = "in_progress_expiration";
    pub const VALIDATION: &str = "validation";
}

const INPROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

/// How long a COMPLETED record protects against a replay unless configured otherwise.
pub const DEFAULT_EXPIRES_AFTER: Duration = Duration::from_secs(3600);

/// sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

/// What identifies one unit of work, and a hash of its payload.
///
/// The same `key` with a different payload is a [`IdempotencyError::PayloadMismatch`], not a
/// replay: it means two different things claim to be the same event.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// The outcome of committing an effect with its COMPLETED record.
#[derive(Debug, Clone, PartialEq)]
pub enum Commit {
    /// Effect and record were written together.
    Committed,
    /// A COMPLETED record for this key already exists: the effect was applied before.
    AlreadyCompleted,
    /// The effect write at `index` failed its own condition; nothing was written. `item` holds
    /// that write's target item as it was, when the write asked for it.
    EffectConditionFailed {
        index: usize,
        item: Option<HashMap<String, AttributeValue>>,
    },
}

/// The outcome of [`Idempotency::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This invocation owns the key; run the effect, then [`Idempotency::complete`] or
    /// [`Idempotency::release`].
    Acquired,
    /// The work was done before.
    AlreadyCompleted,
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("another invocation is processing key {0:?}; retry later")]
    InProgress(String),
    #[error("key {0:?} was already used with a different payload")]
    PayloadMismatch(String),
    #[error("idempotency store: {0}")]
    Store(String),
}

fn store_error<E: std::error::Error>(error: E) -> IdempotencyError {
    IdempotencyError::Store(aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string())
}

/// Idempotency records for one function in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct Idempotency {
    client: aws_sdk_dynamodb::Client,
    table: String,
    function_name: String,
    expires_after: Duration,
}

impl Idempotency {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        function_name: impl Into<String>,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            function_name: function_name.into(),
            expires_after: DEFAULT_EXPIRES_AFTER,
        }
    }

    /// How long a COMPLETED record prevents a replay.
    pub fn expires_after(mut self, expires_after: Duration) -> Self {
        self.expires_after = expires_after;
        self
    }

    /// The record's `id`: the function name scopes keys, the hash bounds their length.
    pub fn record_id(&self, key: &IdempotencyKey) -> String {
        format!("{}#{}", self.function_name, sha256_hex(&key.key))
    }

    fn record(&self, key: &IdempotencyKey, status: &str) -> HashMap<String, AttributeValue> {
        let expiration = epoch(SystemTime::now() + self.expires_after).as_secs();
        HashMap::from([
            (attr::ID.to_owned(), s(self.record_id(key))),
            (attr::STATUS.to_owned(), s(status)),
            (attr::EXPIRATION.to_owned(), n(expiration)),
            (attr::VALIDATION.to_owned(), s(&key.payload_hash)),
        ])
    }

    /// The COMPLETED record's put, before its condition; a failed condition returns the old item.
    fn completed_put(&self, key: &IdempotencyKey) -> PutBuilder {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.record(key, COMPLETED)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }

    /// Transactional mode: writes `effect` and the COMPLETED record in one transaction, unless
    /// an unexpired record for `key` exists.
    pub async fn commit(
        &self,
        key: &IdempotencyKey,
        effect: Vec<TransactWriteItem>,
    ) -> Result<Commit, IdempotencyError> {
        let record = self
            .completed_put(key)
            .condition_expression("attribute_not_exists(#id) OR #expiration < :now")
            .expression_attribute_names("#id", attr::ID)
            .expression_attribute_names("#expiration", attr::EXPIRATION)
            .expression_attribute_values(":now", n(epoch(SystemTime::now()).as_secs()))
            .build()
            .map_err(store_error)?;
        self.transact(key, record, effect).await
    }

    /// Claim mode, step one: marks `key` INPROGRESS until `in_progress_until` (use the
    /// invocation deadline) with one conditional put. An expired record, or an INPROGRESS record
    /// whose holder ran out of time, is taken over.
    pub async fn claim(
        &self,
        key: &IdempotencyKey,
        in_progress_until: SystemTime,
    ) -> Result<Claim, IdempotencyError> {
        let now = epoch(SystemTime::now());
        let mut item = self.record(key, INPROGRESS);
        item.insert(
            attr::IN_PROGRESS_EXPIRATION.to_owned(),
            n(epoch(in_progress_until).as_millis()),
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(#id) OR #expiration < :now_s \
                 OR (#status = :inprogress AND #ipe < :now_ms)",
            )
            .expression_attribute_names("#id", attr::ID)
            .expression_attribute_names("#expiration", attr::EXPIRATION)
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#ipe", attr::IN_PROGRESS_EXPIRATION)
            .expression_attribute_values(":now_s", n(now.as_secs()))
            .expression_attribute_values(":now_ms", n(now.as_millis()))
            .expression_attribute_values(":inprogress", s(INPROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Acquired),
            Err(SdkError::ServiceError(failure)) => match failure.into_err() {
                PutItemError::ConditionalCheckFailedException(e) => {
                    let existing = match e.item {
                        Some(item) => item,
                        None => self.read(key).await?,
                    };
                    self.check_existing(key, &existing)?;
                    Ok(Claim::AlreadyCompleted)
                }
                other => Err(store_error(other)),
            },
            Err(other) => Err(store_error(other)),
        }
    }

    /// Claim mode, step two: after the external effect succeeded, writes the COMPLETED record
    /// and the effect's own DynamoDB writes in one transaction.
    pub async fn complete(
        &self,
        key: &IdempotencyKey,
        effect: Vec<TransactWriteItem>,
    ) -> Result<Commit, IdempotencyError> {
        let record = self
            .completed_put(key)
            .condition_expression("#status = :inprogress AND #validation = :validation")
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#validation", attr::VALIDATION)
            .expression_attribute_values(":inprogress", s(INPROGRESS))
            .expression_attribute_values(":validation", s(&key.payload_hash))
            .build()
            .map_err(store_error)?;
        self.transact(key, record, effect).await
    }

    /// Claim mode, on failure of the effect: deletes the INPROGRESS record so a retry can run.
    pub async fn release(&self, key: &IdempotencyKey) -> Result<(), IdempotencyError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(attr::ID, s(self.record_id(key)))
            .condition_expression("#status = :inprogress")
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_values(":inprogress", s(INPROGRESS))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Someone else completed or took over the key meanwhile: nothing of ours to release.
            Err(SdkError::ServiceError(f)) if f.err().is_conditional_check_failed_exception() => {
                Ok(())
            }
            Err(other) => Err(store_error(other)),
        }
    }

    /// Whether an unexpired COMPLETED record exists for `key` (a cheap check before an
    /// expensive effect; the commit re-checks atomically).
    pub async fn is_completed(&self, key: &IdempotencyKey) -> Result<bool, IdempotencyError> {
        let existing = self.read(key).await?;
        if existing.is_empty() || is_expired(&existing) {
            return Ok(false);
        }
        self.check_existing(key, &existing).map(|()| true)
    }

    async fn read(
        &self,
        key: &IdempotencyKey,
    ) -> Result<HashMap<String, AttributeValue>, IdempotencyError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::ID, s(self.record_id(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(output.item.unwrap_or_default())
    }

    /// Interprets an existing, unexpired record for `key`: Ok if it is a COMPLETED record of
    /// the same payload, otherwise the error saying why the work cannot proceed now.
    fn check_existing(
        &self,
        key: &IdempotencyKey,
        existing: &HashMap<String, AttributeValue>,
    ) -> Result<(), IdempotencyError> {
        if string(existing, attr::VALIDATION).is_some_and(|v| v != key.payload_hash) {
            return Err(IdempotencyError::PayloadMismatch(key.key.clone()));
        }
        match string(existing, attr::STATUS) {
            Some(COMPLETED) => Ok(()),
            _ => Err(IdempotencyError::InProgress(key.key.clone())),
        }
    }

    async fn transact(
        &self,
        key: &IdempotencyKey,
        record: Put,
        effect: Vec<TransactWriteItem>,
    ) -> Result<Commit, IdempotencyError> {
        let mut items = vec![TransactWriteItem::builder().put(record).build()];
        items.extend(effect);
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let cancelled = match result {
            Ok(_) => return Ok(Commit::Committed),
            Err(SdkError::ServiceError(failure)) => match failure.into_err() {
                TransactWriteItemsError::TransactionCanceledException(e) => e,
                other => return Err(store_error(other)),
            },
            Err(other) => return Err(store_error(other)),
        };
        let reasons = cancelled.cancellation_reasons.unwrap_or_default();
        let failed = |reason: &aws_sdk_dynamodb::types::CancellationReason| {
            reason.code.as_deref() == Some("ConditionalCheckFailed")
        };
        if reasons.first().is_some_and(failed) {
            let existing = match reasons.into_iter().next().and_then(|r| r.item) {
                Some(item) => item,
                None => self.read(key).await?,
            };
            self.check_existing(key, &existing)?;
            return Ok(Commit::AlreadyCompleted);
        }
        match reasons
            .into_iter()
            .enumerate()
            .skip(1)
            .find(|(_, r)| failed(r))
        {
            Some((index, reason)) => Ok(Commit::EffectConditionFailed {
                index: index - 1,
                item: reason.item,
            }),
            None => Err(IdempotencyError::Store(format!(
                "transaction cancelled: {}",
                cancelled.message.unwrap_or_default()
            ))),
        }
    }
}

fn is_expired(item: &HashMap<String, AttributeValue>) -> bool {
    let now = epoch(SystemTime::now()).as_secs();
    match item.get(attr::EXPIRATION).and_then(|v| v.as_n().ok()) {
        Some(expiration) => expiration.parse::<u64>().map_or(true, |e| e < now),
        None => true,
    }
}

fn epoch(time: SystemTime) -> Duration {
    time.duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// A string attribute value.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute value.
pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
