//! The `POST /orders` request body and its validation.

use std::collections::{BTreeMap, BTreeSet};

use catalogue::Price;
use order_events::{OrderLine, OrderPlaced, ShippingAddress, SUPPORTED_CURRENCIES};

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
    /// The order lines (`items` in the JSON).
    #[serde(rename = "items")]
    pub lines: Vec<LineRequest>,
    pub currency: String,
    /// Where the order ships (optional).
    pub shipping_address: Option<AddressRequest>,
}

/// A shipping address as the client sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressRequest {
    pub recipient: String,
    pub line1: String,
    pub line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    pub country: String,
}

/// The address, or what is wrong with it: each part within the contract's lengths, the country
/// an ISO 3166-1 alpha-2 code.
fn shipping_address(address: &AddressRequest, problems: &mut Vec<FieldProblem>) -> ShippingAddress {
    let mut part = |name: &str, value: &str, max: usize| {
        let value = value.trim();
        if value.is_empty() || value.chars().count() > max {
            problems.push(FieldProblem::new(
                format!("shippingAddress.{name}"),
                format!("must be 1 to {max} characters"),
            ));
        }
        value.to_owned()
    };
    let recipient = part("recipient", &address.recipient, 200);
    let line1 = part("line1", &address.line1, 200);
    let line2 = address
        .line2
        .as_deref()
        .map(|line| part("line2", line, 200));
    let postal_code = part("postalCode", &address.postal_code, 20);
    let city = part("city", &address.city, 100);
    let country = address.country.trim().to_owned();
    if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
        problems.push(FieldProblem::new(
            "shippingAddress.country",
            "must be an ISO 3166-1 alpha-2 code (GB, DE, ...)",
        ));
    }
    ShippingAddress {
        recipient,
        line1,
        line2,
        postal_code,
        city,
        country,
    }
}

/// A line: what and how many. The price, when given, is the one the client displayed: it must
/// be the catalogue's (or the answer is 409 with the current prices); it is never charged.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineRequest {
    pub sku: String,
    pub quantity: i64,
    pub unit_price_minor: Option<i64>,
}

impl OrderRequest {
    /// The skus the order names, each once.
    pub fn skus(&self) -> BTreeSet<String> {
        self.lines.iter().map(|line| line.sku.clone()).collect()
    }
}

/// A sku's current price, as a 409 tells the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentPrice {
    pub sku: String,
    pub unit_price_minor: i64,
    pub currency: String,
}

/// Why an order is not placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 422: what is wrong with which field.
    Invalid(Vec<FieldProblem>),
    /// 409: the client displayed other prices than the catalogue's; here are the current ones
    /// of every line.
    PricesChanged(Vec<CurrentPrice>),
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

/// Reads a parsed JSON body as an order request: objects where the contract says objects, the
/// fields it names and no others.
pub fn parse(body: serde_json::Value) -> Result<OrderRequest, Vec<FieldProblem>> {
    let positional = not_objects(&body);
    if !positional.is_empty() {
        return Err(positional);
    }
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        vec![FieldProblem::new(field, e.into_inner().to_string())]
    })
}

/// Checks an order request and turns it into the order it describes, with id `order_id`, each
/// line priced from `catalogue` (never from the client) and the total computed here. The
/// customer is `signed_in` (from the token; then the body must not name one), or else the one
/// the body names. A refusal lists every problem found.
pub fn validate(
    request: OrderRequest,
    order_id: Uuid,
    signed_in: Option<&Customer>,
    catalogue: &BTreeMap<String, Price>,
) -> Result<OrderPlaced, Refusal> {
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
    let address = request
        .shipping_address
        .as_ref()
        .map(|address| shipping_address(address, &mut problems));
    if request.lines.is_empty() {
        problems.push(FieldProblem::new(
            "items",
            "an order needs at least one line",
        ));
    }
    if request.lines.len() > MAX_LINES {
        problems.push(FieldProblem::new(
            "items",
            format!("{} lines; at most {MAX_LINES} allowed", request.lines.len()),
        ));
    }

    let mut lines = Vec::with_capacity(request.lines.len());
    let mut total: Option<i64> = Some(0);
    let mut displayed_other_prices = false;
    for (i, line) in request.lines.iter().enumerate() {
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
        match line.unit_price_minor {
            Some(displayed) if displayed < 0 => problems.push(FieldProblem::new(
                field("unitPriceMinor"),
                "must not be negative",
            )),
            Some(displayed) if displayed > MAX_UNIT_PRICE_MINOR => {
                problems.push(FieldProblem::new(
                    field("unitPriceMinor"),
                    format!("must be at most {MAX_UNIT_PRICE_MINOR}"),
                ))
            }
            _ => {}
        }
        let Some(price) = catalogue.get(&line.sku) else {
            if sku_ok {
                problems.push(FieldProblem::new(
                    field("sku"),
                    format!("{} is not in the catalogue", line.sku),
                ));
            }
            continue;
        };
        if price.currency != request.currency {
            problems.push(FieldProblem::new(
                "currency",
                format!("{} is sold in {}", line.sku, price.currency),
            ));
        }
        displayed_other_prices |= line
            .unit_price_minor
            .is_some_and(|displayed| displayed != price.unit_price_minor);
        let Ok(quantity) = u32::try_from(line.quantity) else {
            continue;
        };
        let priced = OrderLine {
            sku: line.sku.clone(),
            quantity,
            unit_price_minor: price.unit_price_minor,
        };
        total = total
            .zip(priced.amount_minor())
            .and_then(|(t, a)| t.checked_add(a));
        lines.push(priced);
    }
    let Some(total_minor) = total else {
        problems.push(FieldProblem::new("items", "order total is too large"));
        return Err(Refusal::Invalid(problems));
    };
    if !problems.is_empty() {
        return Err(Refusal::Invalid(problems));
    }
    if displayed_other_prices {
        let current = request
            .lines
            .iter()
            .filter_map(|line| {
                let price = catalogue.get(&line.sku)?;
                Some(CurrentPrice {
                    sku: line.sku.clone(),
                    unit_price_minor: price.unit_price_minor,
                    currency: price.currency.clone(),
                })
            })
            .collect();
        return Err(Refusal::PricesChanged(current));
    }
    Ok(OrderPlaced {
        order_id,
        customer_id,
        customer_email,
        lines,
        currency: request.currency,
        total_minor,
        shipping_address: address,
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
