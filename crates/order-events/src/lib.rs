//! The event contract of the order fan-out.
//!
//! Every event travels as a [CloudEvents 1.0](https://github.com/cloudevents/spec) JSON envelope
//! ([`CloudEvent`]) whose `data` is the typed payload. `subject` is the order id, and the
//! `correlationid` extension carries the id of the HTTP request that caused the event, so every
//! consumer log line can be tied back to it.
//!
//! The same facts are published as SNS message attributes ([`MessageAttributes`]), because SNS
//! filter policies look at attributes, not at the body.
//!
//! This crate has no AWS dependency: it is what producers and consumers agree on, nothing more.
//! (The optional `consumer` feature adds the glue to the consumers' kit.) [`parse_queue_body`] reads an SQS message body that is either the raw event (SNS raw
//! message delivery) or an SNS notification envelope wrapping it.

use aws_lambda_events::sns::SnsMessage;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// CloudEvents specification version of every envelope.
pub const SPEC_VERSION: &str = "1.0";
/// `source` of events published by the order service.
pub const ORDER_SERVICE_SOURCE: &str = "urn:orderflow:order-service";
/// CloudEvents `type`, and the `eventType` message attribute, of [`OrderPlaced`].
pub const ORDER_PLACED: &str = "OrderPlaced";
/// Every event type of the contract: what subscription filter policies may name.
pub const EVENT_TYPES: &[&str] = &[ORDER_PLACED];
/// The schema version of [`OrderPlaced`] this crate writes and reads.
pub const ORDER_PLACED_VERSION: &str = "1";
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

/// Names of the SNS message attributes every published event carries.
pub mod attribute {
    /// The event type; subscription filter policies match on it.
    pub const EVENT_TYPE: &str = "eventType";
    /// The schema version of the event's data.
    pub const EVENT_VERSION: &str = "eventVersion";
    /// The correlation id of the request that caused the event.
    pub const CORRELATION_ID: &str = "correlationId";
}

/// A CloudEvents 1.0 envelope in its JSON format, with `data` of type `T`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent<T> {
    pub specversion: String,
    /// A UUIDv7: unique per event, time-ordered. Consumers use it as their idempotency key.
    pub id: Uuid,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: DateTime<Utc>,
    /// The id of the entity the event is about (for order events, the order id).
    pub subject: String,
    pub datacontenttype: String,
    /// Extension attribute: the schema version of `data`.
    pub eventversion: String,
    /// Extension attribute: the correlation id of the request that caused the event.
    pub correlationid: String,
    pub data: T,
}

/// The SNS message attributes that go with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAttributes {
    pub event_type: String,
    pub event_version: String,
    pub correlation_id: String,
}

impl<T> CloudEvent<T> {
    /// The message attributes to publish this event with.
    pub fn message_attributes(&self) -> MessageAttributes {
        MessageAttributes {
            event_type: self.event_type.clone(),
            event_version: self.eventversion.clone(),
            correlation_id: self.correlationid.clone(),
        }
    }
}

/// One line of an order. Prices are integer minor units of the order's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    pub sku: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
}

impl LineItem {
    /// `quantity * unit_price_minor`, or `None` on overflow.
    pub fn amount_minor(&self) -> Option<i64> {
        self.unit_price_minor.checked_mul(i64::from(self.quantity))
    }
}

/// Version 1 of the `OrderPlaced` fact: a customer placed this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub customer_id: String,
    pub customer_email: String,
    pub items: Vec<LineItem>,
    /// ISO 4217 code, one of [`SUPPORTED_CURRENCIES`].
    pub currency: String,
    /// Sum of the lines, in minor units.
    pub total_minor: i64,
}

/// An `OrderPlaced` event as it travels.
pub type OrderPlacedEvent = CloudEvent<OrderPlaced>;

impl OrderPlacedEvent {
    /// Wraps an order in a new envelope with a fresh UUIDv7 id and the current time.
    pub fn new(order: OrderPlaced, correlation_id: impl Into<String>) -> Self {
        CloudEvent {
            specversion: SPEC_VERSION.to_owned(),
            id: Uuid::now_v7(),
            source: ORDER_SERVICE_SOURCE.to_owned(),
            event_type: ORDER_PLACED.to_owned(),
            // Millisecond precision: what every consumer's clock and log can represent.
            time: Utc::now().trunc_subsecs(3),
            subject: order.order_id.to_string(),
            datacontenttype: "application/json".to_owned(),
            eventversion: ORDER_PLACED_VERSION.to_owned(),
            correlationid: correlation_id.into(),
            data: order,
        }
    }

    /// The order id (also the envelope's `subject`).
    pub fn order_id(&self) -> Uuid {
        self.data.order_id
    }

    /// A span carrying the identifiers every log line about this event must have.
    pub fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "order_event",
            order_id = %self.data.order_id,
            event_id = %self.id,
            correlation_id = %self.correlationid,
        )
    }

    /// The event serialized as JSON: what consumers hash to tell a replay of this event from a
    /// different event reusing its id.
    pub fn canonical_json(&self) -> Vec<u8> {
        // Serializing a struct of strings, numbers and vectors cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// With the `consumer` feature: an `OrderPlacedEvent` is what lambda-kit consumers handle, and
/// its id (with a hash of the whole event) is their idempotency key.
#[cfg(feature = "consumer")]
mod consumer {
    use lambda_kit::consumer::QueueEvent;
    use lambda_kit::idempotency::IdempotencyKey;

    use super::{parse_queue_body, EventError, OrderPlacedEvent};

    impl QueueEvent for OrderPlacedEvent {
        type Error = EventError;

        fn from_body(body: &str) -> Result<Self, EventError> {
            parse_queue_body(body)
        }

        fn span(&self) -> tracing::Span {
            OrderPlacedEvent::span(self)
        }
    }

    impl OrderPlacedEvent {
        /// The key consumers record this event's processing under: the order id, with a hash of
        /// the order data. Keyed by order, not by event id: if the same order is announced
        /// twice (a publish retried after an ambiguous failure produces a second event id), it
        /// is still processed once; a different order reusing the id is caught by the hash.
        pub fn idempotency_key(&self) -> IdempotencyKey {
            let data = serde_json::to_vec(&self.data).unwrap_or_default();
            IdempotencyKey::new(self.data.order_id.to_string(), data)
        }
    }
}

/// Why a queue message body is not an event this crate can read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("message body is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("message body is neither a CloudEvents envelope nor an SNS notification")]
    UnknownShape,
    #[error("SNS notification envelope is malformed: {0}")]
    BadSnsEnvelope(serde_json::Error),
    #[error("unsupported CloudEvents specversion {0:?}")]
    UnsupportedSpecVersion(String),
    #[error("unexpected event type {found:?}, expected {expected:?}")]
    UnexpectedType {
        expected: &'static str,
        found: String,
    },
    #[error("unsupported {event_type} schema version {found:?}, this consumer reads version {supported:?}")]
    UnsupportedVersion {
        event_type: &'static str,
        found: String,
        supported: &'static str,
    },
    #[error("event does not match the {event_type} v{version} schema: {source}")]
    Schema {
        event_type: &'static str,
        version: &'static str,
        source: serde_json::Error,
    },
}

/// Reads an `OrderPlaced` v1 event from an SQS message body.
///
/// The body is either the CloudEvents envelope itself (raw message delivery, how this system's
/// subscriptions are configured) or an SNS notification whose `Message` is the envelope (what a
/// subscription without raw delivery produces). Anything else is an [`EventError`] naming why.
pub fn parse_queue_body(body: &str) -> Result<OrderPlacedEvent, EventError> {
    let value: serde_json::Value = serde_json::from_str(body).map_err(EventError::NotJson)?;
    if value.get("specversion").is_some() {
        return parse_envelope(value);
    }
    if value.get("Type").and_then(|t| t.as_str()) == Some("Notification") {
        let notification: SnsMessage =
            serde_json::from_value(value).map_err(EventError::BadSnsEnvelope)?;
        let inner: serde_json::Value =
            serde_json::from_str(&notification.message).map_err(EventError::NotJson)?;
        if inner.get("specversion").is_some() {
            return parse_envelope(inner);
        }
    }
    Err(EventError::UnknownShape)
}

fn parse_envelope(value: serde_json::Value) -> Result<OrderPlacedEvent, EventError> {
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let spec = field("specversion");
    if spec != SPEC_VERSION {
        return Err(EventError::UnsupportedSpecVersion(spec));
    }
    let event_type = field("type");
    if event_type != ORDER_PLACED {
        return Err(EventError::UnexpectedType {
            expected: ORDER_PLACED,
            found: event_type,
        });
    }
    let version = field("eventversion");
    if version != ORDER_PLACED_VERSION {
        return Err(EventError::UnsupportedVersion {
            event_type: ORDER_PLACED,
            found: version,
            supported: ORDER_PLACED_VERSION,
        });
    }
    serde_json::from_value(value).map_err(|source| EventError::Schema {
        event_type: ORDER_PLACED,
        version: ORDER_PLACED_VERSION,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::sample_order;

    #[test]
    fn envelope_round_trips_through_json() {
        let event = OrderPlacedEvent::new(sample_order(), "corr-1");
        let json = serde_json::to_string(&event).unwrap();
        let back = parse_queue_body(&json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn envelope_has_cloudevents_attributes() {
        let event = OrderPlacedEvent::new(sample_order(), "corr-1");
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(value["specversion"], "1.0");
        assert_eq!(value["type"], "OrderPlaced");
        assert_eq!(value["subject"], event.data.order_id.to_string());
        assert_eq!(value["correlationid"], "corr-1");
        assert_eq!(value["data"]["items"][0]["unitPriceMinor"], 4_999);
        assert_eq!(event.id.get_version_num(), 7);
        let attributes = event.message_attributes();
        assert_eq!(attributes.event_type, "OrderPlaced");
        assert_eq!(attributes.event_version, "1");
    }

    #[test]
    fn sns_notification_envelope_is_unwrapped() {
        let event = OrderPlacedEvent::new(sample_order(), "corr-2");
        let notification = serde_json::json!({
            "Type": "Notification",
            "MessageId": "5a0f4c3e-6e1b-4f2d-9a55-2e1d8f1c9b10",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:order-events",
            "Message": serde_json::to_string(&event).unwrap(),
            "Timestamp": "2026-11-26T08:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "c2lnbmF0dXJl",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
            "MessageAttributes": {
                "eventType": {"Type": "String", "Value": "OrderPlaced"}
            }
        });
        let back = parse_queue_body(&notification.to_string()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn unreadable_bodies_are_errors_that_say_why() {
        let event = OrderPlacedEvent::new(sample_order(), "corr-3");
        let mut value = serde_json::to_value(&event).unwrap();

        assert!(matches!(
            parse_queue_body("not json"),
            Err(EventError::NotJson(_))
        ));
        assert!(matches!(
            parse_queue_body(r#"{"hello":"world"}"#),
            Err(EventError::UnknownShape)
        ));

        value["eventversion"] = "2".into();
        let err = parse_queue_body(&value.to_string()).unwrap_err();
        assert!(matches!(err, EventError::UnsupportedVersion { .. }));
        assert!(err.to_string().contains("\"2\""), "{err}");

        value["eventversion"] = "1".into();
        value["type"] = "OrderCancelled".into();
        assert!(matches!(
            parse_queue_body(&value.to_string()),
            Err(EventError::UnexpectedType { .. })
        ));

        value["type"] = "OrderPlaced".into();
        value["data"]["items"] = "none".into();
        let err = parse_queue_body(&value.to_string()).unwrap_err();
        assert!(matches!(err, EventError::Schema { .. }), "{err}");
    }

    #[test]
    fn amounts_are_formatted_in_major_units() {
        assert_eq!(format_amount(11_997, "EUR"), "119.97 EUR");
        assert_eq!(format_amount(5, "USD"), "0.05 USD");
        assert_eq!(format_amount(1200, "JPY"), "1200 JPY");
    }

    #[test]
    fn line_amount_detects_overflow() {
        let line = LineItem {
            sku: "X".into(),
            quantity: 3,
            unit_price_minor: i64::MAX / 2,
        };
        assert_eq!(line.amount_minor(), None);
    }
}

/// Sample data for tests of code that produces or consumes these events.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::*;
    use aws_lambda_events::sqs::{SqsEvent, SqsMessage};

    /// A valid order of two lines (two of `SKU-KEYBOARD`, one `SKU-MOUSE`).
    pub fn sample_order() -> OrderPlaced {
        OrderPlaced {
            order_id: Uuid::now_v7(),
            customer_id: "cust-42".into(),
            customer_email: "ada@example.com".into(),
            items: vec![
                LineItem {
                    sku: "SKU-KEYBOARD".into(),
                    quantity: 2,
                    unit_price_minor: 4_999,
                },
                LineItem {
                    sku: "SKU-MOUSE".into(),
                    quantity: 1,
                    unit_price_minor: 1_999,
                },
            ],
            currency: "EUR".into(),
            total_minor: 11_997,
        }
    }

    /// An `OrderPlaced` event for [`sample_order`].
    pub fn sample_event() -> OrderPlacedEvent {
        OrderPlacedEvent::new(sample_order(), "test-correlation")
    }

    /// An SQS batch as Lambda delivers it, one record per body, message ids `m0`, `m1`, ...
    pub fn sqs_batch<I, B>(bodies: I) -> SqsEvent
    where
        I: IntoIterator<Item = B>,
        B: Into<String>,
    {
        let mut batch = SqsEvent::default();
        for (i, body) in bodies.into_iter().enumerate() {
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("m{i}"));
            record.body = Some(body.into());
            batch.records.push(record);
        }
        batch
    }

    /// An SQS batch carrying `events` as raw-delivered bodies.
    pub fn event_batch<'a>(events: impl IntoIterator<Item = &'a OrderPlacedEvent>) -> SqsEvent {
        sqs_batch(
            events
                .into_iter()
                .map(|e| String::from_utf8(e.canonical_json()).unwrap_or_default()),
        )
    }
}

/// The sample files in `events/` stay readable by this contract.
#[cfg(test)]
mod sample_files {
    use super::*;
    use std::path::PathBuf;

    fn read(name: &str) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../events")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_sample_sqs_batch_carries_the_sample_event_both_ways() {
        let sample: OrderPlacedEvent =
            serde_json::from_str(&read("order-placed-event.json")).unwrap();
        let batch: aws_lambda_events::sqs::SqsEvent =
            serde_json::from_str(&read("sqs-order-placed.json")).unwrap();
        assert_eq!(batch.records.len(), 2);
        for record in &batch.records {
            let event = parse_queue_body(record.body.as_deref().unwrap()).unwrap();
            assert_eq!(event, sample);
        }
    }

    #[test]
    fn the_schema_declares_exactly_the_fields_the_contract_writes() {
        let schema: serde_json::Value =
            serde_json::from_str(&read("schemas/order-placed-v1.schema.json")).unwrap();
        let event = serde_json::to_value(crate::testing::sample_event()).unwrap();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&schema["properties"]), keys(&event));
        assert_eq!(
            keys(&schema["properties"]["data"]["properties"]),
            keys(&event["data"])
        );
        let line = &schema["properties"]["data"]["properties"]["items"]["items"]["properties"];
        assert_eq!(keys(line), keys(&event["data"]["items"][0]));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any body, bytes or a mangled event, is an event or an error that says why.
        #[test]
        fn the_parser_never_panics_on_any_body(
            bytes in prop::collection::vec(any::<u8>(), 0..512),
            cut in 0..400usize,
        ) {
            let _ = parse_queue_body(&String::from_utf8_lossy(&bytes));
            let event = serde_json::to_string(&crate::testing::sample_event()).unwrap();
            let truncated: String = event.chars().take(cut).collect();
            let outcome = parse_queue_body(&truncated);
            prop_assert!(outcome.is_ok() == (cut >= event.chars().count()));
            if let Err(error) = outcome {
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }
}
