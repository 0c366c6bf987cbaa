//! The embedded metric format documents a function writes on Lambda (its own test binary: the
//! recorder is global to the process).

use std::collections::BTreeSet;
use std::time::Duration;

use lambda_kit::metrics::{self, name};
use serde_json::Value;

fn documents(text: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(text)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON document"))
        .collect()
}

#[test]
fn one_flush_writes_the_invocation_s_metrics_with_service_and_event_type_dimensions_only() {
    metrics::init_on_lambda("payment");
    let batch = metrics::BatchTally::default();
    for _ in 0..2 {
        batch.record(
            "OrderPlaced",
            Some(Duration::from_millis(1500)),
            Duration::from_millis(2),
            metrics::Processed::Applied,
        );
    }
    batch.publish("payment", 3, 1);
    let mut written = Vec::new();
    metrics::flush_into(&mut written, "req-1", Some("Root=1-abc"));
    let documents = documents(&written);
    assert!(!documents.is_empty(), "something was written");

    let mut seen = std::collections::BTreeMap::new();
    for document in &documents {
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], metrics::DEFAULT_NAMESPACE);
        assert_eq!(document["requestId"], "req-1", "{document}");
        assert_eq!(document["xrayTraceId"], "Root=1-abc", "{document}");
        for dimensions in directive["Dimensions"].as_array().unwrap() {
            let names: BTreeSet<&str> = dimensions
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                names.is_subset(&BTreeSet::from(["service", "event_type"])),
                "only service and event type: {names:?}"
            );
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            let metric_name = metric["Name"].as_str().unwrap().to_owned();
            seen.insert(
                metric_name.clone(),
                (document[&metric_name].clone(), metric["Unit"].clone()),
            );
        }
    }
    assert_eq!(
        seen[name::COLD_START].0,
        1,
        "the cold start goes out with the first invocation"
    );
    assert_eq!(seen[name::RECORDS_RECEIVED].0, 3);
    assert_eq!(seen[name::RECORDS_FAILED].0, 1);
    assert_eq!(seen[name::RECORDS_SUCCEEDED].0, 2);
    let (age, unit) = &seen[name::EVENT_AGE];
    assert_eq!(unit, "Milliseconds");
    let age = age.as_f64().or_else(|| age[0].as_f64()).unwrap();
    assert!((age - 1500.0).abs() < 1.0, "{age}");

    // The next invocation writes only what it recorded.
    metrics::count(name::RECORDS_RECEIVED, "payment", 1);
    let mut written = Vec::new();
    metrics::flush_into(&mut written, "req-2", None);
    let text = String::from_utf8_lossy(&written);
    assert!(!text.contains(name::COLD_START), "{text}");
    assert!(text.contains("\"RecordsReceived\":1"), "{text}");
}
