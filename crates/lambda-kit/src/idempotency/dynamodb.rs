//! Idempotency records in DynamoDB.
//!
//! The record layout follows Powertools for AWS Lambda: `id` (`{function}#{sha256 of the key}`),
//! `status` (`INPROGRESS` / `COMPLETED`), `expiration` (epoch seconds; the table's TTL
//! attribute), `in_progress_expiration` (epoch milliseconds), `data` (the stored result) and
//! `validation` (sha256 of the payload); the names are configurable ([`RecordAttributes`]).
//! Expiry is checked in the condition expressions, never left to TTL, which deletes items up to
//! days late. A failed condition returns the existing item with the error, so no second read is
//! needed to tell a replay from an in-progress duplicate.
//!
//! Two modes, chosen by where the effect lives:
//!
//! - **Transactional** ([`DynamoIdempotency::commit`]), for effects that are DynamoDB writes:
//!   the effect's writes and the COMPLETED record go into one `TransactWriteItems`. DynamoDB
//!   applies all of it or none of it, so after any crash either both exist (a redelivery finds
//!   the record and does nothing) or neither does (a redelivery applies the effect). They cannot
//!   disagree.
//! - **Claim / complete** ([`IdempotencyStore`], plus [`DynamoIdempotency::complete_with`]),
//!   for effects outside DynamoDB (an e-mail, an HTTP call): an INPROGRESS record is written
//!   first with one conditional put, the effect runs, then the COMPLETED record (with the
//!   effect's own DynamoDB writes, if any, in the same transaction). A concurrent duplicate sees
//!   INPROGRESS and fails retryably. If the process dies after the external effect and before
//!   the commit, the INPROGRESS record expires at the invocation deadline and the retry runs the
//!   effect again: the one window where an external call without its own idempotency key can
//!   happen twice. Prefer APIs that take an idempotency key (as the payment gateway does).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::PutBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use super::{
    epoch, sha256_hex, Claim, Commit, IdempotencyError, IdempotencyKey, IdempotencyStore,
    RecordAttributes, DEFAULT_EXPIRES_AFTER,
};

const INPROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

type Item = HashMap<String, AttributeValue>;

fn store_error<E: std::error::Error>(error: E) -> IdempotencyError {
    IdempotencyError::Store(aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string())
}

/// Idempotency records for one function in one DynamoDB table (partition key `id`, a string;
/// TTL on `expiration`).
#[derive(Debug, Clone)]
pub struct DynamoIdempotency {
    client: aws_sdk_dynamodb::Client,
    table: String,
    function_name: String,
    expires_after: Duration,
    attributes: RecordAttributes,
}

impl DynamoIdempotency {
    /// Records of `function_name` (it scopes the keys) in `table`.
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
            attributes: RecordAttributes::default(),
        }
    }

    /// How long a COMPLETED record prevents a replay (default one hour).
    pub fn expires_after(mut self, expires_after: Duration) -> Self {
        self.expires_after = expires_after;
        self
    }

    /// Attribute names other than the Powertools defaults.
    pub fn with_attributes(mut self, attributes: RecordAttributes) -> Self {
        self.attributes = attributes;
        self
    }

    /// The record's `id`: the function name scopes keys, the hash bounds their length.
    pub fn record_id(&self, key: &IdempotencyKey) -> String {
        format!("{}#{}", self.function_name, sha256_hex(&key.key))
    }

    fn record(&self, key: &IdempotencyKey, status: &str, data: Option<String>) -> Item {
        let names = &self.attributes;
        let expiration = epoch(SystemTime::now() + self.expires_after).as_secs();
        let mut item = HashMap::from([
            (names.id.clone(), s(self.record_id(key))),
            (names.status.clone(), s(status)),
            (names.expiration.clone(), n(expiration)),
            (names.validation.clone(), s(&key.payload_hash)),
        ]);
        if let Some(data) = data {
            item.insert(names.data.clone(), s(data));
        }
        item
    }

    /// The COMPLETED record's put, before its condition; a failed condition returns the old item.
    fn completed_put(&self, key: &IdempotencyKey, data: Option<String>) -> PutBuilder {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.record(key, COMPLETED, data)))
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
            .completed_put(key, None)
            .condition_expression("attribute_not_exists(#id) OR #expiration < :now")
            .expression_attribute_names("#id", &self.attributes.id)
            .expression_attribute_names("#expiration", &self.attributes.expiration)
            .expression_attribute_values(":now", n(epoch(SystemTime::now()).as_secs()))
            .build()
            .map_err(store_error)?;
        self.transact(key, record, effect).await
    }

    /// Claim mode, step two, with the effect's own DynamoDB writes committed in the same
    /// transaction as the COMPLETED record.
    pub async fn complete_with(
        &self,
        key: &IdempotencyKey,
        data: Option<String>,
        effect: Vec<TransactWriteItem>,
    ) -> Result<Commit, IdempotencyError> {
        let record = self
            .completed_put(key, data)
            .condition_expression("#status = :inprogress AND #validation = :validation")
            .expression_attribute_names("#status", &self.attributes.status)
            .expression_attribute_names("#validation", &self.attributes.validation)
            .expression_attribute_values(":inprogress", s(INPROGRESS))
            .expression_attribute_values(":validation", s(&key.payload_hash))
            .build()
            .map_err(store_error)?;
        self.transact(key, record, effect).await
    }

    /// Whether an unexpired COMPLETED record exists for `key` (a cheap check before an
    /// expensive effect; the commit re-checks atomically).
    pub async fn is_completed(&self, key: &IdempotencyKey) -> Result<bool, IdempotencyError> {
        let existing = self.read(key).await?;
        if existing.is_empty() || self.is_expired(&existing) {
            return Ok(false);
        }
        self.check_existing(key, &existing).map(|_| true)
    }

    async fn read(&self, key: &IdempotencyKey) -> Result<Item, IdempotencyError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(&self.attributes.id, s(self.record_id(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(output.item.unwrap_or_default())
    }

    /// Interprets an existing, unexpired record for `key`: its stored data if it is a COMPLETED
    /// record of the same payload, otherwise the error saying why the work cannot proceed now.
    fn check_existing(
        &self,
        key: &IdempotencyKey,
        existing: &Item,
    ) -> Result<Option<String>, IdempotencyError> {
        let names = &self.attributes;
        if string(existing, &names.validation).is_some_and(|v| v != key.payload_hash) {
            return Err(IdempotencyError::PayloadMismatch(key.key.clone()));
        }
        match string(existing, &names.status) {
            Some(COMPLETED) => Ok(string(existing, &names.data).map(str::to_owned)),
            _ => Err(IdempotencyError::InProgress(key.key.clone())),
        }
    }

    fn is_expired(&self, item: &Item) -> bool {
        let now = epoch(SystemTime::now()).as_secs();
        item.get(&self.attributes.expiration)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_none_or(|expiration| expiration < now)
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
        let failed =
            |reason: &CancellationReason| reason.code.as_deref() == Some("ConditionalCheckFailed");
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

impl IdempotencyStore for DynamoIdempotency {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        in_progress_until: SystemTime,
    ) -> Result<Claim, IdempotencyError> {
        let names = &self.attributes;
        let now = epoch(SystemTime::now());
        let mut item = self.record(key, INPROGRESS, None);
        item.insert(
            names.in_progress_expiration.clone(),
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
            .expression_attribute_names("#id", &names.id)
            .expression_attribute_names("#expiration", &names.expiration)
            .expression_attribute_names("#status", &names.status)
            .expression_attribute_names("#ipe", &names.in_progress_expiration)
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
                    self.check_existing(key, &existing)
                        .map(Claim::AlreadyCompleted)
                }
                other => Err(store_error(other)),
            },
            Err(other) => Err(store_error(other)),
        }
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        data: Option<String>,
    ) -> Result<(), IdempotencyError> {
        match self.complete_with(key, data, Vec::new()).await? {
            Commit::Committed => Ok(()),
            // The claim was taken over after our deadline and completed by the other attempt.
            Commit::AlreadyCompleted | Commit::EffectConditionFailed { .. } => Ok(()),
        }
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), IdempotencyError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(&self.attributes.id, s(self.record_id(key)))
            .condition_expression("#status = :inprogress")
            .expression_attribute_names("#status", &self.attributes.status)
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
}

fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
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
