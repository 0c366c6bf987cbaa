//! One picture of the running system, as the live view draws it: the topology the template
//! defines, each queue's depth and its DLQ's, each service's throughput and lag (from the same
//! metrics the functions send CloudWatch on AWS), the business counts, and the latest orders with
//! their timelines.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use lambda_kit::metrics::{name, REASON, SERVICE};
use local_runtime::event_source::Stats;
use local_runtime::metrics::{LocalMetrics, MetricKey, Value};
use local_runtime::runtime::LocalRuntime;
use order_state::{OrderItem, OrderView};
use serde::Serialize;
use tokio::sync::broadcast;

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
        let consumers = template
            .functions
            .iter()
            .flat_map(|function| {
                function.sqs_sources.iter().map(move |source| {
                    let dead_letter_queue = template
                        .dead_letter_queue_of(&source.queue)
                        .map(str::to_owned);
                    let event_types = template.event_types_of(&source.queue);
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
    /// How far behind the service is, in milliseconds: the mean age of the events it started on
    /// since the previous picture; when it started on none but its queue holds messages, the
    /// lag it had when it last made progress plus the time since (so a stopped consumer's lag
    /// grows as CloudWatch's age of the oldest message would); zero when its queue is empty.
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
    /// Placed but neither confirmed nor cancelled yet (from the counters).
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
    /// The bodies of the records the order service is handed (it hears every event of every
    /// order), and the orders they were about, most recent first.
    order_states: Option<broadcast::Receiver<String>>,
    active_orders: VecDeque<String>,
    metrics: Option<&'static LocalMetrics>,
    /// The totals at the previous picture: records finished, event age and processing time.
    previous: Option<(Instant, BTreeMap<String, Totals>)>,
    /// When each service (by name) last started on events, and its lag then.
    last_progress: BTreeMap<String, (Instant, u64)>,
    /// This runtime's event source mappings: records handed to each function (by logical id).
    /// (The metrics are the process's, which in a test binary holds other runtimes too.)
    sources: Stats,
    handed: BTreeMap<String, u64>,
    /// Pictures taken, and the last one (what the slower reads reuse in between).
    pictures: u64,
    last: Option<Picture>,
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
            orders_table: crate::report::table(runtime.deployment(), &orders::SPEC).ok(),
            order_states: runtime
                .topology()
                .functions
                .iter()
                .find(|f| f.binary == orders::SPEC.name)
                .and_then(|f| runtime.observe(&f.logical_id)),
            active_orders: VecDeque::new(),
            metrics: LocalMetrics::install(),
            previous: None,
            last_progress: BTreeMap::new(),
            sources: runtime.shared_stats(),
            handed: BTreeMap::new(),
            pictures: 0,
            last: None,
        }
    }

    /// A new picture: one GetQueueAttributes per queue (per DLQ every [`SLOW_EVERY`]th
    /// picture) and, every other picture, one BatchGetItem of the latest orders.
    pub async fn take(&mut self) -> Picture {
        let queues = self.queue_depths().await;
        let metrics = self.metrics();
        let (mut services, totals) = self.services(&metrics);
        let now = Instant::now();
        for consumer in &self.topology.consumers {
            let depth = queues.get(&consumer.function).cloned().unwrap_or_default();
            let Some(work) = services.get_mut(&consumer.service) else {
                continue;
            };
            let handed = self.sources.of(&consumer.function).records;
            let before = self.handed.insert(consumer.function.clone(), handed);
            let started_some = handed > before.unwrap_or(0);
            if started_some {
                self.last_progress
                    .insert(consumer.service.clone(), (now, work.lag_ms));
            } else if depth.visible + depth.in_flight > 0 {
                let (at, lag) = *self
                    .last_progress
                    .entry(consumer.service.clone())
                    .or_insert((now, 0));
                work.lag_ms = lag + now.duration_since(at).as_millis() as u64;
            } else {
                work.lag_ms = 0;
                self.last_progress
                    .insert(consumer.service.clone(), (now, 0));
            }
        }
        self.previous = Some((now, totals));
        self.note_active_orders();
        // The latest orders every other picture: their timelines move by events, which a
        // second shows well enough.
        let latest = match (self.pictures % 2, &self.last) {
            (1, Some(last)) => last.latest.clone(),
            _ => self.latest_orders().await,
        };
        let business = business(&metrics);
        let picture = Picture {
            taken_at: chrono::Utc::now(),
            topology: self.topology.clone(),
            queues,
            services,
            business,
            latest,
        };
        self.pictures += 1;
        self.last = Some(picture.clone());
        picture
    }

    /// Each queue's depth; its DLQ's only on every [`SLOW_EVERY`]th picture (dead letters are
    /// rare and stay), the last count otherwise.
    async fn queue_depths(&self) -> BTreeMap<String, QueueDepth> {
        let read_dead_letters = self.pictures.is_multiple_of(SLOW_EVERY);
        let reads = self.topology.consumers.iter().map(|consumer| async move {
            let (visible, in_flight) = self.depth(&consumer.queue_url).await;
            let dead_letters = match &consumer.dead_letter_url {
                Some(url) if read_dead_letters => self.depth(url).await.0,
                _ => self
                    .last
                    .as_ref()
                    .and_then(|last| last.queues.get(&consumer.function))
                    .map_or(0, |depth| depth.dead_letters),
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

    fn metrics(&self) -> Vec<(MetricKey, Value)> {
        self.metrics.map(LocalMetrics::snapshot).unwrap_or_default()
    }

    /// Each consumer's counts, and its rates and times since the previous picture.
    fn services(
        &self,
        metrics: &[(MetricKey, Value)],
    ) -> (BTreeMap<String, ServiceWork>, BTreeMap<String, Totals>) {
        let mut services: BTreeMap<String, ServiceWork> = self
            .topology
            .consumers
            .iter()
            .map(|c| (c.service.clone(), ServiceWork::default()))
            .collect();
        let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
        for (key, value) in metrics {
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
                (name::EVENT_AGE, Value::Histogram(s)) => {
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

    /// Takes in the subjects (order ids) of the records the order service was handed since the
    /// previous picture: the most recently active orders, newest first.
    fn note_active_orders(&mut self) {
        let Some(records) = &mut self.order_states else {
            return;
        };
        loop {
            let body = match records.try_recv() {
                Ok(body) => body,
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            };
            let subject = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|event| event["subject"].as_str().map(str::to_owned));
            if let Some(order) = subject {
                self.active_orders.retain(|o| *o != order);
                self.active_orders.push_front(order);
                self.active_orders.truncate(LATEST_ORDERS);
            }
        }
    }

    /// The most recently active orders as the API shows them: one BatchGetItem of at most
    /// [`LATEST_ORDERS`] keys (never a scan, whose cost grows with the table).
    async fn latest_orders(&self) -> Vec<OrderView> {
        let Some(table) = &self.orders_table else {
            return Vec::new();
        };
        if self.active_orders.is_empty() {
            return Vec::new();
        }
        let keys = self
            .active_orders
            .iter()
            .map(|order| {
                HashMap::from([(OrderItem::KEY.to_owned(), AttributeValue::S(order.clone()))])
            })
            .collect();
        let Ok(wanted) = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
        else {
            return Vec::new();
        };
        let read = self
            .dynamodb
            .batch_get_item()
            .request_items(table, wanted)
            .send()
            .await;
        let items = read
            .ok()
            .and_then(|output| output.responses)
            .and_then(|mut responses| responses.remove(table))
            .unwrap_or_default();
        let mut views: Vec<OrderView> = items
            .into_iter()
            .filter_map(|item| serde_dynamo::from_item::<_, OrderItem>(item).ok())
            .filter_map(|item| OrderView::of(&item))
            .collect();
        let rank = |view: &OrderView| {
            let id = view.order_id.to_string();
            self.active_orders.iter().position(|o| *o == id)
        };
        views.sort_by_key(rank);
        views
    }
}

/// The business counts, from the metrics.
fn business(metrics: &[(MetricKey, Value)]) -> Business {
    let mut business = Business::default();
    for (key, value) in metrics {
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
    let decided = business.confirmed + business.cancelled.values().sum::<u64>();
    business.waiting_for_decision = business.placed.saturating_sub(decided);
    business
}

/// How often a picture is taken while a page watches (none while nobody does).
pub const PERIOD: Duration = Duration::from_millis(500);

/// The DLQs' depths are read on every this many pictures (every 2 s).
const SLOW_EVERY: u64 = 4;
