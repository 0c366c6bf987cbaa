//! The functions' metrics, kept in this process: what CloudWatch would receive from their
//! embedded metric format documents on Lambda, for the live view to read.
//!
//! Written here rather than taken from `metrics-util`: the view needs running totals (counters,
//! and each histogram's count, sum and latest value) that any number of readers can sample
//! without resetting them, which is a map of atomics and little else.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// A metric's name and dimensions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetricKey {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

impl MetricKey {
    /// The value of dimension `label`, if the metric has it.
    pub fn label(&self, label: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(name, _)| name == label)
            .map(|(_, value)| value.as_str())
    }
}

/// A histogram's running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub sum: f64,
    pub last: f64,
}

/// What a metric holds at one moment.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Counter(u64),
    Histogram(Summary),
}

#[derive(Default)]
struct Recorded(Mutex<Summary>);

impl HistogramFn for Recorded {
    fn record(&self, value: f64) {
        let mut summary = self.0.lock().unwrap_or_else(|p| p.into_inner());
        summary.count += 1;
        summary.sum += value;
        summary.last = value;
    }
}

struct Totals(AtomicU64);

impl CounterFn for Totals {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<MetricKey, Arc<Totals>>,
    histograms: BTreeMap<MetricKey, Arc<Recorded>>,
}

/// The process's metrics recorder (installed once, by [`LocalMetrics::install`]).
#[derive(Default, Clone)]
pub struct LocalMetrics(Arc<Mutex<Registry>>);

impl LocalMetrics {
    /// Installs the recorder for this process, or answers the one installed already. `None`
    /// when another recorder was installed first.
    pub fn install() -> Option<&'static LocalMetrics> {
        static INSTALLED: OnceLock<Option<LocalMetrics>> = OnceLock::new();
        INSTALLED
            .get_or_init(|| {
                let metrics = LocalMetrics::default();
                let installed = metrics::set_global_recorder(metrics.clone()).is_ok();
                installed.then_some(metrics)
            })
            .as_ref()
    }

    /// Every metric recorded so far, with its current totals.
    pub fn snapshot(&self) -> Vec<(MetricKey, Value)> {
        let registry = self.lock();
        let counters = registry
            .counters
            .iter()
            .map(|(key, c)| (key.clone(), Value::Counter(c.0.load(Ordering::Relaxed))));
        let histograms = registry.histograms.iter().map(|(key, h)| {
            let summary = *h.0.lock().unwrap_or_else(|p| p.into_inner());
            (key.clone(), Value::Histogram(summary))
        });
        counters.chain(histograms).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn metric_key(key: &Key) -> MetricKey {
    MetricKey {
        name: key.name().to_owned(),
        labels: key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect(),
    }
}

impl Recorder for LocalMetrics {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut registry = self.lock();
        let totals = registry
            .counters
            .entry(metric_key(key))
            .or_insert_with(|| Arc::new(Totals(AtomicU64::new(0))))
            .clone();
        Counter::from_arc(totals)
    }

    /// No function records gauges.
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut registry = self.lock();
        let recorded = registry
            .histograms
            .entry(metric_key(key))
            .or_default()
            .clone();
        Histogram::from_arc(recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_keep_running_totals_per_dimension() {
        let metrics = LocalMetrics::default();
        metrics::with_local_recorder(&metrics, || {
            metrics::counter!("RecordsReceived", "service" => "payment").increment(2);
            metrics::counter!("RecordsReceived", "service" => "payment").increment(3);
            metrics::counter!("RecordsReceived", "service" => "shipping").increment(1);
            metrics::histogram!("EventAge", "service" => "payment").record(10.0);
            metrics::histogram!("EventAge", "service" => "payment").record(30.0);
        });
        let snapshot: BTreeMap<(String, String), Value> = metrics
            .snapshot()
            .into_iter()
            .map(|(key, value)| {
                let service = key.label("service").unwrap_or_default().to_owned();
                ((key.name, service), value)
            })
            .collect();
        let get =
            |name: &str, service: &str| snapshot[&(name.to_owned(), service.to_owned())].clone();
        assert_eq!(get("RecordsReceived", "payment"), Value::Counter(5));
        assert_eq!(get("RecordsReceived", "shipping"), Value::Counter(1));
        assert_eq!(
            get("EventAge", "payment"),
            Value::Histogram(Summary {
                count: 2,
                sum: 40.0,
                last: 30.0
            })
        );
    }
}
