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

/// Where each customer has their orders shipped: (name, city, postal code, country).
const ADDRESSES: &[(&str, &str, &str, &str)] = &[
    ("ada", "London", "SW1Y 4JH", "GB"),
    ("grace", "Arlington", "22201", "US"),
    ("linus", "Helsinki", "00100", "FI"),
    ("barbara", "Boston", "02139", "US"),
    ("ken", "Berkeley", "94720", "US"),
    ("edsger", "Eindhoven", "5612 AZ", "NL"),
    ("dennis", "Murray Hill", "07974", "US"),
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
/// the body (shipped to their address); where the API takes no tokens (ApiAuthorization=NONE), no header and a body that
/// names the customer.
pub async fn order_request(
    runtime: &LocalRuntime,
    name: &str,
    lines: &[(&str, i64, i64)],
) -> Result<(Option<String>, Value), BoxError> {
    let mut body = order_body(lines);
    if let Some((_, city, postal_code, country)) = ADDRESSES.iter().find(|(n, ..)| *n == name) {
        body["shippingAddress"] = json!({
            "recipient": name,
            "line1": "1 Sample Street",
            "postalCode": postal_code,
            "city": city,
            "country": country,
        });
    }
    let bearer = runtime.bearer(&email_of(name)).await?;
    if bearer.is_none() {
        body["customerId"] = name.into();
        body["customerEmail"] = email_of(name).into();
    }
    Ok((bearer, body))
}

#[cfg(test)]
mod tests {
    /// Every order of the shop ships somewhere: each customer has an address.
    #[test]
    fn every_customer_has_a_shipping_address() {
        for customer in super::CUSTOMERS {
            assert!(
                super::ADDRESSES.iter().any(|(name, ..)| name == customer),
                "{customer} has no address in shop::ADDRESSES"
            );
        }
    }
}
