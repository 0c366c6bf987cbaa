//! The payment Lambda function.

fn main() -> Result<(), lambda_kit::LambdaError> {
    lambda_kit::consumer::main(payment::Payment::from_env)
}
