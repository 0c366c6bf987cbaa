//! With the `consumer` feature: every event of the catalogue is what lambda-kit consumers
//! handle, with its idempotency key.

use lambda_kit::consumer::QueueEvent;
use lambda_kit::idempotency::IdempotencyKey;

use crate::envelope::{CloudEvent, EventData};
use crate::parse::{parse_queue_body, EventError};

impl<T: EventData> QueueEvent for CloudEvent<T> {
    type Error = EventError;

    fn from_body(body: &str) -> Result<Self, EventError> {
        parse_queue_body(body)
    }

    fn span(&self) -> tracing::Span {
        CloudEvent::span(self)
    }
}

impl<T: EventData> CloudEvent<T> {
    /// The key consumers record this event's processing under: the event type and the order id
    /// (`OrderPlaced#<order id>`), with a hash of the data. Keyed by type and order, not by event
    /// id: if the same fact is announced twice (a publish retried after an ambiguous failure
    /// produces a second event id), it is still processed once; another type of event about the
    /// same order is another key; different data under the same type and order is caught by the
    /// hash.
    pub fn idempotency_key(&self) -> IdempotencyKey {
        let data = serde_json::to_vec(&self.data).unwrap_or_default();
        IdempotencyKey::new(format!("{}#{}", T::TYPE, self.order_id()), data)
    }
}
