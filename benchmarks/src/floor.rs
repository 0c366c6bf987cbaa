//! The floor: for each function, the fewest AWS calls and DynamoDB units per confirmed order
//! that keep its promise, derived below, shown beside what `crate::per_order` counted.

use crate::per_order::{Kind, Results};
use crate::report::Table;

/// One function's floor for a confirmed order of `lines` order lines, its items under 1 KB.
pub struct Floor {
    pub function: &'static str,
    pub promise: &'static str,
    pub calls: String,
    pub write_units: f64,
    pub read_units: f64,
    pub why: &'static str,
}

/// Events the order service hears after the API inserted the order: StockReserved,
/// PaymentAuthorized, PaymentCaptured, ShipmentCreated.
const ORDER_SERVICE_WRITES: f64 = 4.0;

pub fn confirmed(lines: usize) -> Vec<Floor> {
    let lines_f = lines as f64;
    vec![
        Floor {
            function: "order-api",
            promise: "an accepted order is published, and visible to GET before the 202",
            calls: "SNS Publish 1, DynamoDB PutItem 1".into(),
            write_units: 1.0,
            read_units: 0.0,
            why: "the publish is the order; the insert makes it visible at once (the catalogue's prices are remembered by the instance, a read per sku every 10 s)",
        },
        Floor {
            function: "inventory",
            promise: "stock taken once per order, together with the decision that took it",
            calls: format!("DynamoDB TransactWriteItems 1 (the decision and {lines} stock lines), SNS Publish 1"),
            write_units: 2.0 * (1.0 + lines_f),
            read_units: 0.0,
            why: "lines and decision must change together: a transaction, 2 units per item; the decision item is the event's idempotency entry, and its condition decides without a read",
        },
        Floor {
            function: "payment",
            promise: "one hold and one capture per order, each recorded once",
            calls: "DynamoDB PutItem 2, GetItem 1; SNS Publish 2".into(),
            write_units: 2.0,
            read_units: 1.0,
            why: "the authorization is written without a read (the gateway's own key and the write's condition decide); the capture needs the authorization id, which only the item holds",
        },
        Floor {
            function: "shipping",
            promise: "one shipment per confirmed order, none for a cancelled one",
            calls: "DynamoDB PutItem 1, SNS Publish 1".into(),
            write_units: 1.0,
            read_units: 0.0,
            why: "a new item, conditional on none: a cancellation's tombstone refuses it, no read needed",
        },
        Floor {
            function: "notification",
            promise: "each e-mail sent at most once",
            calls: "DynamoDB PutItem 2, GetItem 2; SES SendEmail 1".into(),
            write_units: 2.0,
            read_units: 2.0,
            why: "a claim before the send (a concurrent duplicate must not send) and the record after; a read of the record answers a redelivery, and a confirmation first checks that no cancellation went out",
        },
        Floor {
            function: "orders",
            promise: "each event applied once, the view never behind what was announced, the decision announced by the event that made it",
            calls: "DynamoDB GetItem 5, PutItem 4; SNS Publish 1".into(),
            write_units: ORDER_SERVICE_WRITES,
            read_units: ORDER_SERVICE_WRITES + 1.0,
            why: "the decision depends on the whole item: a read per event (OrderPlaced's finds the API's insert and writes nothing), then the whole item, carrying the event's key (an UpdateItem is charged on the whole item too); 1 unit each while the item stays under 1 KB",
        },
    ]
}

/// Floor and measured, per function, for a confirmed order.
pub fn table(floors: &[Floor], calls: &Results) -> Table {
    let mut table = Table::new(&[
        "function",
        "promise",
        "floor: calls",
        "floor: write / read units",
        "measured: write / read units",
        "why this is the floor",
    ]);
    let measured = calls.of(Kind::Confirmed);
    for floor in floors {
        let counted = measured
            .iter()
            .find(|(function, _)| function == floor.function)
            .map(|(_, f)| format!("{:.2} / {:.2}", f.write_units, f.read_units))
            .unwrap_or_else(|| "-".into());
        table.row(vec![
            floor.function.into(),
            floor.promise.into(),
            floor.calls.clone(),
            format!("{} / {}", floor.write_units, floor.read_units),
            counted,
            floor.why.into(),
        ]);
    }
    let total = calls.total(Kind::Confirmed);
    table.row(vec![
        "**all**".into(),
        String::new(),
        String::new(),
        format!(
            "**{} / {}**",
            total_of(floors, |f| f.write_units),
            total_of(floors, |f| f.read_units)
        ),
        format!("**{:.2} / {:.2}**", total.write_units, total.read_units),
        String::new(),
    ]);
    table
}

pub fn total_of(floors: &[Floor], units: impl Fn(&Floor) -> f64) -> f64 {
    floors.iter().map(units).sum()
}
