//! Why one record failed, and whether trying it again can help.
//!
//! A **retryable** failure (a throttled table, a dependency down, an event that needs an
//! earlier one to arrive first) goes back to the queue and is tried again after the visibility
//! timeout; after `maxReceiveCount` receives the queue's redrive policy moves it to the DLQ. A
//! **permanent** failure (a body that is not an event this consumer reads, data the service can
//! never accept) would fail the same way every time: the kit sends it to the consumer's
//! dead-letter queue at once, with the reason as message attributes, instead of retrying it
//! `maxReceiveCount` times ([`crate::dead_letters`]).
//!
//! Any error converts into a retryable one with `?`, so only the places that know a failure
//! is permanent say so:
//!
//! ```
//! use lambda_kit::RecordError;
//!
//! fn check(quantity: i64) -> Result<(), RecordError> {
//!     if quantity <= 0 {
//!         return Err(RecordError::permanent(format!("quantity {quantity} is not positive")));
//!     }
//!     let _parsed: u32 = "12".parse()?; // a retryable failure, were it to fail
//!     Ok(())
//! }
//! assert!(check(0).unwrap_err().is_permanent());
//! assert!(check(1).is_ok());
//! ```

use crate::idempotency::IdempotencyError;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error a handler returns for one record.
#[derive(Debug)]
pub struct RecordError {
    reason: BoxError,
    permanent: bool,
}

impl RecordError {
    /// A failure that trying again may cure: the record returns to the queue.
    pub fn retryable(reason: impl Into<BoxError>) -> Self {
        Self {
            reason: reason.into(),
            permanent: false,
        }
    }

    /// A failure that would happen again on every try: the record goes to the DLQ at once.
    pub fn permanent(reason: impl Into<BoxError>) -> Self {
        Self {
            reason: reason.into(),
            permanent: true,
        }
    }

    /// Whether trying again cannot help: said by the handler, or known of the kit's own errors
    /// (a key already used with another payload stays so).
    pub fn is_permanent(&self) -> bool {
        self.permanent
            || self
                .reason
                .downcast_ref::<IdempotencyError>()
                .is_some_and(IdempotencyError::is_permanent)
    }

    /// What the failure was, for the log line and the DLQ message's attribute.
    pub fn reason(&self) -> String {
        self.reason.to_string()
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.is_permanent() {
            "permanent"
        } else {
            "retryable"
        };
        write!(f, "{} ({kind})", self.reason)
    }
}

/// Any error is a retryable failure (deliberately not `std::error::Error` itself, so that this
/// conversion can exist).
impl<E: Into<BoxError>> From<E> for RecordError {
    fn from(error: E) -> Self {
        Self::retryable(error)
    }
}
