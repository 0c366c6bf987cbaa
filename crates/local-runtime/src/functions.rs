//! The functions the runtime runs, built in-process from their configuration: the same handler
//! code as on Lambda. A [`Registry`] maps each cargo binary the template names
//! (`Metadata.BuildProperties.Binary`) to the code that builds it.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use lambda_kit::consumer::{ConfigError, FunctionEnv, SqsConsumer};
use lambda_kit::http::HttpFunction;

/// A function ready to be invoked.
#[derive(Clone)]
pub enum Function {
    /// Behind the HTTP API.
    Http(Arc<dyn HttpFunction>),
    /// Fed by an SQS event source.
    Queue(Arc<dyn SqsConsumer>),
}

/// A built function, with handles on its simulated dependencies (the payment gateway, say) so
/// tests and benchmarks can change their behaviour while the system runs.
#[derive(Clone)]
pub struct Built {
    pub function: Function,
    handles: Vec<Arc<dyn Any + Send + Sync>>,
}

impl Built {
    pub fn http(function: impl HttpFunction + 'static) -> Self {
        Self {
            function: Function::Http(Arc::new(function)),
            handles: Vec::new(),
        }
    }

    pub fn queue(consumer: impl SqsConsumer + 'static) -> Self {
        Self {
            function: Function::Queue(Arc::new(consumer)),
            handles: Vec::new(),
        }
    }

    /// A consumer that exposes a handle on one of its dependencies, taken from it by `handle`.
    pub fn queue_with_handle<C, T>(consumer: C, handle: impl FnOnce(&C) -> Arc<T>) -> Self
    where
        C: SqsConsumer + 'static,
        T: Any + Send + Sync,
    {
        let exposed = handle(&consumer);
        Self::queue(consumer).with_handle(exposed)
    }

    /// Exposes `handle` (found again with [`Built::handle`]).
    pub fn with_handle<T: Any + Send + Sync>(mut self, handle: Arc<T>) -> Self {
        self.handles.push(handle);
        self
    }

    /// The handle of type `T`, if the function exposes one.
    pub fn handle<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.handles
            .iter()
            .find_map(|handle| handle.clone().downcast::<T>().ok())
    }
}

/// Builds a function from the SDK configuration and its environment.
pub type Builder = fn(&SdkConfig, &FunctionEnv) -> Result<Built, ConfigError>;

#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("no function is registered for the cargo binary {0:?}")]
    UnknownBinary(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Which code builds the function of each cargo binary.
#[derive(Clone, Default)]
pub struct Registry {
    builders: BTreeMap<&'static str, Builder>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the builder of `binary`'s function.
    pub fn register(mut self, binary: &'static str, build: Builder) -> Self {
        self.builders.insert(binary, build);
        self
    }

    /// The registered binaries, in name order.
    pub fn binaries(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.builders.keys().copied()
    }

    /// Builds `binary`'s function, configured by `env`.
    pub fn build(
        &self,
        binary: &str,
        sdk: &SdkConfig,
        env: &FunctionEnv,
    ) -> Result<Built, FunctionError> {
        let build = self
            .builders
            .get(binary)
            .ok_or_else(|| FunctionError::UnknownBinary(binary.to_owned()))?;
        Ok(build(sdk, env)?)
    }
}
