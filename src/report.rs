//! What each service did for an order, read back as the services' own item types from their
//! tables (found through the template: the table each function's environment names).

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use inventory::items::{self as stock, ReservationItem, ReservationStatus};
use lambda_kit::spec::ServiceSpec;
use local_runtime::provision::Deployment;
use notification::{notification_id, EmailKind, NotificationItem};
use order_state::{OrderItem, Status};
use payment::{PaymentItem, PaymentStatus};
use serde::de::DeserializeOwned;
use shipping::ShipmentItem;

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

/// What every service holds about one order: the order service's state and decision, and each
/// other service's item (`None` where the service has not acted yet).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderReport {
    pub order: Option<OrderItem>,
    pub inventory: Option<ReservationItem>,
    pub payment: Option<PaymentItem>,
    pub shipment: Option<ShipmentItem>,
    pub confirmation: Option<NotificationItem>,
    pub cancellation: Option<NotificationItem>,
    /// The e-mail that told the customer their cancellation was refused.
    pub cancellation_refused: Option<NotificationItem>,
}

impl OrderReport {
    /// The order service's status; `None` before it knows the order.
    pub fn status(&self) -> Option<Status> {
        self.order.as_ref().map(|order| order.status)
    }

    /// Whether the saga has run its course for this order: decided, and every service has done
    /// what the decision asks (captured, shipped, confirmed by e-mail, a late cancellation refused
    /// and the refusal e-mailed; or given everything back and e-mailed the reason), and the order
    /// service has heard of the capture and the shipment.
    pub fn is_settled(&self) -> bool {
        let inventory = self.inventory.as_ref().map(|d| d.decision);
        let payment = self.payment.as_ref().map(|p| p.status);
        let shipment_live = self.shipment.as_ref().map(ShipmentItem::is_live);
        match self.status() {
            Some(Status::Confirmed) => {
                let order = self.order.as_ref();
                let requested = order.is_some_and(|o| o.cancellation_requested_at.is_some());
                let refused = order.is_some_and(|o| o.cancellation_refused.is_some());
                inventory == Some(ReservationStatus::Reserved)
                    && payment == Some(PaymentStatus::Captured)
                    && shipment_live == Some(true)
                    && self.confirmation.is_some()
                    && order.is_some_and(|o| o.captured.is_some() && o.shipped.is_some())
                    // A cancellation asked of a confirmed order is refused, and the customer told.
                    && requested == refused
                    && self.cancellation_refused.is_some() == refused
            }
            Some(Status::Cancelled) => {
                matches!(
                    inventory,
                    Some(
                        ReservationStatus::Rejected
                            | ReservationStatus::Released
                            | ReservationStatus::Cancelled
                    )
                ) && matches!(
                    payment,
                    Some(
                        PaymentStatus::Declined
                            | PaymentStatus::Voided
                            | PaymentStatus::Refunded
                            | PaymentStatus::Cancelled
                    )
                ) && shipment_live == Some(false)
                    && self.cancellation.is_some()
            }
            Some(Status::Pending) | None => false,
        }
    }
}

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The physical name of the table the service of `spec` owns.
pub(crate) fn table(deployment: &Deployment, spec: &ServiceSpec) -> Result<String, ReportError> {
    let binary = spec.name;
    let variable = spec.table_variable.unwrap_or("(none)");
    deployment
        .referenced_by(binary, variable)
        .ok_or(ReportError::NoTable { binary, variable })
}

/// Every item of `table` (a physical name) as `T`, read consistently, page by page.
pub async fn scan<T: DeserializeOwned>(
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
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let order = || order_id.to_owned();
    let orders = table(deployment, &orders::SPEC)?;
    let notifications = table(deployment, &notification::SPEC)?;
    let email = |kind| {
        let id = uuid::Uuid::parse_str(order_id).unwrap_or_default();
        get::<NotificationItem>(
            &client,
            &notifications,
            NotificationItem::KEY,
            notification_id(id, kind),
        )
    };
    Ok(OrderReport {
        order: get(&client, &orders, OrderItem::KEY, order()).await?,
        inventory: get(
            &client,
            &table(deployment, &inventory::SPEC)?,
            stock::KEY,
            stock::order_key(order_id),
        )
        .await?,
        payment: get(
            &client,
            &table(deployment, &payment::SPEC)?,
            PaymentItem::KEY,
            order(),
        )
        .await?,
        shipment: get(
            &client,
            &table(deployment, &shipping::SPEC)?,
            ShipmentItem::KEY,
            order(),
        )
        .await?,
        confirmation: email(EmailKind::Confirmation).await?,
        cancellation: email(EmailKind::Cancellation).await?,
        cancellation_refused: email(EmailKind::CancellationRefused).await?,
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
