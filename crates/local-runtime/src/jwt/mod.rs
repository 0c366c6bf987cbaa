//! The JWT authorizer API Gateway puts in front of a route (`AuthorizerType: JWT`), played
//! locally: the bearer token's RS256 signature against the issuer's published keys (its JWKS),
//! its issuer, its audience (`aud`, or `client_id` for access tokens) and its expiry; a 401
//! otherwise. The claims reach the function as API Gateway hands them on (payload format 2.0:
//! `requestContext.authorizer.jwt.claims`, every value a string).
//!
//! Verification is the `jsonwebtoken` crate's; this module only fetches the keys and applies
//! API Gateway's rules around it.

use aws_lambda_events::apigw::ApiGatewayRequestAuthorizer;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::gateway::{jwt_context, Authorizer};
use crate::sdk::Endpoints;

/// A JWT authorizer for one issuer and its accepted audiences.
pub struct JwtAuthorizer {
    issuer: String,
    audiences: Vec<String>,
    /// The issuer's signing keys, by key id.
    keys: Vec<(Option<String>, DecodingKey)>,
}

impl std::fmt::Debug for JwtAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthorizer")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// Where the issuer publishes its keys. On an emulator, a Cognito user pool's issuer
/// (`https://cognito-idp.<region>.amazonaws.com/<pool id>`) is served by the emulator's
/// Cognito endpoint, at the same path; any other issuer at its own URL, as API Gateway fetches it.
pub fn jwks_url(issuer: &str, endpoints: &Endpoints) -> String {
    let issuer = issuer.trim_end_matches('/');
    let cognito_pool = issuer
        .strip_prefix("https://cognito-idp.")
        .and_then(|rest| rest.split_once(".amazonaws.com/"))
        .map(|(_, pool)| pool);
    match cognito_pool {
        Some(pool) => format!(
            "{}/{pool}/.well-known/jwks.json",
            endpoints
                .of("Cognito Identity Provider")
                .trim_end_matches('/')
        ),
        None => format!("{issuer}/.well-known/jwks.json"),
    }
}

impl JwtAuthorizer {
    /// An authorizer that trusts the RSA keys of `jwks` for tokens from `issuer` to one of
    /// `audiences`.
    pub fn new(issuer: &str, audiences: Vec<String>, jwks: &JwkSet) -> Result<Self, String> {
        let keys = jwks
            .keys
            .iter()
            .filter_map(|jwk| {
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((jwk.common.key_id.clone(), key))
            })
            .collect::<Vec<_>>();
        if keys.is_empty() {
            return Err(format!("the JWKS of {issuer} has no usable key"));
        }
        if audiences.iter().all(String::is_empty) {
            return Err(format!("no audience is accepted for {issuer}"));
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            audiences,
            keys,
        })
    }

    /// Fetches the issuer's JWKS (see [`jwks_url`]) and builds the authorizer.
    pub async fn discover(
        issuer: &str,
        audiences: Vec<String>,
        endpoints: &Endpoints,
    ) -> Result<Self, String> {
        let url = jwks_url(issuer, endpoints);
        let answer = crate::client::send("GET", &url, &[], "")
            .await
            .map_err(|e| format!("fetching {url}: {e}"))?;
        if answer.status != 200 {
            return Err(format!("fetching {url}: HTTP {}", answer.status));
        }
        let jwks: JwkSet = serde_json::from_slice(&answer.body)
            .map_err(|e| format!("the keys at {url} are not a JWKS: {e}"))?;
        Self::new(issuer, audiences, &jwks)
    }

    /// The claims of a valid token, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<serde_json::Map<String, Value>, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("malformed: {e}"))?;
        if header.alg != Algorithm::RS256 {
            return Err(format!(
                "algorithm {:?}; only RS256 is accepted",
                header.alg
            ));
        }
        let key = match &header.kid {
            Some(kid) => self.keys.iter().find(|(id, _)| id.as_deref() == Some(kid)),
            None => self.keys.first(),
        }
        .map(|(_, key)| key)
        .ok_or("signed with a key the issuer does not publish")?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 0;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        // API Gateway accepts the audience in `aud` or, for access tokens, `client_id`.
        validation.validate_aud = false;
        let claims =
            jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, key, &validation)
                .map_err(|e| e.to_string())?
                .claims;
        let audiences: Vec<&str> = match claims.get("aud").or_else(|| claims.get("client_id")) {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences
            .iter()
            .any(|a| self.audiences.iter().any(|accepted| accepted == a))
        {
            return Err(format!("audience {audiences:?} is not accepted"));
        }
        Ok(claims)
    }
}

impl Authorizer for JwtAuthorizer {
    fn authorize(&self, headers: &http::HeaderMap) -> Result<ApiGatewayRequestAuthorizer, String> {
        let value = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or("no Authorization header")?;
        // API Gateway takes the token with or without the `Bearer` scheme.
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or(value)
            .trim();
        let claims = self.verify(token)?;
        let scopes = claims
            .get("scope")
            .and_then(Value::as_str)
            .map(|s| s.split(' ').map(str::to_owned).collect());
        let claims = claims
            .into_iter()
            .map(|(name, value)| (name, claim_text(value)));
        Ok(jwt_context(claims, scopes))
    }
}

/// A claim as API Gateway hands it on: strings as they are, anything else as its JSON text.
fn claim_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cognito_issuer_is_served_by_the_emulator() {
        let endpoints = Endpoints::single("http://127.0.0.1:5000");
        let issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc";
        assert_eq!(
            jwks_url(issuer, &endpoints),
            "http://127.0.0.1:5000/us-east-1_abc/.well-known/jwks.json"
        );
        assert_eq!(
            jwks_url("https://login.example.com/", &endpoints),
            "https://login.example.com/.well-known/jwks.json"
        );
    }

    const ISSUER: &str = "https://issuer.example.com/pool";

    fn signing_key(pem: &str) -> jsonwebtoken::EncodingKey {
        jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()
    }

    /// An authorizer trusting `test-issuer-key.pem` (published as key `k1`) for audience `app`.
    fn authorizer() -> JwtAuthorizer {
        let key = signing_key(include_str!("test-issuer-key.pem"));
        let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
        jwk.common.key_id = Some("k1".to_owned());
        JwtAuthorizer::new(ISSUER, vec!["app".to_owned()], &JwkSet { keys: vec![jwk] }).unwrap()
    }

    fn token(pem: &str, claims: Value) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some("k1".to_owned());
        jsonwebtoken::encode(&header, &claims, &signing_key(pem)).unwrap()
    }

    fn claims(change: impl FnOnce(&mut Value)) -> Value {
        let mut claims = serde_json::json!({
            "iss": ISSUER,
            "aud": "app",
            "sub": "c-1",
            "email": "ada@example.com",
            "exp": chrono::Utc::now().timestamp() + 300,
        });
        change(&mut claims);
        claims
    }

    fn bearer(token: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn a_valid_token_hands_its_claims_on_as_strings() {
        let token = token(include_str!("test-issuer-key.pem"), claims(|_| {}));
        let context = authorizer().authorize(&bearer(&token)).unwrap();
        let claims = context.jwt.unwrap().claims;
        assert_eq!(claims["sub"], "c-1");
        assert_eq!(claims["email"], "ada@example.com");
        assert!(claims["exp"].parse::<i64>().is_ok());
    }

    #[test]
    fn an_access_token_names_its_audience_in_client_id() {
        let access = claims(|c| {
            c.as_object_mut().unwrap().remove("aud");
            c["client_id"] = "app".into();
        });
        let token = token(include_str!("test-issuer-key.pem"), access);
        assert!(authorizer().authorize(&bearer(&token)).is_ok());
    }

    #[test]
    fn every_kind_of_bad_token_is_refused() {
        let issuer_key = include_str!("test-issuer-key.pem");
        let now = chrono::Utc::now().timestamp();
        let cases: Vec<(&str, String)> = vec![
            (
                "another issuer",
                token(
                    issuer_key,
                    claims(|c| c["iss"] = "https://evil.example.com".into()),
                ),
            ),
            (
                "another audience",
                token(issuer_key, claims(|c| c["aud"] = "other-app".into())),
            ),
            (
                "expired",
                token(issuer_key, claims(|c| c["exp"] = (now - 1).into())),
            ),
            (
                "no expiry",
                token(
                    issuer_key,
                    claims(|c| {
                        c.as_object_mut().unwrap().remove("exp");
                    }),
                ),
            ),
            (
                "signed by a stranger",
                token(include_str!("test-stranger-key.pem"), claims(|_| {})),
            ),
            ("not a JWT", "not.a.token".to_owned()),
        ];
        let authorizer = authorizer();
        for (case, token) in cases {
            assert!(
                authorizer.authorize(&bearer(&token)).is_err(),
                "{case} was accepted"
            );
        }
        // A token whose signature is cut off, and an unsigned one (`alg: none`).
        let valid = token(issuer_key, claims(|_| {}));
        let unsigned = format!("{}.", valid.rsplit_once('.').unwrap().0);
        assert!(authorizer.authorize(&bearer(&unsigned)).is_err());
        let none_header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            r#"{"alg":"none","typ":"JWT"}"#,
        );
        let payload = valid.split('.').nth(1).unwrap();
        assert!(authorizer
            .authorize(&bearer(&format!("{none_header}.{payload}.")))
            .is_err());
        assert!(authorizer.authorize(&http::HeaderMap::new()).is_err());
    }
}
