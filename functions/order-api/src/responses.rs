//! The JSON answers every route shares: each error names its problem in `error` (a code) and
//! `message` (for people).

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::{CurrentPrice, FieldProblem, RETRY_AFTER_SECONDS};

/// 503 with `Retry-After`: nothing was accepted, the client should try again.
pub(crate) fn unavailable(code: &str, detail: &str) -> Response<Body> {
    tracing::warn!(%code, %detail, "answering 503");
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        code,
        "the request could not be completed; nothing was accepted, retry later",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, RETRY_AFTER_SECONDS.into());
    response
}

pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(status, json!({"error": code, "message": message}))
}

pub(crate) fn invalid(problems: &[FieldProblem]) -> Response<Body> {
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

/// 401: the request names no customer the API can trust (see [`crate::identity`]).
pub(crate) fn unauthorized(problem: &str) -> Response<Body> {
    tracing::warn!(%problem, "answering 401");
    error(StatusCode::UNAUTHORIZED, "unauthorized", problem)
}

/// 409: the client showed other prices than the catalogue's; the current ones, to show again.
pub(crate) fn prices_changed(current: &[CurrentPrice]) -> Response<Body> {
    let listed: Vec<String> = current
        .iter()
        .map(|p| format!("{} {} {}", p.sku, p.unit_price_minor, p.currency))
        .collect();
    json_response(
        StatusCode::CONFLICT,
        json!({
            "error": "price_changed",
            "message": format!("the prices are now: {}; nothing was ordered", listed.join(", ")),
            "prices": current,
        }),
    )
}
