//! How many batches a mapping works on at once, and how each batch is gathered.
//!
//! Lambda's scaling for SQS (its guide, "Configuring scaling behavior for SQS event source
//! mappings"): when messages are available it processes five batches at once; while messages are
//! still available it adds up to 300 concurrent batches a minute; when traffic is low it scales
//! back to five; never more than `ScalingConfig.MaximumConcurrency` (2 to 1000). Played here:
//! `min(5, maximum)` pollers always long-poll; every 200 ms (300 a minute), if a batch came back
//! full since the last look (the queue held more than a batch: a backlog), one more poller
//! starts, up to the maximum; a poller so added stops when a long poll finds the queue empty.
//! On a FIFO queue SQS hands one message group to one batch at a time, so at most as many
//! batches run as there are groups with messages.
//!
//! A batch: the first receive that brings records starts it; with a batching window, more
//! receives follow until it holds `BatchSize` records or the window has passed (long polls
//! while whole seconds remain, then short polls a quarter of a second apart).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::Message;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::EventSourceMapping;

/// Batches at once when messages are available (and the fewest a mapping keeps polling with).
pub const STEADY_POLLERS: usize = 5;
/// Lambda's limit for one mapping without `MaximumConcurrency`.
const MAXIMUM_WITHOUT_LIMIT: usize = 1000;
/// One more concurrent batch at most this often (300 a minute).
const SCALE_UP_EVERY: Duration = Duration::from_millis(200);
/// Between the short polls at the end of a batching window.
const GATHER_POLL: Duration = Duration::from_millis(250);

/// What the pollers of one mapping tell its controller.
#[derive(Default)]
struct Load {
    /// A batch came back full since the controller last looked.
    backlog: AtomicBool,
    in_flight: AtomicU64,
}

impl EventSourceMapping {
    /// Polls and invokes until `shutdown`; while `enabled` is false the queue keeps its messages.
    pub async fn run(
        self,
        mut shutdown: watch::Receiver<bool>,
        mut enabled: watch::Receiver<bool>,
    ) {
        let mapping = Arc::new(self);
        let maximum = mapping
            .maximum_concurrency
            .map_or(MAXIMUM_WITHOUT_LIMIT, |m| m as usize)
            .max(1);
        let load = Arc::new(Load::default());
        // The pollers' own receivers: the controller's are `changed()`-tracked.
        let (poller_shutdown, poller_enabled) = (shutdown.clone(), enabled.clone());
        let start = |pollers: &mut JoinSet<()>, added: bool| {
            pollers.spawn(mapping.clone().poll(
                added,
                poller_shutdown.clone(),
                poller_enabled.clone(),
                load.clone(),
            ));
        };
        let mut pollers = JoinSet::new();
        for _ in 0..STEADY_POLLERS.min(maximum) {
            start(&mut pollers, false);
        }
        let mut tick = tokio::time::interval(SCALE_UP_EVERY);
        loop {
            let now = pollers.len() as u64;
            mapping.stats.update(&mapping.function, |s| s.pollers = now);
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                Ok(()) = enabled.changed() => {
                    let on = *enabled.borrow_and_update();
                    tracing::info!(function = %mapping.function, "event source mapping {}", if on { "enabled" } else { "disabled" });
                }
                _ = tick.tick() => {
                    if load.backlog.swap(false, Ordering::Relaxed) && pollers.len() < maximum {
                        start(&mut pollers, true);
                    }
                }
                Some(_) = pollers.join_next() => {}
            }
        }
        while pollers.join_next().await.is_some() {}
    }

    /// One poller: receive, gather, invoke, until shutdown (or, for a poller `added` by the
    /// scaling, until the queue is found empty or the mapping disabled).
    async fn poll(
        self: Arc<Self>,
        added: bool,
        mut shutdown: watch::Receiver<bool>,
        mut enabled: watch::Receiver<bool>,
        load: Arc<Load>,
    ) {
        loop {
            if !*enabled.borrow_and_update() {
                if added {
                    return;
                }
                tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => return,
                    _ = enabled.wait_for(|on| *on) => {}
                }
            }
            // Disabling takes effect at once: a long poll in progress is abandoned (anything it
            // had received becomes visible again after the visibility timeout).
            let received = tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = enabled.wait_for(|on| !*on) => continue,
                received = self.receive(self.batch_size, self.long_poll_seconds) => received,
            };
            let messages = match received {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!(function = %self.function, %error, "receive failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if messages.is_empty() {
                if added {
                    return;
                }
                continue;
            }
            let batch = self.gather(messages).await;
            if batch.len() >= self.batch_size {
                load.backlog.store(true, Ordering::Relaxed);
            }
            let running = load.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
            self.stats.update(&self.function, |s| {
                s.peak_concurrency = s.peak_concurrency.max(running)
            });
            self.invoke(batch).await;
            load.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Adds to a batch that has its first records until it is full or the batching window
    /// (counted from now) has passed.
    async fn gather(&self, mut batch: Vec<Message>) -> Vec<Message> {
        let deadline = Instant::now() + self.batching_window;
        while batch.len() < self.batch_size {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let wait_seconds = left.as_secs().min(20) as i32;
            if wait_seconds == 0 {
                tokio::time::sleep(left.min(GATHER_POLL)).await;
            }
            match self
                .receive(self.batch_size - batch.len(), wait_seconds)
                .await
            {
                Ok(more) => batch.extend(more),
                Err(error) => {
                    tracing::warn!(function = %self.function, %error, "receive failed; invoking with the batch so far");
                    break;
                }
            }
        }
        batch
    }
}
