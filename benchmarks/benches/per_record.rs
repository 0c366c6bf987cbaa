//! Section 3 - Per-record cost of our code, with no AWS in the way: parsing an event, the batch
//! processor, idempotency bookkeeping and a whole consumer, on in-memory stores.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use lambda_kit::batch::BatchProcessor;
use lambda_kit::consumer::SqsConsumer;
use lambda_kit::effect::MemoryEffectStore;
use lambda_kit::idempotency::{IdempotencyKey, Idempotent, MemoryIdempotency};
use order_events::testing::{event_batch, sample_event};
use order_events::OrderPlaced;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn deadline() -> SystemTime {
    SystemTime::now() + Duration::from_secs(60)
}

fn fresh_batch() -> aws_lambda_events::sqs::SqsEvent {
    let events: Vec<_> = (0..10).map(|_| sample_event()).collect();
    event_batch(&events)
}

fn parse(c: &mut Criterion) {
    let body = String::from_utf8(sample_event().canonical_json()).expect("UTF-8");
    c.bench_function("parse/one OrderPlaced body", |b| {
        b.iter(|| order_events::parse_queue_body::<OrderPlaced>(std::hint::black_box(&body)))
    });
}

fn batch(c: &mut Criterion) {
    let rt = runtime();
    let processor = BatchProcessor::default();
    c.bench_function("batch/10 records, parse + no-op handler", |b| {
        b.iter_batched(
            fresh_batch,
            |batch| {
                rt.block_on(processor.process_events(
                    batch,
                    deadline(),
                    None,
                    order_events::parse_queue_body::<OrderPlaced>,
                    |event| event.span(),
                    |_| async { Ok(()) },
                ))
            },
            BatchSize::SmallInput,
        )
    });
}

fn idempotency(c: &mut Criterion) {
    let rt = runtime();
    let runner = Idempotent::new(MemoryIdempotency::default());
    let counter = AtomicU64::new(0);
    c.bench_function(
        "idempotency/claim + complete, one record (memory store)",
        |b| {
            b.iter(|| {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let key = IdempotencyKey::new(format!("order-{n}"), n.to_be_bytes());
                rt.block_on(runner.run(&key, deadline(), || async { Ok::<_, Infallible>(n) }))
            })
        },
    );
}

/// Drops what it is asked to publish: the benchmark measures the consumer, not a broker.
struct Discard;

impl order_events::publish::EventPublisher for Discard {
    async fn publish<T: order_events::EventData>(
        &self,
        _event: &order_events::CloudEvent<T>,
    ) -> Result<(), order_events::publish::PublishError> {
        Ok(())
    }
}

/// Ten `OrderConfirmed` events of new orders, as shipping receives them.
fn fresh_confirmations() -> aws_lambda_events::sqs::SqsEvent {
    let events: Vec<_> = (0..10)
        .map(|_| {
            let order = order_events::OrderConfirmed::from(&sample_event().data);
            order_events::CloudEvent::new(order, "bench")
        })
        .collect();
    event_batch(&events)
}

fn consumer(c: &mut Criterion) {
    let rt = runtime();
    let shipping = shipping::Shipping::new(MemoryEffectStore::new("orderId"), Discard);
    c.bench_function("consumer/shipping, 10 records (memory store)", |b| {
        b.iter_batched(
            fresh_confirmations,
            |batch| rt.block_on(shipping.handle(batch, deadline())),
            BatchSize::SmallInput,
        )
    });
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Where the metrics' cost per record is written for BENCHMARKS.md (see below).
pub const METRICS_COST_FILE: &str = "metrics-cost.json";

/// The same consumer with the metrics recorder it has on Lambda (embedded metric format) and one
/// flush per invocation, as `run_on_lambda` does. Last: it installs the process's recorder,
/// which the benchmarks before it run without.
///
/// What the metrics cost per record is measured here too, as thread CPU time, with and without
/// the recorder interleaved batch by batch (without: a no-op recorder for the batch in place of
/// the installed one), so that the drift of a busy machine falls on both alike; criterion's two
/// estimates, taken a minute apart, differ by more than the cost itself on a 2-core VM.
fn consumer_with_metrics(c: &mut Criterion) {
    lambda_kit::metrics::init_on_lambda("shipping");
    let rt = runtime();
    let shipping = shipping::Shipping::new(MemoryEffectStore::new("orderId"), Discard);
    let (mut with, mut without) = (Duration::ZERO, Duration::ZERO);
    c.bench_function(
        "consumer/shipping, 10 records (memory store), with EMF metrics",
        |b| {
            b.iter_custom(|iters| {
                let mut measured = Duration::ZERO;
                for _ in 0..iters {
                    let plain = fresh_confirmations();
                    let started = thread_cpu();
                    let answer = metrics::with_local_recorder(&metrics::NoopRecorder, || {
                        rt.block_on(shipping.handle(plain, deadline()))
                    });
                    without += thread_cpu() - started;
                    std::hint::black_box(answer).ok();

                    let batch = fresh_confirmations();
                    let started = std::time::Instant::now();
                    let cpu = thread_cpu();
                    let answer = rt.block_on(shipping.handle(batch, deadline()));
                    lambda_kit::metrics::flush_into(std::io::sink(), "request-id", None);
                    with += thread_cpu() - cpu;
                    measured += started.elapsed();
                    std::hint::black_box(answer).ok();
                }
                measured
            })
        },
    );
    let cost = with.as_secs_f64() / without.as_secs_f64().max(f64::MIN_POSITIVE) - 1.0;
    println!(
        "metrics: {:+.1} % CPU per record (interleaved)",
        cost * 100.0
    );
    let file = criterion_dir().join(METRICS_COST_FILE);
    let json = format!("{{\"cost\": {cost}}}");
    // A smoke run on a fresh target directory has no criterion directory yet.
    let written =
        std::fs::create_dir_all(criterion_dir()).and_then(|()| std::fs::write(&file, json));
    if let Err(e) = written {
        eprintln!("could not write {}: {e}", file.display());
    }
}

/// Criterion's output directory (where the benchmarks binary reads the estimates).
fn criterion_dir() -> std::path::PathBuf {
    local_runtime::emulator::target_dir().join("criterion")
}

criterion_group!(
    benches,
    parse,
    batch,
    idempotency,
    consumer,
    consumer_with_metrics
);
criterion_main!(benches);
