//! The notification Lambda function.

fn main() -> Result<(), lambda_kit::LambdaError> {
    lambda_kit::consumer::main(notification::Notification::from_env)
}
