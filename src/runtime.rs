//! The local runtime: provisions `template.yaml` on an emulator, serves the HTTP API on
//! localhost, and plays Lambda's SQS event source mapping for every consumer, running the same
//! handler code as on Lambda, in this process.
//!
//! The event source mapping does what Lambda's does: long-polls the queue, hands the function a
//! batch (at most the template's `BatchSize`, and at most 10, the SQS receive limit), deletes
//! the records that succeeded, and leaves the ones listed in `batchItemFailures` (or the whole
//! batch, when the invocation errors or times out) to the queue: they reappear after the
//! visibility timeout and, after `maxReceiveCount` receives, the queue moves them to its DLQ.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use lambda_kit::consumer::{FunctionEnv, SqsConsumer};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::emulator::{Emulator, EmulatorError};
use crate::faults::{FaultProxy, FaultRates};
use crate::functions::{self, Function, FunctionError, Handles};
use crate::provision::{provision, Deployment, ProvisionError, ProvisionOptions};
use crate::template::{TemplateError, Topology};
use payment::SimulatedGateway;

/// Largest request body the local HTTP API reads (API Gateway's limit is 10 MB).
const MAX_HTTP_BODY: usize = 10 * 1024 * 1024;

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
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub template: PathBuf,
    /// AWS endpoint to use. `None`: the environment's `AWS_ENDPOINT_URL` (and per-service
    /// variants) if set, otherwise a moto server started for this runtime.
    pub endpoint: Option<String>,
    /// Where the HTTP API listens; port 0 picks a free port.
    pub http_address: SocketAddr,
    pub provision: ProvisionOptions,
    /// `WaitTimeSeconds` of the event source mapping's long polls (Lambda uses 20).
    pub long_poll_seconds: i32,
    /// Function environment variables that replace the template's (by function logical id).
    pub environment_overrides: BTreeMap<String, BTreeMap<String, String>>,
    /// Functions whose event source mappings start disabled.
    pub disabled_sources: HashSet<String>,
    /// Concurrent pollers per event source (Lambda scales these with the queue's backlog).
    pub pollers_per_source: usize,
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
            endpoint: None,
            http_address: SocketAddr::from(([127, 0, 0, 1], 3000)),
            provision: ProvisionOptions {
                prefix: "orderflow-".to_owned(),
                ..ProvisionOptions::default()
            },
            long_poll_seconds: 5,
            environment_overrides: BTreeMap::new(),
            disabled_sources: HashSet::new(),
            pollers_per_source: 1,
            faults: None,
            retry: None,
        }
    }
}

/// Counters of one function's event source mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub invocations: u64,
    pub records: u64,
    pub failed_records: u64,
    pub deleted: u64,
    /// Total time the function spent in its invocations (what Lambda bills).
    pub busy: Duration,
}

type Stats = Arc<Mutex<BTreeMap<String, SourceStats>>>;
/// What becomes of invocations' answers, for crash scenarios: an answer that is lost leaves
/// every record of the batch to come back after the visibility timeout, as when a function
/// crashes after its effects and before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acknowledgements {
    /// Answers are honoured (what Lambda does).
    #[default]
    Kept,
    /// Every answer is lost.
    Lost,
    /// The answer about each message's first delivery is lost; later ones are kept.
    FirstLost,
}

#[derive(Debug, Default)]
struct AckState {
    modes: HashMap<String, Acknowledgements>,
    /// (function, message id) whose first answer was lost.
    lost_once: HashSet<(String, String)>,
}

type Unacknowledged = Arc<Mutex<AckState>>;

/// A running local system. Call [`LocalRuntime::shutdown`] to stop it cleanly.
pub struct LocalRuntime {
    sdk: SdkConfig,
    deployment: Deployment,
    api_address: SocketAddr,
    stats: Stats,
    shutdown: watch::Sender<bool>,
    switches: BTreeMap<String, watch::Sender<bool>>,
    unacknowledged: Unacknowledged,
    handles: Handles,
    /// (binary, environment) of each function, by logical id, and the SDK configuration they
    /// reach AWS with: what [`LocalRuntime::build_function`] builds another instance from.
    function_configs: BTreeMap<String, (String, FunctionEnv)>,
    function_sdk: SdkConfig,
    fault_proxy: Option<FaultProxy>,
    tasks: Vec<JoinHandle<()>>,
    // Last, so the server stops after the tasks that use it.
    emulator: Option<Emulator>,
}

/// An SDK configuration for `endpoint` (or the environment's endpoint settings when `None`).
/// For an emulator (an endpoint given here or in `AWS_ENDPOINT_URL`) it falls back to a default
/// region and dummy credentials, which emulators accept; for AWS itself the usual chain
/// (environment, profile, instance role) decides.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    let emulated = endpoint.is_some() || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    if emulated
        && std::env::var_os("AWS_REGION").is_none()
        && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        loader = loader.region(Region::new("us-east-1"));
    }
    if emulated && std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "local",
        ));
    }
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

impl LocalRuntime {
    /// Starts the emulator (unless an endpoint is given), provisions the template, and starts
    /// the HTTP API and the event source mappings.
    pub async fn start(options: RuntimeOptions) -> Result<Self, RuntimeError> {
        let topology = Topology::load(&options.template)?;
        let endpoint_from_env = std::env::var_os("AWS_ENDPOINT_URL").is_some_and(|v| !v.is_empty());
        let (emulator, sdk) = match &options.endpoint {
            Some(endpoint) => (None, sdk_config(Some(endpoint)).await),
            // aws-config reads AWS_ENDPOINT_URL and the per-service AWS_ENDPOINT_URL_<SERVICE>.
            None if endpoint_from_env => (None, sdk_config(None).await),
            None => {
                let emulator = tokio::task::spawn_blocking(Emulator::start)
                    .await
                    .map_err(|e| EmulatorError::Start(e.to_string()))??;
                let sdk = sdk_config(Some(emulator.endpoint())).await;
                (Some(emulator), sdk)
            }
        };
        let deployment = provision(&topology, &sdk, &options.provision).await?;

        let (shutdown, _) = watch::channel(false);
        let mut tasks = Vec::new();
        // The functions reach AWS through the fault proxy when faults are asked for; the event
        // source mappings (Lambda's own machinery) do not.
        let mut function_sdk = sdk.clone();
        let mut fault_proxy = None;
        if let Some(rates) = options.faults {
            let upstream = sdk.endpoint_url().unwrap_or_default().to_owned();
            let (proxy, task) = FaultProxy::start(&upstream, rates, shutdown.subscribe())
                .await
                .map_err(RuntimeError::Http)?;
            function_sdk = sdk_config(Some(&proxy.endpoint())).await;
            tasks.push(task);
            fault_proxy = Some(proxy);
        }
        if let Some(retry) = options.retry.clone() {
            function_sdk = function_sdk.to_builder().retry_config(retry).build();
        }
        tracing::info!(endpoint = ?sdk.endpoint_url(), prefix = %options.provision.prefix, "resources provisioned");

        let stats = Stats::default();
        let unacknowledged = Unacknowledged::default();
        let mut switches = BTreeMap::new();
        let mut routes = Vec::new();
        let mut handles = Handles::default();
        let mut function_configs = BTreeMap::new();
        for spec in &topology.functions {
            let env = function_env(spec, &deployment, &options)?;
            function_configs.insert(spec.logical_id.clone(), (spec.binary.clone(), env.clone()));
            let function = functions::build(&spec.binary, &function_sdk, &env, &mut handles)
                .map_err(|source| RuntimeError::Function {
                    function: spec.logical_id.clone(),
                    source,
                })?;
            match function {
                Function::Http(api) => {
                    for (method, path) in &spec.http_routes {
                        routes.push(Route {
                            method: method.clone(),
                            path: path.clone(),
                            api: api.clone(),
                        });
                    }
                }
                Function::Queue(consumer) => {
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
                            batch_size: source.batch_size.clamp(1, 10) as i32,
                            report_failures: source.report_batch_item_failures,
                            timeout: Duration::from_secs(u64::from(spec.timeout_seconds)),
                            long_poll_seconds: options.long_poll_seconds,
                            stats: stats.clone(),
                            unacknowledged: unacknowledged.clone(),
                        };
                        let enabled = !options.disabled_sources.contains(&spec.logical_id);
                        let (switch, enabled) = watch::channel(enabled);
                        switches.insert(spec.logical_id.clone(), switch);
                        for _ in 0..options.pollers_per_source.max(1) {
                            let mapping = mapping.clone();
                            tasks.push(tokio::spawn(
                                mapping.run(shutdown.subscribe(), enabled.clone()),
                            ));
                        }
                    }
                }
            }
        }

        let listener = tokio::net::TcpListener::bind(options.http_address)
            .await
            .map_err(RuntimeError::Http)?;
        let api_address = listener.local_addr().map_err(RuntimeError::Http)?;
        tasks.push(tokio::spawn(serve_http(
            listener,
            Arc::new(routes),
            shutdown.subscribe(),
        )));

        Ok(Self {
            sdk,
            deployment,
            api_address,
            stats,
            shutdown,
            switches,
            unacknowledged,
            handles,
            function_configs,
            function_sdk,
            fault_proxy,
            tasks,
            emulator,
        })
    }

    /// Builds another instance of `function` (a logical id), configured as this runtime
    /// configured its own and with `overrides` on top of its environment, with the handles on
    /// its simulated dependencies: for callers that invoke a handler themselves, such as the
    /// benchmarks' synchronous baseline.
    pub fn build_function(
        &self,
        function: &str,
        overrides: &[(&str, &str)],
    ) -> Result<(Function, Handles), RuntimeError> {
        let (binary, env) = self
            .function_configs
            .get(function)
            .ok_or_else(|| RuntimeError::UnknownFunction(function.to_owned()))?;
        let env = env.with(overrides);
        let mut handles = Handles::default();
        let built =
            functions::build(binary, &self.function_sdk, &env, &mut handles).map_err(|source| {
                RuntimeError::Function {
                    function: function.to_owned(),
                    source,
                }
            })?;
        Ok((built, handles))
    }

    /// Base URL of the local HTTP API, e.g. `http://127.0.0.1:3000`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_address)
    }

    /// The SDK configuration pointing at the emulator.
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The endpoint the resources live on.
    pub fn endpoint(&self) -> Option<String> {
        self.sdk.endpoint_url().map(str::to_owned)
    }

    /// The fault proxy between the functions and AWS, when faults were asked for.
    pub fn fault_proxy(&self) -> Option<&FaultProxy> {
        self.fault_proxy.as_ref()
    }

    /// The simulated payment gateway the payment function calls.
    pub fn payment_gateway(&self) -> Option<&SimulatedGateway> {
        self.handles.payment_gateway.as_deref()
    }

    /// The counters of `function`'s event source mapping.
    pub fn stats(&self, function: &str) -> SourceStats {
        lock(&self.stats).get(function).cloned().unwrap_or_default()
    }

    /// Enables or disables `function`'s event source mapping, as `aws lambda
    /// update-event-source-mapping --enabled/--no-enabled` would: while disabled, its queue
    /// keeps the events. An invocation already running finishes.
    pub fn set_source_enabled(&self, function: &str, enabled: bool) {
        if let Some(switch) = self.switches.get(function) {
            switch.send_replace(enabled);
        }
    }

    /// Whether `function`'s invocation answers reach its event source mapping. A lost answer
    /// deletes nothing: the records come back after the visibility timeout, under the same
    /// message ids, as if the function had crashed after its effects and before answering.
    pub fn set_acknowledgements(&self, function: &str, mode: Acknowledgements) {
        lock(&self.unacknowledged)
            .modes
            .insert(function.to_owned(), mode);
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The function's environment: the template's variables resolved against the deployment, then
/// the overrides.
fn function_env(
    spec: &crate::template::FunctionSpec,
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

#[derive(Clone)]
struct EventSourceMapping {
    function: String,
    consumer: Arc<dyn SqsConsumer>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    region: String,
    batch_size: i32,
    report_failures: bool,
    timeout: Duration,
    long_poll_seconds: i32,
    stats: Stats,
    unacknowledged: Unacknowledged,
}

impl EventSourceMapping {
    async fn run(self, mut shutdown: watch::Receiver<bool>, mut enabled: watch::Receiver<bool>) {
        loop {
            if !*enabled.borrow_and_update() {
                tracing::info!(function = %self.function, "event source mapping disabled");
                tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => return,
                    _ = enabled.wait_for(|on| *on) => {}
                }
                tracing::info!(function = %self.function, "event source mapping enabled");
            }
            let receive = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(self.batch_size)
                .wait_time_seconds(self.long_poll_seconds)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send();
            // Disabling takes effect at once: a long poll in progress is abandoned (anything it
            // had received becomes visible again after the visibility timeout).
            let received = tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = enabled.wait_for(|on| !*on) => continue,
                received = receive => received,
            };
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(function = %self.function, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "receive failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if !messages.is_empty() {
                self.invoke(messages).await;
            }
        }
    }

    /// One invocation: hand the batch to the function, then delete what succeeded.
    async fn invoke(&self, messages: Vec<aws_sdk_sqs::types::Message>) {
        let receipts: Vec<(String, String)> = messages
            .iter()
            .map(|m| {
                (
                    m.message_id.clone().unwrap_or_default(),
                    m.receipt_handle.clone().unwrap_or_default(),
                )
            })
            .collect();
        let mut batch = SqsEvent::default();
        batch.records = messages.into_iter().map(|m| self.record(m)).collect();

        let deadline = SystemTime::now() + self.timeout;
        let started = std::time::Instant::now();
        let outcome =
            tokio::time::timeout(self.timeout, self.consumer.handle(batch, deadline)).await;
        let busy = started.elapsed();
        let lost = self.lost_answers(&receipts);
        if !lost.is_empty() {
            tracing::warn!(function = %self.function, records = lost.len(), "answer lost; these records will be delivered again");
        }
        let mut failed: HashSet<String> = match outcome {
            Ok(Ok(response)) if self.report_failures || response.batch_item_failures.is_empty() => {
                response
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect()
            }
            Ok(Ok(_)) => {
                tracing::error!(function = %self.function, "batch item failures reported without ReportBatchItemFailures; the whole batch is retried");
                receipts.iter().map(|(id, _)| id.clone()).collect()
            }
            Ok(Err(e)) => {
                tracing::error!(function = %self.function, error = %e, "invocation failed; the whole batch is retried");
                receipts.iter().map(|(id, _)| id.clone()).collect()
            }
            Err(_) => {
                tracing::error!(function = %self.function, timeout = ?self.timeout, "invocation timed out; the whole batch is retried");
                receipts.iter().map(|(id, _)| id.clone()).collect()
            }
        };

        failed.extend(lost);
        let done: Vec<&(String, String)> = receipts
            .iter()
            .filter(|(id, _)| !failed.contains(id))
            .collect();
        let mut deleted = 0;
        for chunk in done.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, (_, receipt))| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build()
                        .ok()
                })
                .collect();
            match self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => deleted += output.successful.len() as u64,
                Err(e) => {
                    tracing::warn!(function = %self.function, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "delete failed; the records will be delivered again")
                }
            }
        }
        let mut stats = lock(&self.stats);
        let entry = stats.entry(self.function.clone()).or_default();
        entry.invocations += 1;
        entry.records += receipts.len() as u64;
        entry.failed_records += failed.len() as u64;
        entry.deleted += deleted;
        entry.busy += busy;
    }

    /// The message ids whose answer is lost under the function's [`Acknowledgements`].
    fn lost_answers(&self, receipts: &[(String, String)]) -> HashSet<String> {
        let mut state = lock(&self.unacknowledged);
        let mode = state.modes.get(&self.function).copied().unwrap_or_default();
        let ids = receipts.iter().map(|(id, _)| id.clone());
        match mode {
            Acknowledgements::Kept => HashSet::new(),
            Acknowledgements::Lost => ids.collect(),
            Acknowledgements::FirstLost => ids
                .filter(|id| state.lost_once.insert((self.function.clone(), id.clone())))
                .collect(),
        }
    }

    /// An SQS message as Lambda presents it in an SQS event.
    fn record(&self, message: aws_sdk_sqs::types::Message) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = message.message_id;
        record.receipt_handle = message.receipt_handle;
        record.body = message.body;
        record.md5_of_body = message.md5_of_body;
        record.md5_of_message_attributes = message.md5_of_message_attributes;
        record.attributes = message
            .attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_owned(), v))
            .collect();
        record.message_attributes = message
            .message_attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| {
                let mut attribute = SqsMessageAttribute::default();
                attribute.string_value = value.string_value;
                attribute.data_type = Some(value.data_type);
                (name, attribute)
            })
            .collect();
        record.event_source = Some("aws:sqs".to_owned());
        record.event_source_arn = Some(self.queue_arn.clone());
        record.aws_region = Some(self.region.clone());
        record
    }
}

struct Route {
    method: String,
    path: String,
    api: Arc<functions::HttpApi>,
}

async fn serve_http(
    listener: tokio::net::TcpListener,
    routes: Arc<Vec<Route>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let routes = routes.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let routes = routes.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&routes, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What API Gateway would answer: the route's function response, or its own 404/413.
async fn answer(
    routes: &[Route],
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let route = routes.iter().find(|r| {
        r.path == request.uri().path()
            && (r.method == "ANY" || r.method == request.method().as_str())
    });
    let Some(route) = route else {
        return plain(404, r#"{"message":"Not Found"}"#);
    };
    let (parts, body) = request.into_parts();
    let bytes = match Limited::new(body, MAX_HTTP_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return plain(413, r#"{"message":"Request Entity Too Large"}"#),
    };
    let request = http::Request::from_parts(parts, lambda_http::Body::Binary(bytes.to_vec()));
    let (parts, body) = route.api.handle(request).await.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(text) => Bytes::from(text),
        lambda_http::Body::Binary(data) => Bytes::from(data),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

fn plain(status: u16, body: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
