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

    fn event_type(&self) -> &str {
        &self.event_type
    }

    fn time(&self) -> Option<std::time::SystemTime> {
        Some(self.time.into())
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
        IdempotencyKey::new(
            format!("{}#{}", T::TYPE, self.order_id()),
            self.data.fingerprint(),
        )
    }
}

/// Declares what a consumer reacts to: an enum with one variant per event type, each holding
/// the typed event, that is a lambda-kit [`QueueEvent`]. A record of another type fails with
/// [`EventError::UnexpectedType`] naming the types the consumer reads (so it reaches the DLQ with
/// the reason in the log), as does a known type in a version the consumer does not read.
///
/// ```
/// order_events::consumed_events! {
///     /// What inventory reacts to.
///     pub enum InventoryEvent {
///         Placed(order_events::OrderPlaced),
///         Cancelled(order_events::OrderCancelled),
///     }
/// }
/// use lambda_kit::consumer::QueueEvent;
/// let placed = order_events::CloudEvent::new(order_events::StockReserved { order_id: uuid::Uuid::now_v7() }, "c");
/// let body = String::from_utf8(placed.canonical_json()).unwrap();
/// let error = InventoryEvent::from_body(&body).unwrap_err();
/// assert!(error.to_string().contains("OrderPlaced, OrderCancelled"), "{error}");
/// ```
#[macro_export]
macro_rules! consumed_events {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident($data:ty)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis enum $name {
            $($variant($crate::CloudEvent<$data>)),+
        }

        impl $name {
            /// The event types this consumer reads.
            pub const TYPES: &'static [&'static str] =
                &[$(<$data as $crate::EventData>::TYPE),+];

            /// The key this event's processing is recorded under (its type and order).
            pub fn idempotency_key(&self) -> $crate::__private::IdempotencyKey {
                match self {
                    $($name::$variant(event) => event.idempotency_key()),+
                }
            }

            /// The event's type.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $($name::$variant(_) => <$data as $crate::EventData>::TYPE),+
                }
            }

            /// The order the event is about.
            pub fn order_id(&self) -> $crate::__private::Uuid {
                match self {
                    $($name::$variant(event) => event.order_id()),+
                }
            }
        }

        impl $crate::__private::QueueEvent for $name {
            type Error = $crate::EventError;

            fn from_body(body: &str) -> Result<Self, $crate::EventError> {
                let raw = $crate::RawEvent::parse(body)?;
                $(
                    if raw.event_type() == <$data as $crate::EventData>::TYPE {
                        return raw.into_typed::<$data>().map($name::$variant);
                    }
                )+
                Err($crate::EventError::UnexpectedType {
                    expected: Self::TYPES.join(", "),
                    found: raw.event_type().to_owned(),
                })
            }

            fn span(&self) -> $crate::__private::Span {
                match self {
                    $($name::$variant(event) => event.span()),+
                }
            }

            fn event_type(&self) -> &str {
                match self {
                    $($name::$variant(event) => &event.event_type),+
                }
            }

            fn time(&self) -> Option<std::time::SystemTime> {
                match self {
                    $($name::$variant(event) => Some(event.time.into())),+
                }
            }
        }
    };
}
