//! The system under measurement: the local runtime on the emulator, the order API as deployed
//! (publishing to SNS) and the synchronous chain built from the same handlers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use inventory::DynamoInventory;
use lambda_kit::idempotency::MemoryIdempotency;
use order_api::OrderApi;
use orderflow::functions::{Function, HttpApi};
use orderflow::runtime::{LocalRuntime, RuntimeOptions};
use payment::SimulatedGateway;

use crate::chain::ChainPublisher;

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub const CONSUMERS: [(&str, &str); 4] = [
    ("InventoryFunction", "inventory"),
    ("PaymentFunction", "payment"),
    ("ShippingFunction", "shipping"),
    ("NotificationFunction", "notification"),
];
pub const SKUS: [&str; 2] = ["SKU-KEYBOARD", "SKU-MOUSE"];
/// Concurrent pollers per queue, for the runtime and the raw loop alike.
pub const POLLERS: usize = 2;

pub struct System {
    pub runtime: LocalRuntime,
    pub fanout: Arc<HttpApi>,
    pub chain: Arc<OrderApi<ChainPublisher, MemoryIdempotency>>,
    pub chain_gateway: Arc<SimulatedGateway>,
    pub order: serde_json::Value,
}

impl System {
    pub async fn start() -> BenchResult<Self> {
        let mut options = RuntimeOptions {
            http_address: ([127, 0, 0, 1], 0).into(),
            long_poll_seconds: 1,
            pollers_per_source: POLLERS,
            ..RuntimeOptions::default()
        };
        let unique = uuid::Uuid::now_v7().simple().to_string();
        options.provision.prefix = format!("b{}-", &unique[unique.len() - 8..]);
        // Failed records come back after 10 s (a 5 s gateway call still fits), and never reach
        // the DLQ while the availability runs keep payment failing.
        options.provision.visibility_timeout_override = Some(10);
        options.provision.parameter_overrides =
            BTreeMap::from([("MaxReceiveCount".to_owned(), "1000".to_owned())]);
        let runtime = LocalRuntime::start(options).await?;

        let Function::Http(fanout) = runtime.build_function("OrderApiFunction", &[])?.0 else {
            return Err("OrderApiFunction is not an HTTP function".into());
        };
        let mut services = Vec::new();
        let mut chain_gateway = None;
        for (function, name) in CONSUMERS {
            let (built, handles) = runtime.build_function(function, &[])?;
            let Function::Queue(consumer) = built else {
                return Err(format!("{function} is not a queue consumer").into());
            };
            chain_gateway = chain_gateway.or(handles.payment_gateway);
            services.push((name.to_owned(), consumer));
        }
        let chain_gateway = chain_gateway.ok_or("the chain has no payment gateway")?;
        let chain = OrderApi::new(
            ChainPublisher::new(services, Duration::from_secs(30)),
            MemoryIdempotency::default(),
        );
        for sku in SKUS {
            inventory(&runtime).set_stock(sku, 100_000_000).await?;
        }
        let order = serde_json::from_str(&std::fs::read_to_string(
            orderflow::emulator::project_root().join("events/order-request.json"),
        )?)?;
        Ok(Self {
            runtime,
            fanout,
            chain: Arc::new(chain),
            chain_gateway,
            order,
        })
    }

    pub fn gateway(&self) -> BenchResult<&SimulatedGateway> {
        Ok(self.runtime.payment_gateway().ok_or("no payment gateway")?)
    }

    /// Orders every consumer of the fan-out has completed (deleted from its queue), the least
    /// of the four.
    pub fn completed_by_all(&self) -> u64 {
        CONSUMERS
            .iter()
            .map(|(function, _)| self.runtime.stats(function).deleted)
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

    pub async fn stock(&self, sku: &str) -> BenchResult<u64> {
        Ok(inventory(&self.runtime).stock(sku).await?.unwrap_or(0))
    }
}

fn inventory(runtime: &LocalRuntime) -> DynamoInventory {
    DynamoInventory::new(
        aws_sdk_dynamodb::Client::new(runtime.sdk()),
        runtime.deployment().reference("InventoryTable"),
        runtime.deployment().reference("IdempotencyTable"),
    )
}

/// An HTTP handler of orders: the deployed API or the chain.
pub trait OrderEndpoint: Send + Sync {
    fn post(&self, body: String) -> futures::future::BoxFuture<'_, u16>;
}

impl<P, S> OrderEndpoint for OrderApi<P, S>
where
    P: order_api::EventPublisher,
    S: lambda_kit::idempotency::IdempotencyStore,
{
    fn post(&self, body: String) -> futures::future::BoxFuture<'_, u16> {
        Box::pin(async move {
            let request = http::Request::builder()
                .method("POST")
                .uri("/orders")
                .header("content-type", "application/json")
                .body(lambda_http::Body::Text(body));
            match request {
                Ok(request) => self.handle(request).await.status().as_u16(),
                Err(_) => 0,
            }
        })
    }
}

/// POSTs `orders` orders, `concurrency` at a time: (status, latency) of each.
pub async fn post_orders(
    endpoint: &dyn OrderEndpoint,
    body: &serde_json::Value,
    orders: usize,
    concurrency: usize,
) -> Vec<(u16, Duration)> {
    let body = body.to_string();
    futures::stream::iter(0..orders)
        .map(|_| {
            let body = body.clone();
            async move {
                let started = Instant::now();
                let status = endpoint.post(body).await;
                (status, started.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}
