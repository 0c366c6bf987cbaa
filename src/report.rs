//! What each service did for an order, read back from the services' tables.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use crate::provision::Deployment;

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

/// A string attribute of an item.
pub(crate) fn string_attribute<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn text<'a>(item: &'a Item, name: &str) -> &'a str {
    string_attribute(item, name).unwrap_or_default()
}

/// Every item of `table` (a physical name), read consistently, page by page.
pub(crate) async fn scan(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Vec<Item>, aws_sdk_dynamodb::Error> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await?;
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(items);
        }
    }
}

fn step(
    item: Option<Item>,
    time_attribute: &str,
    summary: impl Fn(&Item) -> String,
) -> Option<Step> {
    let item = item?;
    let at = DateTime::parse_from_rfc3339(text(&item, time_attribute))
        .ok()?
        .with_timezone(&Utc);
    Some(Step {
        at,
        summary: summary(&item),
    })
}

async fn get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    value: String,
) -> Result<Option<Item>, aws_sdk_dynamodb::Error> {
    Ok(client
        .get_item()
        .table_name(table)
        .key(key, AttributeValue::S(value))
        .consistent_read(true)
        .send()
        .await?
        .item)
}

/// Reads every service's record of `order_id`.
pub async fn order_report(
    sdk: &SdkConfig,
    deployment: &Deployment,
    order_id: &str,
) -> Result<OrderReport, aws_sdk_dynamodb::Error> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let table = |logical_id| deployment.reference(logical_id);
    let order = || order_id.to_owned();
    let inventory = get(
        &client,
        &table("InventoryTable"),
        "pk",
        format!("ORDER#{order_id}"),
    )
    .await?;
    let payment = get(&client, &table("PaymentsTable"), "orderId", order()).await?;
    let shipment = get(&client, &table("ShipmentsTable"), "orderId", order()).await?;
    let notification = get(&client, &table("NotificationsTable"), "orderId", order()).await?;
    Ok(OrderReport {
        inventory: step(inventory, "decidedAt", |i| match text(i, "reason") {
            "" => text(i, "decision").to_lowercase(),
            reason => format!("{}: {reason}", text(i, "decision").to_lowercase()),
        }),
        payment: step(payment, "paidAt", |i| {
            format!("charged ({})", text(i, "chargeId"))
        }),
        shipment: step(shipment, "createdAt", |i| {
            format!("shipment created, tracking {}", text(i, "trackingNumber"))
        }),
        notification: step(notification, "sentAt", |i| {
            format!("confirmation e-mailed to {}", text(i, "recipient"))
        }),
    })
}

/// How many items `table` (a logical id) holds.
pub async fn count_items(
    sdk: &SdkConfig,
    deployment: &Deployment,
    table: &str,
) -> Result<usize, aws_sdk_dynamodb::Error> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    Ok(scan(&client, &deployment.reference(table)).await?.len())
}
