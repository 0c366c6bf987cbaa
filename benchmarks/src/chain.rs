//! The synchronous baseline: the "traditional" design the fan-out replaces. The order endpoint
//! (the same `OrderApi` code) hands the order to the four services' handlers (the same handler
//! code, the same tables) one after another, and answers only when all four are done; the
//! first failure fails the request.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use lambda_kit::consumer::SqsConsumer;
use order_api::{EventPublisher, PublishError};
use order_events::{CloudEvent, EventData};

/// An [`EventPublisher`] that, instead of announcing the order, calls every service in turn.
pub struct ChainPublisher {
    services: Vec<(String, Arc<dyn SqsConsumer>)>,
    timeout: Duration,
    down: Mutex<HashSet<String>>,
}

impl ChainPublisher {
    /// `services` in call order, by name; each call may take up to `timeout`.
    pub fn new(services: Vec<(String, Arc<dyn SqsConsumer>)>, timeout: Duration) -> Self {
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

impl EventPublisher for ChainPublisher {
    async fn publish<T: EventData>(&self, event: &CloudEvent<T>) -> Result<(), PublishError> {
        for (name, service) in &self.services {
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
