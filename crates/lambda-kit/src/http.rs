//! What an HTTP function is (behind API Gateway's HTTP API), and how it runs on Lambda.
//!
//! Object-safe like [`crate::consumer::SqsConsumer`], so the local runtime can hold every HTTP
//! function behind one type and hand it the request `lambda_http` builds from an API Gateway
//! event, as on Lambda.

use lambda_http::{Body, Request, RequestExt, Response};

use crate::metrics;

pub use futures::future::BoxFuture;

/// A function behind API Gateway: one request in, one response out. Errors are responses too.
pub trait HttpFunction: Send + Sync {
    fn handle(&self, request: Request) -> BoxFuture<'_, Response<Body>>;

    /// The service this function is: the `service` dimension of its metrics.
    fn service(&self) -> &'static str;
}

/// An HTTP function's whole `main`: builds the function with `build` (its `from_env`) and runs
/// it on Lambda.
pub fn main<F: HttpFunction>(
    build: impl FnOnce(
        &aws_config::SdkConfig,
        &crate::consumer::FunctionEnv,
    ) -> Result<F, crate::consumer::ConfigError>,
) -> Result<(), lambda_runtime::Error> {
    crate::start(build, run_on_lambda)
}

/// Runs `function` under the Lambda runtime until the process ends, with its metrics written
/// in embedded metric format once per invocation.
pub async fn run_on_lambda(function: impl HttpFunction) -> Result<(), lambda_http::Error> {
    metrics::init_on_lambda(function.service());
    let function = &function;
    lambda_http::run(lambda_http::service_fn(|request: Request| async move {
        let context = request.lambda_context_ref().cloned().unwrap_or_default();
        let response = crate::calls::scope(function.service(), function.handle(request)).await;
        metrics::flush(&context.request_id, context.xray_trace_id.as_deref());
        Ok::<_, lambda_http::Error>(response)
    }))
    .await
}
