//! The AWS SDK configuration the runtime, its functions and the operator tools use.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// An SDK configuration for `endpoint` (or the environment's endpoint settings when `None`).
/// For an emulator (an endpoint given here or in `AWS_ENDPOINT_URL`) it falls back to a default
/// region and dummy credentials, which emulators accept; for AWS itself the usual chain
/// (environment, profile, instance role) decides.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    let emulated = endpoint.is_some() || std::env::var_os("AWS_ENDPOINT_URL").is_some();
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
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}
