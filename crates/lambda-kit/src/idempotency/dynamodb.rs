//! Idempotency entries in DynamoDB.
//!
//! The entry layout follows Powertools for AWS Lambda: `id` (`{function}#{sha256 of the key}`),
//! `status` (`INPROGRESS` / `COMPLETED`), `expiration` (epoch seconds; the table's TTL
//! attribute), `in_progress_expiration` (epoch milliseconds), `data` (the stored result) and
//! `validation` (sha256 of the payload); the names are configurable ([`EntryAttributes`]).
//! Expiry is checked in the condition expressions, never left to TTL, which deletes items up to
//! days late. A failed condition returns the existing item with the error, so no second read is
//! needed to tell a replay from an in-progress duplicate.
//!
//! Two modes, chosen by where the effect lives:
//!
//! - **Transactional** ([`DynamoIdempotency::commit`]), for effects that are DynamoDB writes:
//!   the effect's writes and the COMPLETED entry go into one `TransactWriteItems`. DynamoDB
//!   applies all of it or none of it, so after any crash either both exist (a redelivery finds
//!   the entry and does nothing) or neither does (a redelivery applies the effect). They cannot
//!   disagree.
//! - **Claim / complete** ([`IdempotencyStore`], plus [`DynamoIdempotency::complete_with`]),
//!   for effects outside DynamoDB (an e-mail, an HTTP call): an INPROGRESS entry is written
//!   first with one conditional put, the effect runs, then the COMPLETED entry (with the
//!   effect's own DynamoDB writes, if any, in the same transaction). A concurrent duplicate sees
//!   INPROGRESS and fails retryably. If the process dies after the external effect and before
//!   the commit, the INPROGRESS entry expires at the invocation deadline and the retry runs the
//!   effect again: the one window where an external call without its own idempotency key can
//!   happen twice. Prefer APIs that take an idempotency key (as the payment gateway does).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::builders::PutBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use super::verdict::{decide, Entry, Status};
use super::{
    epoch, sha256_hex, Claim, Effect, EntryAttributes, IdempotencyError, IdempotencyKey,
    IdempotencyStore, DEFAULT_EXPIRES_AFTER,
};
use crate::transaction::{transact, TransactError};

const INPROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

type Item = HashMap<String, AttributeValue>;
/// A condition expression with its attribute names and values.
type Condition = (String, HashMap<String, String>, Item);

pub(crate) fn store_error<E: std::error::Error>(error: E) -> IdempotencyError {
    IdempotencyError::Store(aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string())
}

/// Idempotency entries for one function in one DynamoDB table (partition key `id`, a string;
/// TTL on `expiration`).
#[derive(Debug, Clone)]
pub struct DynamoIdempotency {
    client: aws_sdk_dynamodb::Client,
    table: String,
    function_name: String,
    expires_after: Duration,
    attributes: EntryAttributes,
}

impl DynamoIdempotency {
    /// Entries of `function_name` (it scopes the keys) in `table`.
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
            attributes: EntryAttributes::default(),
        }
    }

    /// How long a COMPLETED entry prevents a replay (default one hour).
    pub fn expires_after(mut self, expires_after: Duration) -> Self {
        self.expires_after = expires_after;
        self
    }

    /// Attribute names other than the Powertools defaults.
    pub fn with_attributes(mut self, attributes: EntryAttributes) -> Self {
        self.attributes = attributes;
        self
    }

    /// The DynamoDB client the entries are written with (effects in other tables use it too).
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// The entry's `id`: the function name scopes keys, the hash bounds their length.
    pub fn entry_id(&self, key: &IdempotencyKey) -> String {
        format!("{}#{}", self.function_name, sha256_hex(&key.key))
    }

    fn entry_item(&self, key: &IdempotencyKey, status: &str, data: Option<String>) -> Item {
        let names = &self.attributes;
        let expiration = epoch(SystemTime::now() + self.expires_after).as_secs();
        let mut item = HashMap::from([
            (names.id.clone(), s(self.entry_id(key))),
            (names.status.clone(), s(status)),
            (names.expiration.clone(), n(expiration)),
            (names.validation.clone(), s(&key.payload_hash)),
        ]);
        if let Some(data) = data {
            item.insert(names.data.clone(), s(data));
        }
        item
    }

    /// The COMPLETED entry's put, before its condition; a failed condition returns the old item.
    fn completed_put(&self, key: &IdempotencyKey, data: Option<String>) -> PutBuilder {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.entry_item(key, COMPLETED, data)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }

    /// Transactional mode: writes `effect` and the COMPLETED entry in one transaction, unless
    /// an unexpired entry for `key` exists.
    pub async fn commit(
        &self,
        key: &IdempotencyKey,
        effect: Vec<TransactWriteItem>,
    ) -> Result<Effect<()>, IdempotencyError> {
        let (expression, names, values) = self.claimable();
        let entry = self
            .completed_put(key, None)
            .condition_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(store_error)?;
        self.transact(key, entry, effect).await
    }

    /// The condition under which [`decide`] lets an attempt claim the key: no entry, an expired
    /// one, or one in progress past its holder's deadline. (expression, names, values)
    fn claimable(&self) -> Condition {
        let names = &self.attributes;
        let now = epoch(SystemTime::now());
        (
            "attribute_not_exists(#id) OR #expiration < :now_s \
             OR (#status = :inprogress AND #ipe < :now_ms)"
                .to_owned(),
            HashMap::from([
                ("#id".to_owned(), names.id.clone()),
                ("#expiration".to_owned(), names.expiration.clone()),
                ("#status".to_owned(), names.status.clone()),
                ("#ipe".to_owned(), names.in_progress_expiration.clone()),
            ]),
            HashMap::from([
                (":now_s".to_owned(), n(now.as_secs())),
                (":now_ms".to_owned(), n(now.as_millis())),
                (":inprogress".to_owned(), s(INPROGRESS)),
            ]),
        )
    }

    /// Claim mode, step two, with the effect's own DynamoDB writes committed in the same
    /// transaction as the COMPLETED entry.
    pub async fn complete_with(
        &self,
        key: &IdempotencyKey,
        data: Option<String>,
        effect: Vec<TransactWriteItem>,
    ) -> Result<Effect<()>, IdempotencyError> {
        let entry = self
            .completed_put(key, data)
            .condition_expression("#status = :inprogress AND #validation = :validation")
            .expression_attribute_names("#status", &self.attributes.status)
            .expression_attribute_names("#validation", &self.attributes.validation)
            .expression_attribute_values(":inprogress", s(INPROGRESS))
            .expression_attribute_values(":validation", s(&key.payload_hash))
            .build()
            .map_err(store_error)?;
        self.transact(key, entry, effect).await
    }

    /// What the existing entry (the item a failed condition returned, or a fresh read) means
    /// for an attempt that could not write.
    async fn refusal(
        &self,
        key: &IdempotencyKey,
        returned: Option<Item>,
    ) -> Result<Claim, IdempotencyError> {
        let existing = match returned {
            Some(item) => item,
            None => self.read(key).await?,
        };
        decide(
            self.entry(&existing).as_ref(),
            &key.payload_hash,
            SystemTime::now(),
        )
        .into_claim(key)
    }

    /// An item as an [`Entry`]; `None` for no item (or one that is not an entry).
    fn entry(&self, item: &Item) -> Option<Entry> {
        let names = &self.attributes;
        let number = |name: &str| -> Option<u64> { item.get(name)?.as_n().ok()?.parse().ok() };
        let status = match string(item, &names.status)? {
            COMPLETED => Status::Completed {
                data: string(item, &names.data).map(str::to_owned),
            },
            _ => Status::InProgress {
                until: UNIX_EPOCH
                    + Duration::from_millis(number(&names.in_progress_expiration).unwrap_or(0)),
            },
        };
        Some(Entry {
            status,
            payload_hash: string(item, &names.validation)
                .unwrap_or_default()
                .to_owned(),
            expires_at: UNIX_EPOCH + Duration::from_secs(number(&names.expiration).unwrap_or(0)),
        })
    }

    async fn read(&self, key: &IdempotencyKey) -> Result<Item, IdempotencyError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(&self.attributes.id, s(self.entry_id(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(output.item.unwrap_or_default())
    }

    async fn transact(
        &self,
        key: &IdempotencyKey,
        entry: Put,
        effect: Vec<TransactWriteItem>,
    ) -> Result<Effect<()>, IdempotencyError> {
        let mut items = vec![TransactWriteItem::builder().put(entry).build()];
        items.extend(effect);
        match transact(&self.client, items).await {
            Ok(()) => Ok(Effect::Applied(())),
            Err(TransactError::ConditionFailed { index: 0, item }) => {
                self.refusal(key, item).await?;
                Ok(Effect::AlreadyDone(()))
            }
            Err(TransactError::ConditionFailed { index, item }) => {
                Err(IdempotencyError::EffectConditionFailed {
                    index: index - 1,
                    item,
                })
            }
            Err(TransactError::Store(error)) => Err(IdempotencyError::Store(error)),
        }
    }
}

impl IdempotencyStore for DynamoIdempotency {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        in_progress_until: SystemTime,
    ) -> Result<Claim, IdempotencyError> {
        let mut item = self.entry_item(key, INPROGRESS, None);
        item.insert(
            self.attributes.in_progress_expiration.clone(),
            n(epoch(in_progress_until).as_millis()),
        );
        let (expression, names, values) = self.claimable();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Acquired),
            Err(SdkError::ServiceError(failure)) => match failure.into_err() {
                PutItemError::ConditionalCheckFailedException(e) => self.refusal(key, e.item).await,
                other => Err(store_error(other)),
            },
            Err(other) => Err(store_error(other)),
        }
    }

    async fn is_completed(&self, key: &IdempotencyKey) -> Result<bool, IdempotencyError> {
        let existing = self.read(key).await?;
        let entry = self.entry(&existing);
        decide(entry.as_ref(), &key.payload_hash, SystemTime::now()).completed(key)
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        data: Option<String>,
    ) -> Result<(), IdempotencyError> {
        match self.complete_with(key, data, Vec::new()).await {
            // Or the claim was taken over after our deadline and completed by the other attempt.
            Ok(Effect::Applied(()) | Effect::AlreadyDone(())) => Ok(()),
            Err(IdempotencyError::EffectConditionFailed { .. }) => Ok(()),
            Err(other) => Err(other),
        }
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), IdempotencyError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(&self.attributes.id, s(self.entry_id(key)))
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
