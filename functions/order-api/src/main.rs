//! The order API Lambda function (API Gateway HTTP API, payload format 2.0).

use lambda_kit::consumer::FunctionEnv;
use order_api::OrderApi;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_kit::telemetry::init();
    let sdk = aws_config::load_from_env().await;
    lambda_kit::http::run_on_lambda(OrderApi::from_env(&sdk, &FunctionEnv::from_process())?).await
}
