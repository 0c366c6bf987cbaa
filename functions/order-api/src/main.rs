//! The order API Lambda function (API Gateway HTTP API, payload format 2.0).

use lambda_http::{service_fn, Error, Request};
use lambda_kit::consumer::FunctionEnv;
use order_api::OrderApi;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_kit::telemetry::init();
    let sdk = aws_config::load_from_env().await;
    let api = OrderApi::from_env(&sdk, &FunctionEnv::from_process())?;
    let api = &api;
    lambda_http::run(service_fn(|request: Request| async move {
        Ok::<_, Error>(api.handle(request).await)
    }))
    .await
}
