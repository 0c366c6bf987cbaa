//! The inventory Lambda function.

fn main() -> Result<(), lambda_kit::LambdaError> {
    lambda_kit::consumer::main(inventory::Inventory::from_env)
}
