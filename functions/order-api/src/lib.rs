//! The order API: `POST /orders` validates an order, publishes `OrderPlaced`, and answers
//! `202 Accepted` as soon as SNS acknowledged the publish. It never calls the other services.
//!
//! | answer | when |
//! |---|---|
//! | 202 `{"orderId", "status": "ACCEPTED"}` | the event was published |
//! | 400 | the body is not JSON |
//! | 404 / 405 | another path / method |
//! | 413 | the body is over 64 KiB |
//! | 415 | the content type is not `application/json` |
//! | 422 | the order is invalid; `details` names each field and its problem |
//! | 503 + `Retry-After` | the publish failed; nothing was published |

use std::future::Future;
use std::time::Duration;

use lambda_http::http::{header, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use lambda_kit::consumer::{ConfigError, FunctionEnv};
use order_events::{attribute, OrderPlacedEvent};
use serde_json::json;
use tracing::Instrument;
use uuid::Uuid;

mod validation;
pub use validation::{validate, FieldProblem, OrderRequest, MAX_LINES};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Seconds a client should wait before retrying after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;
/// Request header carrying a caller-chosen correlation id (echoed in the response).
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Where `OrderPlaced` events go.
pub trait EventPublisher: Send + Sync {
    /// Publishes one event; Ok once the broker has durably accepted it.
    fn publish(
        &self,
        event: &OrderPlacedEvent,
    ) -> impl Future<Output = Result<(), PublishError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("publish failed: {0}")]
pub struct PublishError(pub String);

/// Publishes to an SNS topic with the contract's message attributes.
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsPublisher {
    /// A publisher whose calls give up after `PUBLISH_TIMEOUT` (retries included), so the API
    /// answers 503 instead of hanging until the gateway's own timeout.
    pub fn new(sdk: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(PUBLISH_TIMEOUT)
            .build();
        let config = aws_sdk_sns::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .build();
        Self {
            client: aws_sdk_sns::Client::from_conf(config),
            topic_arn: topic_arn.into(),
        }
    }
}

/// Longest a publish may take, retries included.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

impl EventPublisher for SnsPublisher {
    async fn publish(&self, event: &OrderPlacedEvent) -> Result<(), PublishError> {
        use aws_sdk_sns::types::MessageAttributeValue;
        let text = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| PublishError(e.to_string()))
        };
        let attributes = event.message_attributes();
        let body = serde_json::to_string(event).map_err(|e| PublishError(e.to_string()))?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(body)
            .message_attributes(attribute::EVENT_TYPE, text(&attributes.event_type)?)
            .message_attributes(attribute::EVENT_VERSION, text(&attributes.event_version)?)
            .message_attributes(attribute::CORRELATION_ID, text(&attributes.correlation_id)?)
            .send()
            .await
            .map_err(|e| PublishError(aws_sdk_sns::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

/// The order API handler.
pub struct OrderApi<P> {
    publisher: P,
}

impl OrderApi<SnsPublisher> {
    /// Reads `TOPIC_ARN`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        Ok(Self::new(SnsPublisher::new(sdk, env.require("TOPIC_ARN")?)))
    }
}

impl<P: EventPublisher> OrderApi<P> {
    pub fn new(publisher: P) -> Self {
        Self { publisher }
    }

    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    /// Answers one HTTP request. Every answer, including errors, is JSON.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let correlation_id = correlation_id(&request);
        let mut response = match (request.method(), request.uri().path()) {
            (&Method::POST, "/orders") => self.place_order(&request, &correlation_id).await,
            (_, "/orders") => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "use POST /orders",
            ),
            (_, path) => error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no route for {path}"),
            ),
        };
        if let Ok(value) = correlation_id.parse() {
            response.headers_mut().insert(CORRELATION_HEADER, value);
        }
        response
    }

    async fn place_order(&self, request: &Request, correlation_id: &str) -> Response<Body> {
        if !is_json(request) {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Content-Type must be application/json",
            );
        }
        let body: &[u8] = request.body().as_ref();
        if body.len() > MAX_BODY_BYTES {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                &format!(
                    "body is {} bytes; the limit is {MAX_BODY_BYTES}",
                    body.len()
                ),
            );
        }
        let value: serde_json::Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    &format!("body is not valid JSON: {e}"),
                )
            }
        };
        let order = match validate(value, Uuid::now_v7()) {
            Ok(order) => order,
            Err(problems) => return invalid(&problems),
        };
        let event = OrderPlacedEvent::new(order, correlation_id);
        let span = event.span();
        let published = self
            .publisher
            .publish(&event)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        match published {
            Ok(()) => {
                tracing::info!(total_minor = event.data.total_minor, "order accepted");
                json_response(
                    StatusCode::ACCEPTED,
                    json!({"orderId": event.order_id(), "status": "ACCEPTED"}),
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "publish failed; order not accepted");
                let mut response = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "publish_failed",
                    "the order could not be recorded; nothing was accepted, retry later",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, RETRY_AFTER_SECONDS.into());
                response
            }
        }
    }
}

fn is_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// The caller's `X-Correlation-Id` when it is a sane token, otherwise a new UUIDv7.
fn correlation_id(request: &Request) -> String {
    request
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::now_v7().to_string())
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(status, json!({"error": code, "message": message}))
}

fn invalid(problems: &[FieldProblem]) -> Response<Body> {
    let summary: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.problem))
        .collect();
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "error": "validation_failed",
            "message": summary.join("; "),
            "details": problems,
        }),
    )
}

#[cfg(test)]
mod tests;
