//! What each service did for an order, read back as the services' own item types from their
//! tables (found through the template: the table each function's environment names).

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use local_runtime::provision::Deployment;
use serde::de::DeserializeOwned;

/// Why a report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("reading {table}: {source}")]
    Read {
        table: String,
        source: Box<aws_sdk_dynamodb::Error>,
    },
    #[error("an item of {table} is not what its service writes: {source}")]
    Item {
        table: String,
        source: serde_dynamo::Error,
    },
    #[error("the template gives the function {binary} no table in {variable}")]
    NoTable {
        binary: &'static str,
        variable: &'static str,
    },
}

/// One service's effect for an order: when, and a one-line summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub at: DateTime<Utc>,
    pub summary: String,
}

/// Every service's effect for one order; `None` where the service has not acted (yet).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderReport {
    pub inventory: Option<Step>,
    pub payment: Option<Step>,
    pub shipment: Option<Step>,
    pub notification: Option<Step>,
}

impl OrderReport {
    /// Whether all four services have acted.
    pub fn is_complete(&self) -> bool {
        self.steps().iter().all(|(_, step)| step.is_some())
    }

    /// (service, step) in the order of the fan-out's description.
    pub fn steps(&self) -> [(&'static str, &Option<Step>); 4] {
        [
            ("inventory", &self.inventory),
            ("payment", &self.payment),
            ("shipping", &self.shipment),
            ("notification", &self.notification),
        ]
    }
}

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The physical name of the table the function built from `binary` names in `variable`.
pub(crate) fn table(
    deployment: &Deployment,
    binary: &'static str,
    variable: &'static str,
) -> Result<String, ReportError> {
    deployment
        .referenced_by(binary, variable)
        .ok_or(ReportError::NoTable { binary, variable })
}

/// Every item of `table` (a physical name) as `T`, read consistently, page by page.
pub(crate) async fn scan<T: DeserializeOwned>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Vec<T>, ReportError> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| ReportError::Read {
                table: table.to_owned(),
                source: Box::new(e.into()),
            })?;
        for item in page.items.unwrap_or_default() {
            items.push(typed(table, item)?);
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(items);
        }
    }
}

fn typed<T: DeserializeOwned>(table: &str, item: Item) -> Result<T, ReportError> {
    serde_dynamo::from_item(item).map_err(|source| ReportError::Item {
        table: table.to_owned(),
        source,
    })
}

/// The item of `table` whose `key` attribute is `value`, as `T`.
async fn get<T: DeserializeOwned>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    value: String,
) -> Result<Option<T>, ReportError> {
    let item = client
        .get_item()
        .table_name(table)
        .key(key, AttributeValue::S(value))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| ReportError::Read {
            table: table.to_owned(),
            source: Box::new(e.into()),
        })?
        .item;
    item.map(|item| typed(table, item)).transpose()
}

/// Reads every service's item about `order_id`.
pub async fn order_report(
    sdk: &SdkConfig,
    deployment: &Deployment,
    order_id: &str,
) -> Result<OrderReport, ReportError> {
    use inventory::items::{self as stock, DecisionItem, Outcome};
    use notification::NotificationItem;
    use payment::PaymentItem;
    use shipping::ShipmentItem;

    let client = aws_sdk_dynamodb::Client::new(sdk);
    let order = || order_id.to_owned();
    let decision: Option<DecisionItem> = get(
        &client,
        &table(deployment, "inventory", stock::TABLE_VARIABLE)?,
        stock::KEY,
        stock::order_key(order_id),
    )
    .await?;
    let payment: Option<PaymentItem> = get(
        &client,
        &table(deployment, "payment", PaymentItem::TABLE_VARIABLE)?,
        PaymentItem::KEY,
        order(),
    )
    .await?;
    let shipment: Option<ShipmentItem> = get(
        &client,
        &table(deployment, "shipping", ShipmentItem::TABLE_VARIABLE)?,
        ShipmentItem::KEY,
        order(),
    )
    .await?;
    let notification: Option<NotificationItem> = get(
        &client,
        &table(deployment, "notification", NotificationItem::TABLE_VARIABLE)?,
        NotificationItem::KEY,
        order(),
    )
    .await?;
    Ok(OrderReport {
        inventory: decision.map(|d| Step {
            at: d.decided_at,
            summary: match (d.decision, d.reason) {
                (Outcome::Reserved, _) => "reserved".to_owned(),
                (Outcome::Rejected, Some(reason)) => format!("rejected: {reason}"),
                (Outcome::Rejected, None) => "rejected".to_owned(),
            },
        }),
        payment: payment.map(|p| Step {
            at: p.paid_at,
            summary: format!("charged ({})", p.charge_id),
        }),
        shipment: shipment.map(|s| Step {
            at: s.created_at,
            summary: format!("shipment created, tracking {}", s.tracking_number),
        }),
        notification: notification.map(|n| Step {
            at: n.sent_at,
            summary: format!("confirmation e-mailed to {}", n.recipient),
        }),
    })
}

/// How many items `table` (a logical id) holds.
pub async fn count_items(
    sdk: &SdkConfig,
    deployment: &Deployment,
    table: &str,
) -> Result<usize, ReportError> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let items: Vec<serde::de::IgnoredAny> = scan(&client, &deployment.reference(table)).await?;
    Ok(items.len())
}
