//! Reading events from SQS message bodies: the raw envelope (SNS raw message delivery) or an
//! SNS notification wrapping it, into the type a consumer declares.

use aws_lambda_events::sns::SnsMessage;
use serde_json::Value;

use crate::envelope::{CloudEvent, EventData, SPEC_VERSION};

/// Why a queue message body is not an event of the expected type.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("message body is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("message body is neither a CloudEvents envelope nor an SNS notification")]
    UnknownShape,
    #[error("SNS notification envelope is malformed: {0}")]
    BadSnsEnvelope(serde_json::Error),
    #[error("unsupported CloudEvents specversion {0:?}")]
    UnsupportedSpecVersion(String),
    #[error("unexpected event type {found:?}, expected {expected:?}")]
    UnexpectedType { expected: String, found: String },
    #[error(
        "unsupported {event_type} schema version {found:?}, this consumer reads version {}",
        quoted(supported)
    )]
    UnsupportedVersion {
        event_type: &'static str,
        found: String,
        supported: &'static [&'static str],
    },
    #[error("event does not match the {event_type} v{version} schema: {source}")]
    Schema {
        event_type: &'static str,
        version: &'static str,
        source: serde_json::Error,
    },
}

/// `"1"`, `"1" or "2"`: the versions a reader reads, for people.
fn quoted(versions: &[&str]) -> String {
    versions
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Reads an event of type `T` from an SQS message body.
///
/// The body is either the CloudEvents envelope itself (raw message delivery, how this system's
/// subscriptions are configured) or an SNS notification whose `Message` is the envelope (what a
/// subscription without raw delivery produces). Another type, another version of `T`, or
/// anything else is an [`EventError`] naming why.
pub fn parse_queue_body<T: EventData>(body: &str) -> Result<CloudEvent<T>, EventError> {
    RawEvent::parse(body)?.into_typed()
}

/// An envelope read from a message body, its data not yet typed: for consumers of several event
/// types, which look at the type before choosing the data struct.
#[derive(Debug, Clone)]
pub struct RawEvent(Value);

impl RawEvent {
    /// Reads the envelope (raw or in an SNS notification) and checks its specversion.
    pub fn parse(body: &str) -> Result<Self, EventError> {
        envelope_json(body).map(RawEvent)
    }

    /// The CloudEvents `type` (empty when absent).
    pub fn event_type(&self) -> &str {
        self.field("type")
    }

    fn field(&self, name: &str) -> &str {
        self.0.get(name).and_then(Value::as_str).unwrap_or_default()
    }

    /// The event as type `T`: its type and version must be `T`'s, its data `T`'s schema.
    pub fn into_typed<T: EventData>(self) -> Result<CloudEvent<T>, EventError> {
        if self.event_type() != T::TYPE {
            return Err(EventError::UnexpectedType {
                expected: T::TYPE.to_owned(),
                found: self.event_type().to_owned(),
            });
        }
        let version = self.field("eventversion").to_owned();
        if !T::READS.contains(&version.as_str()) {
            return Err(EventError::UnsupportedVersion {
                event_type: T::TYPE,
                found: version,
                supported: T::READS,
            });
        }
        let schema = |source| EventError::Schema {
            event_type: T::TYPE,
            version: T::READS
                .iter()
                .find(|v| **v == version)
                .copied()
                .unwrap_or(T::VERSION),
            source,
        };
        if version == T::VERSION {
            return serde_json::from_value(self.0).map_err(schema);
        }
        // Another major this type reads: the envelope as is, the data through its reader.
        let mut envelope: CloudEvent<Value> = serde_json::from_value(self.0).map_err(schema)?;
        let data = T::read_version(&version, envelope.data.take()).map_err(schema)?;
        Ok(envelope.with_data(data))
    }
}

/// Reads the envelope of any event type, its data left as JSON: for tools that look at events
/// they do not consume (dead-letter listings).
pub fn parse_any(body: &str) -> Result<CloudEvent<Value>, EventError> {
    serde_json::from_value(envelope_json(body)?).map_err(|source| EventError::Schema {
        event_type: "CloudEvent",
        version: SPEC_VERSION,
        source,
    })
}

/// The envelope as JSON, unwrapped from an SNS notification if need be, its specversion checked.
fn envelope_json(body: &str) -> Result<Value, EventError> {
    let value: Value = serde_json::from_str(body).map_err(EventError::NotJson)?;
    let envelope = if value.get("specversion").is_some() {
        value
    } else if value.get("Type").and_then(Value::as_str) == Some("Notification") {
        let notification: SnsMessage =
            serde_json::from_value(value).map_err(EventError::BadSnsEnvelope)?;
        let inner: Value =
            serde_json::from_str(&notification.message).map_err(EventError::NotJson)?;
        if inner.get("specversion").is_none() {
            return Err(EventError::UnknownShape);
        }
        inner
    } else {
        return Err(EventError::UnknownShape);
    };
    match envelope.get("specversion").and_then(Value::as_str) {
        Some(SPEC_VERSION) => Ok(envelope),
        other => Err(EventError::UnsupportedSpecVersion(
            other.unwrap_or_default().to_owned(),
        )),
    }
}
