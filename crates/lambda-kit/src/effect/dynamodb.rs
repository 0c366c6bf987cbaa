//! The effect store in DynamoDB: items in a table keyed by one string attribute, each write one
//! conditional `PutItem` on the version read, carrying the keys applied to the item.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValuesOnConditionCheckFailure,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    serialization, Applied, Commit, EffectStore, Index, Page, Position, Read, Versioned,
    APPLIED_ATTRIBUTE, MAX_LOAD_MANY, VERSION_ATTRIBUTE,
};
use crate::idempotency::{n, store_error, DynamoIdempotency, IdempotencyError, IdempotencyKey};

type Item = HashMap<String, AttributeValue>;

/// How often a batch read asks again for the keys DynamoDB left unprocessed.
const UNPROCESSED_ROUNDS: u32 = 5;

/// Items in a DynamoDB table keyed by `key_attribute` (a string).
#[derive(Debug, Clone)]
pub struct DynamoEffectStore {
    table: String,
    key_attribute: String,
    idempotency: DynamoIdempotency,
}

impl DynamoEffectStore {
    /// Items in `table`; `idempotency` holds the claims of effects outside the store, and its
    /// client writes the items.
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

    fn client(&self) -> &aws_sdk_dynamodb::Client {
        self.idempotency.client()
    }

    fn entity_of(&self, item: &Item) -> String {
        match item.get(&self.key_attribute) {
            Some(AttributeValue::S(text)) => text.clone(),
            Some(AttributeValue::N(number)) => number.clone(),
            _ => String::new(),
        }
    }

    /// The stored `item` of `entity` as a `T` (without its bookkeeping of applied keys).
    fn read_item<T: DeserializeOwned>(
        &self,
        entity: &str,
        mut item: Item,
    ) -> Result<T, IdempotencyError> {
        item.remove(APPLIED_ATTRIBUTE);
        serde_dynamo::from_item(item).map_err(|e| {
            IdempotencyError::Store(format!("{} item {entity} does not read: {e}", self.table))
        })
    }

    /// The conditional put every write makes: `attributes` as version `read + 1` (1 without a
    /// read), if the item is still at the version read (absent without one). A refused write
    /// answers the item as it was.
    async fn put(
        &self,
        mut attributes: Item,
        read: Option<u64>,
    ) -> Result<Result<(), Option<Item>>, IdempotencyError> {
        attributes.insert(VERSION_ATTRIBUTE.into(), n(read.unwrap_or(0) + 1));
        let put = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attributes))
            .expression_attribute_names("#key", &self.key_attribute)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let put = match read {
            None => put.condition_expression("attribute_not_exists(#key)"),
            Some(version) => put
                .condition_expression("attribute_exists(#key) AND #version = :read")
                .expression_attribute_names("#version", VERSION_ATTRIBUTE)
                .expression_attribute_values(":read", n(version)),
        };
        match put.send().await {
            Ok(_) => Ok(Ok(())),
            Err(SdkError::ServiceError(failure)) => match failure.into_err() {
                PutItemError::ConditionalCheckFailedException(refused) => Ok(Err(refused.item)),
                other => Err(store_error(other)),
            },
            Err(other) => Err(store_error(other)),
        }
    }
}

/// The keys recorded in a stored item.
fn applied_of(item: &Item) -> Result<Applied, IdempotencyError> {
    match item.get(APPLIED_ATTRIBUTE) {
        None => Ok(Applied::default()),
        Some(value) => serde_dynamo::from_attribute_value(value.clone())
            .map_err(|e| IdempotencyError::Store(format!("the applied keys do not read: {e}"))),
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
            .client()
            .get_item()
            .table_name(&self.table)
            .key(&self.key_attribute, AttributeValue::S(entity.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let version = match item.get(VERSION_ATTRIBUTE) {
            Some(AttributeValue::N(number)) => number.parse().unwrap_or(0),
            _ => 0,
        };
        let applied = applied_of(&item)?;
        Ok(Some(Versioned {
            version,
            applied,
            item: self.read_item(entity, item)?,
        }))
    }

    async fn insert<T: Serialize + Sync>(&self, item: &T) -> Result<bool, IdempotencyError> {
        let attributes = serde_dynamo::to_item(item).map_err(serialization)?;
        Ok(self.put(attributes, None).await?.is_ok())
    }

    async fn page(
        &self,
        index: &Index,
        owner: &str,
        limit: usize,
        after: Option<&Position>,
    ) -> Result<Page<String>, IdempotencyError> {
        let text = |value: &str| AttributeValue::S(value.to_owned());
        let start = after.map(|after| {
            Item::from([
                (self.key_attribute.clone(), text(&after.entity)),
                (index.partition.to_owned(), text(owner)),
                (index.sort.to_owned(), text(&after.sort)),
            ])
        });
        // One more than the page, to know whether another follows.
        let output = self
            .client()
            .query()
            .table_name(&self.table)
            .index_name(index.name)
            .key_condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", index.partition)
            .expression_attribute_values(":owner", text(owner))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        let more = output.last_evaluated_key.is_some();
        let mut entities = Vec::new();
        for item in output.items.unwrap_or_default() {
            match (item.get(index.sort), item.get(&self.key_attribute)) {
                (Some(AttributeValue::S(sort)), Some(AttributeValue::S(entity))) => {
                    let position = Position {
                        sort: sort.clone(),
                        entity: entity.clone(),
                    };
                    entities.push((position, entity.clone()));
                }
                _ => {
                    return Err(IdempotencyError::Store(format!(
                        "{} lists an item without its keys",
                        index.name
                    )))
                }
            }
        }
        Ok(Page::of(entities, limit, more))
    }

    async fn load_many<T: DeserializeOwned + Send>(
        &self,
        entities: &[String],
    ) -> Result<Vec<T>, IdempotencyError> {
        if entities.is_empty() {
            return Ok(Vec::new());
        }
        if entities.len() > MAX_LOAD_MANY {
            return Err(IdempotencyError::Store(format!(
                "{} entities asked at once; at most {MAX_LOAD_MANY}",
                entities.len()
            )));
        }
        let keys = entities
            .iter()
            .map(|entity| {
                Item::from([(
                    self.key_attribute.clone(),
                    AttributeValue::S(entity.clone()),
                )])
            })
            .collect();
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(store_error)?,
        );
        let mut found: HashMap<String, T> = HashMap::new();
        // DynamoDB may leave keys unprocessed under load; ask again for those, backing off.
        let mut round = 0u32;
        while let Some(keys) = request.take() {
            if round > 0 {
                if round > UNPROCESSED_ROUNDS {
                    return Err(IdempotencyError::Store(format!(
                        "{}: keys still unprocessed after {UNPROCESSED_ROUNDS} retries",
                        self.table
                    )));
                }
                tokio::time::sleep(std::time::Duration::from_millis(25 << round.min(5))).await;
            }
            round += 1;
            let answer = self
                .client()
                .batch_get_item()
                .request_items(&self.table, keys)
                .send()
                .await
                .map_err(store_error)?;
            let items = answer
                .responses
                .and_then(|mut responses| responses.remove(&self.table))
                .unwrap_or_default();
            for item in items {
                let entity = self.entity_of(&item);
                let item = self.read_item(&entity, item)?;
                found.insert(entity, item);
            }
            request = answer
                .unprocessed_keys
                .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                .filter(|keys| !keys.keys().is_empty());
        }
        Ok(entities
            .iter()
            .filter_map(|entity| found.remove(entity))
            .collect())
    }

    async fn commit<T: Serialize + Sync>(
        &self,
        key: &IdempotencyKey,
        item: &T,
        read: Option<Read<'_>>,
    ) -> Result<Commit, IdempotencyError> {
        let mut attributes: Item = serde_dynamo::to_item(item).map_err(serialization)?;
        let entity = self.entity_of(&attributes);
        let applied = read.map_or_else(Applied::default, |r| r.applied.clone());
        let applied =
            serde_dynamo::to_attribute_value(applied.with(key, &entity)).map_err(serialization)?;
        attributes.insert(APPLIED_ATTRIBUTE.into(), applied);
        match self.put(attributes, read.map(|r| r.version)).await? {
            Ok(()) => Ok(Commit::Written),
            Err(Some(found)) if applied_of(&found)?.contains(key, &entity)? => {
                Ok(Commit::AlreadyDone)
            }
            Err(_) => Ok(Commit::Conflict),
        }
    }
}
