//! Section 2 - Throughput: orders per second through the whole system, against the emulator's own rate
//! for the same API calls driven by a minimal SDK loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use futures::StreamExt;

use crate::cost::ConsumerLoad;
use crate::report::Table;
use crate::steps::Steps;
use crate::system::{post_orders, BenchResult, System, CONFIRMED_ORDER_EVENTS, PATIENT, POLLERS};

pub struct Results {
    pub orders: usize,
    pub ours: f64,
    /// Ours again, with the live view open (a page listening to its server-sent events).
    pub ours_watched: f64,
    /// Pictures the open page received during that run.
    pub pictures: u64,
    pub raw: f64,
    /// Mean latency of each raw call: where the emulator spends its time.
    pub raw_calls: Vec<(&'static str, u64, Duration)>,
    /// What each consumer did for the orders of our run.
    pub consumers: Vec<ConsumerLoad>,
    /// SNS requests per order in our run (publishes of one invocation share a `PublishBatch`).
    pub sns_requests_per_order: f64,
}

#[derive(Default)]
struct CallTimes {
    counts: [AtomicU64; 4],
    micros: [AtomicU64; 4],
}

const CALLS: [&str; 4] = [
    "sns:Publish",
    "sqs:ReceiveMessage",
    "dynamodb:PutItem (the effect's item with its key, conditional)",
    "sqs:DeleteMessageBatch",
];

impl CallTimes {
    fn add(&self, call: usize, started: Instant) {
        self.counts[call].fetch_add(1, Ordering::Relaxed);
        self.micros[call].fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

/// Steps this section reports: ours with the live view closed and open, then the raw loop.
pub const STEPS: u64 = 3;

/// Each run on an emulator of its own, started fresh: the emulator's transactions slow down as
/// its tables grow, so no run may inherit another's.
pub async fn run(orders: usize, concurrency: usize, steps: &Steps) -> BenchResult<Results> {
    steps.start("2. throughput", format!("ours, {orders} orders"));
    let Ours {
        rate: ours,
        consumers,
        sns_requests_per_order,
        ..
    } = run_ours(orders, concurrency, false).await?;
    steps.start(
        "2. throughput",
        format!("ours with the live view open, {orders} orders"),
    );
    let Ours {
        rate: ours_watched,
        pictures,
        ..
    } = run_ours(orders, concurrency, true).await?;

    // Raw: the same template's topic and queues, the functions' event source mappings off.
    let system = System::start().await?;
    system.set_consumers_enabled(false).await;
    let times = Arc::new(CallTimes::default());
    let started = Instant::now();
    steps.start("2. throughput", format!("raw SDK loop, {orders} orders"));
    let publishers = publish_raw(&system, orders, concurrency, times.clone());
    let mut pollers = Vec::new();
    for consumer in &system.consumers {
        let queue = &consumer.queue;
        let handled = Arc::new(AtomicU64::new(0));
        for _ in 0..POLLERS {
            pollers.push(consume_raw(
                &system,
                system.runtime.deployment().reference(queue),
                orders as u64 * consumer.records_per_order(),
                handled.clone(),
                times.clone(),
            ));
        }
    }
    let (published, consumed) = tokio::join!(publishers, futures::future::try_join_all(pollers));
    published?;
    consumed?;
    let raw = orders as f64 / started.elapsed().as_secs_f64();
    system.runtime.shutdown().await;
    let raw_calls = CALLS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let count = times.counts[i].load(Ordering::Relaxed);
            let micros = times.micros[i].load(Ordering::Relaxed);
            (*name, count, Duration::from_micros(micros / count.max(1)))
        })
        .collect();
    println!(
        "  orders/s: ours {ours:.1} (live view open: {ours_watched:.1}), raw emulator loop {raw:.1}, ratio {:.2}",
        ours / raw
    );
    Ok(Results {
        orders,
        ours,
        ours_watched,
        pictures,
        raw,
        raw_calls,
        consumers,
        sns_requests_per_order,
    })
}

/// Ours: from the first POST until every service has completed every order, with the live view
/// open (`watched`: a page listening to its server-sent events, which makes the view take a
/// picture every period) or not. Orders per second, what each consumer did, and the pictures
/// the page received.
async fn run_ours(orders: usize, concurrency: usize, watched: bool) -> BenchResult<Ours> {
    let system = System::start().await?;
    let pictures = match watched {
        true => Some(watch_live_view(&system).await?),
        false => None,
    };
    let stats_before: Vec<_> = system
        .consumers
        .iter()
        .map(|c| system.runtime.stats(&c.function))
        .collect();
    let before = system.completed_by_all();
    lambda_kit::calls::reset();
    let started = Instant::now();
    let answers = post_orders(
        system.fanout.as_ref(),
        &system.order,
        orders,
        concurrency,
        PATIENT,
    )
    .await;
    if let Some((status, _)) = answers.iter().find(|(s, _)| *s != 202) {
        return Err(format!("an order got {status}").into());
    }
    system
        .wait_completed(before + orders as u64, Duration::from_secs(900))
        .await?;
    let rate = orders as f64 / started.elapsed().as_secs_f64();
    let sns_requests: u64 = lambda_kit::calls::snapshot()
        .iter()
        .filter(|(key, _)| key.service == "SNS")
        .map(|(_, tally)| tally.calls)
        .sum();
    let consumers = system
        .consumers
        .iter()
        .zip(stats_before)
        .map(|(consumer, before)| {
            let after = system.runtime.stats(&consumer.function);
            ConsumerLoad {
                name: consumer.binary.clone(),
                invocations: after.invocations - before.invocations,
                records: after.records - before.records,
                busy: after.busy.saturating_sub(before.busy),
            }
        })
        .collect();

    let pictures = pictures.map_or(0, |p| p.load(Ordering::Relaxed));
    system.runtime.shutdown().await;
    Ok(Ours {
        rate,
        consumers,
        pictures,
        sns_requests_per_order: sns_requests as f64 / orders.max(1) as f64,
    })
}

/// One run of ours: orders per second, what each consumer did, the live view's pictures, and
/// the SNS requests (`Publish` and `PublishBatch`) per order, every function's together.
struct Ours {
    rate: f64,
    consumers: Vec<ConsumerLoad>,
    pictures: u64,
    sns_requests_per_order: f64,
}

/// Serves the live view and listens to it as its page does; counts the pictures received.
async fn watch_live_view(system: &System) -> BenchResult<Arc<AtomicU64>> {
    use http_body_util::BodyExt;
    let url = orderflow::live::serve(&system.runtime, orderflow::shop::customers());
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let stream = tokio::net::TcpStream::connect(&authority).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = http::Request::get(format!("{url}events"))
        .header("host", authority)
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())?;
    let mut body = sender.send_request(request).await?.into_body();
    let pictures = Arc::new(AtomicU64::new(0));
    let counted = pictures.clone();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = body.frame().await {
            if frame.data_ref().is_some_and(|d| d.starts_with(b"data:")) {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    Ok(pictures)
}

async fn publish_raw(
    system: &System,
    orders: usize,
    concurrency: usize,
    times: Arc<CallTimes>,
) -> BenchResult<()> {
    let sns = aws_sdk_sns::Client::new(system.runtime.sdk());
    let topic = system.runtime.deployment().reference("OrderEventsTopic");
    let attribute = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
    };
    let results: Vec<BenchResult<()>> = futures::stream::iter(0..orders)
        .map(|_| {
            let (sns, topic, times) = (sns.clone(), topic.clone(), times.clone());
            let event = order_events::testing::sample_event();
            async move {
                // The events of one confirmed order, each to the queues its type is routed to.
                for event_type in CONFIRMED_ORDER_EVENTS {
                    let started = Instant::now();
                    sns.publish()
                        .topic_arn(&topic)
                        .message(String::from_utf8(event.canonical_json())?)
                        .message_attributes("eventType", attribute(event_type)?)
                        .message_attributes("eventVersion", attribute("1")?)
                        .send()
                        .await?;
                    times.add(0, started);
                }
                Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Receives from `queue_url` until `handled` reaches `orders`; per message a transaction of a
/// conditional put (the idempotency entry) and a put (the effect), then one batch delete.
async fn consume_raw(
    system: &System,
    queue_url: String,
    orders: u64,
    handled: Arc<AtomicU64>,
    times: Arc<CallTimes>,
) -> BenchResult<()> {
    let sqs = aws_sdk_sqs::Client::new(system.runtime.sdk());
    let dynamodb = aws_sdk_dynamodb::Client::new(system.runtime.sdk());
    let table = system.runtime.deployment().reference("IdempotencyTable");
    while handled.load(Ordering::Relaxed) < orders {
        let started = Instant::now();
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            continue;
        }
        times.add(1, started);
        let puts = messages.iter().map(|message| {
            let (dynamodb, table, times) = (dynamodb.clone(), table.clone(), times.clone());
            let id = format!(
                "raw#{queue_url}#{}",
                message.message_id().unwrap_or_default()
            );
            async move {
                let started = Instant::now();
                // The effect's item, carrying its key, conditional on its absence: how the
                // consumers write an effect.
                let put = dynamodb
                    .put_item()
                    .table_name(&table)
                    .item("id", AttributeValue::S(id.clone()))
                    .item("applied", AttributeValue::S(id))
                    .condition_expression("attribute_not_exists(id)")
                    .send()
                    .await;
                // A message received twice meets its own item: done.
                if let Err(e) = put {
                    if !e
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception())
                    {
                        return Err(e.into());
                    }
                }
                times.add(2, started);
                BenchResult::Ok(())
            }
        });
        futures::future::try_join_all(puts).await?;
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let started = Instant::now();
        sqs.delete_message_batch()
            .queue_url(&queue_url)
            .set_entries(Some(entries))
            .send()
            .await?;
        times.add(3, started);
        handled.fetch_add(messages.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}

impl Results {
    pub fn table(&self) -> Table {
        let mut table = Table::new(&[
            "orders",
            "ours (orders/s)",
            "ours, live view open (orders/s)",
            "raw emulator loop (orders/s)",
            "ratio (ours / raw)",
        ]);
        table.row(vec![
            self.orders.to_string(),
            format!("{:.1}", self.ours),
            format!("{:.1} ({} pictures)", self.ours_watched, self.pictures),
            format!("{:.1}", self.raw),
            format!("{:.2}", self.ours / self.raw),
        ]);
        table
    }

    pub fn calls_table(&self) -> Table {
        let mut table = Table::new(&["raw call", "calls", "mean latency"]);
        for (name, count, mean) in &self.raw_calls {
            table.row(vec![
                (*name).to_owned(),
                count.to_string(),
                crate::stats::ms(*mean),
            ]);
        }
        table
    }
}
