//! Money as the contract writes it: integer minor units and an ISO 4217 code.

/// Currencies (ISO 4217) the order service accepts.
pub const SUPPORTED_CURRENCIES: &[&str] = &[
    "AUD", "CAD", "CHF", "CZK", "DKK", "EUR", "GBP", "JPY", "NOK", "NZD", "PLN", "SEK", "USD",
];

/// Formats an amount in minor units for people: `format_amount(11_997, "EUR")` is `"119.97 EUR"`.
/// (JPY has no minor unit; every other supported currency has two decimals.)
pub fn format_amount(minor: i64, currency: &str) -> String {
    if currency == "JPY" {
        return format!("{minor} {currency}");
    }
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", abs / 100, abs % 100)
}
