//! One picture of the running system, as the live view draws it: the topology the template
//! defines, each queue's depth and its DLQ's, each service's throughput and lag (from the same
//! metrics the functions send CloudWatch on AWS), the business counts, and the latest orders with
//! their timelines.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lambda_kit::metrics::{name, EVENT_TYPE, REASON, SERVICE};
use local_runtime::metrics::{LocalMetrics, Value};
use local_runtime::runtime::LocalRuntime;
use orders::{OrderItem, OrderView, Status};
use serde::Serialize;

/// Orders shown with their timelines.
pub const LATEST_ORDERS: usize = 8;

/// A queue consumer as the template wires it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Consumer {
    pub function: String,
    pub service: String,
    pub queue: String,
    pub dead_letter_queue: Option<String>,
    /// The event types its subscription lets through.
    pub event_types: Vec<String>,
    #[serde(skip)]
    queue_url: String,
    #[serde(skip)]
    dead_letter_url: Option<String>,
}

/// What the template defines: the API's routes, the topic, each consumer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Topology {
    pub api: Vec<String>,
    pub api_function: String,
    pub topic: String,
    pub consumers: Vec<Consumer>,
}

impl Topology {
    pub fn of(runtime: &LocalRuntime) -> Self {
        let template = runtime.topology();
        let deployment = runtime.deployment();
        let api = template
            .functions
            .iter()
            .flat_map(|f| f.http_routes.iter().map(|r| r.key()))
            .collect();
        let api_function = template
            .functions
            .iter()
            .find(|f| !f.http_routes.is_empty())
            .map(|f| f.binary.clone())
            .unwrap_or_default();
        let consumers = template
            .functions
            .iter()
            .flat_map(|function| {
                function.sqs_sources.iter().map(move |source| {
                    let dead_letter_queue = template
                        .queues
                        .iter()
                        .find(|q| q.logical_id == source.queue)
                        .and_then(|q| q.redrive.as_ref().map(|(dlq, _)| dlq.clone()));
                    let event_types = template
                        .subscriptions
                        .iter()
                        .filter(|s| s.queue == source.queue)
                        .filter_map(|s| s.filter_policy.as_ref())
                        .filter_map(|policy| policy["eventType"].as_array())
                        .flatten()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect();
                    Consumer {
                        function: function.logical_id.clone(),
                        service: function.binary.clone(),
                        queue: source.queue.clone(),
                        queue_url: deployment.reference(&source.queue),
                        dead_letter_url: dead_letter_queue
                            .as_ref()
                            .map(|d| deployment.reference(d)),
                        dead_letter_queue,
                        event_types,
                    }
                })
            })
            .collect();
        Self {
            api,
            api_function,
            topic: template.topics.first().cloned().unwrap_or_default(),
            consumers,
        }
    }
}

/// One queue's depth, as SQS's attributes (and CloudWatch's ApproximateNumberOfMessages*) say.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
    pub dead_letters: u64,
}

/// One service's work, from its metrics.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceWork {
    pub received: u64,
    pub succeeded: u64,
    pub replayed: u64,
    pub failed: u64,
    /// Records finished per second since the previous picture.
    pub per_second: f64,
    /// How far behind the service is, in milliseconds: the age of the events it processed since
    /// the previous picture, or, while its queue holds messages it is not taking, how long the
    /// queue has not been empty (what CloudWatch calls the age of the oldest message).
    pub lag_ms: u64,
    /// Mean processing time per record since the previous picture, in milliseconds.
    pub processing_ms: f64,
}

/// The business, from the metrics and the order service's table.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Business {
    pub placed: u64,
    pub confirmed: u64,
    pub cancelled: BTreeMap<String, u64>,
    pub waiting_for_decision: u64,
    /// Mean time from placement to the announced decision, in milliseconds.
    pub time_to_decision_ms: f64,
    pub payment_declines: u64,
}

/// Everything the page draws.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Picture {
    pub taken_at: chrono::DateTime<chrono::Utc>,
    pub topology: Topology,
    pub queues: BTreeMap<String, QueueDepth>,
    pub services: BTreeMap<String, ServiceWork>,
    pub business: Business,
    pub latest: Vec<OrderView>,
}

/// Takes pictures; remembers the previous one's totals to say what changed in between.
pub struct Sampler {
    topology: Topology,
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    orders_table: Option<String>,
    metrics: Option<&'static LocalMetrics>,
    /// The totals at the previous picture: records finished, event age and processing time.
    previous: Option<(Instant, BTreeMap<String, Totals>)>,
    /// Since when each queue (by function) has held messages.
    backlog_since: BTreeMap<String, Instant>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    finished: u64,
    age: (u64, f64),
    processing: (u64, f64),
}

impl Sampler {
    pub fn new(runtime: &LocalRuntime) -> Self {
        Self {
            topology: Topology::of(runtime),
            sqs: aws_sdk_sqs::Client::new(runtime.sdk()),
            dynamodb: aws_sdk_dynamodb::Client::new(runtime.sdk()),
            orders_table: crate::report::table(runtime.deployment(), "orders", "ORDERS_TABLE").ok(),
            metrics: LocalMetrics::install(),
            previous: None,
            backlog_since: BTreeMap::new(),
        }
    }

    /// A new picture: one GetQueueAttributes per queue and DLQ, one scan of the orders table.
    pub async fn take(&mut self) -> Picture {
        let queues = self.queue_depths().await;
        let (mut services, totals) = self.services();
        let now = Instant::now();
        for consumer in &self.topology.consumers {
            let depth = queues.get(&consumer.function).cloned().unwrap_or_default();
            let waiting = depth.visible + depth.in_flight > 0;
            let since = match waiting {
                true => *self
                    .backlog_since
                    .entry(consumer.function.clone())
                    .or_insert(now),
                false => {
                    self.backlog_since.remove(&consumer.function);
                    now
                }
            };
            let work = services.entry(consumer.service.clone()).or_default();
            work.lag_ms = match waiting {
                true => work
                    .lag_ms
                    .max(now.duration_since(since).as_millis() as u64),
                false => 0,
            };
        }
        self.previous = Some((now, totals));
        let (waiting, latest) = self.orders().await;
        let mut business = self.business();
        business.waiting_for_decision = waiting;
        Picture {
            taken_at: chrono::Utc::now(),
            topology: self.topology.clone(),
            queues,
            services,
            business,
            latest,
        }
    }

    async fn queue_depths(&self) -> BTreeMap<String, QueueDepth> {
        let reads = self.topology.consumers.iter().map(|consumer| async move {
            let (visible, in_flight) = self.depth(&consumer.queue_url).await;
            let dead_letters = match &consumer.dead_letter_url {
                Some(url) => self.depth(url).await.0,
                None => 0,
            };
            let depth = QueueDepth {
                visible,
                in_flight,
                dead_letters,
            };
            (consumer.function.clone(), depth)
        });
        futures::future::join_all(reads).await.into_iter().collect()
    }

    /// Visible and in-flight messages of the queue at `url` (zeros if it cannot be read).
    async fn depth(&self, url: &str) -> (u64, u64) {
        crate::dlq::depths(&self.sqs, url).await.unwrap_or((0, 0))
    }

    fn metrics(&self) -> Vec<(local_runtime::metrics::MetricKey, Value)> {
        self.metrics.map(LocalMetrics::snapshot).unwrap_or_default()
    }

    /// Each consumer's counts, and its rates and times since the previous picture.
    fn services(&self) -> (BTreeMap<String, ServiceWork>, BTreeMap<String, Totals>) {
        let mut services: BTreeMap<String, ServiceWork> = self
            .topology
            .consumers
            .iter()
            .map(|c| (c.service.clone(), ServiceWork::default()))
            .collect();
        let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
        for (key, value) in self.metrics() {
            let Some(service) = key.label(SERVICE) else {
                continue;
            };
            let Some(work) = services.get_mut(service) else {
                continue;
            };
            let total = totals.entry(service.to_owned()).or_default();
            match (key.name.as_str(), value) {
                (name::RECORDS_RECEIVED, Value::Counter(n)) => work.received += n,
                (name::RECORDS_SUCCEEDED, Value::Counter(n)) => {
                    work.succeeded += n;
                    total.finished += n;
                }
                (name::RECORDS_REPLAYED, Value::Counter(n)) => {
                    work.replayed += n;
                    total.finished += n;
                }
                (name::RECORDS_FAILED, Value::Counter(n)) => {
                    work.failed += n;
                    total.finished += n;
                }
                (name::EVENT_AGE, Value::Histogram(s)) if key.label(EVENT_TYPE).is_some() => {
                    total.age.0 += s.count;
                    total.age.1 += s.sum;
                }
                (name::PROCESSING_TIME, Value::Histogram(s)) => {
                    total.processing.0 += s.count;
                    total.processing.1 += s.sum;
                }
                _ => {}
            }
        }
        if let Some((at, before)) = &self.previous {
            let seconds = at.elapsed().as_secs_f64().max(0.001);
            for (service, now) in &totals {
                let then = before.get(service).copied().unwrap_or_default();
                let Some(work) = services.get_mut(service) else {
                    continue;
                };
                work.per_second = (now.finished - then.finished) as f64 / seconds;
                let mean = |(n1, s1): (u64, f64), (n0, s0): (u64, f64)| {
                    (n1 > n0).then(|| (s1 - s0) / (n1 - n0) as f64)
                };
                if let Some(age) = mean(now.age, then.age) {
                    work.lag_ms = age.max(0.0) as u64;
                }
                work.processing_ms = mean(now.processing, then.processing).unwrap_or(0.0);
            }
        }
        (services, totals)
    }

    fn business(&self) -> Business {
        let mut business = Business::default();
        for (key, value) in self.metrics() {
            match (key.name.as_str(), value) {
                (name::ORDERS_PLACED, Value::Counter(n)) => business.placed += n,
                (name::ORDERS_CONFIRMED, Value::Counter(n)) => business.confirmed += n,
                (name::ORDERS_CANCELLED, Value::Counter(n)) => {
                    let reason = key.label(REASON).unwrap_or("unknown").to_owned();
                    *business.cancelled.entry(reason).or_default() += n;
                }
                (name::PAYMENT_DECLINES, Value::Counter(n)) => business.payment_declines += n,
                (name::TIME_TO_DECISION, Value::Histogram(s)) if s.count > 0 => {
                    business.time_to_decision_ms = s.sum / s.count as f64;
                }
                _ => {}
            }
        }
        business
    }

    /// Orders waiting for a decision, and the latest orders (by placement) as the API shows
    /// them.
    async fn orders(&self) -> (u64, Vec<OrderView>) {
        let Some(table) = &self.orders_table else {
            return (0, Vec::new());
        };
        let Ok(mut items) = crate::report::scan::<OrderItem>(&self.dynamodb, table).await else {
            return (0, Vec::new());
        };
        let waiting = items.iter().filter(|o| o.status == Status::Pending).count() as u64;
        items.sort_by_key(|o| std::cmp::Reverse(o.placed.as_ref().map(|p| p.at)));
        let latest = items
            .iter()
            .filter_map(OrderView::of)
            .take(LATEST_ORDERS)
            .collect();
        (waiting, latest)
    }
}

/// How often a picture is taken while a page watches (none while nobody does).
pub const PERIOD: Duration = Duration::from_millis(500);
