//! A fault-injecting proxy between the functions and the AWS endpoint: answers a share of calls
//! with throttling or 5xx errors, either before the call reaches AWS (nothing happened) or after
//! (it happened, but the answer is lost). The SDK's retry configuration has to absorb them, and
//! the idempotency has to absorb the repeats of calls that had succeeded.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

use crate::sdk::Endpoints;
use tokio::task::JoinHandle;

/// Shares of calls that fail.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultRates {
    /// Answered with an error without reaching AWS.
    pub before: f64,
    /// Forwarded to AWS, then answered with an error instead of AWS's answer.
    pub after: f64,
}

/// Calls seen by the proxy.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub forwarded: AtomicU64,
    pub failed_before: AtomicU64,
    pub failed_after: AtomicU64,
}

/// A running proxy; dropping the shutdown sender stops it.
pub struct FaultProxy {
    address: SocketAddr,
    rates: Arc<Mutex<FaultRates>>,
    counts: Arc<FaultCounts>,
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Shared {
    upstream: String,
    /// Per-service upstreams (by SigV4 signing name), as the SDK itself would route the calls
    /// without the proxy.
    service_upstreams: Vec<(&'static str, String)>,
    client: HttpClient,
    rates: Arc<Mutex<FaultRates>>,
    counts: Arc<FaultCounts>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards each call to its service's endpoint in
    /// `upstreams` (`http://` endpoints).
    pub async fn start(
        upstreams: &Endpoints,
        rates: FaultRates,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<(Self, JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let rates = Arc::new(Mutex::new(rates));
        let counts = Arc::new(FaultCounts::default());
        let shared = Arc::new(Shared {
            upstream: upstreams.default.trim_end_matches('/').to_owned(),
            service_upstreams: [
                ("dynamodb", "DynamoDB"),
                ("sns", "SNS"),
                ("sqs", "SQS"),
                ("ses", "SESv2"),
            ]
            .into_iter()
            .map(|(signing_name, service)| {
                let url = upstreams.of(service).trim_end_matches('/').to_owned();
                (signing_name, url)
            })
            .collect(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            rates: rates.clone(),
            counts: counts.clone(),
        });
        let task = crate::http::serve(listener, shutdown, move |request| {
            let shared = shared.clone();
            async move { shared.relay(request).await }
        });
        Ok((
            Self {
                address,
                rates,
                counts,
            },
            task,
        ))
    }

    /// The endpoint URL to give the functions' SDK clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn set_rates(&self, rates: FaultRates) {
        *self.rates.lock().unwrap_or_else(|p| p.into_inner()) = rates;
    }

    pub fn counts(&self) -> &FaultCounts {
        &self.counts
    }
}

impl Shared {
    /// The upstream for the service a request is signed for (`Credential=.../<service>/...`).
    fn upstream_of(&self, headers: &http::HeaderMap) -> &str {
        let service = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|credential| credential.split('/').nth(3));
        self.service_upstreams
            .iter()
            .find(|(name, _)| Some(*name) == service)
            .map_or(&self.upstream, |(_, url)| url)
    }

    async fn relay(&self, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let rates = *self.rates.lock().unwrap_or_else(|p| p.into_inner());
        let target = request
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if rand::random::<f64>() < rates.before {
            self.counts.failed_before.fetch_add(1, Ordering::Relaxed);
            return fault(&target);
        }
        let (mut parts, body) = request.into_parts();
        let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
            return fault(&target);
        };
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let Ok(uri) = format!("{}{path}", self.upstream_of(&parts.headers)).parse() else {
            return fault(&target);
        };
        parts.uri = uri;
        let forwarded = self
            .client
            .request(hyper::Request::from_parts(parts, Full::new(body)))
            .await;
        self.counts.forwarded.fetch_add(1, Ordering::Relaxed);
        let Ok(response) = forwarded else {
            return fault(&target);
        };
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        // SES has no idempotency key: a lost answer to SendEmail makes the SDK send the e-mail
        // again, the one duplicate this system documents rather than prevents. Not injected.
        let sends_email = target.is_empty() && path.starts_with("/v2/email/outbound-emails");
        if !sends_email && rand::random::<f64>() < rates.after {
            self.counts.failed_after.fetch_add(1, Ordering::Relaxed);
            return fault(&target);
        }
        hyper::Response::from_parts(parts, Full::new(body))
    }
}

/// A throttling error in the service's own protocol, or a 503, half and half.
fn fault(target: &str) -> hyper::Response<Full<Bytes>> {
    let throttle = rand::random::<bool>();
    let (status, content_type, body) = if !throttle {
        (
            503,
            "text/plain",
            "Service Unavailable (injected)".to_owned(),
        )
    } else if target.starts_with("DynamoDB_") {
        (
            400,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput (injected)"}"#.to_owned(),
        )
    } else if target.starts_with("AmazonSQS") {
        (
            400,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.sqs#RequestThrottled","message":"Request throttled (injected)"}"#.to_owned(),
        )
    } else {
        (
            400,
            "text/xml",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded (injected)</Message></Error><RequestId>injected</RequestId></ErrorResponse>".to_owned(),
        )
    };
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    if throttle && !target.starts_with("DynamoDB_") && !target.starts_with("AmazonSQS") {
        // REST-JSON services (SES v2) read the error type from this header.
        response.headers_mut().insert(
            "x-amzn-errortype",
            http::HeaderValue::from_static("TooManyRequestsException"),
        );
    }
    response
}
