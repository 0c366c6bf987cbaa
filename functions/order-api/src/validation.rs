//! The `POST /orders` request body and its validation.

use order_events::{LineItem, OrderPlaced, SUPPORTED_CURRENCIES};

use crate::identity::Customer;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most lines one order may have.
pub const MAX_LINES: usize = 100;
/// Most units of one line.
pub const MAX_QUANTITY: i64 = 10_000;
/// Largest unit price, in minor units (a guard against typos and overflow, not a business rule).
pub const MAX_UNIT_PRICE_MINOR: i64 = 1_000_000_000;

/// The request body. Unknown fields are refused, so a misspelt field (`unitPrice` for
/// `unitPriceMinor`) is reported instead of silently ignored. The customer fields are for
/// service callers only (see [`crate::identity`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderRequest {
    pub customer_id: Option<String>,
    pub customer_email: Option<String>,
    pub items: Vec<LineRequest>,
    pub currency: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineRequest {
    pub sku: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
}

/// One thing wrong with the request, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

impl FieldProblem {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Checks a parsed JSON body and turns it into the order it describes, with id `order_id` and
/// the total computed here (never taken from the client). The customer is `signed_in` (from the
/// token; then the body must not name one), or else the one the body names. Errors list every
/// problem found.
pub fn validate(
    body: serde_json::Value,
    order_id: Uuid,
    signed_in: Option<&Customer>,
) -> Result<OrderPlaced, Vec<FieldProblem>> {
    let positional = not_objects(&body);
    if !positional.is_empty() {
        return Err(positional);
    }
    let request: OrderRequest = serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        vec![FieldProblem::new(field, e.into_inner().to_string())]
    })?;

    let mut problems = Vec::new();
    let (customer_id, customer_email) = match signed_in {
        Some(customer) => {
            for (field, named) in [
                ("customerId", &request.customer_id),
                ("customerEmail", &request.customer_email),
            ] {
                if named.is_some() {
                    problems.push(FieldProblem::new(
                        field,
                        "the customer is the signed-in one (the token's); the body must not name a customer",
                    ));
                }
            }
            (customer.id.clone(), customer.email.clone())
        }
        None => {
            let customer_id = request.customer_id.as_deref().unwrap_or_default().trim();
            if customer_id.is_empty() || customer_id.len() > 128 {
                problems.push(FieldProblem::new(
                    "customerId",
                    "must be 1 to 128 characters",
                ));
            }
            let customer_email = request.customer_email.as_deref().unwrap_or_default();
            if !is_email(customer_email) {
                problems.push(FieldProblem::new(
                    "customerEmail",
                    "must be an e-mail address",
                ));
            }
            (customer_id.to_owned(), customer_email.trim().to_owned())
        }
    };
    if !SUPPORTED_CURRENCIES.contains(&request.currency.as_str()) {
        problems.push(FieldProblem::new(
            "currency",
            format!(
                "unknown currency {:?}; supported: {}",
                request.currency,
                SUPPORTED_CURRENCIES.join(", ")
            ),
        ));
    }
    if request.items.is_empty() {
        problems.push(FieldProblem::new(
            "items",
            "an order needs at least one line",
        ));
    }
    if request.items.len() > MAX_LINES {
        problems.push(FieldProblem::new(
            "items",
            format!("{} lines; at most {MAX_LINES} allowed", request.items.len()),
        ));
    }

    let mut items = Vec::with_capacity(request.items.len());
    let mut total: Option<i64> = Some(0);
    for (i, line) in request.items.iter().enumerate() {
        let field = |name: &str| format!("items[{i}].{name}");
        let sku_ok = (1..=64).contains(&line.sku.len())
            && line
                .sku
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !sku_ok {
            problems.push(FieldProblem::new(
                field("sku"),
                "must be 1 to 64 letters, digits, '-', '_' or '.'",
            ));
        }
        if line.quantity < 1 {
            problems.push(FieldProblem::new(field("quantity"), "must be at least 1"));
        } else if line.quantity > MAX_QUANTITY {
            problems.push(FieldProblem::new(
                field("quantity"),
                format!("must be at most {MAX_QUANTITY}"),
            ));
        }
        if line.unit_price_minor < 0 {
            problems.push(FieldProblem::new(
                field("unitPriceMinor"),
                "must not be negative",
            ));
        } else if line.unit_price_minor > MAX_UNIT_PRICE_MINOR {
            problems.push(FieldProblem::new(
                field("unitPriceMinor"),
                format!("must be at most {MAX_UNIT_PRICE_MINOR}"),
            ));
        }
        let Ok(quantity) = u32::try_from(line.quantity) else {
            continue;
        };
        let item = LineItem {
            sku: line.sku.clone(),
            quantity,
            unit_price_minor: line.unit_price_minor,
        };
        total = total
            .zip(item.amount_minor())
            .and_then(|(t, a)| t.checked_add(a));
        items.push(item);
    }
    let Some(total_minor) = total else {
        problems.push(FieldProblem::new("items", "order total is too large"));
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(OrderPlaced {
        order_id,
        customer_id,
        customer_email,
        items,
        currency: request.currency,
        total_minor,
    })
}

/// Where the contract has objects, anything else: serde would also read a struct from an array
/// of its fields in order (`["SKU-MOUSE", 1, 2499]`), a form the contract does not have.
fn not_objects(body: &serde_json::Value) -> Vec<FieldProblem> {
    if !body.is_object() {
        return vec![FieldProblem::new("body", "must be a JSON object")];
    }
    body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, line)| !line.is_object())
        .map(|(i, _)| {
            FieldProblem::new(
                format!("items[{i}]"),
                "must be an object with sku, quantity and unitPriceMinor",
            )
        })
        .collect()
}

/// A deliberately plain check: one `@`, a non-empty local part, a dotted domain, no spaces.
fn is_email(address: &str) -> bool {
    let address = address.trim();
    if address.len() > 254 || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}
