//! The order API Lambda function (API Gateway HTTP API, payload format 2.0).

fn main() -> Result<(), lambda_kit::LambdaError> {
    lambda_kit::http::main(order_api::OrderApi::from_env)
}
