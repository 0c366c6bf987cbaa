//! The synchronous baseline: the "traditional" design the fan-out replaces. The order endpoint
//! (the same `OrderApi` code) orchestrates the services' handlers (the same handler code, the
//! same tables) one after another: the order to inventory and payment, then the confirmation to
//! payment (capture), shipping and notification; it answers only when all are done, and the
//! first failure fails the request.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use lambda_kit::consumer::SqsConsumer;
use order_api::{EventPublisher, PublishError};
use order_events::{CloudEvent, EventData, OrderConfirmed, OrderPlaced};

/// A service of the chain: its name, its handler and the event types it reads.
pub type ChainService = (String, Arc<dyn SqsConsumer>, Vec<String>);

/// An [`EventPublisher`] that, instead of announcing the order, calls every service in turn.
pub struct ChainPublisher {
    services: Vec<ChainService>,
    timeout: Duration,
    down: Mutex<HashSet<String>>,
}

impl ChainPublisher {
    /// `services` in call order, by name; each call may take up to `timeout`.
    pub fn new(services: Vec<ChainService>, timeout: Duration) -> Self {
        Self {
            services,
            timeout,
            down: Mutex::default(),
        }
    }

    /// Takes a service down (its calls fail at once, as a refused connection would) or up.
    pub fn set_down(&self, service: &str, down: bool) {
        let mut set = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if down {
            set.insert(service.to_owned());
        } else {
            set.remove(service);
        }
    }

    fn is_down(&self, service: &str) -> bool {
        self.down
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(service)
    }
}

impl ChainPublisher {
    /// Hands `event` to every service that reads its type, in turn.
    async fn call_all<T: EventData>(&self, event: &CloudEvent<T>) -> Result<(), PublishError> {
        for (name, service, types) in &self.services {
            if !types.iter().any(|t| t == T::TYPE) {
                continue;
            }
            if self.is_down(name) {
                return Err(PublishError(format!("{name} is unavailable")));
            }
            let batch = order_events::testing::event_batch([event]);
            let deadline = SystemTime::now() + self.timeout;
            let answer = service
                .handle(batch, deadline)
                .await
                .map_err(|e| PublishError(format!("{name}: {e}")))?;
            if !answer.batch_item_failures.is_empty() {
                return Err(PublishError(format!("{name} failed the order")));
            }
        }
        Ok(())
    }
}

impl EventPublisher for ChainPublisher {
    /// An order: reserve and authorize, then capture, ship and confirm. Other requests (a
    /// cancellation) are not part of the baseline.
    async fn publish<T: EventData>(&self, event: &CloudEvent<T>) -> Result<(), PublishError> {
        let body = serde_json::to_string(event).map_err(|e| PublishError(e.to_string()))?;
        let Ok(placed) = order_events::parse_queue_body::<OrderPlaced>(&body) else {
            return Ok(());
        };
        self.call_all(&placed).await?;
        let confirmed = CloudEvent::new(OrderConfirmed::from(&placed.data), &placed.correlationid);
        self.call_all(&confirmed).await
    }
}
