//! The live view: a page served beside the local HTTP API (same origin, path [`PREFIX`]) that
//! draws the system as the template defines it and updates itself from server-sent events.
//!
//! | path | what |
//! |---|---|
//! | `GET /live/` | the page (HTML, CSS and script in one file, nothing from the internet) |
//! | `GET /live/events` | server-sent events: one [`sample::Picture`] as JSON per change |
//! | `POST /live/token` | `{"email"}` of a demo customer: `{"token"}`, their ID token from the local user pool |
//!
//! Pictures are taken every [`sample::PERIOD`] while at least one page listens, and not at all
//! otherwise: each costs one GetQueueAttributes per queue (per DLQ every 2 s) and every other
//! one a BatchGetItem of the latest orders on the emulator; the metrics are read in-process, and
//! the latest orders are those whose records the local event source mapping handed the order
//! service.

pub mod browser;
pub mod picture;
pub mod sample;

use std::convert::Infallible;
use std::sync::{Arc, Weak};

use futures::StreamExt;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use local_runtime::customers::CustomerPool;
use local_runtime::http::StreamedResponse;
use local_runtime::runtime::{LocalRuntime, Page};
use tokio::sync::watch;

use sample::{Picture, Sampler};

/// Where the view is served, beside the API.
pub const PREFIX: &str = "/live";

const PAGE: &str = include_str!("page.html");

/// Serves the live view on `runtime`'s API address until it shuts down; answers its URL.
/// `customers` are the e-mail addresses the page may sign in as.
pub fn serve(runtime: &LocalRuntime, customers: Vec<String>) -> String {
    let (pictures, _) = watch::channel(None::<Arc<String>>);
    let pool = runtime.shared_customers();
    let catalogue = serde_json::json!(crate::shop::CATALOGUE
        .iter()
        .map(|(sku, price, _)| serde_json::json!({"sku": sku, "unitPriceMinor": price}))
        .collect::<Vec<_>>());
    let view = Arc::new(View {
        pictures,
        pool,
        customers,
        catalogue,
    });
    tokio::spawn(take_pictures(Sampler::new(runtime), Arc::downgrade(&view)));
    let page: Page = Arc::new(move |request| {
        let view = view.clone();
        Box::pin(async move { view.answer(request).await })
    });
    runtime.mount(PREFIX, page);
    format!("{}{PREFIX}/", runtime.api_url())
}

/// Takes a picture every period while someone listens, and sends it if it changed. Ends when
/// the view is dropped (the runtime shut down).
async fn take_pictures(mut sampler: Sampler, view: Weak<View>) {
    let mut tick = tokio::time::interval(sample::PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // What the last picture sent showed, its time aside.
    let mut shown = None;
    loop {
        tick.tick().await;
        let Some(view) = view.upgrade() else { return };
        if view.pictures.receiver_count() == 0 {
            continue;
        }
        let picture: Picture = sampler.take().await;
        let content = serde_json::to_string(&(
            &picture.queues,
            &picture.services,
            &picture.business,
            &picture.latest,
        ))
        .ok();
        if content == shown {
            continue;
        }
        if let Ok(json) = serde_json::to_string(&picture) {
            view.pictures.send_replace(Some(Arc::new(json)));
            shown = content;
        }
    }
}

struct View {
    pictures: watch::Sender<Option<Arc<String>>>,
    pool: Option<Arc<CustomerPool>>,
    customers: Vec<String>,
    catalogue: serde_json::Value,
}

impl View {
    async fn answer(&self, request: hyper::Request<Incoming>) -> StreamedResponse {
        let path = request.uri().path().trim_end_matches('/');
        let method = request.method().as_str();
        match (method, path.strip_prefix(PREFIX).unwrap_or(path)) {
            ("GET", "") => respond(200, "text/html; charset=utf-8", PAGE.to_owned()),
            ("GET", "/events") => self.events(),
            ("GET", "/setup") => {
                let setup = serde_json::json!({
                    "customers": self.customers,
                    "catalogue": self.catalogue,
                    "signIn": self.pool.is_some(),
                });
                respond(200, "application/json", setup.to_string())
            }
            ("POST", "/token") => self.token(request).await,
            _ => problem(404, "no such page"),
        }
    }

    /// Server-sent events: the latest picture at once, then every change.
    fn events(&self) -> StreamedResponse {
        let receiver = self.pictures.subscribe();
        let stream =
            futures::stream::unfold((receiver, true), |(mut receiver, first)| async move {
                if !first && receiver.changed().await.is_err() {
                    return None;
                }
                let picture = receiver.borrow_and_update().clone();
                let event = match picture {
                    Some(json) => format!("data: {json}\n\n"),
                    // Nothing taken yet: a comment keeps the connection open.
                    None => ": waiting for the first picture\n\n".to_owned(),
                };
                Some((event, (receiver, false)))
            })
            .map(|event| Ok::<_, Infallible>(Frame::data(Bytes::from(event))));
        let mut response = hyper::Response::new(BodyExt::boxed(StreamBody::new(stream)));
        let headers = response.headers_mut();
        headers.insert(
            "content-type",
            http::HeaderValue::from_static("text/event-stream"),
        );
        headers.insert("cache-control", http::HeaderValue::from_static("no-cache"));
        response
    }

    /// An ID token for a demo customer, as signing in to the local user pool gives.
    async fn token(&self, request: hyper::Request<Incoming>) -> StreamedResponse {
        let Some(pool) = &self.pool else {
            return problem(404, "the API takes no tokens (ApiAuthorization=NONE)");
        };
        let Ok(body) = Limited::new(request.into_body(), 4096).collect().await else {
            return problem(400, "the body could not be read");
        };
        let email = serde_json::from_slice::<serde_json::Value>(&body.to_bytes())
            .ok()
            .and_then(|v| v["email"].as_str().map(str::to_owned));
        let Some(email) = email else {
            return problem(400, "the body must be {\"email\": ...}");
        };
        if !self.customers.contains(&email) {
            return problem(403, "only the demo's customers sign in here");
        }
        match pool.token(&email).await {
            Ok(token) => respond(
                200,
                "application/json",
                serde_json::json!({ "token": token }).to_string(),
            ),
            Err(e) => problem(502, &format!("the user pool refused: {e}")),
        }
    }
}

fn respond(status: u16, content_type: &'static str, body: String) -> StreamedResponse {
    local_runtime::http::respond(status, content_type, body).map(|b: Full<Bytes>| b.boxed())
}

fn problem(status: u16, message: &str) -> StreamedResponse {
    respond(
        status,
        "application/json",
        serde_json::json!({ "message": message }).to_string(),
    )
}
