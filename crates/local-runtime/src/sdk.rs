//! The AWS SDK configuration the runtime, its functions and the operator tools use, and where
//! an emulator serves each AWS API.

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

/// Where the AWS APIs are served: one endpoint for every service, and per service the ones
/// that differ, keyed as the SDK's `AWS_ENDPOINT_URL_<SERVICE>` variables are (`DYNAMODB`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub default: String,
    pub services: BTreeMap<String, String>,
}

impl Endpoints {
    /// Every service at `url` (LocalStack, or one moto).
    pub fn single(url: &str) -> Self {
        Self {
            default: url.to_owned(),
            services: BTreeMap::new(),
        }
    }

    /// `AWS_ENDPOINT_URL` and every `AWS_ENDPOINT_URL_<SERVICE>`, when the first is set.
    pub fn from_environment() -> Option<Self> {
        let default = std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|v| !v.is_empty())?;
        let services = std::env::vars()
            .filter_map(|(name, url)| {
                let service = name.strip_prefix("AWS_ENDPOINT_URL_")?;
                (!url.is_empty()).then(|| (service.to_owned(), url))
            })
            .collect();
        Some(Self { default, services })
    }

    /// The endpoint of `service`, named as in `AWS_ENDPOINT_URL_<SERVICE>` or as the SDK's
    /// service id (`DynamoDB`, `SESv2`).
    pub fn of(&self, service: &str) -> &str {
        self.services
            .get(&env_name(service))
            .unwrap_or(&self.default)
    }

    /// Whether `service` is served on this machine (a loopback address): an emulator, never AWS.
    pub fn is_local(&self, service: &str) -> bool {
        let Ok(uri) = self.of(service).parse::<http::Uri>() else {
            return false;
        };
        // An IPv6 host comes in brackets (`[::1]`).
        let host = uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The environment variables that point an AWS SDK (any language's) at these endpoints.
    pub fn environment(&self) -> Vec<(String, String)> {
        std::iter::once(("AWS_ENDPOINT_URL".to_owned(), self.default.clone()))
            .chain(
                self.services
                    .iter()
                    .map(|(service, url)| (format!("AWS_ENDPOINT_URL_{service}"), url.clone())),
            )
            .collect()
    }
}

impl std::fmt::Display for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.default)?;
        for (service, url) in &self.services {
            write!(f, " ({} at {url})", service.to_lowercase())?;
        }
        Ok(())
    }
}

/// How the SDK names a service's endpoint variable: `DynamoDB` -> `DYNAMODB`.
fn env_name(service_id: &str) -> String {
    service_id.to_uppercase().replace([' ', '-'], "_")
}

/// Answers the SDK's per-service endpoint lookups from [`Endpoints`]. Every client gets its
/// endpoint this way: an `endpoint_url` set on the shared configuration in code would win over
/// any per-service one.
#[derive(Debug)]
struct ServiceEndpoints(Endpoints);

impl LoadServiceConfig for ServiceEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        (key.env() == "AWS_ENDPOINT_URL").then(|| self.0.of(key.service_id()).to_owned())
    }
}

/// An SDK configuration for `endpoints` (or the environment's endpoint settings when `None`).
/// For an emulator (endpoints given here or `AWS_ENDPOINT_URL`) it falls back to a default
/// region and dummy credentials, which emulators accept; for AWS itself the usual chain
/// (environment, profile, instance role) decides.
pub async fn sdk_config(endpoints: Option<&Endpoints>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    let emulated = endpoints.is_some() || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    if emulated
        && std::env::var_os("AWS_REGION").is_none()
        && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        loader = loader.region(Region::new("us-east-1"));
    }
    if emulated && std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "local",
        ));
    }
    let sdk = loader.load().await;
    match endpoints {
        Some(endpoints) => sdk
            .into_builder()
            .service_config(ServiceEndpoints(endpoints.clone()))
            .build(),
        None => sdk,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_are_local() {
        for url in [
            "http://127.0.0.1:4580",
            "http://localhost:4566/",
            "http://[::1]:5000",
        ] {
            assert!(
                Endpoints::single(url).is_local("Cognito Identity Provider"),
                "{url}"
            );
        }
        for url in [
            "https://cognito-idp.eu-west-1.amazonaws.com",
            "http://10.0.0.7:4566",
        ] {
            assert!(
                !Endpoints::single(url).is_local("Cognito Identity Provider"),
                "{url}"
            );
        }
        let mut split = Endpoints::single("http://127.0.0.1:4580");
        split.services.insert(
            "COGNITO_IDENTITY_PROVIDER".into(),
            "https://cognito-idp.eu-west-1.amazonaws.com".into(),
        );
        assert!(!split.is_local("Cognito Identity Provider"));
    }

    fn split() -> Endpoints {
        Endpoints {
            default: "http://127.0.0.1:1".into(),
            services: BTreeMap::from([("DYNAMODB".into(), "http://127.0.0.1:2".into())]),
        }
    }

    #[test]
    fn each_service_finds_its_endpoint() {
        let endpoints = split();
        assert_eq!(endpoints.of("DynamoDB"), "http://127.0.0.1:2");
        assert_eq!(endpoints.of("SNS"), "http://127.0.0.1:1");
        assert_eq!(endpoints.of("SESv2"), "http://127.0.0.1:1");
        assert_eq!(
            endpoints.environment(),
            vec![
                (
                    "AWS_ENDPOINT_URL".to_owned(),
                    "http://127.0.0.1:1".to_owned()
                ),
                (
                    "AWS_ENDPOINT_URL_DYNAMODB".to_owned(),
                    "http://127.0.0.1:2".to_owned()
                ),
            ]
        );
    }

    /// Which of two listeners each client connects to.
    #[tokio::test]
    async fn the_clients_call_their_own_service_endpoint() {
        let services = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dynamodb = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoints = Endpoints {
            default: format!("http://{}", services.local_addr().unwrap()),
            services: BTreeMap::from([(
                "DYNAMODB".into(),
                format!("http://{}", dynamodb.local_addr().unwrap()),
            )]),
        };
        let sdk = sdk_config(Some(&endpoints)).await;
        let wait = std::time::Duration::from_secs(5);

        let call = tokio::spawn(aws_sdk_dynamodb::Client::new(&sdk).list_tables().send());
        assert!(tokio::time::timeout(wait, dynamodb.accept()).await.is_ok());
        call.abort();
        let call = tokio::spawn(aws_sdk_sqs::Client::new(&sdk).list_queues().send());
        assert!(tokio::time::timeout(wait, services.accept()).await.is_ok());
        call.abort();
    }
}
