//! Writes that change several DynamoDB items together: one `TransactWriteItems`, and which of
//! its writes refused it. For effects such as stock lines and the decision that took them; an
//! effect of one item needs no transaction (`crate::effect`).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, TransactWriteItem};

type Item = HashMap<String, AttributeValue>;

/// Why a [`transact`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum TransactError {
    /// The write at `index` failed its condition; `item` is its target as it was, when the
    /// write asked for it (`ReturnValuesOnConditionCheckFailure::AllOld`).
    #[error("write {index} failed its condition; nothing was written")]
    ConditionFailed { index: usize, item: Option<Item> },
    /// The call failed: nothing was written.
    #[error("transaction: {0}")]
    Store(String),
}

/// Writes `writes` in one `TransactWriteItems`: all of them or none. For effects that change
/// several items together (stock lines and the decision that took them).
pub async fn transact(
    client: &aws_sdk_dynamodb::Client,
    writes: Vec<TransactWriteItem>,
) -> Result<(), TransactError> {
    let result = client
        .transact_write_items()
        .set_transact_items(Some(writes))
        .send()
        .await;
    let cancelled = match result {
        Ok(_) => return Ok(()),
        Err(SdkError::ServiceError(failure)) => match failure.into_err() {
            TransactWriteItemsError::TransactionCanceledException(e) => e,
            other => return Err(store_error(other)),
        },
        Err(other) => return Err(store_error(other)),
    };
    let failed =
        |reason: &CancellationReason| reason.code.as_deref() == Some("ConditionalCheckFailed");
    match cancelled
        .cancellation_reasons
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .find(|(_, r)| failed(r))
    {
        Some((index, reason)) => Err(TransactError::ConditionFailed {
            index,
            item: reason.item,
        }),
        None => Err(TransactError::Store(format!(
            "cancelled: {}",
            cancelled.message.unwrap_or_default()
        ))),
    }
}

fn store_error<E: std::error::Error>(error: E) -> TransactError {
    TransactError::Store(aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string())
}
