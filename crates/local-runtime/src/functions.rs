//! The functions the runtime runs, built in-process from their configuration: the same handler
//! code as on Lambda. A [`Registry`] maps each service's spec (its name is the cargo binary the
//! template names, `Metadata.BuildProperties.Binary`) to the code that builds it.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use lambda_kit::consumer::{ConfigError, EventHandler, FunctionEnv, SqsConsumer, WithDeadLetters};
use lambda_kit::http::HttpFunction;
use lambda_kit::spec::ServiceSpec;

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
pub type Builder =
    Arc<dyn Fn(&SdkConfig, &FunctionEnv) -> Result<Built, ConfigError> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("no function is registered for the cargo binary {0:?}")]
    UnknownBinary(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Which code builds the function of each service (keyed by its name, the cargo binary).
#[derive(Clone, Default)]
pub struct Registry {
    builders: BTreeMap<&'static str, (ServiceSpec, Builder)>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the builder of `spec`'s function (replacing any builder registered before).
    pub fn register(
        mut self,
        spec: ServiceSpec,
        build: impl Fn(&SdkConfig, &FunctionEnv) -> Result<Built, ConfigError> + Send + Sync + 'static,
    ) -> Self {
        self.builders.insert(spec.name, (spec, Arc::new(build)));
        self
    }

    /// Registers a consumer built by `build` (its `from_env`), with its dead-letter queue, as
    /// `lambda_kit::consumer::main` runs it on Lambda.
    pub fn consumer<H: EventHandler + 'static>(
        self,
        spec: ServiceSpec,
        build: fn(&SdkConfig, &FunctionEnv) -> Result<H, ConfigError>,
    ) -> Self {
        self.register(spec, move |sdk, env| {
            let handler = build(sdk, env)?;
            Ok(Built::queue(WithDeadLetters::from_env(handler, sdk, env)))
        })
    }

    /// The registered binaries, in name order.
    pub fn binaries(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.builders.keys().copied()
    }

    /// The registered services' specs, in name order.
    pub fn specs(&self) -> impl Iterator<Item = &ServiceSpec> + '_ {
        self.builders.values().map(|(spec, _)| spec)
    }

    /// The spec of the service named `name`.
    pub fn spec(&self, name: &str) -> Option<&ServiceSpec> {
        self.builders.get(name).map(|(spec, _)| spec)
    }

    /// Builds `binary`'s function, configured by `env`.
    pub fn build(
        &self,
        binary: &str,
        sdk: &SdkConfig,
        env: &FunctionEnv,
    ) -> Result<Built, FunctionError> {
        let (_, build) = self
            .builders
            .get(binary)
            .ok_or_else(|| FunctionError::UnknownBinary(binary.to_owned()))?;
        Ok(build(sdk, env)?)
    }
}
