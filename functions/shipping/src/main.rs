//! The shipping Lambda function.

fn main() -> Result<(), lambda_kit::LambdaError> {
    lambda_kit::consumer::main(shipping::Shipping::from_env)
}
