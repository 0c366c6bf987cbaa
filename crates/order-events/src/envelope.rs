//! The CloudEvents 1.0 envelope every event travels in, and what makes a type an event of the
//! catalogue ([`EventData`]).

use chrono::{DateTime, SubsecRound, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// CloudEvents specification version of every envelope.
pub const SPEC_VERSION: &str = "1.0";

/// The data of one event type of the catalogue: its name (CloudEvents `type` and the
/// `eventType` message attribute), the schema version of its data, who produces it, and the
/// order it is about.
pub trait EventData: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// CloudEvents `type`, and the `eventType` message attribute filter policies match on.
    const TYPE: &'static str;
    /// The major version of the data this type is written as (`eventversion`).
    const VERSION: &'static str;
    /// Every major version a reader of this type accepts: [`Self::VERSION`] and, when the type
    /// has older or newer majors in flight, those ([`EventData::read_version`] converts them).
    const READS: &'static [&'static str] = &[Self::VERSION];
    /// CloudEvents `source`: the service that announces this fact.
    const SOURCE: &'static str;

    /// The order the event is about (the envelope's `subject`).
    fn order_id(&self) -> Uuid;

    /// The data of another major version of this type (one of [`Self::READS`]) as this type.
    fn read_version(version: &str, _data: serde_json::Value) -> Result<Self, serde_json::Error> {
        Err(serde::de::Error::custom(format!(
            "no reader of {} version {version:?}",
            Self::TYPE
        )))
    }

    /// What identifies this data whatever major version carried it: the bytes an idempotency
    /// key's payload hash is taken of. The JSON of the data, by default.
    fn fingerprint(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A CloudEvents 1.0 envelope in its JSON format, with `data` of type `T`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent<T> {
    pub specversion: String,
    /// A UUIDv7: unique per event, time-ordered.
    pub id: Uuid,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: DateTime<Utc>,
    /// The id of the entity the event is about (for order events, the order id).
    pub subject: String,
    pub datacontenttype: String,
    /// Extension attribute: the schema version of `data`.
    pub eventversion: String,
    /// Extension attribute: the correlation id of the request that caused the event.
    pub correlationid: String,
    pub data: T,
}

/// The SNS message attributes that go with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAttributes {
    pub event_type: String,
    pub event_version: String,
    pub correlation_id: String,
}

impl<T> CloudEvent<T> {
    /// The message attributes to publish this event with.
    pub fn message_attributes(&self) -> MessageAttributes {
        MessageAttributes {
            event_type: self.event_type.clone(),
            event_version: self.eventversion.clone(),
            correlation_id: self.correlationid.clone(),
        }
    }

    /// The same envelope with other data (read from another major version of it).
    pub fn with_data<U>(self, data: U) -> CloudEvent<U> {
        CloudEvent {
            specversion: self.specversion,
            id: self.id,
            source: self.source,
            event_type: self.event_type,
            time: self.time,
            subject: self.subject,
            datacontenttype: self.datacontenttype,
            eventversion: self.eventversion,
            correlationid: self.correlationid,
            data,
        }
    }

    /// A span carrying the identifiers every log line about this event must have.
    pub fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "order_event",
            order_id = %self.subject,
            event_type = %self.event_type,
            event_id = %self.id,
            correlation_id = %self.correlationid,
        )
    }
}

impl<T: EventData> CloudEvent<T> {
    /// Wraps `data` in a new envelope of its type, with a fresh UUIDv7 id and the current time.
    pub fn new(data: T, correlation_id: impl Into<String>) -> Self {
        CloudEvent {
            specversion: SPEC_VERSION.to_owned(),
            id: Uuid::now_v7(),
            source: T::SOURCE.to_owned(),
            event_type: T::TYPE.to_owned(),
            // Millisecond precision: what every consumer's clock and log can represent.
            time: Utc::now().trunc_subsecs(3),
            subject: data.order_id().to_string(),
            datacontenttype: "application/json".to_owned(),
            eventversion: T::VERSION.to_owned(),
            correlationid: correlation_id.into(),
            data,
        }
    }

    /// The order the event is about.
    pub fn order_id(&self) -> Uuid {
        self.data.order_id()
    }

    /// The event serialized as JSON.
    pub fn canonical_json(&self) -> Vec<u8> {
        // Serializing the contract's structs of strings, numbers and vectors cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
