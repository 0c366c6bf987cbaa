//! The order service's Lambda function.

fn main() -> Result<(), lambda_kit::LambdaError> {
    lambda_kit::consumer::main(orders::Orders::from_env)
}
