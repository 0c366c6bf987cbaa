//! [`LocalRuntime`]: provisions the template on an emulator, serves its HTTP API on localhost,
//! and plays Lambda's SQS event source mapping for every consumer, running the functions the
//! [`Registry`] builds in this process.

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use http_body_util::BodyExt;
use lambda_kit::consumer::BoxFuture;
use lambda_kit::consumer::FunctionEnv;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::customers::CustomerPool;
use crate::emulator::{Emulator, EmulatorError};
use crate::event_source::{EventSourceMapping, SourceStats, Stats};
use crate::faults::{Acknowledgements, FaultProxy, FaultRates, LostAnswers};
use crate::functions::{Built, Function, FunctionError, Registry};
use crate::gateway::{Authorizer, Gateway, Route};
use crate::http::StreamedResponse;
use crate::jwt::JwtAuthorizer;
use crate::provision::{provision, Deployment, ProvisionError, ProvisionOptions};
use crate::sdk::{sdk_config, Endpoints};
use crate::template::{FunctionSpec, RouteAuthorization, RouteSpec, TemplateError, Topology};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("function {function}: {source}")]
    Function {
        function: String,
        source: FunctionError,
    },
    #[error("the template has no function {0}")]
    UnknownFunction(String),
    #[error("serving the HTTP API: {0}")]
    Http(std::io::Error),
    #[error("route {0} is IAM-authorized, which the local gateway does not play (ApiAuthorization=JWT or NONE run locally)")]
    UnsupportedAuthorization(String),
    #[error("the JWT authorizer of route {route}: {problem}")]
    Authorizer { route: String, problem: String },
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub template: PathBuf,
    /// AWS endpoints to use. `None`: the environment's `AWS_ENDPOINT_URL` (and per-service
    /// variants) if set, otherwise moto servers started for this runtime.
    pub endpoints: Option<Endpoints>,
    /// The port of the moto servers the runtime starts (DynamoDB on the next one); `None`:
    /// free ports. Ignored when endpoints are given.
    pub emulator_port: Option<u16>,
    /// Where the HTTP API listens; port 0 picks a free port.
    pub http_address: SocketAddr,
    pub provision: ProvisionOptions,
    /// `WaitTimeSeconds` of the event source mapping's long polls (Lambda uses 20).
    pub long_poll_seconds: i32,
    /// Function environment variables that replace the template's (by function logical id).
    pub environment_overrides: BTreeMap<String, BTreeMap<String, String>>,
    /// Functions whose event source mappings start disabled.
    pub disabled_sources: HashSet<String>,
    /// Faults injected between the functions and the AWS endpoint (see [`FaultProxy`]).
    pub faults: Option<FaultRates>,
    /// The functions' SDK retry configuration (on Lambda: `AWS_MAX_ATTEMPTS`,
    /// `AWS_RETRY_MODE`). `None`: the SDK default (standard, 3 attempts).
    pub retry: Option<aws_config::retry::RetryConfig>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            template: crate::emulator::project_root().join("template.yaml"),
            endpoints: None,
            emulator_port: None,
            http_address: SocketAddr::from(([127, 0, 0, 1], 3000)),
            provision: ProvisionOptions {
                prefix: "orderflow-".to_owned(),
                ..ProvisionOptions::default()
            },
            long_poll_seconds: 5,
            environment_overrides: BTreeMap::new(),
            disabled_sources: HashSet::new(),
            faults: None,
            retry: None,
        }
    }
}

/// A running local system. Call [`LocalRuntime::shutdown`] to stop it cleanly.
pub struct LocalRuntime {
    sdk: SdkConfig,
    /// What the API's server answers beside the API, by path prefix (see [`LocalRuntime::mount`]).
    pages: Pages,
    /// Where the emulated AWS APIs are served.
    endpoints: Endpoints,
    /// The template's user pool, when it creates one.
    customers: Option<Arc<CustomerPool>>,
    topology: Topology,
    deployment: Deployment,
    registry: Registry,
    api_address: SocketAddr,
    stats: Stats,
    shutdown: watch::Sender<bool>,
    switches: BTreeMap<String, watch::Sender<bool>>,
    /// The record bodies each consumer is handed, by logical id (see [`LocalRuntime::observe`]).
    observers: BTreeMap<String, tokio::sync::broadcast::Sender<String>>,
    lost_answers: LostAnswers,
    /// Every function as built, by logical id.
    built: BTreeMap<String, Built>,
    /// The environment of each function, by logical id, and the SDK configuration they reach
    /// AWS with: what [`LocalRuntime::build_function`] builds another instance from.
    environments: BTreeMap<String, FunctionEnv>,
    function_sdk: SdkConfig,
    fault_proxy: Option<FaultProxy>,
    tasks: Vec<JoinHandle<()>>,
    // Last, so the server stops after the tasks that use it.
    emulator: Option<Emulator>,
}

impl LocalRuntime {
    /// Starts the emulator (unless an endpoint is given), provisions the template, builds every
    /// function of the template with `registry`, and starts the HTTP API and the event source
    /// mappings.
    pub async fn start(options: RuntimeOptions, registry: Registry) -> Result<Self, RuntimeError> {
        let topology = Topology::load(&options.template, &options.provision.parameter_overrides)?;
        let given = options
            .endpoints
            .clone()
            .or_else(Endpoints::from_environment);
        let (emulator, endpoints) = match given {
            Some(endpoints) => (None, endpoints),
            None => {
                let port = options.emulator_port;
                let emulator = tokio::task::spawn_blocking(move || Emulator::start_on(port))
                    .await
                    .map_err(|e| EmulatorError::Start(e.to_string()))??;
                let endpoints = emulator.endpoints();
                (Some(emulator), endpoints)
            }
        };
        let sdk = sdk_config(Some(&endpoints)).await;
        let deployment = provision(&topology, &sdk, &options.provision).await?;

        let (shutdown, _) = watch::channel(false);
        let mut tasks = Vec::new();
        // The functions reach AWS through the fault proxy when faults are asked for; the event
        // source mappings (Lambda's own machinery) do not.
        let mut function_sdk = sdk.clone();
        let mut fault_proxy = None;
        if let Some(rates) = options.faults {
            let (proxy, task) = FaultProxy::start(&endpoints, rates, shutdown.subscribe())
                .await
                .map_err(RuntimeError::Http)?;
            function_sdk = sdk_config(Some(&Endpoints::single(&proxy.endpoint()))).await;
            tasks.push(task);
            fault_proxy = Some(proxy);
        }
        if let Some(retry) = options.retry.clone() {
            function_sdk = function_sdk.to_builder().retry_config(retry).build();
        }
        tracing::info!(endpoints = ?endpoints, prefix = %options.provision.prefix, "resources provisioned");

        if crate::metrics::LocalMetrics::install().is_some() {
            lambda_kit::metrics::describe();
        }
        let stats = Stats::default();
        let lost_answers = LostAnswers::default();
        let mut switches = BTreeMap::new();
        let mut observers = BTreeMap::new();
        let mut routes = Vec::new();
        let mut built = BTreeMap::new();
        let mut environments = BTreeMap::new();
        let mut authorizers = Authorizers {
            endpoints: endpoints.clone(),
            built: BTreeMap::new(),
        };
        for spec in &topology.functions {
            let env = function_env(spec, &deployment, &options)?;
            let function = registry
                .build(&spec.binary, &function_sdk, &env)
                .map_err(|source| RuntimeError::Function {
                    function: spec.logical_id.clone(),
                    source,
                })?;
            environments.insert(spec.logical_id.clone(), env);
            // Built once, as Lambda starts one execution environment (this runtime has one per
            // function).
            let service = match &function.function {
                Function::Http(handler) => handler.service(),
                Function::Queue(consumer) => consumer.service(),
            };
            lambda_kit::metrics::count(lambda_kit::metrics::name::COLD_START, service, 1);
            match &function.function {
                Function::Http(handler) => {
                    for route in &spec.http_routes {
                        let plain = Route::new(&route.method, &route.path, handler.clone());
                        routes.push(match &route.authorization {
                            RouteAuthorization::None => plain,
                            RouteAuthorization::Jwt { issuer, audience } => {
                                let authorizer = authorizers
                                    .for_route(route, issuer, audience, &deployment)
                                    .await?;
                                plain.with_authorizer(authorizer)
                            }
                            // Letting the requests through unchecked would hide what the
                            // deployed API refuses.
                            RouteAuthorization::Iam => {
                                return Err(RuntimeError::UnsupportedAuthorization(route.key()))
                            }
                        });
                    }
                }
                Function::Queue(consumer) => {
                    let consumer = lost_answers.wrap(&spec.logical_id, consumer.clone());
                    let enabled = !options.disabled_sources.contains(&spec.logical_id);
                    let (switch, enabled) = watch::channel(enabled);
                    switches.insert(spec.logical_id.clone(), switch);
                    let (observed, _) = tokio::sync::broadcast::channel(256);
                    observers.insert(spec.logical_id.clone(), observed.clone());
                    for source in &spec.sqs_sources {
                        let mapping = EventSourceMapping {
                            function: spec.logical_id.clone(),
                            consumer: consumer.clone(),
                            sqs: aws_sdk_sqs::Client::new(&sdk),
                            queue_url: deployment.reference(&source.queue),
                            queue_arn: deployment
                                .physical(&source.queue)
                                .map(|p| p.arn.clone())
                                .unwrap_or_default(),
                            region: deployment.resolver.region.clone(),
                            batch_size: source.batch_size.clamp(1, 10_000) as usize,
                            batching_window: Duration::from_secs(u64::from(
                                source.batching_window_seconds,
                            )),
                            maximum_concurrency: source.maximum_concurrency,
                            report_batch_item_failures: source.report_batch_item_failures,
                            timeout: Duration::from_secs(u64::from(spec.timeout_seconds)),
                            long_poll_seconds: options.long_poll_seconds,
                            stats: stats.clone(),
                            observed: observed.clone(),
                        };
                        tasks.push(tokio::spawn(
                            mapping.run(shutdown.subscribe(), enabled.clone()),
                        ));
                    }
                }
            }
            built.insert(spec.logical_id.clone(), function);
        }

        let listener = tokio::net::TcpListener::bind(options.http_address)
            .await
            .map_err(RuntimeError::Http)?;
        let api_address = listener.local_addr().map_err(RuntimeError::Http)?;
        let customers = CustomerPool::of(&sdk, &deployment).map(Arc::new);
        let cors = topology.cors.clone().map(crate::cors::Cors::new);
        let gateway =
            Arc::new(Gateway::new(routes, &deployment.resolver.account_id).with_cors(cors));
        let pages = Pages::default();
        let mounted = pages.clone();
        tasks.push(crate::http::serve(
            listener,
            shutdown.subscribe(),
            move |request| {
                let gateway = gateway.clone();
                let page = mounted.for_path(request.uri().path());
                async move {
                    match page {
                        Some(page) => page(request).await,
                        None => gateway.answer(request).await.map(BodyExt::boxed),
                    }
                }
            },
        ));

        Ok(Self {
            sdk,
            pages,
            endpoints,
            customers,
            topology,
            deployment,
            registry,
            api_address,
            stats,
            shutdown,
            switches,
            observers,
            lost_answers,
            built,
            environments,
            function_sdk,
            fault_proxy,
            tasks,
            emulator,
        })
    }

    /// Builds another instance of `function` (a logical id), configured as this runtime
    /// configured its own and with `overrides` on top of its environment: for callers that
    /// invoke a handler themselves, such as the benchmarks' synchronous baseline.
    pub fn build_function(
        &self,
        function: &str,
        overrides: &[(&str, &str)],
    ) -> Result<Built, RuntimeError> {
        let (spec, env) = self
            .topology
            .function(function)
            .zip(self.environments.get(function))
            .ok_or_else(|| RuntimeError::UnknownFunction(function.to_owned()))?;
        self.registry
            .build(&spec.binary, &self.function_sdk, &env.with(overrides))
            .map_err(|source| RuntimeError::Function {
                function: function.to_owned(),
                source,
            })
    }

    /// The environment this runtime gives `function` (a logical id), as the template sets it.
    pub fn environment(&self, function: &str) -> Option<&FunctionEnv> {
        self.environments.get(function)
    }

    /// Base URL of the local HTTP API, e.g. `http://127.0.0.1:3000`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_address)
    }

    /// The SDK configuration pointing at the emulator.
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// The template as read.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The customers' user pool (`None` when the template creates none): ID tokens for the
    /// API's JWT authorizer.
    pub fn customers(&self) -> Option<&CustomerPool> {
        self.customers.as_deref()
    }

    /// The customers' user pool, to keep beyond a borrow of the runtime.
    pub fn shared_customers(&self) -> Option<Arc<CustomerPool>> {
        self.customers.clone()
    }

    /// `Bearer <ID token>` of the customer `email`, for the `Authorization` header; `None` when
    /// the API takes no tokens (ApiAuthorization=NONE).
    pub async fn bearer(
        &self,
        email: &str,
    ) -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>> {
        match &self.customers {
            Some(customers) => Ok(Some(format!("Bearer {}", customers.token(email).await?))),
            None => Ok(None),
        }
    }

    /// Where the emulated AWS APIs are served.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The fault proxy between the functions and AWS, when faults were asked for.
    pub fn fault_proxy(&self) -> Option<&FaultProxy> {
        self.fault_proxy.as_ref()
    }

    /// The first handle of type `T` a running function exposes (the simulated payment gateway
    /// the payment function calls, say).
    pub fn handle<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.built.values().find_map(Built::handle::<T>)
    }

    /// Serves `page` for every request whose path starts with `prefix`, on the API's address
    /// (same origin, so a page there calls the API without CORS). Paths no API route uses only:
    /// on AWS, API Gateway answers them 404.
    pub fn mount(&self, prefix: &str, page: Page) {
        self.pages
            .0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((prefix.to_owned(), page));
    }

    /// The counters of every event source mapping, to keep beyond a borrow of the runtime.
    pub fn shared_stats(&self) -> Stats {
        self.stats.clone()
    }

    /// The counters of `function`'s event source mapping.
    pub fn stats(&self, function: &str) -> SourceStats {
        self.stats.of(function)
    }

    /// The bodies of the records `function`'s event source mapping hands it from now on (the
    /// oldest are dropped for a listener more than 256 behind); `None` for a function without
    /// an SQS event source. Costs nothing while nobody listens.
    pub fn observe(&self, function: &str) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.observers.get(function).map(|o| o.subscribe())
    }

    /// Enables or disables `function`'s event source mapping, as `aws lambda
    /// update-event-source-mapping --enabled/--no-enabled` would: while disabled, its queue
    /// keeps the events. An invocation already running finishes.
    pub fn set_source_enabled(&self, function: &str, enabled: bool) {
        if let Some(switch) = self.switches.get(function) {
            switch.send_replace(enabled);
        }
    }

    /// Whether `function`'s invocation answers reach its event source mapping (see
    /// [`crate::faults::lost_answers`]).
    pub fn set_acknowledgements(&self, function: &str, mode: Acknowledgements) {
        self.lost_answers.set(function, mode);
    }

    /// Stops polling and serving, lets in-flight invocations finish, and stops the emulator.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
        drop(self.emulator);
    }
}

/// A handler the API's server answers some paths with (a local page, say).
pub type Page = Arc<
    dyn Fn(hyper::Request<hyper::body::Incoming>) -> BoxFuture<'static, StreamedResponse>
        + Send
        + Sync,
>;

/// The pages mounted beside the API.
#[derive(Clone, Default)]
struct Pages(Arc<std::sync::RwLock<Vec<(String, Page)>>>);

impl Pages {
    fn for_path(&self, path: &str) -> Option<Page> {
        let pages = self.0.read().unwrap_or_else(|p| p.into_inner());
        pages
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map(|(_, page)| page.clone())
    }
}

/// The function's environment: the template's variables resolved against the deployment, then
/// the overrides.
fn function_env(
    spec: &FunctionSpec,
    deployment: &Deployment,
    options: &RuntimeOptions,
) -> Result<FunctionEnv, RuntimeError> {
    let mut vars = std::collections::HashMap::new();
    for (name, value) in &spec.environment {
        vars.insert(name.clone(), deployment.resolver.string(value)?);
    }
    if let Some(overrides) = options.environment_overrides.get(&spec.logical_id) {
        vars.extend(overrides.clone());
    }
    vars.insert("AWS_LAMBDA_FUNCTION_NAME".into(), spec.logical_id.clone());
    Ok(FunctionEnv::from_map(vars))
}

/// The JWT authorizers of the routes, one per issuer and audience (as API Gateway has one
/// `AWS::ApiGatewayV2::Authorizer` for several routes), with the issuer's keys fetched once.
struct Authorizers {
    endpoints: Endpoints,
    built: BTreeMap<(String, Vec<String>), Arc<JwtAuthorizer>>,
}

impl Authorizers {
    async fn for_route(
        &mut self,
        route: &RouteSpec,
        issuer: &serde_json::Value,
        audience: &serde_json::Value,
        deployment: &Deployment,
    ) -> Result<Arc<dyn Authorizer>, RuntimeError> {
        let problem = |problem: String| RuntimeError::Authorizer {
            route: route.key(),
            problem,
        };
        let resolver = &deployment.resolver;
        let issuer = resolver.string(issuer)?;
        // A `CommaDelimitedList` parameter resolves to its text; a list to its items.
        let audiences: Vec<String> = match resolver.resolve(audience)? {
            serde_json::Value::String(list) => list.split(',').map(str::to_owned).collect(),
            serde_json::Value::Array(items) => items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect(),
            other => return Err(problem(format!("audience {other} is not a list"))),
        };
        let key = (issuer, audiences);
        if let Some(built) = self.built.get(&key) {
            return Ok(built.clone());
        }
        let authorizer = JwtAuthorizer::discover(&key.0, key.1.clone(), &self.endpoints)
            .await
            .map_err(problem)?;
        let authorizer = Arc::new(authorizer);
        self.built.insert(key, authorizer.clone());
        Ok(authorizer)
    }
}
