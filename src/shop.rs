//! The local shop every local run uses: its catalogue (prices and stock), its customers, and
//! how a customer's order request is made. The demo, the live view, the picture, the tests and
//! the benchmarks all order from it.

use inventory::DynamoInventory;
use local_runtime::runtime::LocalRuntime;
use serde_json::{json, Value};

/// The local system's catalogue: (sku, price in euro cents, stock). `SKU-WEBCAM` is sold out.
pub const CATALOGUE: &[(&str, i64, u64)] = &[
    ("SKU-KEYBOARD", 8_999, 50),
    ("SKU-MOUSE", 2_499, 100),
    ("SKU-MONITOR", 24_900, 20),
    ("SKU-WEBCAM", 5_900, 0),
];

/// The names of the shop's customers (`<name>@example.com`), the demo's among them.
pub const CUSTOMERS: &[&str] = &[
    "ada", "grace", "linus", "barbara", "ken", "edsger", "dennis",
];

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Puts [`CATALOGUE`] (prices and stock) on the inventory table.
pub async fn seed_catalogue(runtime: &LocalRuntime) -> Result<(), BoxError> {
    let inventory = DynamoInventory::new(
        aws_sdk_dynamodb::Client::new(runtime.sdk()),
        runtime.deployment().reference("InventoryTable"),
    );
    for (sku, price, stock) in CATALOGUE {
        inventory.set_stock(sku, *stock).await?;
        inventory.set_price(sku, *price, "EUR").await?;
    }
    Ok(())
}

/// The e-mail addresses of the demo's customers (who may sign in on the live view).
pub fn customers() -> Vec<String> {
    CUSTOMERS.iter().copied().map(email_of).collect()
}

/// The e-mail address of the sample customer `name`.
pub fn email_of(name: &str) -> String {
    format!("{name}@example.com")
}

/// A request body for a sample order: its lines. Who orders is the token's business.
pub fn order_body(lines: &[(&str, i64, i64)]) -> Value {
    json!({
        "currency": "EUR",
        "items": lines.iter().map(|(sku, quantity, price)| json!({
            "sku": sku, "quantity": quantity, "unitPriceMinor": price
        })).collect::<Vec<_>>(),
    })
}

/// How the customer `name` orders `lines` on `runtime`: their `Authorization` header value and
/// the body; where the API takes no tokens (ApiAuthorization=NONE), no header and a body that
/// names the customer.
pub async fn order_request(
    runtime: &LocalRuntime,
    name: &str,
    lines: &[(&str, i64, i64)],
) -> Result<(Option<String>, Value), BoxError> {
    let mut body = order_body(lines);
    let bearer = runtime.bearer(&email_of(name)).await?;
    if bearer.is_none() {
        body["customerId"] = name.into();
        body["customerEmail"] = email_of(name).into();
    }
    Ok((bearer, body))
}
