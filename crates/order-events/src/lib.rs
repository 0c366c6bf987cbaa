//! The event contract of the order events topic.
//!
//! Every event travels as a [CloudEvents 1.0](https://github.com/cloudevents/spec) JSON envelope
//! ([`CloudEvent`]) whose `data` is one type of the catalogue ([`EventData`]: name, version,
//! producer, the order it is about). `subject` is the order id, and the `correlationid`
//! extension carries the id of the HTTP request that caused the event, so every consumer log
//! line can be tied back to it.
//!
//! The same facts are published as SNS message attributes ([`MessageAttributes`]), because SNS
//! filter policies look at attributes, not at the body.
//!
//! [`parse_queue_body`] reads an SQS message body that is either the raw event (SNS raw message
//! delivery) or an SNS notification envelope wrapping it, into the type a consumer declares.
//! The core has no AWS SDK dependency; two features add the glue: `consumer` (every event is a
//! lambda-kit queue event, with its idempotency key) and `sns` (one publisher for every type).

mod catalogue;
#[cfg(feature = "consumer")]
mod consumer;
mod envelope;
mod money;
mod parse;
#[cfg(feature = "sns")]
pub mod publish;

pub use catalogue::{
    CancelReason, CancellationRefused, CancellationRequested, Customer, OrderCancelled,
    OrderConfirmed, OrderLine, OrderPlaced, OrderPlacedEvent, OrderPlacedV2, PaymentAuthorized,
    PaymentCaptured, PaymentDeclined, RefusalReason, ShipmentCreated, ShippingAddress,
    StockRejected, StockReserved, CONFIRMED_ORDER_EVENTS, EVENT_TYPES, INVENTORY_SOURCE,
    ORDER_PLACED, ORDER_SERVICE_SOURCE, PAYMENT_SOURCE, SHIPPING_SOURCE,
};
pub use envelope::{CloudEvent, EventData, MessageAttributes, SPEC_VERSION};
pub use money::{format_amount, SUPPORTED_CURRENCIES};
pub use parse::{parse_any, parse_queue_body, EventError, RawEvent};

/// What [`consumed_events!`] expands to names; not part of the API.
#[cfg(feature = "consumer")]
#[doc(hidden)]
pub mod __private {
    pub use lambda_kit::consumer::QueueEvent;
    pub use lambda_kit::idempotency::IdempotencyKey;
    pub use tracing::Span;
    pub use uuid::Uuid;
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::sample_order;

    #[test]
    fn envelope_round_trips_through_json() {
        let event = OrderPlacedEvent::new(sample_order(), "corr-1");
        let json = serde_json::to_string(&event).unwrap();
        let back = parse_queue_body::<OrderPlaced>(&json).unwrap();
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
        let back = parse_queue_body::<OrderPlaced>(&notification.to_string()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn unreadable_bodies_are_errors_that_say_why() {
        let event = OrderPlacedEvent::new(sample_order(), "corr-3");
        let mut value = serde_json::to_value(&event).unwrap();

        assert!(matches!(
            parse_queue_body::<OrderPlaced>("not json"),
            Err(EventError::NotJson(_))
        ));
        assert!(matches!(
            parse_queue_body::<OrderPlaced>(r#"{"hello":"world"}"#),
            Err(EventError::UnknownShape)
        ));

        value["eventversion"] = "3".into();
        let err = parse_queue_body::<OrderPlaced>(&value.to_string()).unwrap_err();
        assert!(matches!(err, EventError::UnsupportedVersion { .. }));
        assert!(err.to_string().contains("\"3\""), "{err}");

        value["eventversion"] = "1".into();
        value["type"] = "OrderCancelled".into();
        assert!(matches!(
            parse_queue_body::<OrderPlaced>(&value.to_string()),
            Err(EventError::UnexpectedType { .. })
        ));

        value["type"] = "OrderPlaced".into();
        value["data"]["items"] = "none".into();
        let err = parse_queue_body::<OrderPlaced>(&value.to_string()).unwrap_err();
        assert!(matches!(err, EventError::Schema { .. }), "{err}");
    }

    #[test]
    fn any_envelope_is_readable_without_its_data_type() {
        let event = OrderPlacedEvent::new(sample_order(), "corr-4");
        let any = parse_any(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(any.id, event.id);
        assert_eq!(any.subject, event.order_id().to_string());
        assert_eq!(any.event_type, "OrderPlaced");
        assert!(matches!(
            parse_any(r#"{"specversion":"0.3"}"#),
            Err(EventError::UnsupportedSpecVersion(_))
        ));
    }

    #[test]
    fn the_catalogue_names_every_type_once() {
        let mut types = EVENT_TYPES.to_vec();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), EVENT_TYPES.len());
        assert!(EVENT_TYPES.contains(&OrderPlaced::TYPE));
    }

    #[test]
    fn amounts_are_formatted_in_major_units() {
        assert_eq!(format_amount(11_997, "EUR"), "119.97 EUR");
        assert_eq!(format_amount(5, "USD"), "0.05 USD");
        assert_eq!(format_amount(1200, "JPY"), "1200 JPY");
    }

    #[test]
    fn line_amount_detects_overflow() {
        let line = OrderLine {
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
    use uuid::Uuid;

    /// The project's `events/` folder: the AsyncAPI and OpenAPI documents, schemas, samples.
    pub fn events_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
    }

    /// Where the documents in `events/` say they live (their `$id`s and `$ref`s).
    pub const EVENTS_BASE_URI: &str = "https://orderflow.example/events/";

    /// The JSON document a project URI ([`EVENTS_BASE_URI`] + a path in `events/`) names, read
    /// from `events/`, so that references between the documents resolve offline.
    pub fn event_document(uri: &str) -> Result<serde_json::Value, String> {
        let path = uri
            .strip_prefix(EVENTS_BASE_URI)
            .ok_or_else(|| format!("{uri} is not one of the project's documents"))?;
        let file = events_dir().join(path);
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))
    }

    /// Resolves the documents' references ([`event_document`]) for a JSON Schema validator.
    pub struct EventDocuments;

    impl jsonschema::Retrieve for EventDocuments {
        fn retrieve(
            &self,
            uri: &jsonschema::Uri<String>,
        ) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
            Ok(event_document(uri.as_str())?)
        }
    }

    /// A valid order of two lines (two of `SKU-KEYBOARD`, one `SKU-MOUSE`).
    pub fn sample_order() -> OrderPlaced {
        OrderPlaced {
            order_id: Uuid::now_v7(),
            customer_id: "cust-42".into(),
            customer_email: "ada@example.com".into(),
            lines: vec![
                OrderLine {
                    sku: "SKU-KEYBOARD".into(),
                    quantity: 2,
                    unit_price_minor: 4_999,
                },
                OrderLine {
                    sku: "SKU-MOUSE".into(),
                    quantity: 1,
                    unit_price_minor: 1_999,
                },
            ],
            currency: "EUR".into(),
            total_minor: 11_997,
            shipping_address: None,
        }
    }

    /// An `OrderPlaced` event for [`sample_order`].
    pub fn sample_event() -> OrderPlacedEvent {
        OrderPlacedEvent::new(sample_order(), "test-correlation")
    }

    /// The order service's cancellation of `order`, for `reason`.
    pub fn cancellation_of(
        order: &OrderPlaced,
        reason: CancelReason,
        detail: &str,
    ) -> OrderCancelled {
        OrderCancelled {
            order_id: order.order_id,
            customer_id: order.customer_id.clone(),
            customer_email: order.customer_email.clone(),
            reason,
            detail: detail.to_owned(),
            currency: order.currency.clone(),
            total_minor: order.total_minor,
        }
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
    pub fn event_batch<'a, T: EventData>(
        events: impl IntoIterator<Item = &'a CloudEvent<T>>,
    ) -> SqsEvent {
        sqs_batch(
            events
                .into_iter()
                .map(|e| String::from_utf8(e.canonical_json()).unwrap_or_default()),
        )
    }
}

#[cfg(all(test, feature = "consumer"))]
mod idempotency_keys {
    use super::testing::sample_event;

    #[test]
    fn the_key_names_the_event_type_and_the_order_not_the_event() {
        let event = sample_event();
        let mut republished = event.clone();
        republished.id = uuid::Uuid::now_v7();
        let key = event.idempotency_key();
        assert_eq!(key.key, format!("OrderPlaced#{}", event.order_id()));
        assert_eq!(republished.idempotency_key(), key);
        let mut changed = event.clone();
        changed.data.total_minor += 1;
        assert_eq!(changed.idempotency_key().key, key.key);
        assert_ne!(changed.idempotency_key().payload_hash, key.payload_hash);
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
            serde_json::from_str(&read("samples/OrderPlaced.v1.json")).unwrap();
        let batch: aws_lambda_events::sqs::SqsEvent =
            serde_json::from_str(&read("sqs-order-placed.json")).unwrap();
        assert_eq!(batch.records.len(), 2);
        for record in &batch.records {
            let event = parse_queue_body::<OrderPlaced>(record.body.as_deref().unwrap()).unwrap();
            assert_eq!(event, sample);
        }
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
            let _ = parse_queue_body::<OrderPlaced>(&String::from_utf8_lossy(&bytes));
            let event = serde_json::to_string(&crate::testing::sample_event()).unwrap();
            let truncated: String = event.chars().take(cut).collect();
            let outcome = parse_queue_body::<OrderPlaced>(&truncated);
            prop_assert!(outcome.is_ok() == (cut >= event.chars().count()));
            if let Err(error) = outcome {
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }
}
