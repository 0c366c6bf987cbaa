//! The system under measurement: the local runtime on the emulator, the order API as deployed
//! (publishing to SNS) and the synchronous chain built from the same handlers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayRequestAuthorizer;
use futures::StreamExt;
use inventory::DynamoInventory;
use lambda_kit::effect::MemoryEffectStore;
use lambda_kit::http::HttpFunction;
use lambda_kit::idempotency::MemoryIdempotency;
use local_runtime::functions::Function;
use local_runtime::runtime::{LocalRuntime, RuntimeOptions};
use order_api::OrderApi;
use payment::SimulatedGateway;

use crate::chain::ChainPublisher;

/// The template's order API function (logical id): the fan-out's endpoint, and the chain's
/// configuration.
const ORDER_API: &str = "OrderApiFunction";

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A consumer of the template: its function (logical id), cargo binary, queue, and the event
/// types its queue's filter policy lets in.
#[derive(Debug, Clone)]
pub struct Consumer {
    pub function: String,
    pub binary: String,
    pub queue: String,
    pub event_types: Vec<String>,
}

pub use order_events::CONFIRMED_ORDER_EVENTS;

impl Consumer {
    /// The messages this consumer receives for one confirmed order.
    pub fn records_per_order(&self) -> u64 {
        CONFIRMED_ORDER_EVENTS
            .iter()
            .filter(|e| self.event_types.iter().any(|t| t == *e))
            .count() as u64
    }
}
pub const SKUS: [&str; 2] = ["SKU-KEYBOARD", "SKU-MOUSE"];
/// Concurrent pollers per queue of the raw loop: as many as a mapping of the runtime keeps
/// (which adds more, up to the template's `MaximumConcurrency`, under a backlog).
pub const POLLERS: usize = local_runtime::event_source::STEADY_POLLERS;

pub struct System {
    pub runtime: LocalRuntime,
    pub consumers: Vec<Consumer>,
    pub fanout: Arc<dyn HttpFunction>,
    pub chain: Arc<OrderApi<ChainPublisher, MemoryIdempotency, MemoryEffectStore>>,
    pub chain_gateway: Arc<SimulatedGateway>,
    pub order: serde_json::Value,
}

/// How a benchmark's system is deployed, beyond the template's defaults.
#[derive(Debug, Clone)]
pub struct Deploy {
    /// Template parameters.
    pub parameters: BTreeMap<String, String>,
    /// Every queue's visibility timeout (seconds).
    pub visibility_timeout: u32,
}

impl Default for Deploy {
    /// Failed records come back after 10 s (a 5 s gateway call still fits), and never reach the
    /// DLQ while the availability runs keep payment failing.
    fn default() -> Self {
        Self {
            parameters: BTreeMap::from([("MaxReceiveCount".to_owned(), "1000".to_owned())]),
            visibility_timeout: 10,
        }
    }
}

impl Deploy {
    /// The default with `name` set to `value`.
    pub fn with(mut self, name: &str, value: impl ToString) -> Self {
        self.parameters.insert(name.to_owned(), value.to_string());
        self
    }
}

impl System {
    pub async fn start() -> BenchResult<Self> {
        Self::start_with(Deploy::default()).await
    }

    pub async fn start_with(deploy: Deploy) -> BenchResult<Self> {
        let mut options = RuntimeOptions {
            http_address: ([127, 0, 0, 1], 0).into(),
            long_poll_seconds: 1,
            ..RuntimeOptions::default()
        };
        let unique = uuid::Uuid::now_v7().simple().to_string();
        options.provision.prefix = format!("b{}-", &unique[unique.len() - 8..]);
        options.provision.visibility_timeout_override = Some(deploy.visibility_timeout);
        options.provision.parameter_overrides = deploy.parameters;
        let runtime = LocalRuntime::start(options, orderflow::services::registry()).await?;
        let topology = runtime.topology();
        let consumers: Vec<Consumer> = topology
            .consumers()
            .filter_map(|f| {
                let queue = f.sqs_sources.first()?.queue.clone();
                let event_types = topology.event_types_of(&queue);
                Some(Consumer {
                    function: f.logical_id.clone(),
                    binary: f.binary.clone(),
                    queue,
                    event_types,
                })
            })
            .collect();

        let Function::Http(fanout) = runtime.build_function(ORDER_API, &[])?.function else {
            return Err(format!("{ORDER_API} is not an HTTP function").into());
        };
        // The chain's services announce their outcomes to a topic nobody reads, so that the
        // fan-out's consumers never see the chain's orders.
        let sink = aws_sdk_sns::Client::new(runtime.sdk())
            .create_topic()
            .name(format!("{}ChainSink", options_prefix(&runtime)))
            .send()
            .await?
            .topic_arn
            .ok_or("no topic arn")?;
        let mut services = Vec::new();
        let mut chain_gateway = None;
        // The order service decides in the fan-out; in the chain the endpoint does.
        for consumer in consumers.iter().filter(|c| c.binary != order_state::OWNER) {
            let built = runtime.build_function(&consumer.function, &[("TOPIC_ARN", &sink)])?;
            chain_gateway = chain_gateway.or(built.handle::<SimulatedGateway>());
            let Function::Queue(handler) = built.function else {
                return Err(format!("{} is not a queue consumer", consumer.function).into());
            };
            services.push((
                consumer.binary.clone(),
                handler,
                consumer.event_types.clone(),
            ));
        }
        let chain_gateway = chain_gateway.ok_or("the chain has no payment gateway")?;
        // The chain prices its orders as the fan-out's API does: the same catalogue, remembered
        // for as long.
        let api_env = runtime
            .environment(ORDER_API)
            .ok_or(format!("the template has no {ORDER_API}"))?;
        let catalogue = order_api::catalogue_from_env(runtime.sdk(), api_env)?;
        let chain = OrderApi::new(
            ChainPublisher::new(services, Duration::from_secs(30)),
            MemoryIdempotency::default(),
            MemoryEffectStore::new(order_state::OrderItem::KEY),
            catalogue,
        );
        // The demo's catalogue (the prices `events/order-request.json` displays), and stock
        // that never runs out.
        orderflow::shop::seed_catalogue(&runtime).await?;
        for sku in SKUS {
            inventory(&runtime).set_stock(sku, 100_000_000).await?;
        }
        let order = serde_json::from_str(&std::fs::read_to_string(
            local_runtime::emulator::project_root().join("events/order-request.json"),
        )?)?;
        Ok(Self {
            runtime,
            consumers,
            fanout,
            chain: Arc::new(chain),
            chain_gateway,
            order,
        })
    }

    pub fn gateway(&self) -> BenchResult<Arc<SimulatedGateway>> {
        Ok(self
            .runtime
            .handle::<SimulatedGateway>()
            .ok_or("no payment gateway")?)
    }

    /// Orders every consumer of the fan-out has completed (every message of a confirmed
    /// order deleted from its queue), the least over the consumers.
    pub fn completed_by_all(&self) -> u64 {
        self.consumers
            .iter()
            .map(|c| self.runtime.stats(&c.function).deleted / c.records_per_order().max(1))
            .min()
            .unwrap_or(0)
    }

    /// Waits until every consumer has completed `orders` orders; how long that took.
    pub async fn wait_completed(&self, orders: u64, limit: Duration) -> BenchResult<Duration> {
        let started = Instant::now();
        while self.completed_by_all() < orders {
            if started.elapsed() > limit {
                return Err(format!(
                    "only {} of {orders} orders completed in {limit:?}",
                    self.completed_by_all()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(started.elapsed())
    }

    /// Disables or enables every consumer's event source mapping (see [`Self::set_enabled`]).
    pub async fn set_consumers_enabled(&self, enabled: bool) {
        let functions: Vec<&str> = self.consumers.iter().map(|c| c.function.as_str()).collect();
        self.set_enabled(&functions, enabled).await;
    }

    /// Disables or enables the event source mappings of `functions`. Disabling waits out a long
    /// poll the mappings abandoned, which would otherwise take (and hide) the next messages.
    pub async fn set_enabled(&self, functions: &[&str], enabled: bool) {
        for function in functions {
            self.runtime.set_source_enabled(function, enabled);
        }
        if !enabled {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Messages the consumers have received so far, all together.
    pub fn records_received(&self) -> u64 {
        self.consumers
            .iter()
            .map(|c| self.runtime.stats(&c.function).records)
            .sum()
    }

    /// For every order placed since `since`, from the order service's table: the time from its
    /// placement to its confirmation, and to its shipment (the events' own times).
    pub async fn saga_times(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> BenchResult<(Vec<Duration>, Vec<Duration>)> {
        let client = aws_sdk_dynamodb::Client::new(self.runtime.sdk());
        let table = self.runtime.deployment().reference("OrdersTable");
        let items: Vec<order_state::OrderItem> = orderflow::report::scan(&client, &table).await?;
        let (mut confirmed, mut shipped) = (Vec::new(), Vec::new());
        for item in items {
            let Some(placed) = item.placed.as_ref().filter(|p| p.at >= since) else {
                continue;
            };
            let after = |at: chrono::DateTime<chrono::Utc>| (at - placed.at).to_std().ok();
            confirmed.extend(item.confirmed_at.and_then(after));
            shipped.extend(item.shipped.as_ref().and_then(|s| after(s.at)));
        }
        Ok((confirmed, shipped))
    }

    pub async fn stock(&self, sku: &str) -> BenchResult<u64> {
        Ok(inventory(&self.runtime).stock(sku).await?.unwrap_or(0))
    }
}

fn inventory(runtime: &LocalRuntime) -> DynamoInventory {
    DynamoInventory::new(
        aws_sdk_dynamodb::Client::new(runtime.sdk()),
        runtime.deployment().reference("InventoryTable"),
    )
}

/// The authorizer context API Gateway hands the function for the benchmark's customer once the
/// JWT authorizer has verified their token (verification is API Gateway's, not the function's).
fn customer() -> ApiGatewayRequestAuthorizer {
    local_runtime::gateway::jwt_context(
        [
            ("sub".to_owned(), "bench-customer".to_owned()),
            ("email".to_owned(), "bench@example.com".to_owned()),
        ],
        None,
    )
}

/// POSTs one order to `endpoint` (the deployed API or the chain), with an `Idempotency-Key`
/// when one is given; the status.
async fn post(endpoint: &dyn HttpFunction, body: String, key: Option<String>) -> u16 {
    let headers: Vec<(&str, String)> = key
        .map(|key| vec![("idempotency-key", key)])
        .unwrap_or_default();
    call(
        endpoint,
        order_api::PLACE_ORDER,
        "/orders",
        &headers,
        body.into_bytes(),
    )
    .await
    .0
}

/// One request to `endpoint` on `route` (its method and path template) at `path`, as the
/// benchmark's customer, counted as the endpoint's calls; (status, JSON body or null).
pub async fn call(
    endpoint: &dyn HttpFunction,
    route: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let method = route.split(' ').next().unwrap_or("GET");
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let Ok(request) = request.body(body) else {
        return (0, serde_json::Value::Null);
    };
    let request = local_runtime::gateway::authorized_request_for(route, request, Some(customer()));
    let response = lambda_kit::calls::scope(endpoint.service(), endpoint.handle(request)).await;
    let status = response.status().as_u16();
    let body = serde_json::from_slice(response.body().as_ref()).unwrap_or_default();
    (status, body)
}

/// How a client places its orders.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// Attempts per order: a 503 (or a 409 while a keyed attempt is in flight) is retried.
    pub attempts: usize,
    /// Whether each order carries its own `Idempotency-Key`, so that a retry is the same order.
    pub keyed: bool,
}

/// Latency runs: retries without keys. The keyed path adds two DynamoDB calls per request,
/// which on one emulator process queue behind the consumers' transactions; a 503 retried
/// without a key may place an order twice if its publish went through after all, which only
/// raises the consumers' counts.
pub const PATIENT: Client = Client {
    attempts: 10,
    keyed: false,
};
/// Availability runs: keyed retries, so no order is placed twice and none is lost to an
/// ambiguous 503.
pub const CAREFUL: Client = Client {
    attempts: 10,
    keyed: true,
};

/// POSTs `orders` orders, `concurrency` at a time, as `client` does. (final status, latency
/// until that answer) of each, in the order they were sent.
pub async fn post_orders(
    endpoint: &dyn HttpFunction,
    body: &serde_json::Value,
    orders: usize,
    concurrency: usize,
    client: Client,
) -> Vec<(u16, Duration)> {
    let body = body.to_string();
    let mut answers: Vec<(usize, u16, Duration)> = futures::stream::iter(0..orders)
        .map(|position| {
            let body = body.clone();
            let key = client.keyed.then(|| uuid::Uuid::now_v7().to_string());
            async move {
                let started = Instant::now();
                let mut status = 0;
                for attempt in 0..client.attempts.max(1) {
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    status = post(endpoint, body.clone(), key.clone()).await;
                    if status != 503 && status != 409 {
                        break;
                    }
                }
                (position, status, started.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    answers.sort_by_key(|(position, ..)| *position);
    answers
        .into_iter()
        .map(|(_, status, latency)| (status, latency))
        .collect()
}

/// The resource-name prefix of the runtime's deployment (what its topic name starts with).
fn options_prefix(runtime: &LocalRuntime) -> String {
    let topic = runtime.deployment().reference("OrderEventsTopic");
    let name = topic.rsplit(':').next().unwrap_or_default();
    name.trim_end_matches(".fifo")
        .strip_suffix("OrderEventsTopic")
        .unwrap_or_default()
        .to_owned()
}
