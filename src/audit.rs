//! An audit of the end state: reads every service's table and checks the promises for a set of
//! orders. Every accepted order has exactly one inventory decision, one payment, one shipment and
//! one confirmation e-mail; stock went down by exactly the quantities of the orders that
//! reserved it; nothing exists for an order that was not accepted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aws_config::SdkConfig;
use inventory::items::{self as stock, DecisionItem, InventoryItem, Outcome};
use local_runtime::provision::Deployment;
use notification::NotificationItem;
use payment::PaymentItem;
use shipping::ShipmentItem;

use crate::report::{scan, table, ReportError};

/// What the audit is told about the world.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// The orders the API accepted. `None`: every order any service has a record of.
    pub accepted_orders: Option<BTreeSet<String>>,
    /// Stock before the orders, per sku. Empty: stock is only checked for going negative.
    pub initial_stock: BTreeMap<String, u64>,
    /// Subjects of the e-mails the mail service accepted, when they can be listed (the local
    /// emulator can); each accepted order must appear in exactly one.
    pub sent_email_subjects: Option<Vec<String>>,
}

/// What is wrong, per order (or per sku, under `stock SKU`). Empty means all promises hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    pub orders_checked: usize,
    pub reserved: usize,
    pub rejected: usize,
    pub problems: BTreeMap<String, Vec<String>>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, subject: impl Into<String>, what: impl Into<String>) {
        self.problems
            .entry(subject.into())
            .or_default()
            .push(what.into());
    }
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} orders checked: {} reserved, {} rejected by inventory; {}",
            self.orders_checked,
            self.reserved,
            self.rejected,
            if self.is_clean() {
                "every promise holds".to_owned()
            } else {
                format!("{} with problems", self.problems.len())
            }
        )?;
        for (subject, problems) in &self.problems {
            writeln!(f, "  {subject}:")?;
            for problem in problems {
                writeln!(f, "    - {problem}")?;
            }
        }
        Ok(())
    }
}

/// Reads the tables of `deployment` and checks `expectations`.
pub async fn audit(
    sdk: &SdkConfig,
    deployment: &Deployment,
    expectations: &Expectations,
) -> Result<AuditReport, ReportError> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let mut report = AuditReport::default();

    let mut stock: BTreeMap<String, i128> = BTreeMap::new();
    let mut decisions: BTreeMap<String, DecisionItem> = BTreeMap::new();
    let inventory = table(deployment, "inventory", stock::TABLE_VARIABLE)?;
    for item in scan::<InventoryItem>(&client, &inventory).await? {
        match item {
            InventoryItem::Stock(item) => {
                if let Some(sku) = item.sku() {
                    stock.insert(sku.to_owned(), i128::from(item.available));
                }
            }
            InventoryItem::Decision(item) => {
                if let Some(order) = item.order_id() {
                    decisions.insert(order.to_owned(), item.clone());
                }
            }
        }
    }
    let orders = |ids: Vec<uuid::Uuid>| -> BTreeSet<String> {
        ids.iter().map(uuid::Uuid::to_string).collect()
    };
    let payments: Vec<PaymentItem> = scan(
        &client,
        &table(deployment, "payment", PaymentItem::TABLE_VARIABLE)?,
    )
    .await?;
    let shipments: Vec<ShipmentItem> = scan(
        &client,
        &table(deployment, "shipping", ShipmentItem::TABLE_VARIABLE)?,
    )
    .await?;
    let notifications: Vec<NotificationItem> = scan(
        &client,
        &table(deployment, "notification", NotificationItem::TABLE_VARIABLE)?,
    )
    .await?;
    let by_service: Vec<(&str, BTreeSet<String>)> = vec![
        (
            "payment",
            orders(payments.iter().map(|p| p.order_id).collect()),
        ),
        (
            "shipment",
            orders(shipments.iter().map(|s| s.order_id).collect()),
        ),
        (
            "confirmation e-mail record",
            orders(notifications.iter().map(|n| n.order_id).collect()),
        ),
    ];

    let seen: BTreeSet<String> = decisions
        .keys()
        .cloned()
        .chain(
            by_service
                .iter()
                .flat_map(|(_, orders)| orders.iter().cloned()),
        )
        .collect();
    let accepted = expectations
        .accepted_orders
        .clone()
        .unwrap_or_else(|| seen.clone());
    report.orders_checked = accepted.len();

    let mut reserved_quantities: BTreeMap<String, u64> = BTreeMap::new();
    for order in &accepted {
        match decisions.get(order) {
            None => report.problem(format!("order {order}"), "no inventory decision"),
            Some(decision) => match decision.decision {
                Outcome::Reserved => {
                    report.reserved += 1;
                    if decision.lines.is_empty() {
                        report.problem(format!("order {order}"), "reservation lists no lines");
                    }
                    for (sku, quantity) in &decision.lines {
                        *reserved_quantities.entry(sku.clone()).or_default() += quantity;
                    }
                }
                Outcome::Rejected => report.rejected += 1,
            },
        }
        for (service, orders) in &by_service {
            if !orders.contains(order) {
                report.problem(format!("order {order}"), format!("no {service}"));
            }
        }
        if let Some(subjects) = &expectations.sent_email_subjects {
            let sent = subjects
                .iter()
                .filter(|s| s.contains(order.as_str()))
                .count();
            if sent != 1 {
                report.problem(
                    format!("order {order}"),
                    format!("{sent} confirmation e-mails sent, expected 1"),
                );
            }
        }
    }
    for order in seen.difference(&accepted) {
        report.problem(
            format!("order {order}"),
            "records exist for an order that was not accepted",
        );
    }

    for (sku, available) in &stock {
        if *available < 0 {
            report.problem(format!("stock {sku}"), format!("{available} available"));
        }
    }
    for (sku, initial) in &expectations.initial_stock {
        let reserved = reserved_quantities.get(sku).copied().unwrap_or_default();
        let expected = i128::from(*initial) - i128::from(reserved);
        match stock.get(sku) {
            Some(available) if *available == expected => {}
            Some(available) => report.problem(
                format!("stock {sku}"),
                format!(
                    "{available} available, expected {initial} - {reserved} reserved = {expected}"
                ),
            ),
            None => report.problem(format!("stock {sku}"), "sku missing"),
        }
    }
    Ok(report)
}
