//! Contract tests, both ways, for every event type of the catalogue: its sample in
//! `events/samples/` validates against the envelope schema and the type's data schema in
//! `events/schemas/`, parses into the Rust type, and serializes back to the same JSON, which
//! validates again. The schemas refuse what the contract does not write.

use std::path::Path;

use order_events::testing::{events_dir, EventDocuments, EVENTS_BASE_URI};
use order_events::*;
use serde_json::Value;

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Validators for the envelope and for one type's data, with the shared definitions resolvable.
struct Schemas {
    envelope: jsonschema::Validator,
    data: jsonschema::Validator,
}

impl Schemas {
    fn for_type(event_type: &str, version: &str) -> Self {
        let build = |file: &str| {
            let schema = read_json(&events_dir().join("schemas").join(file));
            let id = format!("{EVENTS_BASE_URI}schemas/{file}");
            assert_eq!(schema["$id"], id, "{file} $id");
            jsonschema::options()
                .should_validate_formats(true)
                .with_retriever(EventDocuments)
                .build(&schema)
                .unwrap_or_else(|e| panic!("{file}: {e}"))
        };
        Self {
            envelope: build("envelope.schema.json"),
            data: build(&format!("{event_type}.v{version}.schema.json")),
        }
    }

    fn errors(&self, event: &Value) -> Vec<String> {
        let envelope = self.envelope.iter_errors(event);
        let data = self.data.iter_errors(&event["data"]);
        envelope.chain(data).map(|e| e.to_string()).collect()
    }
}

/// Checks type `T` both ways against its sample and schema.
fn check<T: EventData + std::fmt::Debug + PartialEq>() {
    let sample = read_json(&events_dir().join(format!("samples/{}.v{}.json", T::TYPE, T::VERSION)));
    let schemas = Schemas::for_type(T::TYPE, T::VERSION);
    assert_eq!(
        schemas.errors(&sample),
        Vec::<String>::new(),
        "{} sample",
        T::TYPE
    );

    let event = parse_queue_body::<T>(&sample.to_string())
        .unwrap_or_else(|e| panic!("{} sample does not parse: {e}", T::TYPE));
    assert_eq!(
        event.source,
        T::SOURCE,
        "{} sample names its producer",
        T::TYPE
    );
    let written = serde_json::to_value(&event).unwrap();
    assert_eq!(
        written,
        sample,
        "{} does not serialize back to its sample",
        T::TYPE
    );

    let fresh = serde_json::to_value(CloudEvent::new(event.data, "corr")).unwrap();
    assert_eq!(
        schemas.errors(&fresh),
        Vec::<String>::new(),
        "{} as written",
        T::TYPE
    );

    // The schemas are not vacuous: each data field of the sample is required (the samples carry
    // no optional field), no other field is allowed.
    for field in sample["data"].as_object().unwrap().keys() {
        let mut without = sample.clone();
        without["data"].as_object_mut().unwrap().remove(field);
        assert!(
            !schemas.errors(&without).is_empty(),
            "{} without {field}",
            T::TYPE
        );
    }
    let mut extra = sample.clone();
    extra["data"]["unexpected"] = Value::Bool(true);
    assert!(
        !schemas.errors(&extra).is_empty(),
        "{} with an extra field",
        T::TYPE
    );
}

#[test]
fn every_event_type_matches_its_sample_and_schema_both_ways() {
    let mut checked = Vec::new();
    macro_rules! check_all {
        ($($data:ty),+) => {$( check::<$data>(); checked.push(<$data as EventData>::TYPE); )+};
    }
    check_all!(
        OrderPlaced,
        StockReserved,
        StockRejected,
        PaymentAuthorized,
        PaymentDeclined,
        OrderConfirmed,
        OrderCancelled,
        PaymentCaptured,
        ShipmentCreated,
        CancellationRequested,
        CancellationRefused
    );
    assert_eq!(checked, EVENT_TYPES, "every catalogue type is checked");
    // And the other major of OrderPlaced in flight.
    check::<OrderPlacedV2>();
}

#[test]
fn every_file_in_events_belongs_to_a_catalogue_type() {
    let names = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(events_dir().join(dir))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    // Every type's v1, and OrderPlaced's v2.
    let mut samples: Vec<String> = EVENT_TYPES
        .iter()
        .map(|t| format!("{t}.v1.json"))
        .chain(["OrderPlaced.v2.json".into()])
        .collect();
    samples.sort();
    assert_eq!(names("samples"), samples);
    let mut schemas: Vec<String> = EVENT_TYPES
        .iter()
        .map(|t| format!("{t}.v1.schema.json"))
        .chain([
            "OrderPlaced.v2.schema.json".into(),
            "common.schema.json".into(),
            "envelope.schema.json".into(),
        ])
        .collect();
    schemas.sort();
    assert_eq!(names("schemas"), schemas);
}
