use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use lambda_http::http::Request as HttpRequest;
use serde_json::Value;

use lambda_kit::effect::MemoryEffectStore;
use lambda_kit::idempotency::MemoryIdempotency;
use order_events::{CancellationRequested, CloudEvent, EventData, RawEvent};

use super::*;

type Api = OrderApi<MemoryPublisher, MemoryIdempotency, MemoryEffectStore>;

/// An API whose callers name the customer in the body (as behind IAM); [`token_api`] takes the
/// customer from the token.
fn new_api() -> Api {
    token_api().customers_from(IdentitySource::Body)
}

fn token_api() -> Api {
    OrderApi::new(
        MemoryPublisher::default(),
        MemoryIdempotency::default(),
        MemoryEffectStore::new(order_state::OrderItem::KEY),
        Arc::new(catalogue()),
    )
}

/// The catalogue the tests order from: the prices [`valid_body`] displays, and a sku in USD.
fn catalogue() -> MemoryCatalogue {
    MemoryCatalogue::of(&[
        ("SKU-KEYBOARD", 4999, "EUR"),
        ("SKU-MOUSE", 1999, "EUR"),
        ("SKU-CABLE", 599, "USD"),
    ])
}

/// A catalogue whose prices can change, counting the skus it is asked for, and taking `delay`
/// to answer.
#[derive(Clone, Default)]
pub(crate) struct Changing {
    prices: Arc<std::sync::RwLock<MemoryCatalogue>>,
    asked: Arc<std::sync::atomic::AtomicUsize>,
    delay: Arc<Mutex<std::time::Duration>>,
}

impl Changing {
    pub(crate) fn set(&self, entries: &[(&str, i64, &str)]) {
        *self.prices.write().unwrap() = MemoryCatalogue::of(entries);
    }
    pub(crate) fn set_delay(&self, delay: std::time::Duration) {
        *self.delay.lock().unwrap() = delay;
    }
    pub(crate) fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

impl Catalogue for Changing {
    fn prices<'a>(
        &'a self,
        skus: &'a std::collections::BTreeSet<String>,
    ) -> catalogue::CatalogueFuture<'a> {
        self.asked.fetch_add(skus.len(), Ordering::SeqCst);
        let catalogue = self.prices.read().unwrap().clone();
        let delay = *self.delay.lock().unwrap();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            catalogue.prices(skus).await
        })
    }
}

/// Keeps published events; refuses every publish while `down` is set; takes `delay` to answer.
#[derive(Default)]
struct MemoryPublisher {
    /// Every order published, read back as the consumers read it.
    published: Mutex<Vec<OrderPlacedEvent>>,
    /// Every cancellation request published.
    cancellations: Mutex<Vec<CloudEvent<CancellationRequested>>>,
    down: AtomicBool,
    /// Takes the event but reports a failure (the answer was lost on the way back).
    answer_lost: AtomicBool,
    delay: Mutex<std::time::Duration>,
}

impl EventPublisher for MemoryPublisher {
    async fn publish<T: order_events::EventData>(
        &self,
        event: &order_events::CloudEvent<T>,
    ) -> Result<(), PublishError> {
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        if self.down.load(Ordering::SeqCst) {
            return Err(PublishError("broker unavailable".into()));
        }
        let body = serde_json::to_string(event).map_err(|e| PublishError(e.to_string()))?;
        let unreadable = |e: order_events::EventError| PublishError(format!("unreadable: {e}"));
        let raw = RawEvent::parse(&body).map_err(unreadable)?;
        if raw.event_type() == CancellationRequested::TYPE {
            let read_back = raw.into_typed().map_err(unreadable)?;
            self.cancellations.lock().unwrap().push(read_back);
        } else {
            self.published
                .lock()
                .unwrap()
                .push(raw.into_typed().map_err(unreadable)?);
        }
        if self.answer_lost.load(Ordering::SeqCst) {
            return Err(PublishError(
                "timed out waiting for the broker's answer".into(),
            ));
        }
        Ok(())
    }
}

fn valid_body() -> Value {
    serde_json::json!({
        "customerId": "cust-1",
        "customerEmail": "ada@example.com",
        "currency": "EUR",
        "items": [
            {"sku": "SKU-KEYBOARD", "quantity": 2, "unitPriceMinor": 4999},
            {"sku": "SKU-MOUSE", "quantity": 1, "unitPriceMinor": 1999}
        ]
    })
}

/// A request as the function receives it for `route` (`METHOD /path`): the API Gateway event
/// the local gateway builds, turned into a request by `lambda_http`.
fn routed(route: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Request {
    let (method, path) = route.split_once(' ').unwrap();
    let mut request = HttpRequest::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body.into()).unwrap();
    local_runtime::gateway::request_for(route, request)
}

fn post(content_type: &str, body: impl Into<Vec<u8>>) -> Request {
    routed(PLACE_ORDER, &[("content-type", content_type)], body)
}

async fn call(api: &Api, request: Request) -> (StatusCode, Value) {
    let response = api.handle(request).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    (response.status(), body)
}

async fn status_of(body: Value) -> (StatusCode, Value) {
    let api = new_api();
    call(&api, post("application/json", body.to_string())).await
}

#[tokio::test]
async fn a_valid_order_is_published_and_accepted() {
    let api = new_api();
    let mut request = post("application/json; charset=utf-8", valid_body().to_string());
    request
        .headers_mut()
        .insert(CORRELATION_HEADER, "req-123".parse().unwrap());
    let (status, body) = call(&api, request).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "ACCEPTED");
    let published = api.publisher().published.lock().unwrap();
    assert_eq!(published.len(), 1);
    let event = &published[0];
    assert_eq!(body["orderId"], event.order_id().to_string());
    assert_eq!(event.data.total_minor, 2 * 4999 + 1999);
    assert_eq!(event.correlationid, "req-123");
    assert_eq!(event.subject, event.order_id().to_string());
}

fn address() -> Value {
    serde_json::json!({
        "recipient": "Ada Lovelace",
        "line1": "12 St James's Square",
        "postalCode": "SW1Y 4JH",
        "city": "London",
        "country": "GB"
    })
}

#[tokio::test]
async fn a_shipping_address_travels_in_the_version_the_api_writes() {
    for version in [OrderPlacedVersion::V1, OrderPlacedVersion::V2] {
        let api = new_api().writes_order_placed(version);
        let mut body = valid_body();
        body["shippingAddress"] = address();
        let (status, answer) = call(&api, post("application/json", body.to_string())).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        let published = api.publisher().published.lock().unwrap();
        let event = &published[0];
        let expected = match version {
            OrderPlacedVersion::V1 => "1",
            OrderPlacedVersion::V2 => "2",
        };
        assert_eq!(event.eventversion, expected);
        let shipped_to = event
            .data
            .shipping_address
            .as_ref()
            .map(|a| a.city.as_str());
        assert_eq!(shipped_to, Some("London"), "{version:?}");
    }
}

#[tokio::test]
async fn transport_problems_get_their_codes() {
    let api = new_api();
    let (status, body) = call(&api, post("application/json", "{\"customerId\":")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "malformed_json");

    let (status, _) = call(&api, post("text/plain", valid_body().to_string())).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let mut huge = valid_body();
    huge["customerId"] = "x".repeat(MAX_BODY_BYTES).into();
    let (status, body) = call(&api, post("application/json", huge.to_string())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["message"].as_str().unwrap().contains("65536"));

    let unrouted = routed("DELETE /orders", &[], "");
    assert_eq!(call(&api, unrouted).await.0, StatusCode::NOT_FOUND);
    assert!(api.publisher().published.lock().unwrap().is_empty());
}

#[tokio::test]
async fn each_invalid_field_is_named_with_422() {
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("items", Box::new(|b| b["items"] = serde_json::json!([]))),
        (
            "items[0].quantity",
            Box::new(|b| b["items"][0]["quantity"] = 0.into()),
        ),
        (
            "items[1].unitPriceMinor",
            Box::new(|b| b["items"][1]["unitPriceMinor"] = (-1).into()),
        ),
        (
            "customerEmail",
            Box::new(|b| b["customerEmail"] = "not-an-email".into()),
        ),
        ("currency", Box::new(|b| b["currency"] = "XYZ".into())),
        (
            "items",
            Box::new(|b| {
                let line = b["items"][0].clone();
                b["items"] = Value::Array(vec![line; MAX_LINES + 1]);
            }),
        ),
        (
            "items[0].quantity",
            Box::new(|b| b["items"][0]["quantity"] = "two".into()),
        ),
        (
            "items[0].unitPrice",
            Box::new(|b| b["items"][0]["unitPrice"] = 5.into()),
        ),
        (
            "body",
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("currency");
            }),
        ),
        (
            "shippingAddress.country",
            Box::new(|b| {
                b["shippingAddress"] = address();
                b["shippingAddress"]["country"] = "gb".into();
            }),
        ),
        (
            "shippingAddress.recipient",
            Box::new(|b| {
                b["shippingAddress"] = address();
                b["shippingAddress"]["recipient"] = " ".into();
            }),
        ),
        (
            "shippingAddress.street",
            Box::new(|b| {
                b["shippingAddress"] = address();
                b["shippingAddress"]["street"] = "misspelt line1".into();
            }),
        ),
    ];
    for (field, mutate) in cases {
        let mut body = valid_body();
        mutate(&mut body);
        let (status, answer) = status_of(body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {answer}"
        );
        assert_eq!(answer["error"], "validation_failed");
        let fields: Vec<&str> = answer["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "expected {field} in {answer}");
    }
}

#[tokio::test]
async fn a_publish_failure_answers_503_with_retry_after() {
    let api = new_api();
    api.publisher().down.store(true, Ordering::SeqCst);
    let response = api
        .handle(post("application/json", valid_body().to_string()))
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert!(api.publisher().published.lock().unwrap().is_empty());
}

/// The event `cargo lambda invoke order-api` sends (generated by tests/lambda_samples.rs at the
/// local catalogue's prices): the customer comes from the verified claims, not the body.
#[tokio::test]
async fn the_sample_api_gateway_event_is_accepted_for_the_token_s_customer() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/lambda/order-api.json"
    );
    let request = lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let api = OrderApi::new(
        MemoryPublisher::default(),
        MemoryIdempotency::default(),
        MemoryEffectStore::new(order_state::OrderItem::KEY),
        Arc::new(MemoryCatalogue::of(&[
            ("SKU-KEYBOARD", 8999, "EUR"),
            ("SKU-MOUSE", 2499, "EUR"),
        ])),
    );
    let response = api.handle(request).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.headers()[CORRELATION_HEADER],
        "sample-order-request"
    );
    let published = api.publisher().published.lock().unwrap();
    assert_eq!(published[0].correlationid, "sample-order-request");
    assert_eq!(
        published[0].data.customer_id,
        "5f0c7c1e-8d1a-4a41-9a39-3c7e8b6d2a10"
    );
    assert_eq!(published[0].data.customer_email, "ada@example.com");
}

fn with_key(key: &str, body: &Value) -> Request {
    let mut request = post("application/json", body.to_string());
    request
        .headers_mut()
        .insert(IDEMPOTENCY_HEADER, key.parse().unwrap());
    request
}

#[tokio::test]
async fn the_same_key_and_body_replays_the_answer_without_publishing_again() {
    let api = new_api();
    let first = api
        .handle(with_key("\"order-attempt-1\"", &valid_body()))
        .await;
    let again = api
        .handle(with_key("\"order-attempt-1\"", &valid_body()))
        .await;
    assert_eq!(
        (first.status(), again.status()),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
    );
    assert_eq!(first.body().as_ref(), again.body().as_ref(), "same orderId");
    assert!(first.headers().get(REPLAYED_HEADER).is_none());
    assert_eq!(again.headers()[REPLAYED_HEADER], "true");
    assert_eq!(api.publisher().published.lock().unwrap().len(), 1);

    // Another key is another order.
    let other = api.handle(with_key("order-attempt-2", &valid_body())).await;
    assert_ne!(other.body().as_ref(), first.body().as_ref());
    assert_eq!(api.publisher().published.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let api = new_api();
    api.handle(with_key("k-1", &valid_body())).await;
    let mut changed = valid_body();
    changed["items"][0]["quantity"] = 3.into();
    let (status, body) = call(&api, with_key("k-1", &changed)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "idempotency_key_reused");
    assert_eq!(api.publisher().published.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_request_in_flight_makes_its_twin_wait_with_409() {
    let api = new_api();
    *api.publisher().delay.lock().unwrap() = std::time::Duration::from_millis(300);
    let first = api.handle(with_key("k-2", &valid_body()));
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        api.handle(with_key("k-2", &valid_body())).await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(second.status(), StatusCode::CONFLICT);
    assert_eq!(second.headers()["retry-after"], "1");
    assert_eq!(api.publisher().published.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn malformed_or_missing_keys_are_400() {
    let api = new_api();
    for key in [
        "\"\"",
        "\"unterminated",
        &"x".repeat(256),
        "two words",
        "\"two words\"",
    ] {
        let (status, body) = call(&api, with_key(key, &valid_body())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}");
        assert_eq!(body["error"], "invalid_idempotency_key");
    }
    let strict = new_api().require_idempotency_key(true);
    let (status, body) = call(&strict, post("application/json", valid_body().to_string())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "idempotency_key_missing");
    assert!(api.publisher().published.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_publish_failure_leaves_the_key_free_for_the_retry() {
    let api = new_api();
    api.publisher().down.store(true, Ordering::SeqCst);
    let failed = api.handle(with_key("k-3", &valid_body())).await;
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    api.publisher().down.store(false, Ordering::SeqCst);
    let retried = api.handle(with_key("k-3", &valid_body())).await;
    assert_eq!(retried.status(), StatusCode::ACCEPTED);
    assert!(
        retried.headers().get(REPLAYED_HEADER).is_none(),
        "a fresh attempt, not a replay"
    );
    assert_eq!(api.publisher().published.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_retry_after_an_ambiguous_failure_announces_the_same_order() {
    let api = new_api();
    api.publisher().answer_lost.store(true, Ordering::SeqCst);
    let failed = api.handle(with_key("k-4", &valid_body())).await;
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    api.publisher().answer_lost.store(false, Ordering::SeqCst);
    let retried = api.handle(with_key("k-4", &valid_body())).await;
    assert_eq!(retried.status(), StatusCode::ACCEPTED);

    let published = api.publisher().published.lock().unwrap();
    assert_eq!(published.len(), 2, "the broker got the order twice");
    assert_eq!(
        published[0].order_id(),
        published[1].order_id(),
        "as one order"
    );
    assert_ne!(published[0].id, published[1].id);
}

fn order_path(route: &str, order_id: &str) -> Request {
    let (method, template) = route.split_once(' ').unwrap();
    let path = template.replace("{orderId}", order_id);
    let request = HttpRequest::builder()
        .method(method)
        .uri(path)
        .body(Vec::new())
        .unwrap();
    local_runtime::gateway::request_for(route, request)
}

async fn place(api: &Api) -> String {
    let (status, body) = call(api, post("application/json", valid_body().to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    body["orderId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_accepted_order_is_visible_at_once_and_a_failed_one_never() {
    let api = new_api();
    let order_id = place(&api).await;
    let (status, body) = call(&api, order_path(GET_ORDER, &order_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["totalMinor"], 2 * 4999 + 1999);
    assert_eq!(body["timeline"][0]["step"], "placed");

    api.publisher().down.store(true, Ordering::SeqCst);
    let (status, _) = call(&api, post("application/json", valid_body().to_string())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        api.orders().items::<order_state::OrderItem>().len(),
        1,
        "only the accepted order"
    );
}

#[tokio::test]
async fn unknown_and_malformed_order_ids_are_404_and_400() {
    let api = new_api();
    for route in [GET_ORDER, CANCEL_ORDER] {
        let (status, body) = call(&api, order_path(route, &Uuid::now_v7().to_string())).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("order_not_found"))
        );
        let (status, body) = call(&api, order_path(route, "not-a-uuid")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_order_id"))
        );
    }
    assert!(api.publisher().cancellations.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_cancellation_is_requested_once_per_key_and_refused_once_cancelled() {
    let api = new_api();
    let order_id = place(&api).await;
    let cancel = |key: &str| {
        let mut request = order_path(CANCEL_ORDER, &order_id);
        request
            .headers_mut()
            .insert(IDEMPOTENCY_HEADER, key.parse().unwrap());
        request
    };
    let (status, body) = call(&api, cancel("c-1")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::ACCEPTED, Some("CANCELLATION_REQUESTED"))
    );
    let replay = api.handle(cancel("c-1")).await;
    assert_eq!(replay.status(), StatusCode::ACCEPTED);
    assert_eq!(replay.headers()[REPLAYED_HEADER], "true");
    let requested = api.publisher().cancellations.lock().unwrap().clone();
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0].data.customer_id, "cust-1");

    // The order service cancels the order; a new request is refused.
    let placed = api.publisher().published.lock().unwrap()[0].clone();
    let mut item = api.orders().items::<order_state::OrderItem>().remove(0);
    item.apply(
        order_state::Fact::CancellationRequested(requested[0].data.clone()),
        placed.time,
    );
    let key = lambda_kit::idempotency::IdempotencyKey::new("test", "");
    let stored = lambda_kit::effect::EffectStore::load::<order_state::OrderItem>(
        api.orders(),
        &item.order_id.to_string(),
    )
    .await
    .unwrap()
    .unwrap();
    lambda_kit::effect::EffectStore::commit(api.orders(), &key, &item, Some(stored.read()))
        .await
        .unwrap();
    let (status, body) = call(&api, cancel("c-2")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "order_not_cancellable");
    assert_eq!(body["status"], "CANCELLED");
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Any JSON value, a few levels deep.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,40}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// The valid body with one field, or one line's field, replaced by anything.
    fn mutated_body() -> impl Strategy<Value = Value> {
        let fields = prop::sample::select(vec![
            "customerId",
            "customerEmail",
            "currency",
            "items",
            "extra",
        ]);
        let line_fields = prop::sample::select(vec!["sku", "quantity", "unitPriceMinor", "other"]);
        prop_oneof![
            (fields, json()).prop_map(|(field, value)| {
                let mut body = valid_body();
                body[field] = value;
                body
            }),
            (0..3usize, line_fields, json()).prop_map(|(line, field, value)| {
                let mut body = valid_body();
                if let Some(items) = body["items"].as_array_mut() {
                    if let Some(item) = items.get_mut(line) {
                        item[field] = value;
                    }
                }
                body
            }),
        ]
    }

    fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            mutated_body().prop_map(|b| b.to_string().into_bytes()),
            json().prop_map(|b| b.to_string().into_bytes()),
            prop::collection::vec(any::<u8>(), 0..256),
        ]
    }

    fn header_value() -> impl Strategy<Value = Option<String>> {
        prop::option::of("[ -~]{0,300}")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn every_request_gets_a_json_answer_and_never_a_5xx(
            body in body_bytes(),
            content_type in prop::option::of(prop_oneof![
                Just("application/json".to_owned()),
                "[ -~]{0,40}",
            ]),
            idempotency_key in header_value(),
            correlation_id in header_value(),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let answer = runtime.block_on(async {
                let api = new_api();
                let mut headers = Vec::new();
                if let Some(value) = &content_type {
                    headers.push(("content-type", value.as_str()));
                }
                if let Some(value) = &idempotency_key {
                    headers.push((IDEMPOTENCY_HEADER, value.as_str()));
                }
                if let Some(value) = &correlation_id {
                    headers.push((CORRELATION_HEADER, value.as_str()));
                }
                api.handle(routed(PLACE_ORDER, &headers, body.clone())).await
            });
            let status = answer.status();
            prop_assert!(!status.is_server_error(), "{status}");
            prop_assert_eq!(&answer.headers()["content-type"], "application/json");
            let json: Value = serde_json::from_slice(answer.body().as_ref()).unwrap();
            if status == StatusCode::ACCEPTED {
                prop_assert_eq!(&json["status"], "ACCEPTED");
            } else {
                prop_assert!(status.is_client_error(), "{status}");
                prop_assert!(json["error"].is_string(), "{json}");
            }
        }

        #[test]
        fn a_body_naming_a_key_twice_is_400_and_publishes_nothing(
            field in prop::sample::select(vec!["customerId", "customerEmail", "currency", "items"]),
            line_field in prop::sample::select(vec!["sku", "quantity", "unitPriceMinor"]),
            in_a_line in any::<bool>(),
            value in json(),
        ) {
            // The valid body's text with one more member named like one it has.
            let valid = valid_body().to_string();
            let body = if in_a_line {
                valid.replacen("[{", &format!("[{{{}:{value},", Value::from(line_field)), 1)
            } else {
                format!("{{{}:{value},{}", Value::from(field), &valid[1..])
            };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let api = new_api();
            let (status, json) = runtime.block_on(call(&api, post("application/json", body)));
            prop_assert_eq!(status, StatusCode::BAD_REQUEST);
            prop_assert_eq!(&json["error"], "malformed_json");
            prop_assert!(json["message"].as_str().unwrap_or_default().contains("duplicate key"), "{json}");
            prop_assert!(api.publisher().published.lock().unwrap().is_empty());
        }

        #[test]
        fn whatever_price_a_client_sends_the_catalogue_s_is_charged_or_nothing(
            displayed in prop::collection::vec(prop::option::of(-10i64..20_000), 2),
            quantities in prop::collection::vec(1i64..50, 2),
        ) {
            let mut body = valid_body();
            for (i, (price, quantity)) in displayed.iter().zip(&quantities).enumerate() {
                let line = body["items"][i].as_object_mut().unwrap();
                line.insert("quantity".into(), (*quantity).into());
                match price {
                    Some(price) => line.insert("unitPriceMinor".into(), (*price).into()),
                    None => line.remove("unitPriceMinor"),
                };
            }
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let api = new_api();
            let (status, json) =
                runtime.block_on(call(&api, post("application/json", body.to_string())));
            let published = api.publisher().published.lock().unwrap().clone();
            let catalogue_total = quantities[0] * 4999 + quantities[1] * 1999;
            let matches = displayed.iter().zip([4999, 1999]).all(|(d, c)| d.is_none_or(|d| d == c));
            match status {
                StatusCode::ACCEPTED => {
                    prop_assert!(matches, "accepted a foreign price: {body}");
                    prop_assert_eq!(published[0].data.total_minor, catalogue_total);
                }
                StatusCode::CONFLICT => {
                    prop_assert!(!matches);
                    prop_assert_eq!(&json["error"], "price_changed");
                    prop_assert!(published.is_empty());
                }
                other => {
                    // Only a negative displayed price is invalid.
                    prop_assert_eq!(other, StatusCode::UNPROCESSABLE_ENTITY);
                    prop_assert!(displayed.iter().flatten().any(|d| *d < 0), "{json}");
                    prop_assert!(published.is_empty());
                }
            }
        }

        #[test]
        fn a_line_that_is_not_an_object_is_422_and_publishes_nothing(
            line in 0..2usize,
            value in json().prop_filter("not an object", |v| !v.is_object()),
        ) {
            let mut body = valid_body();
            body["items"][line] = value;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let api = new_api();
            let (status, json) =
                runtime.block_on(call(&api, post("application/json", body.to_string())));
            prop_assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            prop_assert_eq!(&json["details"][0]["field"], &format!("items[{line}]"));
            prop_assert!(api.publisher().published.lock().unwrap().is_empty());
        }

        #[test]
        fn idempotency_keys_are_read_exactly_as_the_readme_defines_them(
            bare in "[!-~]{1,255}".prop_filter("a bare token", |k| !k.starts_with('"')),
            quoted in "[!#-\\[\\]-~]{1,255}",
            spaced in "[!-~]{1,100} [!-~]{1,100}",
            long in "[!-~]{256,300}",
            control in "[!-~]{1,10}[\\x00-\\x1f\\x7f][!-~]{1,10}",
        ) {
            // A bare token or a structured-field string of visible ASCII, 1 to 255 of them.
            prop_assert_eq!(parse_idempotency_key(bare.as_bytes()), Ok(bare.clone()));
            let quoted_form = format!("\"{quoted}\"");
            prop_assert_eq!(parse_idempotency_key(quoted_form.as_bytes()), Ok(quoted.clone()));
            // Nothing else: a space or a control character inside, more than 255 characters.
            prop_assert!(parse_idempotency_key(spaced.as_bytes()).is_err(), "{spaced:?}");
            let quoted_spaced = format!("\"{spaced}\"");
            prop_assert!(parse_idempotency_key(quoted_spaced.as_bytes()).is_err(), "{quoted_spaced:?}");
            prop_assert!(parse_idempotency_key(long.as_bytes()).is_err());
            prop_assert!(parse_idempotency_key(control.as_bytes()).is_err(), "{control:?}");
        }
    }
}

/// `request` as the JWT authorizer hands it on for the customer `sub` (with `email`, when given).
fn signed_in(
    request: HttpRequest<Vec<u8>>,
    route: &str,
    sub: &str,
    email: Option<&str>,
) -> Request {
    let claims = std::iter::once(("sub", sub))
        .chain(email.map(|email| ("email", email)))
        .map(|(name, value)| (name.to_owned(), value.to_owned()));
    let authorizer = local_runtime::gateway::jwt_context(claims, None);
    local_runtime::gateway::authorized_request_for(route, request, Some(authorizer))
}

fn post_as(sub: &str, email: Option<&str>, body: &Value, key: Option<&str>) -> Request {
    let mut request = HttpRequest::builder()
        .method("POST")
        .uri("/orders")
        .header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header(IDEMPOTENCY_HEADER, key);
    }
    let request = request.body(body.to_string().into_bytes()).unwrap();
    signed_in(request, PLACE_ORDER, sub, email)
}

fn order_path_as(route: &str, order_id: &str, sub: &str) -> Request {
    let (method, template) = route.split_once(' ').unwrap();
    let request = HttpRequest::builder()
        .method(method)
        .uri(template.replace("{orderId}", order_id))
        .body(Vec::new())
        .unwrap();
    signed_in(request, route, sub, None)
}

/// The order body a signed-in customer sends: no customer in it.
fn anonymous_body() -> Value {
    let mut body = valid_body();
    let fields = body.as_object_mut().unwrap();
    fields.remove("customerId");
    fields.remove("customerEmail");
    body
}

#[tokio::test]
async fn the_customer_is_the_token_never_the_body() {
    let api = token_api();
    let (status, body) = call(
        &api,
        post_as("sub-ada", Some("ada@example.com"), &anonymous_body(), None),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let event = api.publisher().published.lock().unwrap()[0].clone();
    assert_eq!(event.data.customer_id, "sub-ada");
    assert_eq!(event.data.customer_email, "ada@example.com");

    // A body that names a customer, any customer, is refused and nothing is published.
    let (status, body) = call(
        &api,
        post_as("sub-ada", Some("ada@example.com"), &valid_body(), None),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(fields, ["customerId", "customerEmail"]);
    assert_eq!(api.publisher().published.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn without_a_subject_or_an_email_claim_the_answer_is_401() {
    let api = token_api();
    let (status, body) = call(&api, post("application/json", anonymous_body().to_string())).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, body) = call(&api, post_as("sub-ada", None, &anonymous_body(), None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"].as_str().unwrap().contains("ID token"),
        "{body}"
    );
    let (status, _) = call(&api, order_path(GET_ORDER, &Uuid::now_v7().to_string())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(api.publisher().published.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_customer_sees_and_cancels_only_their_own_orders() {
    let api = token_api();
    let (_, body) = call(
        &api,
        post_as("sub-ada", Some("ada@example.com"), &anonymous_body(), None),
    )
    .await;
    let order_id = body["orderId"].as_str().unwrap().to_owned();

    let (status, body) = call(&api, order_path_as(GET_ORDER, &order_id, "sub-ada")).await;
    assert_eq!(
        (status, body["orderId"].as_str()),
        (StatusCode::OK, Some(order_id.as_str()))
    );
    // Another customer gets exactly the answer an unknown id gets.
    let unknown = Uuid::now_v7().to_string();
    for route in [GET_ORDER, CANCEL_ORDER] {
        let (status, body) = call(&api, order_path_as(route, &order_id, "sub-eve")).await;
        let (unknown_status, unknown_body) =
            call(&api, order_path_as(route, &unknown, "sub-eve")).await;
        assert_eq!(
            (status, body["error"].clone()),
            (StatusCode::NOT_FOUND, "order_not_found".into())
        );
        assert_eq!(status, unknown_status);
        assert_eq!(
            body["message"].as_str().unwrap().replace(&order_id, "ID"),
            unknown_body["message"]
                .as_str()
                .unwrap()
                .replace(&unknown, "ID")
        );
    }
    assert!(api.publisher().cancellations.lock().unwrap().is_empty());
    let (status, _) = call(&api, order_path_as(CANCEL_ORDER, &order_id, "sub-ada")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

/// `GET /orders` with `query` (e.g. `limit=2`) for the customer `sub`.
fn list_as(sub: &str, query: &str) -> Request {
    let request = HttpRequest::builder()
        .method("GET")
        .uri(format!("/orders?{query}"))
        .body(Vec::new())
        .unwrap();
    signed_in(request, LIST_ORDERS, sub, None)
}

#[tokio::test]
async fn a_customer_lists_their_own_orders_newest_first_a_page_at_a_time() {
    let api = token_api();
    let mut placed = Vec::new();
    for customer in [
        "sub-ada", "sub-eve", "sub-ada", "sub-ada", "sub-eve", "sub-ada", "sub-ada",
    ] {
        let email = format!("{customer}@example.com");
        let request = post_as(customer, Some(&email), &anonymous_body(), None);
        let response = api.handle(request).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        let order_id = body["orderId"].as_str().unwrap().to_owned();
        assert_eq!(
            response.headers()[header::LOCATION],
            format!("/orders/{order_id}").as_str()
        );
        if customer == "sub-ada" {
            placed.push(order_id);
        }
        // Orders placed within one microsecond would tie; customers do not click that fast.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    placed.reverse();

    let mut listed = Vec::new();
    let mut query = "limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, body) = call(&api, list_as("sub-ada", &query)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        let orders = body["orders"].as_array().unwrap();
        assert!(orders.len() <= 2);
        for order in orders {
            assert_eq!(order["customerId"], "sub-ada");
            listed.push(order["orderId"].as_str().unwrap().to_owned());
        }
        match body["nextCursor"].as_str() {
            Some(cursor) => query = format!("limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(listed, placed, "newest first, each once, none of eve's");
    assert_eq!(pages, 3, "5 orders in pages of 2, and no empty last page");
    let (_, first) = call(&api, list_as("sub-ada", "")).await;
    assert_eq!(first["orders"].as_array().unwrap().len(), 5);
    assert!(first.get("nextCursor").is_none());
    let (_, nobody) = call(&api, list_as("sub-nobody", "")).await;
    assert_eq!(nobody, serde_json::json!({"orders": []}));
}

#[tokio::test]
async fn a_bad_limit_or_cursor_is_400_naming_it() {
    let api = token_api();
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("cursor=not-a-cursor", "invalid_cursor"),
        ("cursor=", "invalid_cursor"),
    ] {
        let (status, body) = call(&api, list_as("sub-ada", query)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}: {body}"
        );
    }
    // Service callers name the customer.
    let (status, body) = call(&new_api(), order_path(LIST_ORDERS, "")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("customer_id_missing"))
    );
}

#[tokio::test]
async fn two_customers_with_the_same_idempotency_key_place_two_orders() {
    let api = token_api();
    let body = anonymous_body();
    let (_, ada) = call(
        &api,
        post_as(
            "sub-ada",
            Some("ada@example.com"),
            &body,
            Some("checkout-1"),
        ),
    )
    .await;
    let (status, bob) = call(
        &api,
        post_as(
            "sub-bob",
            Some("bob@example.com"),
            &body,
            Some("checkout-1"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_ne!(ada["orderId"], bob["orderId"]);
    let published = api.publisher().published.lock().unwrap();
    let customers: Vec<&str> = published
        .iter()
        .map(|e| e.data.customer_id.as_str())
        .collect();
    assert_eq!(customers, ["sub-ada", "sub-bob"]);
}

#[tokio::test]
async fn the_catalogue_prices_every_order_never_the_client() {
    // Without displayed prices the order is charged the catalogue's.
    let api = new_api();
    let mut body = valid_body();
    for line in body["items"].as_array_mut().unwrap() {
        line.as_object_mut().unwrap().remove("unitPriceMinor");
    }
    let (status, _) = call(&api, post("application/json", body.to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let event = api.publisher().published.lock().unwrap()[0].clone();
    assert_eq!(event.data.total_minor, 2 * 4999 + 1999);
    assert_eq!(event.data.lines[1].unit_price_minor, 1999);

    // A displayed price that is not the catalogue's (one cent for a keyboard): 409 with the
    // current prices of every line, and nothing ordered.
    let mut cheap = valid_body();
    cheap["items"][0]["unitPriceMinor"] = 1.into();
    let (status, body) = call(&api, post("application/json", cheap.to_string())).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("price_changed"))
    );
    assert_eq!(
        body["prices"],
        serde_json::json!([
            {"sku": "SKU-KEYBOARD", "unitPriceMinor": 4999, "currency": "EUR"},
            {"sku": "SKU-MOUSE", "unitPriceMinor": 1999, "currency": "EUR"}
        ])
    );
    assert_eq!(api.publisher().published.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unknown_sku_or_another_currency_is_422() {
    let mut unknown = valid_body();
    unknown["items"][1]["sku"] = "SKU-NOTHING".into();
    let (status, body) = status_of(unknown).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["field"], "items[1].sku");

    let mut dollars = valid_body();
    dollars["items"][1] = serde_json::json!({"sku": "SKU-CABLE", "quantity": 1});
    let (status, body) = status_of(dollars).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["field"], "currency", "{body}");
}

/// An API (customers in the body) pricing from `catalogue` through the instance's cache.
fn cached_api(catalogue: &Changing) -> Api {
    OrderApi::new(
        MemoryPublisher::default(),
        MemoryIdempotency::default(),
        MemoryEffectStore::new(order_state::OrderItem::KEY),
        Arc::new(CachedCatalogue::new(catalogue.clone(), CATALOGUE_CACHE)),
    )
    .customers_from(IdentitySource::Body)
}

#[tokio::test]
async fn a_keyed_retry_gets_its_stored_answer_whatever_the_prices_are_now() {
    let prices = Changing::default();
    prices.set(&[("SKU-KEYBOARD", 4999, "EUR"), ("SKU-MOUSE", 1999, "EUR")]);
    let api = cached_api(&prices);
    let first = api.handle(with_key("attempt-1", &valid_body())).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let asked = prices.asked();

    // The keyboard's price goes up; the retry of the accepted order is still that order.
    prices.set(&[("SKU-KEYBOARD", 5999, "EUR"), ("SKU-MOUSE", 1999, "EUR")]);
    let retry = api.handle(with_key("attempt-1", &valid_body())).await;
    assert_eq!(retry.status(), StatusCode::ACCEPTED);
    assert_eq!(retry.headers()[REPLAYED_HEADER], "true");
    assert_eq!(retry.body().as_ref(), first.body().as_ref());
    assert_eq!(prices.asked(), asked, "a replay reads no catalogue");
    assert_eq!(api.publisher().published.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_remembered_price_never_refuses_what_the_catalogue_accepts() {
    let prices = Changing::default();
    prices.set(&[("SKU-KEYBOARD", 4999, "EUR"), ("SKU-MOUSE", 1999, "EUR")]);
    let api = cached_api(&prices);
    let (status, _) = call(&api, post("application/json", valid_body().to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // The shop raises the keyboard's price and a client displays the new one while the
    // instance still remembers the old: the order is priced again on the catalogue and accepted.
    prices.set(&[("SKU-KEYBOARD", 5999, "EUR"), ("SKU-MOUSE", 1999, "EUR")]);
    let mut new_price = valid_body();
    new_price["items"][0]["unitPriceMinor"] = 5999.into();
    let (status, body) = call(&api, post("application/json", new_price.to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let event = api.publisher().published.lock().unwrap()[1].clone();
    assert_eq!(event.data.total_minor, 2 * 5999 + 1999);

    // A price that is neither: 409 with the current prices, as without the cache.
    let mut wrong = valid_body();
    wrong["items"][0]["unitPriceMinor"] = 1.into();
    let (status, body) = call(&api, post("application/json", wrong.to_string())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["prices"][0]["unitPriceMinor"], 5999);

    // A sku added to the catalogue after the instance started is sold at once.
    prices.set(&[
        ("SKU-KEYBOARD", 5999, "EUR"),
        ("SKU-MOUSE", 1999, "EUR"),
        ("SKU-DOCK", 12999, "EUR"),
    ]);
    let mut dock = valid_body();
    dock["items"][1] = serde_json::json!({"sku": "SKU-DOCK", "quantity": 1});
    dock["items"][0]["unitPriceMinor"] = 5999.into();
    let (status, body) = call(&api, post("application/json", dock.to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(api.publisher().published.lock().unwrap().len(), 3);
}
