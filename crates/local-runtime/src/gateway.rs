//! API Gateway's HTTP API on localhost: routes from the template (`METHOD /path/{param}`,
//! `{proxy+}`, `ANY`), and for each request the payload format 2.0 event Lambda would receive
//! (request context, path parameters, query string, cookies, base64 bodies), turned into the
//! handler's request by `lambda_http`, as on Lambda.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequest};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use lambda_http::request::LambdaRequest;
use lambda_kit::http::HttpFunction;

use crate::cors::Cors;
use crate::http::{respond, FullResponse};

/// Largest request body the local HTTP API reads (API Gateway's limit is 10 MB).
pub const MAX_HTTP_BODY: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Parameter(String),
    /// `{name+}`: the rest of the path.
    Greedy(String),
}

/// The segments of a route's path template (`/orders/{id}`).
fn segments(path: &str) -> Vec<Segment> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    Some(greedy) => Segment::Greedy(greedy.to_owned()),
                    None => Segment::Parameter(name.to_owned()),
                },
                None => Segment::Literal(segment.to_owned()),
            },
        )
        .collect()
}

/// The path parameters when `path` matches the template `segments`.
fn path_parameters(segments: &[Segment], path: &str) -> Option<HashMap<String, String>> {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut parameters = HashMap::new();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Greedy(name) => {
                if i >= parts.len() {
                    return None;
                }
                parameters.insert(name.clone(), parts[i..].join("/"));
                return Some(parameters);
            }
            Segment::Literal(literal) => {
                if parts.get(i) != Some(&literal.as_str()) {
                    return None;
                }
            }
            Segment::Parameter(name) => {
                parameters.insert(name.clone(), (*parts.get(i)?).to_owned());
            }
        }
    }
    (parts.len() == segments.len()).then_some(parameters)
}

/// Whether `path` matches the route path template `template` (`/orders/{orderId}`), as the
/// gateway matches requests: for documents and tests that hold paths to routes.
pub fn route_matches(template: &str, path: &str) -> bool {
    path_parameters(&segments(template), path).is_some()
}

/// What API Gateway's authorizer decides for a request on a protected route.
pub trait Authorizer: Send + Sync {
    /// The authorizer context handed to the function (for a JWT authorizer, the token's
    /// claims), or why the request is refused with 401.
    fn authorize(&self, headers: &http::HeaderMap) -> Result<ApiGatewayRequestAuthorizer, String>;
}

/// One route of the HTTP API and the function behind it.
#[derive(Clone)]
pub struct Route {
    /// The route key as API Gateway writes it: `POST /orders/{id}`.
    pub key: String,
    method: String,
    segments: Vec<Segment>,
    function: Arc<dyn HttpFunction>,
    authorizer: Option<Arc<dyn Authorizer>>,
}

impl Route {
    /// A route for `method` (or `ANY`) and a path template such as `/orders/{id}`.
    pub fn new(method: &str, path: &str, function: Arc<dyn HttpFunction>) -> Self {
        let segments = segments(path);
        let method = method.to_uppercase();
        Self {
            key: format!("{method} {path}"),
            method,
            segments,
            function,
            authorizer: None,
        }
    }

    /// The route with requests checked by `authorizer` before they reach the function.
    pub fn with_authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// The path parameters when `method` and `path` match this route.
    fn matches(&self, method: &str, path: &str) -> Option<HashMap<String, String>> {
        if self.method != "ANY" && self.method != method {
            return None;
        }
        path_parameters(&self.segments, path)
    }

    /// How specific the route is: API Gateway prefers literal segments, then parameters, then
    /// greedy ones, and a method over `ANY`.
    fn specificity(&self) -> (usize, usize, bool) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        let greedy = self
            .segments
            .iter()
            .any(|s| matches!(s, Segment::Greedy(_)));
        (
            literals,
            self.segments.len(),
            self.method != "ANY" && !greedy,
        )
    }
}

/// The routes of one HTTP API, and what it knows of where it runs.
pub struct Gateway {
    routes: Vec<Route>,
    account_id: String,
    cors: Option<Cors>,
}

impl Gateway {
    pub fn new(mut routes: Vec<Route>, account_id: &str) -> Self {
        routes.sort_by_key(|route| std::cmp::Reverse(route.specificity()));
        Self {
            routes,
            account_id: account_id.to_owned(),
            cors: None,
        }
    }

    /// The gateway with the API's CORS configuration (see [`crate::cors`]).
    pub fn with_cors(mut self, cors: Option<Cors>) -> Self {
        self.cors = cors;
        self
    }

    /// The route `method path` takes, with its path parameters.
    fn route(&self, method: &str, path: &str) -> Option<(&Route, HashMap<String, String>)> {
        self.routes
            .iter()
            .find_map(|route| Some((route, route.matches(method, path)?)))
    }

    /// What API Gateway answers: the route's function response, or its own 401/404/413.
    pub async fn answer(&self, request: hyper::Request<Incoming>) -> FullResponse {
        let (parts, body) = request.into_parts();
        match Limited::new(body, MAX_HTTP_BODY).collect().await {
            Ok(collected) => self.dispatch(&parts, collected.to_bytes()).await,
            Err(_) => respond(
                413,
                "application/json",
                r#"{"message":"Request Entity Too Large"}"#,
            ),
        }
    }

    /// A request with its whole body: a preflight answered, or routed, authorized, and handed
    /// to the function; the answer with the API's CORS headers.
    async fn dispatch(&self, parts: &http::request::Parts, body: Bytes) -> FullResponse {
        let Some(cors) = &self.cors else {
            return self.route_and_invoke(parts, body).await;
        };
        if let Some(answer) = cors.preflight(&parts.method, &parts.headers) {
            return answer;
        }
        let mut answer = self.route_and_invoke(parts, body).await;
        cors.decorate(&parts.headers, &mut answer);
        answer
    }

    async fn route_and_invoke(&self, parts: &http::request::Parts, body: Bytes) -> FullResponse {
        let Some((route, parameters)) = self.route(parts.method.as_str(), parts.uri.path()) else {
            return respond(404, "application/json", r#"{"message":"Not Found"}"#);
        };
        let authorizer = match &route.authorizer {
            None => None,
            Some(authorizer) => match authorizer.authorize(&parts.headers) {
                Ok(context) => Some(context),
                Err(reason) => {
                    tracing::info!(route = %route.key, %reason, "request refused by the authorizer");
                    return respond(401, "application/json", r#"{"message":"Unauthorized"}"#);
                }
            },
        };
        let event = event(
            &route.key,
            &self.account_id,
            parts,
            &body,
            parameters,
            authorizer,
        );
        let request = lambda_http::Request::from(LambdaRequest::ApiGatewayV2(event));
        let function = route.function.service();
        let answer = lambda_kit::calls::scope(function, route.function.handle(request)).await;
        let (parts, body) = answer.into_parts();
        let bytes = match body {
            lambda_http::Body::Text(text) => Bytes::from(text),
            lambda_http::Body::Binary(data) => Bytes::from(data),
            _ => Bytes::new(),
        };
        hyper::Response::from_parts(parts, Full::new(bytes))
    }
}

/// The payload format 2.0 event API Gateway sends for a request on the route `route_key`.
fn event(
    route_key: &str,
    account_id: &str,
    parts: &http::request::Parts,
    body: &Bytes,
    path_parameters: HashMap<String, String>,
    authorizer: Option<ApiGatewayRequestAuthorizer>,
) -> ApiGatewayV2httpRequest {
    let now = chrono::Utc::now();
    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".to_owned());
    event.route_key = Some(route_key.to_owned());
    event.raw_path = Some(parts.uri.path().to_owned());
    event.raw_query_string = Some(parts.uri.query().unwrap_or_default().to_owned());
    event.query_string_parameters = event
        .raw_query_string
        .as_deref()
        .unwrap_or_default()
        .parse()
        .unwrap_or_default();
    let mut headers = parts.headers.clone();
    let cookies: Vec<String> = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split("; ").map(str::to_owned))
        .collect();
    headers.remove(http::header::COOKIE);
    event.cookies = (!cookies.is_empty()).then_some(cookies);
    event.headers = headers;
    event.path_parameters = path_parameters;
    // API Gateway passes a text body as it came and anything else base64-encoded.
    match std::str::from_utf8(body) {
        _ if body.is_empty() => {}
        Ok(text) => event.body = Some(text.to_owned()),
        Err(_) => {
            use base64::Engine;
            event.body = Some(base64::engine::general_purpose::STANDARD.encode(body));
            event.is_base64_encoded = true;
        }
    }
    let context = &mut event.request_context;
    context.route_key = Some(route_key.to_owned());
    context.account_id = Some(account_id.to_owned());
    context.stage = Some("$default".to_owned());
    context.request_id = Some(uuid::Uuid::now_v7().to_string());
    context.apiid = Some("local".to_owned());
    context.domain_name = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    context.time = Some(now.format("%d/%b/%Y:%H:%M:%S %z").to_string());
    context.time_epoch = now.timestamp_millis();
    context.http.method = parts.method.clone();
    context.http.path = Some(parts.uri.path().to_owned());
    context.http.protocol = Some("HTTP/1.1".to_owned());
    context.http.source_ip = Some("127.0.0.1".to_owned());
    context.http.user_agent = parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    context.authorizer = authorizer;
    event
}

/// The request a function behind the route `route_key` receives for `request`: the API
/// Gateway event turned into a request by `lambda_http`, as on Lambda. For callers that invoke
/// an HTTP function directly (tests, benchmarks).
pub fn request_for(route_key: &str, request: http::Request<Vec<u8>>) -> lambda_http::Request {
    authorized_request_for(route_key, request, None)
}

/// The context API Gateway's JWT authorizer hands a function once it has verified a token: the
/// token's claims, as text, and its scopes.
pub fn jwt_context(
    claims: impl IntoIterator<Item = (String, String)>,
    scopes: Option<Vec<String>>,
) -> ApiGatewayRequestAuthorizer {
    let mut jwt = aws_lambda_events::apigw::ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = claims.into_iter().collect();
    jwt.scopes = scopes;
    let mut context = ApiGatewayRequestAuthorizer::default();
    context.jwt = Some(jwt);
    context
}

/// [`request_for`], with the context an authorizer handed on (a JWT's claims).
pub fn authorized_request_for(
    route_key: &str,
    request: http::Request<Vec<u8>>,
    authorizer: Option<ApiGatewayRequestAuthorizer>,
) -> lambda_http::Request {
    let event = api_gateway_event(route_key, request, authorizer);
    lambda_http::Request::from(LambdaRequest::ApiGatewayV2(event))
}

/// The payload format 2.0 event API Gateway sends a function behind the route `route_key` for
/// `request`, with the context an authorizer handed on: what `cargo lambda invoke` sends.
pub fn api_gateway_event(
    route_key: &str,
    request: http::Request<Vec<u8>>,
    authorizer: Option<ApiGatewayRequestAuthorizer>,
) -> ApiGatewayV2httpRequest {
    let (parts, body) = request.into_parts();
    let body = Bytes::from(body);
    let template = route_key
        .split_once(' ')
        .map_or(route_key, |(_, path)| path);
    let parameters = path_parameters(&segments(template), parts.uri.path()).unwrap_or_default();
    event(
        route_key,
        "000000000000",
        &parts,
        &body,
        parameters,
        authorizer,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt;
    use lambda_kit::http::BoxFuture;

    struct Echo;

    impl HttpFunction for Echo {
        fn service(&self) -> &'static str {
            "echo"
        }

        fn handle(
            &self,
            request: lambda_http::Request,
        ) -> BoxFuture<'_, lambda_http::Response<lambda_http::Body>> {
            Box::pin(async move {
                let context = request.request_context();
                let route_key = match &context {
                    lambda_http::request::RequestContext::ApiGatewayV2(c) => c.route_key.clone(),
                    _ => None,
                };
                let subject = context
                    .authorizer()
                    .and_then(|a| a.jwt.as_ref())
                    .and_then(|jwt| jwt.claims.get("sub").cloned());
                let body = serde_json::json!({
                    "routeKey": route_key,
                    "sub": subject,
                    "id": request.path_parameters().first("id"),
                    "q": request.query_string_parameters().first("q"),
                    "body": String::from_utf8_lossy(request.body().as_ref()),
                });
                lambda_http::Response::new(lambda_http::Body::Text(body.to_string()))
            })
        }
    }

    fn gateway() -> Gateway {
        let echo: Arc<dyn HttpFunction> = Arc::new(Echo);
        Gateway::new(
            vec![
                Route::new("GET", "/orders/{id}", echo.clone()),
                Route::new("POST", "/orders", echo.clone()),
                Route::new("POST", "/orders/{id}/cancel", echo.clone()),
                Route::new("ANY", "/files/{proxy+}", echo),
            ],
            "000000000000",
        )
    }

    #[test]
    fn routes_match_by_method_literals_and_parameters() {
        let gateway = gateway();
        let key = |method: &str, path: &str| {
            gateway
                .route(method, path)
                .map(|(route, parameters)| (route.key.clone(), parameters))
        };
        assert_eq!(key("POST", "/orders").unwrap().0, "POST /orders");
        let (route, parameters) = key("GET", "/orders/o-1").unwrap();
        assert_eq!(route, "GET /orders/{id}");
        assert_eq!(parameters["id"], "o-1");
        assert_eq!(
            key("POST", "/orders/o-1/cancel").unwrap().0,
            "POST /orders/{id}/cancel"
        );
        assert_eq!(key("DELETE", "/files/a/b").unwrap().1["proxy"], "a/b");
        assert!(key("GET", "/orders").is_none());
        assert!(key("GET", "/orders/o-1/x").is_none());
        assert!(key("PUT", "/orders/o-1").is_none());
    }

    /// Accepts `Bearer good` as the customer `c-1`.
    struct Tokens;

    impl Authorizer for Tokens {
        fn authorize(
            &self,
            headers: &http::HeaderMap,
        ) -> Result<ApiGatewayRequestAuthorizer, String> {
            if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer good") {
                return Err("no valid token".to_owned());
            }
            Ok(jwt_context([("sub".to_owned(), "c-1".to_owned())], None))
        }
    }

    #[tokio::test]
    async fn an_authorized_route_hands_the_claims_on_and_refuses_the_rest() {
        let echo: Arc<dyn HttpFunction> = Arc::new(Echo);
        let gateway = Gateway::new(
            vec![Route::new("GET", "/orders/{id}", echo).with_authorizer(Arc::new(Tokens))],
            "000000000000",
        );
        let request = |token: &str| {
            http::Request::get("/orders/o-1")
                .header("authorization", token)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        let refused = gateway.dispatch(&request("Bearer bad"), Bytes::new()).await;
        assert_eq!(refused.status(), 401);
        let answered = gateway
            .dispatch(&request("Bearer good"), Bytes::new())
            .await;
        assert_eq!(answered.status(), 200);
        let body = answered.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["sub"], "c-1");
        assert_eq!(body["id"], "o-1");
    }

    #[tokio::test]
    async fn the_handler_sees_the_request_context_and_parameters_lambda_http_builds() {
        let gateway = gateway();
        let (route, parameters) = gateway.route("GET", "/orders/o-7").unwrap();
        let request = http::Request::get("/orders/o-7?q=1")
            .header("host", "localhost:3000")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let event = event(
            &route.key,
            "000000000000",
            &parts,
            &Bytes::from_static(b"hi"),
            parameters,
            None,
        );
        let request = lambda_http::Request::from(LambdaRequest::ApiGatewayV2(event));
        let response = Echo.handle(request).await;
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body["routeKey"], "GET /orders/{id}");
        assert_eq!(body["id"], "o-7");
        assert_eq!(body["q"], "1");
        assert_eq!(body["body"], "hi");
    }
}
