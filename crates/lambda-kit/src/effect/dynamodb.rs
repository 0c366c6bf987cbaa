//! The effect store in DynamoDB: items in a table keyed by one string attribute, each write
//! conditional on the version read and, with an idempotency key, made in one transaction with
//! the key's COMPLETED entry.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{serialization, Commit, EffectStore, Versioned, VERSION_ATTRIBUTE};
use crate::idempotency::{n, DynamoIdempotency, Effect, IdempotencyError, IdempotencyKey};

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
            Ok(Effect::AlreadyDone(())) => Ok(Commit::AlreadyDone),
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
