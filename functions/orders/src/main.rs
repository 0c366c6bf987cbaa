//! The order service Lambda function.

use lambda_kit::consumer::{run_on_lambda, FunctionEnv};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_kit::telemetry::init();
    let sdk = aws_config::load_from_env().await;
    run_on_lambda(orders::Orders::from_env(
        &sdk,
        &FunctionEnv::from_process(),
    )?)
    .await
}
