//! The one HTTP/1.1 server loop of the local runtime (the gateway and the fault proxy use it,
//! and the benchmarks' Runtime API): accepts connections until shutdown, one task each.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http_body_util::combinators::BoxBody;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A response with its whole body.
pub type FullResponse = hyper::Response<Full<Bytes>>;

/// A response whose body may be streamed (server-sent events).
pub type StreamedResponse = hyper::Response<BoxBody<Bytes, Infallible>>;

/// Serves `handler` on `listener` until `shutdown` turns true. Connections already accepted
/// finish their requests.
pub fn serve<H, F, B>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    handler: H,
) -> JoinHandle<()>
where
    H: Fn(hyper::Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = hyper::Response<B>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else { continue };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let answer = handler(request);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// A response with a JSON (or any `content_type`) body.
pub fn respond(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> FullResponse {
    let mut response = hyper::Response::new(Full::new(body.into()));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response.headers_mut().insert(
        ::http::header::CONTENT_TYPE,
        ::http::HeaderValue::from_static(content_type),
    );
    response
}
