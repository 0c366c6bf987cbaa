//! The HTTP contract, checked on every answer the end-to-end tests receive: [`send`] and
//! [`post_order`] are the local client's, plus a check of the answer against
//! `events/openapi.yaml` (the status is documented for the route, the body validates against its
//! schema, the required headers are there). A test that gets an answer off the contract fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use hyper::body::Bytes;
use local_runtime::client::{self, Answer};
use order_events::testing::{events_dir, EventDocuments, EVENTS_BASE_URI};
use serde_json::{json, Value};

type SendResult = Result<Answer, Box<dyn std::error::Error + Send + Sync>>;

/// Sends one request to the local API and checks the answer against the OpenAPI document.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> SendResult {
    checked(method, url, client::send(method, url, headers, body).await?)
}

/// `POST {api}/orders` with a JSON body as the customer of `authorization` (`Bearer ...`), as
/// the local client sends it, checked like [`send`].
pub async fn post_order(api: &str, authorization: &str, body: &Value) -> SendResult {
    let answer = client::post_order(api, Some(authorization), body).await?;
    checked("POST", &format!("{api}/orders"), answer)
}

/// The answer, when it is on the contract; the test fails naming the problem otherwise.
fn checked(method: &str, url: &str, answer: Answer) -> SendResult {
    if let Err(problem) = contract().check(method, url, &answer) {
        panic!(
            "{method} {url} answered {} off the contract in events/openapi.yaml: {problem}\nbody: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
    Ok(answer)
}

/// The OpenAPI document, with a validator per response schema built on first use.
pub struct Contract {
    document: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

pub fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let text = std::fs::read_to_string(events_dir().join("openapi.yaml"))
            .expect("events/openapi.yaml is readable");
        let document =
            local_runtime::template::document(&text).expect("events/openapi.yaml parses");
        Contract {
            document,
            validators: Mutex::default(),
        }
    })
}

/// `value` with its references to the document's schemas (`#/components/schemas/X`) pointing
/// to `#/$defs/X`, where [`Contract::validator`] puts them.
fn to_defs(value: &Value) -> Value {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(key, v)| {
                let v = match (key.as_str(), v.as_str()) {
                    ("$ref", Some(reference)) => {
                        Value::String(reference.replace("#/components/schemas/", "#/$defs/"))
                    }
                    _ => to_defs(v),
                };
                (key.clone(), v)
            })
            .collect(),
        Value::Array(items) => items.iter().map(to_defs).collect(),
        other => other.clone(),
    }
}

/// The JSON Pointer escape of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

impl Contract {
    /// Follows a local `$ref` (`#/components/...`) of the document, if `value` is one.
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => self.document.pointer(pointer).unwrap_or(&Value::Null),
            None => value,
        }
    }

    /// Checks one answer to `method url`; the problem when it is off the contract.
    pub fn check(&self, method: &str, url: &str, answer: &Answer) -> Result<(), String> {
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        let method = method.to_ascii_lowercase();
        let (template, _) = self.document["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .find(|(template, _)| local_runtime::gateway::route_matches(template, path))
            .ok_or_else(|| format!("no path of the document matches {path}"))?;
        let status = answer.status.to_string();
        let response = &self.document["paths"][template][&method]["responses"][&status];
        if response.is_null() {
            return Err(format!(
                "status {status} is not documented for {method} {template}"
            ));
        }
        let response = self.resolve(response);
        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            let header = self.resolve(header);
            if header["required"] == true && answer.header(name).is_none() {
                return Err(format!("the required header {name} is missing"));
            }
        }
        let Some(content) = response["content"].as_object() else {
            return Ok(());
        };
        let media_type = answer
            .header("content-type")
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        if !content.contains_key(media_type) {
            return Err(format!(
                "content type {media_type:?}; documented: {:?}",
                content.keys().collect::<Vec<_>>()
            ));
        }
        let body: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| format!("the body is not JSON: {e}"))?;
        let pointer = format!("/paths/{}/{method}/responses/{status}", escape(template));
        let schema_pointer = match self.document["paths"][template][&method]["responses"][&status]
            .get("$ref")
            .and_then(Value::as_str)
        {
            // A shared response: its schema is under components.
            Some(reference) => reference.trim_start_matches('#').to_owned(),
            None => pointer,
        };
        let schema_pointer = format!("{schema_pointer}/content/{}/schema", escape(media_type));
        let validator = self.validator(&schema_pointer)?;
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// The validator of the schema at `pointer` in the document (built once).
    fn validator(&self, pointer: &str) -> Result<Arc<jsonschema::Validator>, String> {
        let mut validators = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(validator) = validators.get(pointer) {
            return Ok(validator.clone());
        }
        // A JSON Schema of its own: the response's schema, the document's schemas as its
        // `$defs`, and the document's place as its base, so `schemas/...` refers to the files.
        let mut schema = to_defs(
            self.document
                .pointer(pointer)
                .ok_or_else(|| format!("the document has no schema at {pointer}"))?,
        );
        let Value::Object(root) = &mut schema else {
            return Err(format!("the schema at {pointer} is not an object"));
        };
        root.insert(
            "$id".into(),
            json!(format!("{EVENTS_BASE_URI}openapi.yaml")),
        );
        root.insert(
            "$defs".into(),
            to_defs(&self.document["components"]["schemas"]),
        );
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .with_retriever(EventDocuments)
            .build(&schema)
            .map_err(|e| format!("the schema at {pointer} does not compile: {e}"))?;
        let validator = Arc::new(validator);
        validators.insert(pointer.to_owned(), validator.clone());
        Ok(validator)
    }
}

/// The checker itself, on answers made up here: it must refuse what the contract does not say.
#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body: Value) -> Answer {
        let mut map = http::HeaderMap::new();
        map.insert("content-type", "application/json".parse().unwrap());
        map.insert("x-correlation-id", "c-1".parse().unwrap());
        for (name, value) in headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        Answer {
            status,
            headers: map,
            body: Bytes::from(body.to_string()),
            elapsed: std::time::Duration::ZERO,
        }
    }

    const ORDERS: &str = "http://127.0.0.1:3000/orders";
    const ID: &str = "019a7c3e-5b1f-7c2d-9e4f-0a1b2c3d4e5f";

    #[test]
    fn documented_answers_pass() {
        let location = format!("/orders/{ID}");
        let accepted = answer(
            202,
            &[("location", &location)],
            json!({"orderId": ID, "status": "ACCEPTED"}),
        );
        assert_eq!(contract().check("POST", ORDERS, &accepted), Ok(()));
        // A 202 must say where the order is.
        let nowhere = answer(202, &[], json!({"orderId": ID, "status": "ACCEPTED"}));
        assert!(contract().check("POST", ORDERS, &nowhere).is_err());
        let cancelled = answer(
            202,
            &[("idempotent-replayed", "true"), ("location", &location)],
            json!({"orderId": ID, "status": "CANCELLATION_REQUESTED"}),
        );
        let cancel_url = format!("{ORDERS}/{ID}/cancel");
        assert_eq!(contract().check("POST", &cancel_url, &cancelled), Ok(()));
        let unavailable = answer(
            503,
            &[("retry-after", "1")],
            json!({"error": "publish_failed", "message": "retry later"}),
        );
        assert_eq!(contract().check("POST", ORDERS, &unavailable), Ok(()));
        let invalid = answer(
            422,
            &[],
            json!({"error": "validation_failed", "message": "m",
                   "details": [{"field": "items", "problem": "p"}]}),
        );
        assert_eq!(contract().check("POST", ORDERS, &invalid), Ok(()));
    }

    #[test]
    fn answers_off_the_contract_are_refused() {
        let refused = |method: &str, url: &str, answer: Answer| {
            let problem = contract()
                .check(method, url, &answer)
                .expect_err("off the contract");
            assert!(!problem.contains("compile"), "{problem}");
            problem
        };
        let get_url = format!("{ORDERS}/{ID}");
        // A body without its required field; a status of another route; an unknown path.
        refused(
            "POST",
            ORDERS,
            answer(202, &[], json!({"status": "ACCEPTED"})),
        );
        refused(
            "POST",
            ORDERS,
            answer(202, &[], json!({"orderId": "x", "status": "ACCEPTED"})),
        );
        refused(
            "POST",
            ORDERS,
            answer(
                202,
                &[],
                json!({"orderId": ID, "status": "CANCELLATION_REQUESTED"}),
            ),
        );
        refused(
            "POST",
            ORDERS,
            answer(
                404,
                &[],
                json!({"error": "order_not_found", "message": "m"}),
            ),
        );
        refused("GET", "http://h/carts", answer(200, &[], json!({})));
        // An error code the route does not give; a field the schema does not have.
        refused(
            "GET",
            &get_url,
            answer(400, &[], json!({"error": "malformed_json", "message": "m"})),
        );
        refused(
            "GET",
            &get_url,
            answer(
                404,
                &[],
                json!({"error": "order_not_found", "message": "m", "hint": 1}),
            ),
        );
        // A 503 without Retry-After; an order with an unknown status.
        let problem = refused(
            "POST",
            ORDERS,
            answer(503, &[], json!({"error": "publish_failed", "message": "m"})),
        );
        assert!(problem.contains("Retry-After"), "{problem}");
        let order = json!({
            "orderId": ID, "status": "LOST", "customerId": "c",
            "items": [{"sku": "SKU-MOUSE", "quantity": 1, "unitPriceMinor": 1}],
            "currency": "EUR", "totalMinor": 1, "placedAt": "2026-11-26T10:00:00Z",
            "timeline": [{"step": "placed", "outcome": "ok", "at": "2026-11-26T10:00:00Z", "detail": "d"}],
        });
        refused("GET", &get_url, answer(200, &[], order.clone()));
        let mut shipped = order;
        shipped["status"] = json!("SHIPPED");
        assert_eq!(
            contract().check("GET", &get_url, &answer(200, &[], shipped)),
            Ok(())
        );
    }
}
