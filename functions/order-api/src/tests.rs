use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use lambda_http::http::Request as HttpRequest;
use serde_json::Value;

use super::*;

/// Keeps published events; refuses every publish while `down` is set.
#[derive(Default)]
struct MemoryPublisher {
    published: Mutex<Vec<OrderPlacedEvent>>,
    down: AtomicBool,
}

impl EventPublisher for MemoryPublisher {
    async fn publish(&self, event: &OrderPlacedEvent) -> Result<(), PublishError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PublishError("broker unavailable".into()));
        }
        self.published.lock().unwrap().push(event.clone());
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

fn post(content_type: &str, body: impl Into<Vec<u8>>) -> Request {
    HttpRequest::builder()
        .method("POST")
        .uri("/orders")
        .header("content-type", content_type)
        .body(Body::Binary(body.into()))
        .unwrap()
}

async fn call(api: &OrderApi<MemoryPublisher>, request: Request) -> (StatusCode, Value) {
    let response = api.handle(request).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    (response.status(), body)
}

async fn status_of(body: Value) -> (StatusCode, Value) {
    let api = OrderApi::new(MemoryPublisher::default());
    call(&api, post("application/json", body.to_string())).await
}

#[tokio::test]
async fn a_valid_order_is_published_and_accepted() {
    let api = OrderApi::new(MemoryPublisher::default());
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

#[tokio::test]
async fn transport_problems_get_their_codes() {
    let api = OrderApi::new(MemoryPublisher::default());
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

    let get = HttpRequest::builder()
        .method("GET")
        .uri("/orders")
        .body(Body::Empty)
        .unwrap();
    assert_eq!(call(&api, get).await.0, StatusCode::METHOD_NOT_ALLOWED);
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
    let api = OrderApi::new(MemoryPublisher::default());
    api.publisher().down.store(true, Ordering::SeqCst);
    let response = api
        .handle(post("application/json", valid_body().to_string()))
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert!(api.publisher().published.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_sample_api_gateway_event_is_accepted() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/apigw-post-orders.json"
    );
    let request = lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let api = OrderApi::new(MemoryPublisher::default());
    let response = api.handle(request).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()[CORRELATION_HEADER], "demo-request-1");
    assert_eq!(
        api.publisher().published.lock().unwrap()[0].correlationid,
        "demo-request-1"
    );
}
