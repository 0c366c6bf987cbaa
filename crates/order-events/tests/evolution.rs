//! The evolution rules (docs/architecture.md, "Events that outlive their schema"), checked both ways on
//! `OrderPlaced`: the additive change (`shippingAddress`, optional, in v1) and the breaking one
//! (v2, the customer regrouped).

use order_events::testing::{events_dir, EventDocuments, EVENTS_BASE_URI};
use order_events::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `OrderPlaced` as its readers had it before `shippingAddress` was added: the reader of a
/// consumer deployed before the additive change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderPlacedBeforeAddress {
    order_id: uuid::Uuid,
    customer_id: String,
    customer_email: String,
    #[serde(rename = "items")]
    lines: Vec<OrderLine>,
    currency: String,
    total_minor: i64,
}

impl EventData for OrderPlacedBeforeAddress {
    const TYPE: &'static str = "OrderPlaced";
    const VERSION: &'static str = "1";
    const SOURCE: &'static str = ORDER_SERVICE_SOURCE;

    fn order_id(&self) -> uuid::Uuid {
        self.order_id
    }
}

fn sample(file: &str) -> Value {
    let path = events_dir().join("samples").join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn errors(schema_file: &str, data: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(events_dir().join("schemas").join(schema_file)).unwrap(),
    )
    .unwrap();
    assert_eq!(
        schema["$id"],
        format!("{EVENTS_BASE_URI}schemas/{schema_file}")
    );
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .with_retriever(EventDocuments)
        .build(&schema)
        .unwrap();
    validator.iter_errors(data).map(|e| e.to_string()).collect()
}

fn address() -> ShippingAddress {
    ShippingAddress {
        recipient: "Ada Lovelace".into(),
        line1: "12 St James's Square".into(),
        line2: None,
        postal_code: "SW1Y 4JH".into(),
        city: "London".into(),
        country: "GB".into(),
    }
}

/// A v1 event as the API writes it now: with a shipping address.
fn v1_with_address() -> OrderPlacedEvent {
    let mut order = testing::sample_order();
    order.shipping_address = Some(address());
    OrderPlacedEvent::new(order, "evolution")
}

fn body<T: EventData>(event: &CloudEvent<T>) -> String {
    String::from_utf8(event.canonical_json()).unwrap()
}

#[test]
fn additive_an_old_reader_reads_new_v1_events_and_a_new_reader_old_ones() {
    // New v1 (with the address) against the revised v1 schema, and read by the reader from
    // before the address: it ignores the field it does not know.
    let new = v1_with_address();
    let json = serde_json::to_value(&new).unwrap();
    assert_eq!(
        errors("OrderPlaced.v1.schema.json", &json["data"]),
        Vec::<String>::new()
    );
    let old_reader = parse_queue_body::<OrderPlacedBeforeAddress>(&body(&new))
        .expect("an old consumer reads a v1 event that carries an address");
    assert_eq!(old_reader.data.customer_email, new.data.customer_email);
    assert_eq!(old_reader.data.total_minor, new.data.total_minor);

    // An old v1 event (the sample, from before the address) read by the new reader: no address.
    let old = sample("OrderPlaced.v1.json");
    assert!(old["data"].get("shippingAddress").is_none());
    let read = parse_queue_body::<OrderPlaced>(&old.to_string()).unwrap();
    assert_eq!(read.data.shipping_address, None);
    // Written back, it is the old event byte for byte: nothing new appears in old events.
    assert_eq!(serde_json::to_value(&read).unwrap(), old);
}

#[test]
fn breaking_v2_is_read_by_the_new_reader_and_v1_upcasts_to_a_valid_v2() {
    // Every v2 reader reads v1 too: the upcaster regroups it, and the result is a valid v2.
    for v1 in [
        parse_queue_body::<OrderPlaced>(&sample("OrderPlaced.v1.json").to_string()).unwrap(),
        v1_with_address(),
    ] {
        let v2 = v1.as_v2();
        assert_eq!(v2.eventversion, "2");
        assert_eq!((v2.id, v2.time, &v2.subject), (v1.id, v1.time, &v1.subject));
        let json = serde_json::to_value(&v2).unwrap();
        assert_eq!(
            errors("OrderPlaced.v2.schema.json", &json["data"]),
            Vec::<String>::new()
        );
        // Read back, it is the same order.
        let read = parse_queue_body::<OrderPlaced>(&body(&v2)).unwrap();
        assert_eq!(read.data, v1.data);
        assert_eq!(read.eventversion, "2", "the envelope says what was read");
        // One fact, one idempotency payload, whichever major carried it.
        assert_eq!(read.data.fingerprint(), v1.data.fingerprint());
        assert_eq!(v2.data.fingerprint(), v1.data.fingerprint());
    }

    let v2 = sample("OrderPlaced.v2.json");
    let read = parse_queue_body::<OrderPlaced>(&v2.to_string()).unwrap();
    assert_eq!(read.data.customer_id, v2["data"]["customer"]["id"]);
    assert_eq!(read.data.shipping_address, Some(address()));
}

#[test]
fn the_fingerprint_of_an_order_without_an_address_is_what_it_was_before_the_address() {
    // Idempotency entries written before the change hashed the old struct's JSON: a redelivery
    // after the change must hash the same, or it would be refused as another payload.
    let order = testing::sample_order();
    let before: OrderPlacedBeforeAddress =
        serde_json::from_value(serde_json::to_value(&order).unwrap()).unwrap();
    assert_eq!(before.total_minor, order.total_minor);
    assert_eq!(order.fingerprint(), serde_json::to_vec(&before).unwrap());
    assert_eq!(
        OrderPlacedV2::from(&order).fingerprint(),
        order.fingerprint()
    );
}

#[test]
fn a_reader_refuses_a_major_it_does_not_read_naming_it() {
    // The rules' reason producers switch last: a v1-only consumer cannot read v2.
    let v2 = sample("OrderPlaced.v2.json").to_string();
    let error = parse_queue_body::<OrderPlacedBeforeAddress>(&v2).unwrap_err();
    assert!(
        matches!(error, EventError::UnsupportedVersion { .. }),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "unsupported OrderPlaced schema version \"2\", this consumer reads version \"1\""
    );
    // And no reader reads a major that does not exist yet.
    let mut v3 = sample("OrderPlaced.v2.json");
    v3["eventversion"] = "3".into();
    let error = parse_queue_body::<OrderPlaced>(&v3.to_string()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unsupported OrderPlaced schema version \"3\", this consumer reads version \"1\" or \"2\""
    );
}
