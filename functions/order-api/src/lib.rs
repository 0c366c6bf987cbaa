//! The order API: `POST /orders` validates an order, publishes `OrderPlaced`, records it in the
//! orders table and answers `202 Accepted`: it never calls the other services, and the order is
//! visible (`GET /orders/{orderId}`, [`lifecycle`]) from the moment the 202 is sent.
//! `POST /orders/{orderId}/cancel` asks for a cancellation (see [`lifecycle`] for its answers);
//! `GET /orders` lists the customer's orders ([`listing`]).
//!
//! | answer | when |
//! |---|---|
//! | 202 `{"orderId", "status": "ACCEPTED"}` + `Location: /orders/{orderId}` | the event was published |
//! | 202 + `Idempotent-Replayed: true` | the same `Idempotency-Key` and body were accepted before: the stored answer, nothing published again |
//! | 400 | the body is not JSON; a malformed `Idempotency-Key`; a missing one when required |
//! | 404 | a route the template does not give this function (API Gateway answers those itself) |
//! | 409 + `Retry-After` | a request with the same `Idempotency-Key` is still in flight |
//! | 413 | the body is over 64 KiB |
//! | 415 | the content type is not `application/json` |
//! | 409 `price_changed` | a line's displayed `unitPriceMinor` is not the catalogue's: the body lists the current prices |
//! | 422 | the order is invalid (`details` names each field and its problem: an unknown sku too); or the `Idempotency-Key` was used with another body |
//! | 503 + `Retry-After` | the publish failed, or the catalogue could not be read; nothing was published, nothing written |
//!
//! Prices: each instance remembers the catalogue's prices for `CATALOGUE_CACHE_SECONDS` (10 by
//! default; 0 reads the catalogue for every order). An order is refused (409, 422) only on the
//! catalogue's current prices, read again when remembered ones refuse it; for up to that many
//! seconds after a price change, an order may still be priced at the previous price.
//!
//! Why there is no dual-write window: the order is inserted only after SNS took its event, so an
//! order whose publish failed never shows; and the order service records the same order from the
//! event, so an order whose record failed after the publish (the API answers 202 regardless, and
//! logs it) shows as soon as the order service has read its event.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lambda_http::http::{header, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use lambda_kit::consumer::{ConfigError, FunctionEnv};
use lambda_kit::effect::{DynamoEffectStore, EffectStore};
use lambda_kit::http::{BoxFuture, HttpFunction};
use lambda_kit::idempotency::{
    DynamoIdempotency, IdempotencyError, IdempotencyKey, IdempotencyStore, Idempotent, RunError,
};
use lambda_kit::spec::ServiceSpec;
pub use order_events::publish::{EventPublisher, PublishError, SnsPublisher, PUBLISH_TIMEOUT};
use order_events::{
    CancellationRequested, EventData, OrderPlaced, OrderPlacedEvent, OrderPlacedV2,
};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use uuid::Uuid;

mod cached_catalogue;
pub mod identity;
pub mod lifecycle;
mod listing;
mod responses;
pub mod strict_json;
mod validation;
pub use cached_catalogue::CachedCatalogue;
pub use catalogue::{Catalogue, DynamoCatalogue, MemoryCatalogue, Price, Prices};
use identity::IdentitySource;
use responses::{error, invalid, json_response, prices_changed, unauthorized, unavailable};
pub use validation::{
    parse, validate, CurrentPrice, FieldProblem, OrderRequest, Refusal, MAX_LINES,
};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Seconds a client should wait before retrying after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;
/// Request header carrying a caller-chosen correlation id (echoed in the response).
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The route that places an order.
pub const PLACE_ORDER: &str = "POST /orders";
/// The route that lists the customer's orders.
pub const LIST_ORDERS: &str = "GET /orders";
/// The route that shows an order.
pub const GET_ORDER: &str = "GET /orders/{orderId}";
/// The route that asks to cancel an order.
pub const CANCEL_ORDER: &str = "POST /orders/{orderId}/cancel";
/// Every route this function serves: the template routes exactly these to it.
pub const ROUTES: &[&str] = &[PLACE_ORDER, LIST_ORDERS, GET_ORDER, CANCEL_ORDER];

/// What this function is: its name (the binary, the metrics' `service`, the scope of its
/// idempotency entries) and what it announces. It owns no table: it records accepted orders in
/// the order service's (`order_state`) and reads prices from inventory's (`catalogue`).
pub const SPEC: ServiceSpec = ServiceSpec {
    name: "order-api",
    table_variable: None,
    consumes: &[],
    publishes: &[OrderPlaced::TYPE, CancellationRequested::TYPE],
};
/// The environment variable naming the orders table, where accepted orders are inserted.
pub const ORDERS_TABLE: &str = "ORDERS_TABLE";
/// Request header carrying the client's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Response header set on a replayed answer.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a request holds its idempotency key while in flight, when the invocation deadline
/// is unknown (the publish itself gives up after [`PUBLISH_TIMEOUT`]).
pub const IN_FLIGHT_LEASE: Duration = Duration::from_secs(10);
/// Completed requests a warm instance remembers without asking DynamoDB.
pub const CACHED_REQUESTS: usize = 1_000;

/// The answer to an accepted request (an order, a cancellation); what a replay returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub order_id: Uuid,
    pub status: String,
}

/// The idempotency key of a request: the client's key (within the signed-in customer's own,
/// so two customers' keys never meet), and a hash of the parsed body.
pub fn request_key(
    customer: Option<&str>,
    client_key: &str,
    body: &serde_json::Value,
) -> IdempotencyKey {
    let key = match customer {
        Some(customer) => format!("{customer}/{client_key}"),
        None => client_key.to_owned(),
    };
    IdempotencyKey::new(key, body.to_string())
}

/// Namespace of the order ids derived from idempotency keys.
const ORDER_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7266_6c6f_772d_6f72_6465_7273);

/// A new order's id: a UUIDv7, or for a request with an idempotency key, a UUIDv5 of the key
/// and the body hash. So even when a publish failed ambiguously (SNS took the event but the
/// answer was lost) and the client retries, the retry announces the same order, and the
/// consumers, keyed by order, apply it once.
pub fn order_id(key: Option<&IdempotencyKey>) -> Uuid {
    match key {
        Some(key) => Uuid::new_v5(
            &ORDER_ID_NAMESPACE,
            format!("{}\n{}", key.key, key.payload_hash).as_bytes(),
        ),
        None => Uuid::now_v7(),
    }
}

/// Reads an `Idempotency-Key` header: a structured-field string (`"..."`, as the IETF draft
/// specifies) or a bare token, 1 to 255 visible ASCII characters (`!` to `~`: no space, no
/// control character); a quoted key holds no `"` or `\`.
pub fn parse_idempotency_key(raw: &[u8]) -> Result<String, &'static str> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| "must be ASCII")?
        .trim();
    let key = match text.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .filter(|inner| !inner.contains('"') && !inner.contains('\\'))
            .ok_or("a quoted key must be one structured-field string")?,
        None => text,
    };
    if key.is_empty() || key.len() > 255 {
        return Err("must be 1 to 255 characters");
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be visible ASCII");
    }
    Ok(key.to_owned())
}

/// The order API handler.
pub struct OrderApi<P, S, O> {
    publisher: P,
    /// The major version of `OrderPlaced` it writes.
    writes: OrderPlacedVersion,
    idempotency: Idempotent<S>,
    orders: O,
    /// The prices orders are charged: the catalogue's, never the client's.
    catalogue: Arc<dyn Catalogue>,
    key_required: bool,
    identity: IdentitySource,
}

impl OrderApi<SnsPublisher, DynamoIdempotency, DynamoEffectStore> {
    /// Reads `TOPIC_ARN`, `IDEMPOTENCY_TABLE`, `ORDERS_TABLE`, `CATALOGUE_TABLE`,
    /// `CATALOGUE_CACHE_SECONDS` (default 10), `IDEMPOTENCY_KEY_REQUIRED` (default false),
    /// `CUSTOMER_IDENTITY` (`token`, the default, or `body`) and `ORDER_PLACED_VERSION` (`1`, the
    /// default, or `2`).
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        let store = DynamoIdempotency::new(
            lambda_kit::calls::dynamodb_client(sdk),
            env.require("IDEMPOTENCY_TABLE")?,
            SPEC.name,
        );
        let publisher = SnsPublisher::new(sdk, env.require(order_events::publish::TOPIC_ARN)?);
        Ok(Self::new(
            publisher,
            store,
            order_state::store_from_env(sdk, env, ORDERS_TABLE)?,
            catalogue_from_env(sdk, env)?,
        )
        .require_idempotency_key(env.parse_or("IDEMPOTENCY_KEY_REQUIRED", false)?)
        .customers_from(env.parse_or("CUSTOMER_IDENTITY", IdentitySource::Token)?)
        .writes_order_placed(env.parse_or("ORDER_PLACED_VERSION", OrderPlacedVersion::V1)?))
    }
}

/// The major version of `OrderPlaced` the API writes: v1 until every consumer reads v2, then
/// v2 (the template's `OrderPlacedVersion`; docs/architecture.md, "Events that outlive their schema").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderPlacedVersion {
    #[default]
    V1,
    V2,
}

impl std::str::FromStr for OrderPlacedVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            v if v == OrderPlaced::VERSION => Ok(Self::V1),
            v if v == OrderPlacedV2::VERSION => Ok(Self::V2),
            other => Err(format!("{other:?} is not an OrderPlaced version (1 or 2)")),
        }
    }
}

/// How long an instance remembers a price unless `CATALOGUE_CACHE_SECONDS` says otherwise.
pub const CATALOGUE_CACHE: Duration = Duration::from_secs(10);

/// The catalogue in `CATALOGUE_TABLE`, remembered for `CATALOGUE_CACHE_SECONDS` (0: not at all).
pub fn catalogue_from_env(
    sdk: &aws_config::SdkConfig,
    env: &FunctionEnv,
) -> Result<Arc<dyn Catalogue>, ConfigError> {
    let catalogue = DynamoCatalogue::from_env(sdk, env)?;
    let max_age = env
        .parse_or("CATALOGUE_CACHE_SECONDS", CATALOGUE_CACHE.as_secs())
        .map(Duration::from_secs)?;
    Ok(if max_age.is_zero() {
        Arc::new(catalogue)
    } else {
        Arc::new(CachedCatalogue::new(catalogue, max_age))
    })
}

impl<P: EventPublisher, S: IdempotencyStore, O: EffectStore> OrderApi<P, S, O> {
    /// `orders` is the order service's table, where accepted orders are inserted; `catalogue`
    /// prices them. Customers come from the token ([`Self::customers_from`] changes it).
    pub fn new(
        publisher: P,
        idempotency_store: S,
        orders: O,
        catalogue: Arc<dyn Catalogue>,
    ) -> Self {
        Self {
            publisher,
            writes: OrderPlacedVersion::default(),
            idempotency: Idempotent::new(idempotency_store).with_cache(CACHED_REQUESTS),
            orders,
            catalogue,
            key_required: false,
            identity: IdentitySource::Token,
        }
    }

    /// Writes `OrderPlaced` as `version` (v1 until every consumer reads v2).
    pub fn writes_order_placed(mut self, version: OrderPlacedVersion) -> Self {
        self.writes = version;
        self
    }

    /// Where the customer comes from: the token, or (for service callers) the body.
    pub fn customers_from(mut self, source: IdentitySource) -> Self {
        self.identity = source;
        self
    }

    /// The signed-in customer's id, when customers come from the token; a 401 when the
    /// request has no verified subject (API Gateway refuses those before they get here).
    fn owner(&self, request: &Request) -> Result<Option<String>, Box<Response<Body>>> {
        match self.identity {
            IdentitySource::Body => Ok(None),
            IdentitySource::Token => identity::subject(request)
                .map(|sub| Some(sub.to_owned()))
                .ok_or_else(|| Box::new(unauthorized("the request carries no verified token"))),
        }
    }

    pub fn orders(&self) -> &O {
        &self.orders
    }

    /// Whether requests without an `Idempotency-Key` header are refused (400).
    pub fn require_idempotency_key(mut self, required: bool) -> Self {
        self.key_required = required;
        self
    }

    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    /// Answers one HTTP request. Every answer, including errors, is JSON.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let correlation_id = correlation_id(&request);
        // API Gateway has matched the request to one of the template's routes already; the
        // function dispatches on that route key instead of matching paths a second time.
        let mut response = match route_key(&request) {
            Some(PLACE_ORDER) => self.place_order(&request, &correlation_id).await,
            Some(LIST_ORDERS) => self.list_orders(&request).await,
            Some(GET_ORDER) => self.get_order(&request).await,
            Some(CANCEL_ORDER) => self.cancel_order(&request, &correlation_id).await,
            other => error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!(
                    "this function serves no route {}",
                    other.unwrap_or("(none)")
                ),
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
        let client_key = match self.client_key(request) {
            Ok(key) => key,
            Err(response) => return *response,
        };
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
        let value = match strict_json::parse(body) {
            Ok(value) => value,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    &format!("body is not valid JSON: {e}"),
                )
            }
        };
        let signed_in = match self.identity {
            IdentitySource::Token => match identity::customer(request) {
                Ok(customer) => Some(customer),
                Err(problem) => return unauthorized(problem),
            },
            IdentitySource::Body => None,
        };
        let owner = signed_in.as_ref().map(|c| c.id.as_str());
        let key = client_key.map(|k| request_key(owner, &k, &value));
        let asked = match parse(value) {
            Ok(asked) => asked,
            Err(problems) => return invalid(&problems),
        };
        let id = order_id(key.as_ref());
        // Priced inside the keyed run: a retry of an accepted order gets its stored answer,
        // whatever the prices are now, without a catalogue read.
        let accept = || async {
            let order = self.price(asked, id, signed_in.as_ref()).await?;
            self.accept(order, correlation_id)
                .await
                .map_err(|e| unavailable("publish_failed", &e.to_string()))
        };
        self.answer_once(request, key, accept).await
    }

    /// The order `asked` priced from the catalogue, or the answer refusing it. Remembered prices
    /// may be old, so an order they refuse is priced again on the catalogue's current ones: an
    /// order is refused only on those.
    async fn price(
        &self,
        asked: OrderRequest,
        id: Uuid,
        signed_in: Option<&identity::Customer>,
    ) -> Result<OrderPlaced, Response<Body>> {
        let skus = asked.skus();
        let unreadable = |e: String| unavailable("catalogue_unavailable", &e);
        let prices = self.catalogue.prices(&skus).await.map_err(unreadable)?;
        let mut priced = validate(asked.clone(), id, signed_in, &prices.by_sku);
        if priced.is_err() && prices.remembered {
            let current = self
                .catalogue
                .current_prices(&skus)
                .await
                .map_err(unreadable)?;
            priced = validate(asked, id, signed_in, &current.by_sku);
        }
        priced.map_err(|refusal| match refusal {
            Refusal::Invalid(problems) => invalid(&problems),
            Refusal::PricesChanged(current) => prices_changed(&current),
        })
    }

    /// The client's `Idempotency-Key`, if any; a 400 when it is malformed, or missing while
    /// required.
    fn client_key(&self, request: &Request) -> Result<Option<String>, Box<Response<Body>>> {
        match request.headers().get(IDEMPOTENCY_HEADER) {
            Some(raw) => parse_idempotency_key(raw.as_bytes())
                .map(Some)
                .map_err(|problem| {
                    Box::new(error(
                        StatusCode::BAD_REQUEST,
                        "invalid_idempotency_key",
                        &format!("Idempotency-Key {problem}"),
                    ))
                }),
            None if self.key_required => Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "idempotency_key_missing",
                "this API requires an Idempotency-Key header",
            ))),
            None => Ok(None),
        }
    }

    /// Runs `work` once per idempotency key (always, without one): its 202, the stored 202 of
    /// an earlier request with the key, or the refusal `work` answered (nothing stored then).
    async fn answer_once<F, Fut>(
        &self,
        request: &Request,
        key: Option<IdempotencyKey>,
        work: F,
    ) -> Response<Body>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Accepted, Response<Body>>>,
    {
        let Some(key) = key else {
            return match work().await {
                Ok(accepted) => accepted_response(&accepted, false),
                Err(refusal) => refusal,
            };
        };
        let deadline = request
            .lambda_context_ref()
            .map(|context| context.deadline())
            .unwrap_or_else(|| SystemTime::now() + IN_FLIGHT_LEASE);
        match self.idempotency.run(&key, deadline, work).await {
            Ok(run) => {
                let replayed = !run.is_applied();
                accepted_response(&run.into_inner(), replayed)
            }
            Err(RunError::Work(refusal)) => refusal,
            Err(RunError::Idempotency(IdempotencyError::InProgress(_))) => {
                let mut response = error(
                    StatusCode::CONFLICT,
                    "request_in_progress",
                    "a request with this Idempotency-Key is still being processed; retry later",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, RETRY_AFTER_SECONDS.into());
                response
            }
            Err(RunError::Idempotency(IdempotencyError::PayloadMismatch(_))) => error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request body",
            ),
            Err(RunError::Idempotency(e)) => unavailable("idempotency_unavailable", &e.to_string()),
            Err(RunError::StoredResult(e)) => unavailable("idempotency_unavailable", &e),
        }
    }

    /// Publishes the order's event; the order is accepted once the broker has it.
    async fn accept(
        &self,
        order: OrderPlaced,
        correlation_id: &str,
    ) -> Result<Accepted, PublishError> {
        let event = OrderPlacedEvent::new(order, correlation_id);
        let span = event.span();
        let published = match self.writes {
            OrderPlacedVersion::V1 => {
                self.publisher
                    .publish(&event)
                    .instrument(span.clone())
                    .await
            }
            OrderPlacedVersion::V2 => {
                let v2 = event.as_v2();
                self.publisher.publish(&v2).instrument(span.clone()).await
            }
        };
        let _entered = span.enter();
        if let Err(ref e) = published {
            tracing::error!(error = %e, "publish failed; order not accepted");
        }
        published?;
        drop(_entered);
        // Inserted after the publish: an inserted order is always a published one.
        let inserted = order_state::insert_placed(&self.orders, &event)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        match inserted {
            Ok(()) => tracing::info!(total_minor = event.data.total_minor, "order accepted"),
            Err(e) => tracing::error!(
                error = %e,
                "order accepted but not inserted; it shows once the order service reads its event"
            ),
        }
        drop(_entered);
        lambda_kit::metrics::count(lambda_kit::metrics::name::ORDERS_PLACED, SPEC.name, 1);
        Ok(Accepted {
            order_id: event.order_id(),
            status: "ACCEPTED".to_owned(),
        })
    }
}

impl<P: EventPublisher, S: IdempotencyStore, O: EffectStore> HttpFunction for OrderApi<P, S, O> {
    fn handle(&self, request: Request) -> BoxFuture<'_, Response<Body>> {
        Box::pin(OrderApi::handle(self, request))
    }

    fn service(&self) -> &'static str {
        SPEC.name
    }
}

fn accepted_response(accepted: &Accepted, replayed: bool) -> Response<Body> {
    let body = serde_json::to_value(accepted).unwrap_or_default();
    let mut response = json_response(StatusCode::ACCEPTED, body);
    // Where the order is followed: the same for the order and for its cancellation.
    if let Ok(location) = format!("/orders/{}", accepted.order_id).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, header::HeaderValue::from_static("true"));
    }
    response
}

/// The route API Gateway matched (payload format 2.0 `routeKey`, e.g. `POST /orders`).
fn route_key(request: &Request) -> Option<&str> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.route_key.as_deref(),
        #[allow(unreachable_patterns)]
        _ => None,
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

#[cfg(test)]
mod tests;
