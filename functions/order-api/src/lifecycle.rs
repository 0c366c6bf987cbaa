//! An order after it was placed: `GET /orders/{orderId}` and `POST /orders/{orderId}/cancel`.
//!
//! | route | answer | when |
//! |---|---|---|
//! | GET | 200 the order: status, lines, total, timeline, cancellation | the order was accepted |
//! | GET, cancel | 400 | the order id is not a UUID |
//! | GET, cancel | 404 | no such order, or (customers from the token) another customer's: no hint that it exists |
//! | cancel | 202 `{"orderId", "status": "CANCELLATION_REQUESTED"}` | the request was published; the order service decides |
//! | cancel | 409 `order_not_cancellable` | the order shipped, or is cancelled already |
//! | cancel | 202 + `Idempotent-Replayed: true` | a retry with the same `Idempotency-Key` |
//!
//! A cancellation is a request, like the order itself: it is published and answered 202, and the
//! order service grants it unless the order shipped meanwhile. The route is a `POST` to a
//! `cancel` sub-resource rather than a `DELETE` of the order, because nothing is deleted: the
//! order stays, with status `CANCELLED` and its reason.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use lambda_kit::effect::EffectStore;
use lambda_kit::idempotency::IdempotencyStore;
use order_events::publish::EventPublisher;
use order_events::{CancellationRequested, CloudEvent};
use order_state::{OrderItem, OrderView};
use serde_json::json;
use tracing::Instrument;
use uuid::Uuid;

use crate::responses::{error, json_response, unavailable};
use crate::{request_key, Accepted, OrderApi};

/// The `status` of an accepted cancellation request.
pub const CANCELLATION_REQUESTED: &str = "CANCELLATION_REQUESTED";

impl<P: EventPublisher, S: IdempotencyStore, O: EffectStore> OrderApi<P, S, O> {
    /// The order named by the path, or the answer saying why there is none. A signed-in
    /// customer finds only their own orders: another's answers exactly as an unknown id does.
    async fn find_order(
        &self,
        request: &Request,
    ) -> Result<(Uuid, OrderItem), Box<Response<Body>>> {
        let owner = self.owner(request)?;
        let parameters = request.path_parameters();
        let raw = parameters.first("orderId").unwrap_or_default();
        let Ok(order_id) = Uuid::parse_str(raw) else {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "invalid_order_id",
                "the order id in the path must be a UUID",
            )));
        };
        let found = self
            .orders()
            .load::<OrderItem>(&order_id.to_string())
            .await
            .map_err(|e| Box::new(unavailable("orders_unavailable", &e.to_string())))?;
        let visible = |item: &OrderItem| match (&item.placed, &owner) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(placed), Some(owner)) => placed.customer_id == *owner,
        };
        match found {
            Some(versioned) if visible(&versioned.item) => Ok((order_id, versioned.item)),
            _ => Err(Box::new(error(
                StatusCode::NOT_FOUND,
                "order_not_found",
                &format!("no order {order_id}"),
            ))),
        }
    }

    pub(crate) async fn get_order(&self, request: &Request) -> Response<Body> {
        match self.find_order(request).await {
            Ok((_, item)) => match OrderView::of(&item) {
                Some(view) => json_response(
                    StatusCode::OK,
                    serde_json::to_value(view).unwrap_or_default(),
                ),
                None => error(StatusCode::NOT_FOUND, "order_not_found", "no such order"),
            },
            Err(response) => *response,
        }
    }

    pub(crate) async fn cancel_order(
        &self,
        request: &Request,
        correlation_id: &str,
    ) -> Response<Body> {
        let client_key = match self.client_key(request) {
            Ok(key) => key,
            Err(response) => return *response,
        };
        let path = request.raw_http_path();
        let owner = match self.owner(request) {
            Ok(owner) => owner,
            Err(response) => return *response,
        };
        let key = client_key.map(|k| request_key(owner.as_deref(), &k, &json!({ "cancel": path })));
        let work = || async {
            let (order_id, item) = self.find_order(request).await.map_err(|r| *r)?;
            if !item.cancellable() {
                let status = OrderView::of(&item).map_or("UNKNOWN", |view| view.status);
                return Err(json_response(
                    StatusCode::CONFLICT,
                    json!({
                        "error": "order_not_cancellable",
                        "message": format!("the order is {status}: it can no longer be cancelled"),
                        "status": status,
                    }),
                ));
            }
            let customer_id = item.placed.map(|p| p.customer_id).unwrap_or_default();
            let event = CloudEvent::new(
                CancellationRequested {
                    order_id,
                    customer_id,
                },
                correlation_id,
            );
            let span = event.span();
            self.publisher()
                .publish(&event)
                .instrument(span.clone())
                .await
                .map_err(|e| unavailable("publish_failed", &e.to_string()))?;
            span.in_scope(|| tracing::info!("cancellation requested"));
            Ok(Accepted {
                order_id,
                status: CANCELLATION_REQUESTED.to_owned(),
            })
        };
        self.answer_once(request, key, work).await
    }
}
