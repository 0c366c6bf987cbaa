//! What an HTTP function is (behind API Gateway's HTTP API), and how it runs on Lambda.
//!
//! Object-safe like [`crate::consumer::SqsConsumer`], so the local runtime can hold every HTTP
//! function behind one type and hand it the request `lambda_http` builds from an API Gateway
//! event, as on Lambda.

use lambda_http::{Body, Request, Response};

pub use futures::future::BoxFuture;

/// A function behind API Gateway: one request in, one response out. Errors are responses too.
pub trait HttpFunction: Send + Sync {
    fn handle(&self, request: Request) -> BoxFuture<'_, Response<Body>>;
}

/// Runs `function` under the Lambda runtime until the process ends.
pub async fn run_on_lambda(function: impl HttpFunction) -> Result<(), lambda_http::Error> {
    let function = &function;
    lambda_http::run(lambda_http::service_fn(|request: Request| async move {
        Ok::<_, lambda_http::Error>(function.handle(request).await)
    }))
    .await
}
