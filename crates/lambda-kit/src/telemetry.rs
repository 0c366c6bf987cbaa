//! Logging set-up shared by every function and the local runtime.

use tracing_subscriber::EnvFilter;

/// Installs the global `tracing` subscriber once; later calls do nothing.
///
/// Lambda's advanced logging controls are honoured: `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`,
/// from the function's `LoggingConfig.LogFormat`) and `AWS_LAMBDA_LOG_LEVEL` (from
/// `ApplicationLogLevel`). JSON lines carry the span fields (orderId, eventId, correlationId)
/// flattened in, so CloudWatch Logs Insights can filter on them. `RUST_LOG`, when set, wins over
/// the level (handy locally). Without any of them: JSON on Lambda (`AWS_LAMBDA_FUNCTION_NAME`
/// set), compact text elsewhere, at `info`.
pub fn init() {
    init_with_default("info");
}

/// [`init`] with another filter for when neither `RUST_LOG` nor `AWS_LAMBDA_LOG_LEVEL` is set.
pub fn init_with_default(filter: &str) {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let settings = LogSettings::from(
        var("RUST_LOG").as_deref(),
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        var("AWS_LAMBDA_LOG_FORMAT").as_deref(),
        var("AWS_LAMBDA_FUNCTION_NAME").is_some(),
        filter,
    );
    let filter = EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _already_set = if settings.json {
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

/// The filter and format the environment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LogSettings {
    filter: String,
    json: bool,
}

impl LogSettings {
    fn from(
        rust_log: Option<&str>,
        lambda_level: Option<&str>,
        lambda_format: Option<&str>,
        on_lambda: bool,
        default: &str,
    ) -> Self {
        let level = lambda_level.map(|level| match level.to_ascii_uppercase().as_str() {
            "TRACE" => "trace",
            "DEBUG" => "debug",
            "WARN" => "warn",
            "ERROR" | "FATAL" => "error",
            _ => "info",
        });
        let filter = rust_log.or(level).unwrap_or(default).to_owned();
        let json = match lambda_format {
            Some(format) => format.eq_ignore_ascii_case("json"),
            None => on_lambda,
        };
        Self { filter, json }
    }
}

#[cfg(test)]
mod tests {
    use super::LogSettings;

    #[test]
    fn lambda_logging_controls_decide_unless_rust_log_is_set() {
        let settings = |rust_log, level, format, on_lambda| {
            let s = LogSettings::from(rust_log, level, format, on_lambda, "info");
            (s.filter, s.json)
        };
        assert_eq!(settings(None, None, None, true), ("info".into(), true));
        assert_eq!(settings(None, None, None, false), ("info".into(), false));
        assert_eq!(
            settings(None, Some("DEBUG"), Some("JSON"), true),
            ("debug".into(), true)
        );
        assert_eq!(
            settings(None, Some("FATAL"), Some("Text"), true),
            ("error".into(), false)
        );
        assert_eq!(
            settings(Some("warn,inventory=trace"), Some("DEBUG"), None, true),
            ("warn,inventory=trace".into(), true)
        );
    }
}
