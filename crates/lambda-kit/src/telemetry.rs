//! Logging set-up shared by every function and the local runtime.

use tracing_subscriber::EnvFilter;

/// Installs the global `tracing` subscriber once; later calls do nothing.
///
/// On Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) lines are JSON, one object per line, with the
/// span fields (orderId, eventId, correlationId) flattened in so CloudWatch Logs Insights can
/// filter on them. Elsewhere lines are compact text. `RUST_LOG` sets the filter (default `info`).
pub fn init() {
    init_with_default("info");
}

/// [`init`] with another filter for when `RUST_LOG` is unset.
pub fn init_with_default(filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _already_set = if on_lambda {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.compact().with_target(false).try_init()
    };
}
