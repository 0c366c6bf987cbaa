//! What a service is, stated once, in its own crate: its name, the table it owns, the event
//! types it consumes and publishes. The registry, the operator tools, the tests and the
//! benchmarks read the specs instead of naming services; the tests hold each spec to the template
//! (a function per spec, a queue whose FilterPolicy is exactly what the spec consumes).

/// The environment variable naming the table a consumer owns: the same for every consumer, as
/// the template's consumer loop sets it (`SERVICE_TABLE: !Ref <Name>Table`).
pub const SERVICE_TABLE: &str = "SERVICE_TABLE";

/// A service of the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Its name: the cargo binary (the template's `Metadata.BuildProperties.Binary`), the
    /// `service` dimension of its metrics, the scope of its idempotency keys.
    pub name: &'static str,
    /// The environment variable naming the table the service owns, if it owns one.
    pub table_variable: Option<&'static str>,
    /// The event types it reacts to: its queue's FilterPolicy (none for a function behind the
    /// HTTP API).
    pub consumes: &'static [&'static str],
    /// The event types it announces.
    pub publishes: &'static [&'static str],
}

impl ServiceSpec {
    /// Whether a queue feeds it.
    pub fn is_consumer(&self) -> bool {
        !self.consumes.is_empty()
    }
}
