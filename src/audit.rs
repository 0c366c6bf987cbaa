//! An audit of the end state, once the system is quiet: reads every service's table and checks
//! the saga's invariants for every order.
//!
//! - confirmed: stock reserved (decremented once), the payment captured for the order's total,
//!   one live shipment, a confirmation e-mail; a cancellation the customer asked for was refused
//!   (the order shipped first) and they were told;
//! - cancelled: no stock held, nothing captured (held amounts voided, captures refunded), no
//!   live shipment, a cancellation e-mail;
//! - no order undecided (every service is up when the audit runs);
//! - stock conserved per sku: initial stock minus the quantities of reserved orders is what is
//!   available (released reservations gave theirs back);
//! - nothing exists for an order that was not accepted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aws_config::SdkConfig;
use inventory::items::{InventoryItem, ReservationItem, ReservationStatus};
use local_runtime::provision::Deployment;
use notification::{EmailKind, NotificationItem};
use order_state::{OrderItem, Status};
use payment::{PaymentItem, PaymentStatus};
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
    /// emulator can); each order must appear in exactly one e-mail of its outcome.
    pub sent_email_subjects: Option<Vec<String>>,
}

/// What is wrong, per order (or per sku, under `stock SKU`). Empty means all promises hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    pub orders_checked: usize,
    pub confirmed: usize,
    pub cancelled: usize,
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
            "{} orders checked: {} confirmed, {} cancelled; {}",
            self.orders_checked,
            self.confirmed,
            self.cancelled,
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

/// Every service's items, by order id.
#[derive(Default)]
struct Tables {
    orders: BTreeMap<String, OrderItem>,
    decisions: BTreeMap<String, ReservationItem>,
    stock: BTreeMap<String, i128>,
    payments: BTreeMap<String, PaymentItem>,
    shipments: BTreeMap<String, ShipmentItem>,
    emails: BTreeMap<(String, EmailKind), NotificationItem>,
}

impl Tables {
    async fn read(sdk: &SdkConfig, deployment: &Deployment) -> Result<Self, ReportError> {
        let client = aws_sdk_dynamodb::Client::new(sdk);
        let mut tables = Tables::default();
        let inventory = table(deployment, &inventory::SPEC)?;
        for item in scan::<InventoryItem>(&client, &inventory).await? {
            match item {
                InventoryItem::Stock(item) => {
                    if let Some(sku) = item.sku() {
                        tables
                            .stock
                            .insert(sku.to_owned(), i128::from(item.available));
                    }
                }
                InventoryItem::Reservation(item) => {
                    if let Some(order) = item.order_id() {
                        tables.decisions.insert(order.to_owned(), item.clone());
                    }
                }
            }
        }
        let orders = table(deployment, &orders::SPEC)?;
        for item in scan::<OrderItem>(&client, &orders).await? {
            tables.orders.insert(item.order_id.to_string(), item);
        }
        let payments = table(deployment, &payment::SPEC)?;
        for item in scan::<PaymentItem>(&client, &payments).await? {
            tables.payments.insert(item.order_id.to_string(), item);
        }
        let shipments = table(deployment, &shipping::SPEC)?;
        for item in scan::<ShipmentItem>(&client, &shipments).await? {
            tables.shipments.insert(item.order_id.to_string(), item);
        }
        let emails = table(deployment, &notification::SPEC)?;
        for item in scan::<NotificationItem>(&client, &emails).await? {
            let key = (item.order_id.to_string(), item.kind);
            tables.emails.insert(key, item);
        }
        Ok(tables)
    }

    /// Every order any service has an item for.
    fn seen(&self) -> BTreeSet<String> {
        self.orders
            .keys()
            .chain(self.decisions.keys())
            .chain(self.payments.keys())
            .chain(self.shipments.keys())
            .cloned()
            .chain(self.emails.keys().map(|(order, _)| order.clone()))
            .collect()
    }
}

/// Reads the tables of `deployment` and checks `expectations`.
pub async fn audit(
    sdk: &SdkConfig,
    deployment: &Deployment,
    expectations: &Expectations,
) -> Result<AuditReport, ReportError> {
    let tables = Tables::read(sdk, deployment).await?;
    let mut report = AuditReport::default();
    let seen = tables.seen();
    let accepted = expectations
        .accepted_orders
        .clone()
        .unwrap_or_else(|| seen.clone());
    report.orders_checked = accepted.len();

    let mut reserved: BTreeMap<String, u64> = BTreeMap::new();
    for order in &accepted {
        let problems = check_order(&tables, order, expectations);
        match tables.orders.get(order).map(|o| o.status) {
            Some(Status::Confirmed) => report.confirmed += 1,
            Some(Status::Cancelled) => report.cancelled += 1,
            _ => {}
        }
        if let Some(decision) = tables.decisions.get(order) {
            if decision.decision == ReservationStatus::Reserved {
                for (sku, quantity) in &decision.lines {
                    *reserved.entry(sku.clone()).or_default() += quantity;
                }
            }
        }
        for problem in problems {
            report.problem(format!("order {order}"), problem);
        }
    }
    for order in seen.difference(&accepted) {
        report.problem(
            format!("order {order}"),
            "records exist for an order that was not accepted",
        );
    }

    for (sku, available) in &tables.stock {
        if *available < 0 {
            report.problem(format!("stock {sku}"), format!("{available} available"));
        }
    }
    for (sku, initial) in &expectations.initial_stock {
        let held = reserved.get(sku).copied().unwrap_or_default();
        let expected = i128::from(*initial) - i128::from(held);
        match tables.stock.get(sku) {
            Some(available) if *available == expected => {}
            Some(available) => report.problem(
                format!("stock {sku}"),
                format!("{available} available, expected {initial} - {held} held = {expected}"),
            ),
            None => report.problem(format!("stock {sku}"), "sku missing"),
        }
    }
    Ok(report)
}

/// The saga's invariants for one order.
fn check_order(tables: &Tables, order: &str, expectations: &Expectations) -> Vec<String> {
    let Some(state) = tables.orders.get(order) else {
        return vec!["unknown to the order service".into()];
    };
    let decision = tables.decisions.get(order).map(|d| d.decision);
    let payment = tables.payments.get(order);
    let shipment = tables.shipments.get(order);
    let email = |kind| tables.emails.get(&(order.to_owned(), kind));
    let total = state.placed.as_ref().map(|p| p.total_minor);
    // (holds, what is wrong when it does not)
    let mut checks: Vec<(bool, String)> = Vec::new();
    let (kind, word) = match state.status {
        Status::Pending => {
            return vec!["undecided: still pending while every service is up".into()];
        }
        Status::Confirmed => {
            checks.push((
                decision == Some(ReservationStatus::Reserved),
                format!("confirmed, but stock is {decision:?}"),
            ));
            checks.push(match payment {
                Some(p) if p.status == PaymentStatus::Captured => (
                    Some(p.amount_minor) == total,
                    format!("captured {} but the order totals {total:?}", p.amount_minor),
                ),
                other => (
                    false,
                    format!(
                        "confirmed, but the payment is {:?}",
                        other.map(|p| p.status)
                    ),
                ),
            });
            checks.push((
                shipment.is_some_and(ShipmentItem::is_live),
                format!(
                    "confirmed, but the shipment is {:?}",
                    shipment.map(|s| s.status)
                ),
            ));
            checks.push((
                email(EmailKind::Confirmation).is_some(),
                "confirmed, but no confirmation e-mail".into(),
            ));
            if state.cancellation_requested_at.is_some() {
                checks.push((
                    state.cancellation_refused.is_some(),
                    "the customer asked to cancel; neither cancelled nor refused".into(),
                ));
                checks.push((
                    email(EmailKind::CancellationRefused).is_some(),
                    "cancellation refused, but the customer was not told".into(),
                ));
            }
            (EmailKind::Confirmation, "confirmed")
        }
        Status::Cancelled => {
            checks.push((
                matches!(
                    decision,
                    Some(
                        ReservationStatus::Rejected
                            | ReservationStatus::Released
                            | ReservationStatus::Cancelled
                    )
                ),
                format!("cancelled, but stock is {decision:?}"),
            ));
            let status = payment.map(|p| p.status);
            checks.push((
                matches!(
                    status,
                    Some(
                        PaymentStatus::Declined
                            | PaymentStatus::Voided
                            | PaymentStatus::Refunded
                            | PaymentStatus::Cancelled
                    )
                ),
                format!("cancelled, but the payment is {status:?}"),
            ));
            checks.push((
                shipment.is_some_and(|s| !s.is_live()),
                format!(
                    "cancelled, but the shipment is {:?}",
                    shipment.map(|s| s.status)
                ),
            ));
            checks.push((
                email(EmailKind::Cancellation).is_some(),
                "cancelled, but no cancellation e-mail".into(),
            ));
            (EmailKind::Cancellation, "cancelled")
        }
    };
    let mut problems: Vec<String> = checks
        .into_iter()
        .filter(|(holds, _)| !holds)
        .map(|(_, what)| what)
        .collect();
    if let Some(subjects) = &expectations.sent_email_subjects {
        let sent = subjects
            .iter()
            .filter(|s| s.contains(order) && s.ends_with(word))
            .count();
        if sent != 1 {
            problems.push(format!("{sent} {kind:?} e-mails sent, expected 1"));
        }
    }
    problems
}
