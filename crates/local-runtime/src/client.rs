//! A small HTTP client for the local API (the demo and the end-to-end tests use it).

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// An HTTP answer, with how long it took.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub elapsed: Duration,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one request; `headers` are added as given.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Answer, Box<dyn std::error::Error + Send + Sync>> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into()))?;
    let started = Instant::now();
    let response = client.request(request).await?;
    let elapsed = started.elapsed();
    let (parts, body) = response.into_parts();
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await?.to_bytes(),
        elapsed,
    })
}

/// `POST {api}/orders` with a JSON body, as the customer whose `Authorization` header value
/// (`Bearer <token>`) is given.
pub async fn post_order(
    api: &str,
    authorization: Option<&str>,
    body: &serde_json::Value,
) -> Result<Answer, Box<dyn std::error::Error + Send + Sync>> {
    let mut headers = vec![("content-type", "application/json")];
    headers.extend(authorization.map(|value| ("authorization", value)));
    send("POST", &format!("{api}/orders"), &headers, body.to_string()).await
}
