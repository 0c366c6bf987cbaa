//! `GET /orders`: the signed-in customer's orders, newest first, a page at a time
//! ([`order_state::listing`]: per page, one query of the orders table's `ByCustomer` index and
//! one batch read of the orders).
//!
//! | answer | when |
//! |---|---|
//! | 200 `{"orders": [...], "nextCursor"}` | a page of orders, each as `GET /orders/{orderId}` shows it; `nextCursor` only when more follow |
//! | 400 `invalid_limit` | `limit` is not a whole number from 1 to 100 (default 20) |
//! | 400 `invalid_cursor` | `cursor` is not a `nextCursor` this API handed out |
//! | 400 `customer_id_missing` | customers come from the body (service callers) and no `customerId` parameter names one |
//! | 503 `orders_unavailable` | the index or the orders could not be read |
//!
//! The list is read from an index, which follows the table within a moment: an order accepted
//! a moment ago may not be listed yet, though `GET /orders/{orderId}` shows it already.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use lambda_kit::effect::EffectStore;
use lambda_kit::idempotency::IdempotencyStore;
use order_events::publish::EventPublisher;
use order_state::listing::{customer_orders, Cursor, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use serde_json::json;

use crate::responses::{error, json_response, unavailable};
use crate::OrderApi;

impl<P: EventPublisher, S: IdempotencyStore, O: EffectStore> OrderApi<P, S, O> {
    pub(crate) async fn list_orders(&self, request: &Request) -> Response<Body> {
        let query = request.query_string_parameters();
        let customer = match self.owner(request) {
            Ok(Some(signed_in)) => signed_in,
            Ok(None) => match query.first("customerId").filter(|c| !c.is_empty()) {
                Some(named) => named.to_owned(),
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "customer_id_missing",
                        "name the customer whose orders to list: ?customerId=...",
                    )
                }
            },
            Err(response) => return *response,
        };
        let limit = match query.first("limit") {
            None => DEFAULT_PAGE_SIZE,
            Some(text) => match text.parse::<usize>() {
                Ok(limit) if (1..=MAX_PAGE_SIZE).contains(&limit) => limit,
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid_limit",
                        &format!("limit must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                    )
                }
            },
        };
        let after = match query.first("cursor").map(Cursor::decode).transpose() {
            Ok(after) => after,
            Err(problem) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_cursor",
                    &problem.to_string(),
                )
            }
        };
        match customer_orders(self.orders(), &customer, limit, after.as_ref()).await {
            Ok(page) => {
                let mut body = json!({ "orders": page.orders });
                if let Some(next) = page.next {
                    body["nextCursor"] = next.encode().into();
                }
                json_response(StatusCode::OK, body)
            }
            Err(e) => unavailable("orders_unavailable", &e.to_string()),
        }
    }
}
