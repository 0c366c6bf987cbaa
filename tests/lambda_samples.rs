//! The events `cargo lambda invoke <function> --data-file events/lambda/<sample>.json` sends to
//! each function of the template, generated here from the event catalogue, each consumer's own
//! event types and the local catalogue's prices, so that they cannot drift from the code:
//!
//! - `order-api.json`: `POST /orders` as API Gateway hands it on behind the JWT authorizer
//!   (payload format 2.0, the verified claims in `requestContext.authorizer.jwt.claims`); the
//!   answer is 202.
//! - `<consumer>.json`: an SQS batch (raw delivery from the topic) of one record per event type
//!   the consumer reads, each about an order of its own; the answer has no failures.
//! - `<consumer>-poison.json`: the same batch and a record no consumer can ever read (an event
//!   whose data breaks the contract); it fails permanently: the consumer sends it to its DLQ at
//!   once, and the answer has no failure.
//!
//! `infra/lambda-loop.sh` invokes every sample on `cargo lambda watch` and checks those answers.
//! A sample file that differs from what this test generates fails it;
//! `UPDATE_SAMPLES=1 cargo test --test lambda_samples` writes them anew.

use std::collections::BTreeSet;
use std::path::PathBuf;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use chrono::{DateTime, Utc};
use local_runtime::template::{FunctionSpec, Topology};
use order_events::testing::{events_dir, EventDocuments, EVENTS_BASE_URI};
use order_events::*;
use serde_json::{json, Value};
use uuid::Uuid;

/// When every sample event happened.
const SAMPLE_TIME: &str = "2026-12-01T08:00:00.123Z";
/// The account and region the samples' ARNs name: the emulator's.
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
/// Where the emulator of `cargo run -- up` serves queues (the workspace's AWS_ENDPOINT_URL).
const QUEUE_URL_BASE: &str = "http://127.0.0.1:4580";
/// The physical-name prefix `cargo run -- up` provisions with.
const PREFIX: &str = "orderflow-";

/// Event types a consumer reads only after an earlier event about the same order, so that a
/// record of them alone is retried, not applied: payment captures only what it authorized.
const NEED_AN_EARLIER_EVENT: &[(&str, &str)] = &[(payment::SPEC.name, OrderConfirmed::TYPE)];

/// The event types `binary`'s consumer reads: its spec's.
fn consumed_types(binary: &str) -> &'static [&'static str] {
    let registry = orderflow::services::registry();
    let spec = registry
        .spec(binary)
        .unwrap_or_else(|| panic!("{binary} has no spec in src/services.rs"));
    spec.consumes
}

fn template() -> Topology {
    Topology::load(
        &local_runtime::emulator::project_root().join("template.yaml"),
        &Default::default(),
    )
    .unwrap()
}

fn sample_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(SAMPLE_TIME)
        .unwrap()
        .with_timezone(&Utc)
}

/// A fixed id, different for every `name`: a UUIDv7 of the sample time whose random part is
/// `name`'s (a v5 UUID's bytes).
fn sample_id(name: &str) -> Uuid {
    let random = *Uuid::new_v5(&Uuid::NAMESPACE_URL, name.as_bytes()).as_bytes();
    let millis = sample_time().timestamp_millis() as u64;
    uuid::Builder::from_unix_timestamp_millis(millis, &random[..10].try_into().unwrap()).into_uuid()
}

/// The sample customer, as their ID token's claims say.
const CUSTOMER_SUB: &str = "5f0c7c1e-8d1a-4a41-9a39-3c7e8b6d2a10";
const CUSTOMER_EMAIL: &str = "ada@example.com";

/// The sample order's lines, at the local catalogue's prices: (sku, quantity).
const LINES: &[(&str, u32)] = &[("SKU-KEYBOARD", 1), ("SKU-MOUSE", 2)];

fn price_of(sku: &str) -> i64 {
    orderflow::shop::CATALOGUE
        .iter()
        .find(|(s, _, _)| *s == sku)
        .map(|(_, price, _)| *price)
        .unwrap_or_else(|| panic!("{sku} is not in the local catalogue"))
}

fn lines() -> Vec<OrderLine> {
    LINES
        .iter()
        .map(|(sku, quantity)| OrderLine {
            sku: (*sku).to_owned(),
            quantity: *quantity,
            unit_price_minor: price_of(sku),
        })
        .collect()
}

fn order(order_id: Uuid) -> OrderPlaced {
    let lines = lines();
    OrderPlaced {
        order_id,
        customer_id: CUSTOMER_SUB.to_owned(),
        customer_email: CUSTOMER_EMAIL.to_owned(),
        total_minor: lines.iter().filter_map(OrderLine::amount_minor).sum(),
        lines,
        currency: "EUR".to_owned(),
        shipping_address: None,
    }
}

/// An event of type `T` with the sample's fixed id, time and correlation id, as its producer
/// publishes it (the body of a raw-delivered SQS message).
fn envelope<T: EventData>(data: T, name: &str) -> String {
    let mut event = CloudEvent::new(data, format!("sample-{name}"));
    event.id = sample_id(&format!("event {name}"));
    event.time = sample_time();
    String::from_utf8(event.canonical_json()).unwrap()
}

/// The event of `event_type` about `order_id` (an order of the sample lines), as its producer
/// would publish it.
fn event_of(event_type: &str, order_id: Uuid, name: &str) -> String {
    let placed = order(order_id);
    let amount = placed.total_minor;
    match event_type {
        OrderPlaced::TYPE => envelope(placed, name),
        StockReserved::TYPE => envelope(StockReserved { order_id }, name),
        StockRejected::TYPE => envelope(
            StockRejected {
                order_id,
                reason: "insufficient stock for SKU-WEBCAM: 1 requested, 0 available".into(),
            },
            name,
        ),
        PaymentAuthorized::TYPE => envelope(
            PaymentAuthorized {
                order_id,
                authorization_id: format!("auth_{}", order_id.simple()),
                amount_minor: amount,
                currency: placed.currency,
            },
            name,
        ),
        PaymentDeclined::TYPE => envelope(
            PaymentDeclined {
                order_id,
                reason: "card declined".into(),
            },
            name,
        ),
        OrderConfirmed::TYPE => envelope(OrderConfirmed::from(&placed), name),
        OrderCancelled::TYPE => envelope(
            testing::cancellation_of(
                &placed,
                CancelReason::CustomerRequest,
                "requested by the customer",
            ),
            name,
        ),
        PaymentCaptured::TYPE => envelope(
            PaymentCaptured {
                order_id,
                capture_id: format!("cap_{}", order_id.simple()),
                amount_minor: amount,
                currency: placed.currency,
            },
            name,
        ),
        ShipmentCreated::TYPE => envelope(
            ShipmentCreated {
                order_id,
                shipment_id: format!("shp_{}", order_id.simple()),
                carrier: "DHL".into(),
                tracking_number: shipping::tracking_number(order_id),
            },
            name,
        ),
        CancellationRequested::TYPE => envelope(
            CancellationRequested {
                order_id,
                customer_id: CUSTOMER_SUB.to_owned(),
            },
            name,
        ),
        CancellationRefused::TYPE => envelope(
            CancellationRefused {
                order_id,
                customer_id: CUSTOMER_SUB.to_owned(),
                customer_email: CUSTOMER_EMAIL.to_owned(),
                reason: RefusalReason::AlreadyShipped,
                detail: format!("DHL tracking {}", shipping::tracking_number(order_id)),
            },
            name,
        ),
        other => panic!("{other} is in the catalogue but has no sample here: add it to event_of"),
    }
}

/// One SQS record as Lambda delivers it from `queue` (raw delivery: the body is the event).
fn record(queue: &str, name: &str, body: String) -> SqsMessage {
    let text = |value: &str| {
        let mut attribute = SqsMessageAttribute::default();
        attribute.string_value = Some(value.to_owned());
        attribute.data_type = Some("String".to_owned());
        attribute
    };
    let message_id = sample_id(&format!("message {name}")).to_string();
    let sent = sample_time().timestamp_millis().to_string();
    let mut record = SqsMessage::default();
    record.receipt_handle = Some(format!("AQEB-sample-{message_id}"));
    record.message_id = Some(message_id);
    let event: Value = serde_json::from_str(&body).unwrap();
    record.body = Some(body);
    record.attributes = [
        ("ApproximateReceiveCount", "1"),
        ("SentTimestamp", sent.as_str()),
        ("SenderId", "AIDAEXAMPLE"),
        ("ApproximateFirstReceiveTimestamp", sent.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (attribute, field) in [
        ("eventType", "type"),
        ("eventVersion", "eventversion"),
        ("correlationId", "correlationid"),
    ] {
        if let Some(value) = event[field].as_str() {
            record
                .message_attributes
                .insert(attribute.to_owned(), text(value));
        }
    }
    record.event_source = Some("aws:sqs".to_owned());
    record.event_source_arn = Some(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{PREFIX}{queue}"));
    record.aws_region = Some(REGION.to_owned());
    record
}

/// The event types of `binary`'s sample batch: every type it reads that it can apply alone.
fn sample_types(binary: &str) -> Vec<&'static str> {
    consumed_types(binary)
        .iter()
        .copied()
        .filter(|t| !NEED_AN_EARLIER_EVENT.contains(&(binary, *t)))
        .collect()
}

/// The consumer's batch: one record per event type, each about an order of its own.
fn consumer_batch(function: &FunctionSpec) -> SqsEvent {
    let queue = &function.sqs_sources[0].queue;
    let mut batch = SqsEvent::default();
    for event_type in sample_types(&function.binary) {
        let name = format!("{}-{event_type}", function.binary);
        let order_id = sample_id(&format!("order {name}"));
        let body = event_of(event_type, order_id, &name);
        batch.records.push(record(queue, &name, body));
    }
    batch
}

/// The batch and a record that can never be read: an event of the consumer's first type whose
/// data has no order lines or amounts (a contract violation, not a passing failure).
fn poison_batch(function: &FunctionSpec) -> SqsEvent {
    let mut batch = consumer_batch(function);
    let event_type = sample_types(&function.binary)[0];
    let name = format!("{}-poison", function.binary);
    let order_id = sample_id(&format!("order {name}"));
    let mut body: Value = serde_json::from_str(&event_of(event_type, order_id, &name)).unwrap();
    body["data"] = json!({ "orderId": "not-an-order-id" });
    batch.records.push(record(
        &function.sqs_sources[0].queue,
        &name,
        body.to_string(),
    ));
    batch
}

/// `POST /orders` behind the JWT authorizer: the sample lines at the catalogue's prices, the
/// customer from the token's claims (never from the body).
fn order_api_event() -> Value {
    let body = json!({
        "currency": "EUR",
        "items": lines().iter().map(|l| json!({
            "sku": l.sku, "quantity": l.quantity, "unitPriceMinor": l.unit_price_minor
        })).collect::<Vec<_>>(),
    });
    let request = http::Request::builder()
        .method("POST")
        .uri("/orders")
        .header("content-type", "application/json")
        .header("host", "orders.example.com")
        .header("user-agent", "curl/8.5.0")
        .header(
            "authorization",
            "Bearer eyJraWQiOiJzYW1wbGUifQ.sample.signature",
        )
        .header("x-correlation-id", "sample-order-request")
        .body(body.to_string().into_bytes())
        .unwrap();
    let issuer = format!("https://cognito-idp.{REGION}.amazonaws.com/{REGION}_Sample");
    let claims = [
        ("sub", CUSTOMER_SUB),
        ("email", CUSTOMER_EMAIL),
        ("email_verified", "true"),
        ("cognito:username", CUSTOMER_SUB),
        ("iss", issuer.as_str()),
        ("aud", "sampleappclient0000000000"),
        ("token_use", "id"),
        ("auth_time", "1796112000"),
        ("iat", "1796112000"),
        ("exp", "1796115600"),
    ]
    .map(|(name, value)| (name.to_owned(), value.to_owned()));
    let context = local_runtime::gateway::jwt_context(claims, None);
    let mut event =
        local_runtime::gateway::api_gateway_event(order_api::PLACE_ORDER, request, Some(context));
    event.request_context.request_id = Some("sample-request-id".to_owned());
    event.request_context.time = Some(sample_time().format("%d/%b/%Y:%H:%M:%S %z").to_string());
    event.request_context.time_epoch = sample_time().timestamp_millis();
    let mut event = serde_json::to_value(event).unwrap();
    // A 1.0 field the 2.0 struct carries too; API Gateway does not send it in 2.0.
    event.as_object_mut().unwrap().remove("httpMethod");
    event
}

/// `value` without its null fields: the event structs write every absent field as null, AWS
/// leaves them out.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(fields) => fields
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, without_nulls(v)))
            .collect(),
        Value::Array(items) => items.into_iter().map(without_nulls).collect(),
        other => other,
    }
}

/// Every sample, by file name under `events/lambda/`.
fn samples() -> Vec<(String, Value)> {
    let mut samples = Vec::new();
    for function in template().functions {
        if function.http_routes.is_empty() {
            let file = |suffix: &str| format!("{}{suffix}.json", function.binary);
            samples.push((
                file(""),
                serde_json::to_value(consumer_batch(&function)).unwrap(),
            ));
            samples.push((
                file("-poison"),
                serde_json::to_value(poison_batch(&function)).unwrap(),
            ));
        } else if function.binary == order_api::SPEC.name {
            samples.push(("order-api.json".to_owned(), order_api_event()));
        } else {
            panic!(
                "{} serves HTTP but has no sample: add one here",
                function.binary
            );
        }
    }
    samples
}

fn lambda_dir() -> PathBuf {
    events_dir().join("lambda")
}

#[test]
fn the_sample_files_are_what_the_catalogue_and_the_consumers_make_them() {
    let update = std::env::var_os("UPDATE_SAMPLES").is_some();
    let mut stale = Vec::new();
    let generated = samples();
    for (file, sample) in &generated {
        let path = lambda_dir().join(file);
        let text = serde_json::to_string_pretty(&without_nulls(sample.clone())).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(lambda_dir()).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(file.clone());
        }
    }
    let expected: BTreeSet<String> = generated.into_iter().map(|(file, _)| file).collect();
    let present: BTreeSet<String> = std::fs::read_dir(lambda_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let unknown: Vec<&String> = present.difference(&expected).collect();
    assert!(
        stale.is_empty() && unknown.is_empty(),
        "events/lambda/: {stale:?} differ from what the code makes, {unknown:?} are not samples of \
         a template function; run `UPDATE_SAMPLES=1 cargo test --test lambda_samples` and review the diff"
    );
}

/// Validators for the envelope and each type's data: every sample event keeps the contract.
fn contract_errors(event: &Value) -> Vec<String> {
    let validator = |file: String| {
        let schema = testing::event_document(&format!("{EVENTS_BASE_URI}schemas/{file}")).unwrap();
        jsonschema::options()
            .should_validate_formats(true)
            .with_retriever(EventDocuments)
            .build(&schema)
            .unwrap()
    };
    let event_type = event["type"].as_str().unwrap_or_default();
    let version = event["eventversion"].as_str().unwrap_or_default();
    let envelope = validator("envelope.schema.json".to_owned());
    let data = validator(format!("{event_type}.v{version}.schema.json"));
    envelope
        .iter_errors(event)
        .chain(data.iter_errors(&event["data"]))
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn every_consumer_sample_reads_as_the_consumer_reads_it_and_keeps_the_contract() {
    for function in template()
        .functions
        .iter()
        .filter(|f| f.http_routes.is_empty())
    {
        let batch = consumer_batch(function);
        let types: Vec<&str> = batch
            .records
            .iter()
            .map(|r| {
                r.message_attributes["eventType"]
                    .string_value
                    .as_deref()
                    .unwrap()
            })
            .collect();
        assert_eq!(types, sample_types(&function.binary), "{}", function.binary);
        for record in &batch.records {
            let event: Value = serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
            assert_eq!(
                contract_errors(&event),
                Vec::<String>::new(),
                "{}",
                function.binary
            );
        }
        let poison = poison_batch(function);
        let last = poison.records.last().unwrap();
        let event: Value = serde_json::from_str(last.body.as_deref().unwrap()).unwrap();
        assert!(
            !contract_errors(&event).is_empty(),
            "{}: the poison record keeps the contract",
            function.binary
        );
    }
}

#[test]
fn the_order_request_names_no_customer_and_pays_the_catalogue_prices() {
    let event = order_api_event();
    let body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    assert!(body.get("customerId").is_none() && body.get("customerEmail").is_none());
    for (line, (sku, quantity)) in body["items"].as_array().unwrap().iter().zip(LINES) {
        assert_eq!(line["sku"], *sku);
        assert_eq!(line["quantity"], *quantity);
        assert_eq!(line["unitPriceMinor"], price_of(sku));
    }
    let claims = &event["requestContext"]["authorizer"]["jwt"]["claims"];
    assert_eq!(claims["sub"], CUSTOMER_SUB);
    assert_eq!(claims["email"], CUSTOMER_EMAIL);
    assert_eq!(event["routeKey"], order_api::PLACE_ORDER);
}

/// Every function's environment in Cargo.toml (`[workspace.metadata.lambda.env]` and its
/// package's `[package.metadata.lambda.env]`), which `cargo lambda watch` gives it, is exactly
/// what the template gives it on the local system of `cargo run -- up`, plus the endpoints.
#[test]
fn cargo_lambda_watch_gives_every_function_the_environment_of_the_template() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(local_runtime::emulator::project_root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let env_of = |value: &Value| -> Vec<(String, String)> {
        value["lambda"]["env"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect()
    };
    let workspace = env_of(&metadata["metadata"]);
    let endpoints = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"];
    for name in endpoints {
        assert!(
            workspace.iter().any(|(k, _)| k == name),
            "{name} missing from the workspace's metadata.lambda.env"
        );
    }

    let topology = template();
    let physical = |logical_id: &str, reference: String| {
        (
            logical_id.to_owned(),
            local_runtime::template::Physical {
                name: format!("{PREFIX}{logical_id}"),
                arn: reference.clone(),
                reference,
            },
        )
    };
    let resolver =
        local_runtime::template::Resolver {
            resources: topology
                .topics
                .iter()
                .map(|topic| {
                    physical(
                        topic,
                        format!("arn:aws:sns:{REGION}:{ACCOUNT}:{PREFIX}{topic}"),
                    )
                })
                .chain(topology.tables.iter().map(|table| {
                    physical(&table.logical_id, format!("{PREFIX}{}", table.logical_id))
                }))
                // A queue's Ref is its URL, as the emulator on the workspace's endpoint makes it.
                .chain(topology.queues.iter().map(|queue| {
                    let id = &queue.logical_id;
                    physical(id, format!("{QUEUE_URL_BASE}/{ACCOUNT}/{PREFIX}{id}"))
                }))
                .collect(),
            parameters: topology.parameters.clone(),
            region: REGION.to_owned(),
            account_id: ACCOUNT.to_owned(),
        };
    for function in &topology.functions {
        let package = metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == function.binary.as_str())
            .unwrap_or_else(|| panic!("no package {}", function.binary));
        let mut given: std::collections::BTreeMap<String, String> =
            workspace.iter().cloned().collect();
        given.extend(env_of(&package["metadata"]));
        for (name, value) in &function.environment {
            let wanted = resolver.string(value).unwrap();
            assert_eq!(
                given.remove(name).as_deref(),
                Some(wanted.as_str()),
                "{name} of {}: set it in functions/{}/Cargo.toml [package.metadata.lambda.env]",
                function.logical_id,
                function.binary
            );
        }
        let extra: Vec<&String> = given
            .keys()
            .filter(|name| !name.starts_with("AWS_"))
            .collect();
        assert!(
            extra.is_empty(),
            "{}: {extra:?} are not in the template",
            function.binary
        );
    }
}
