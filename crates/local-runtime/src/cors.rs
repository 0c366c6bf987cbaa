//! API Gateway's CORS for the local HTTP API, as the template's `CorsConfiguration` sets it
//! ("Configure CORS for HTTP APIs in API Gateway"): API Gateway answers a preflight (`OPTIONS`
//! with `Origin` and `Access-Control-Request-Method`) itself, on any path and without the
//! authorizer, and adds the configured headers to the answers to requests that carry an allowed
//! `Origin`; CORS headers the function sets are ignored. Without a configuration nothing of this
//! happens: a preflight is a request like any other (no route: 404).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::http::{respond, FullResponse};
use crate::template::CorsSpec;

/// The HTTP API's CORS configuration.
#[derive(Debug, Clone)]
pub struct Cors(CorsSpec);

impl Cors {
    pub fn new(spec: CorsSpec) -> Self {
        Self(spec)
    }

    /// The `Access-Control-Allow-Origin` for a request from `origin`, when it is allowed: `*`
    /// when every origin is, else the origin itself.
    fn allowed(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let origins = &self.0.allow_origins;
        if origins.iter().any(|o| o == "*") && !self.0.allow_credentials {
            return Some(HeaderValue::from_static("*"));
        }
        let text = origin.to_str().ok()?;
        origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(text))
            .then(|| origin.clone())
    }

    /// API Gateway's own answer when `method` and `headers` make a preflight: 204, with the
    /// configured headers when the origin is allowed, without any when it is not (the browser
    /// then refuses the call).
    pub fn preflight(&self, method: &http::Method, headers: &HeaderMap) -> Option<FullResponse> {
        let is_preflight = method == http::Method::OPTIONS
            && headers.contains_key(header::ORIGIN)
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if !is_preflight {
            return None;
        }
        let mut response = respond(204, "application/json", "");
        response.headers_mut().remove(header::CONTENT_TYPE);
        if let Some(origin) = self.allowed(headers) {
            let out = response.headers_mut();
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            set_list(
                out,
                header::ACCESS_CONTROL_ALLOW_METHODS,
                &self.0.allow_methods,
            );
            set_list(
                out,
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                &self.0.allow_headers,
            );
            if let Some(age) = self.0.max_age {
                out.insert(header::ACCESS_CONTROL_MAX_AGE, age.into());
            }
            self.credentials(out);
        }
        Some(response)
    }

    /// Sets the configured headers on the answer to a request from an allowed origin, in place of
    /// any the function set.
    pub fn decorate(&self, request: &HeaderMap, response: &mut FullResponse) {
        let out = response.headers_mut();
        for name in [
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::ACCESS_CONTROL_MAX_AGE,
        ] {
            out.remove(name);
        }
        if let Some(origin) = self.allowed(request) {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            set_list(
                out,
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                &self.0.expose_headers,
            );
            self.credentials(out);
        }
    }

    fn credentials(&self, out: &mut HeaderMap) {
        if self.0.allow_credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

fn set_list(out: &mut HeaderMap, name: HeaderName, values: &[String]) {
    if values.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&values.join(",")) {
        out.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str]) -> Cors {
        Cors::new(CorsSpec {
            allow_origins: origins.iter().map(|o| o.to_string()).collect(),
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["authorization".into()],
            expose_headers: vec!["location".into()],
            max_age: Some(600),
            allow_credentials: false,
        })
    }

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_gets_the_configured_headers() {
        let cors = cors(&["https://shop.example"]);
        let request = headers(&[
            (header::ORIGIN, "https://shop.example"),
            (header::ACCESS_CONTROL_REQUEST_METHOD, "POST"),
        ]);
        let answer = cors.preflight(&http::Method::OPTIONS, &request).unwrap();
        assert_eq!(answer.status(), 204);
        let got = |name| answer.headers().get(name).unwrap().to_str().unwrap();
        assert_eq!(
            got(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            "https://shop.example"
        );
        assert_eq!(got(header::ACCESS_CONTROL_ALLOW_METHODS), "GET,POST");
        assert_eq!(got(header::ACCESS_CONTROL_MAX_AGE), "600");
    }

    #[test]
    fn another_origin_gets_no_cors_headers_and_a_plain_options_is_no_preflight() {
        let cors = cors(&["https://shop.example"]);
        let other = headers(&[
            (header::ORIGIN, "https://evil.example"),
            (header::ACCESS_CONTROL_REQUEST_METHOD, "POST"),
        ]);
        let answer = cors.preflight(&http::Method::OPTIONS, &other).unwrap();
        assert!(!answer
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        let plain = headers(&[(header::ORIGIN, "https://shop.example")]);
        assert!(cors.preflight(&http::Method::OPTIONS, &plain).is_none());
        let mut response = respond(200, "application/json", "{}");
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        cors.decorate(&other, &mut response);
        assert!(!response
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    }
}
