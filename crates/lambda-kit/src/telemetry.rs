//! Logging set-up shared by every function and the local runtime.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Installs the global `tracing` subscriber once; later calls do nothing.
///
/// Lambda's advanced logging controls are honoured: `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`,
/// from the function's `LoggingConfig.LogFormat`) and `AWS_LAMBDA_LOG_LEVEL` (from
/// `ApplicationLogLevel`). A JSON line carries, at its top level, the fields of every span it is
/// in: the Lambda runtime's invocation span (`requestId`, `xrayTraceId`) and the record's
/// (`order_id`, `event_id`, `correlation_id`), so CloudWatch Logs Insights can filter a record's
/// lines by any of them and X-Ray's trace leads to them. `RUST_LOG`, when set, wins over
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
    let _already_set = if settings.json {
        tracing_subscriber::registry()
            .with(filter)
            .with(json_layer(std::io::stderr))
            .try_init()
            .map_err(|e| e.to_string())
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .compact()
            .with_target(false)
            .try_init()
            .map_err(|e| e.to_string())
    };
}

/// JSON lines: time, level, target, the event's fields and every enclosing span's fields, all
/// at the top level.
fn json_layer<S, W>(writer: W) -> json_subscriber::JsonLayer<S, W>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    let mut layer = json_subscriber::JsonLayer::new(writer);
    layer
        .with_timer("timestamp", tracing_subscriber::fmt::time::SystemTime)
        .with_level("level")
        .with_target("target")
        .with_flattened_event()
        .with_top_level_flattened_span_list();
    layer
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
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::{json_layer, LogSettings};

    /// A writer that keeps what is written, for reading the lines back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What the Lambda runtime's invocation span and a record's span put on a line: every
    /// identifier at the top level, none under a `span` key.
    #[test]
    fn a_record_line_carries_the_invocation_s_and_the_record_s_identifiers_at_top_level() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry().with(json_layer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let invocation = tracing::info_span!(
                "Lambda runtime invoke",
                requestId = "req-1",
                xrayTraceId = "Root=1-abc"
            );
            let _invocation = invocation.enter();
            let record =
                tracing::info_span!("order_event", event_id = "ev-1", correlation_id = "corr-1");
            let _record = record.enter();
            tracing::info!(status = "Confirmed", "recorded");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        for (key, value) in [
            ("requestId", "req-1"),
            ("xrayTraceId", "Root=1-abc"),
            ("event_id", "ev-1"),
            ("correlation_id", "corr-1"),
            ("status", "Confirmed"),
            ("message", "recorded"),
            ("level", "INFO"),
        ] {
            assert_eq!(line[key], value, "{key} in {line}");
        }
        assert!(
            line.get("span").is_none() && line.get("spans").is_none(),
            "{line}"
        );
    }

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
