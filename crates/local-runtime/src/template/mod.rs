//! Reads the SAM template: the one description of the topology, for AWS and for the local
//! runtime alike.
//!
//! Only what the local runtime needs is interpreted: topics, queues and their redrive policies,
//! subscriptions, queue policies, tables, functions with their environment and SQS event
//! sources, and HTTP routes (SAM `HttpApi` events or `AWS::ApiGatewayV2::Route`s integrated
//! with a function). `Conditions` are evaluated from the parameters' values ([`conditions`]):
//! a resource whose condition is false is left out, and `Fn::If` takes its branch. The
//! remaining intrinsic functions (`Ref`, `Fn::GetAtt`, `Fn::Sub`) are kept as JSON and resolved
//! against the provisioned resources by [`Resolver`]; any other one in a resource the runtime
//! reads is refused with an error naming the resource.

mod conditions;
pub mod extensions;
mod intrinsics;
mod yaml;

pub use intrinsics::{Physical, Resolver, SUPPORTED};
pub use yaml::document;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("resource {resource}: {problem}")]
    Resource { resource: String, problem: String },
    #[error("cannot resolve {0}")]
    Unresolved(String),
}

fn problem(resource: &str, problem: impl Into<String>) -> TemplateError {
    TemplateError::Resource {
        resource: resource.to_owned(),
        problem: problem.into(),
    }
}

/// An SQS queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    pub logical_id: String,
    pub fifo: bool,
    pub visibility_timeout: Option<u32>,
    pub message_retention: Option<u32>,
    /// Dead-letter queue (logical id) and `maxReceiveCount`, unresolved.
    pub redrive: Option<(String, Value)>,
}

/// An SNS subscription of a queue to a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionSpec {
    pub logical_id: String,
    pub topic: String,
    pub queue: String,
    pub raw_message_delivery: bool,
    pub filter_policy: Option<Value>,
    pub filter_policy_scope: Option<String>,
    /// The subscription's own dead-letter queue (logical id), for deliveries SNS cannot make.
    pub dead_letter_queue: Option<String>,
}

/// A queue policy: the queues it applies to and its (unresolved) document.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuePolicySpec {
    pub logical_id: String,
    pub queues: Vec<String>,
    pub document: Value,
}

/// A DynamoDB table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub logical_id: String,
    /// (attribute name, `HASH` or `RANGE`)
    pub key_schema: Vec<(String, String)>,
    /// (attribute name, `S`, `N` or `B`)
    pub attributes: Vec<(String, String)>,
    pub ttl_attribute: Option<String>,
    /// Its global secondary indexes.
    pub indexes: Vec<IndexSpec>,
}

/// A global secondary index of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    pub name: String,
    /// (attribute name, `HASH` or `RANGE`)
    pub key_schema: Vec<(String, String)>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: String,
}

/// The HTTP API's CORS configuration (`CorsConfiguration` of the `AWS::ApiGatewayV2::Api`),
/// with its origins resolved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CorsSpec {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u64>,
    pub allow_credentials: bool,
}

/// A Cognito user pool: who the customers are, and the issuer of their tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct UserPoolSpec {
    pub logical_id: String,
    /// `email` when customers sign in with their e-mail address.
    pub username_attributes: Vec<String>,
}

/// An app client of a user pool: the audience of its tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct UserPoolClientSpec {
    pub logical_id: String,
    /// The user pool's logical id.
    pub user_pool: String,
    pub explicit_auth_flows: Vec<String>,
}

/// An SQS event source of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsSource {
    pub queue: String,
    pub batch_size: u32,
    /// `MaximumBatchingWindowInSeconds` (0 when absent, as on Lambda).
    pub batching_window_seconds: u32,
    /// `ScalingConfig.MaximumConcurrency`: at most this many batches at once.
    pub maximum_concurrency: Option<u32>,
    pub report_batch_item_failures: bool,
}

/// How API Gateway authorizes a route's requests.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum RouteAuthorization {
    #[default]
    None,
    /// A JWT authorizer: the issuer and audiences it accepts (unresolved).
    Jwt { issuer: Value, audience: Value },
    /// SigV4-signed requests, checked against IAM.
    Iam,
}

/// An HTTP API route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    pub method: String,
    pub path: String,
    pub authorization: RouteAuthorization,
}

impl RouteSpec {
    /// `METHOD /path`, as API Gateway writes route keys.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A function.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// The cargo binary that implements it (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    pub timeout_seconds: u32,
    /// Environment variables, globals merged in, unresolved.
    pub environment: BTreeMap<String, Value>,
    pub sqs_sources: Vec<SqsSource>,
    /// The HTTP API routes to it.
    pub http_routes: Vec<RouteSpec>,
    /// `ses:SendEmail` resources its policies allow, unresolved.
    pub ses_identities: Vec<Value>,
}

/// Everything the local runtime builds from the template.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    /// Parameter values: the defaults, with the overrides given to [`Topology::load`].
    pub parameters: BTreeMap<String, String>,
    /// Every condition, evaluated.
    pub conditions: BTreeMap<String, bool>,
    pub topics: Vec<String>,
    /// The topics that are SNS FIFO topics (`FifoTopic: true`).
    pub fifo_topics: Vec<String>,
    pub queues: Vec<QueueSpec>,
    pub subscriptions: Vec<SubscriptionSpec>,
    pub queue_policies: Vec<QueuePolicySpec>,
    pub tables: Vec<TableSpec>,
    pub user_pools: Vec<UserPoolSpec>,
    pub user_pool_clients: Vec<UserPoolClientSpec>,
    pub functions: Vec<FunctionSpec>,
    /// The HTTP API's CORS configuration, when it has one.
    pub cors: Option<CorsSpec>,
}

fn read(path: &Path) -> Result<String, TemplateError> {
    std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The parameters' default values.
fn defaults(template: &Value) -> BTreeMap<String, String> {
    object(&template["Parameters"])
        .filter_map(|(name, parameter)| Some((name.clone(), scalar(&parameter["Default"])?)))
        .collect()
}

/// The template at `path` as CloudFormation sees it once the `AWS::LanguageExtensions`
/// transform ran (loops expanded, known `Fn::FindInMap`s replaced), with the parameters'
/// defaults: what SAM's transform and the template rules read.
pub fn expanded(path: &Path) -> Result<Value, TemplateError> {
    let template = document(&read(path)?)?;
    let parameters = defaults(&template);
    extensions::expand(template, &parameters)
}

impl Topology {
    /// Reads the template at `path` with `parameters` overriding the defaults.
    pub fn load(path: &Path, parameters: &BTreeMap<String, String>) -> Result<Self, TemplateError> {
        Self::parse(&read(path)?, parameters)
    }

    /// Reads a template's text with `parameters` overriding the defaults.
    pub fn parse(text: &str, parameters: &BTreeMap<String, String>) -> Result<Self, TemplateError> {
        let template = document(text)?;
        let mut topology = Topology {
            parameters: defaults(&template),
            ..Topology::default()
        };
        topology.parameters.extend(parameters.clone());
        let template = extensions::expand(template, &topology.parameters)?;
        topology.conditions = conditions::evaluate(&template["Conditions"], &topology.parameters)?;
        let globals = &template["Globals"]["Function"];
        let mut resources = Map::new();
        for (id, resource) in object(&template["Resources"]) {
            if let Some(condition) = resource.get("Condition") {
                let name = condition.as_str().unwrap_or_default();
                match topology.conditions.get(name) {
                    Some(true) => {}
                    Some(false) => continue,
                    None => return Err(problem(id, format!("no condition {name:?}"))),
                }
            }
            let chosen = conditions::choose(resource, &topology.conditions)
                .map_err(|e| problem(id, e.to_string()))?
                .unwrap_or_default();
            resources.insert(id.clone(), chosen);
        }
        let resources = Value::Object(resources);
        for (id, resource) in object(&resources) {
            let properties = &resource["Properties"];
            let kind = resource["Type"].as_str().unwrap_or_default();
            if INTERPRETED.contains(&kind) {
                if let Some(function) = intrinsics::unsupported(resource) {
                    return Err(problem(
                        id,
                        format!(
                            "{function} cannot be evaluated locally (supported: {SUPPORTED:?})"
                        ),
                    ));
                }
            }
            match kind {
                "AWS::SNS::Topic" => {
                    topology.topics.push(id.clone());
                    if properties["FifoTopic"].as_bool() == Some(true) {
                        topology.fifo_topics.push(id.clone());
                    }
                }
                "AWS::SQS::Queue" => topology.queues.push(queue(id, properties)?),
                "AWS::SNS::Subscription" => {
                    topology.subscriptions.push(subscription(id, properties)?)
                }
                "AWS::SQS::QueuePolicy" => topology.queue_policies.push(QueuePolicySpec {
                    logical_id: id.clone(),
                    queues: array(&properties["Queues"])
                        .iter()
                        .filter_map(ref_target)
                        .collect(),
                    document: properties["PolicyDocument"].clone(),
                }),
                "AWS::DynamoDB::Table" => topology.tables.push(table(id, properties)),
                "AWS::ApiGatewayV2::Api" if properties.get("CorsConfiguration").is_some() => {
                    topology.cors =
                        Some(cors(&properties["CorsConfiguration"], &topology.parameters));
                }
                "AWS::Cognito::UserPool" => topology.user_pools.push(UserPoolSpec {
                    logical_id: id.clone(),
                    username_attributes: strings(&properties["UsernameAttributes"]),
                }),
                "AWS::Cognito::UserPoolClient" => {
                    topology.user_pool_clients.push(UserPoolClientSpec {
                        logical_id: id.clone(),
                        user_pool: ref_target(&properties["UserPoolId"]).ok_or_else(|| {
                            problem(id, "UserPoolId must be a Ref of a user pool")
                        })?,
                        explicit_auth_flows: strings(&properties["ExplicitAuthFlows"]),
                    })
                }
                "AWS::Serverless::Function" => topology.functions.push(function(
                    id,
                    resource,
                    globals,
                    &resources,
                    &topology.parameters,
                )?),
                _ => {}
            }
        }
        for (route, function) in gateway_routes(&resources) {
            if let Some(spec) = topology
                .functions
                .iter_mut()
                .find(|f| f.logical_id == function)
            {
                spec.http_routes.push(route);
            }
        }
        Ok(topology)
    }

    /// The functions fed by an SQS event source.
    pub fn consumers(&self) -> impl Iterator<Item = &FunctionSpec> {
        self.functions.iter().filter(|f| !f.sqs_sources.is_empty())
    }

    /// The event types the subscriptions of `queue` (a logical id) let in: the `eventType`
    /// lists of their filter policies.
    pub fn event_types_of(&self, queue: &str) -> Vec<String> {
        self.subscriptions
            .iter()
            .filter(|s| s.queue == queue)
            .filter_map(|s| s.filter_policy.as_ref())
            .flat_map(|policy| policy["eventType"].as_array().cloned().unwrap_or_default())
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect()
    }

    /// The dead-letter queue (a logical id) of `queue`, from its redrive policy.
    pub fn dead_letter_queue_of(&self, queue: &str) -> Option<&str> {
        let queue = self.queues.iter().find(|q| q.logical_id == queue)?;
        queue.redrive.as_ref().map(|(dlq, _)| dlq.as_str())
    }

    pub fn function(&self, logical_id: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.logical_id == logical_id)
    }
}

/// The resource types the runtime reads; their intrinsic functions must be ones it evaluates.
const INTERPRETED: &[&str] = &[
    "AWS::SNS::Topic",
    "AWS::SQS::Queue",
    "AWS::SNS::Subscription",
    "AWS::SQS::QueuePolicy",
    "AWS::DynamoDB::Table",
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Serverless::Function",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Integration",
];

fn queue(id: &str, properties: &Value) -> Result<QueueSpec, TemplateError> {
    let redrive = match properties.get("RedrivePolicy") {
        None => None,
        Some(policy) => {
            let target = getatt_target(&policy["deadLetterTargetArn"])
                .ok_or_else(|| problem(id, "deadLetterTargetArn must be a GetAtt of a queue"))?;
            Some((target, policy["maxReceiveCount"].clone()))
        }
    };
    Ok(QueueSpec {
        logical_id: id.to_owned(),
        fifo: properties["FifoQueue"].as_bool().unwrap_or(false),
        visibility_timeout: number(&properties["VisibilityTimeout"]),
        message_retention: number(&properties["MessageRetentionPeriod"]),
        redrive,
    })
}

fn subscription(id: &str, properties: &Value) -> Result<SubscriptionSpec, TemplateError> {
    if properties["Protocol"].as_str() != Some("sqs") {
        return Err(problem(id, "only sqs subscriptions are supported locally"));
    }
    Ok(SubscriptionSpec {
        logical_id: id.to_owned(),
        topic: ref_target(&properties["TopicArn"])
            .ok_or_else(|| problem(id, "TopicArn must be a Ref of a topic"))?,
        queue: getatt_target(&properties["Endpoint"])
            .ok_or_else(|| problem(id, "Endpoint must be a GetAtt of a queue"))?,
        raw_message_delivery: properties["RawMessageDelivery"]
            .as_bool()
            .or_else(|| {
                properties["RawMessageDelivery"]
                    .as_str()
                    .map(|s| s == "true")
            })
            .unwrap_or(false),
        filter_policy: properties.get("FilterPolicy").cloned(),
        filter_policy_scope: properties["FilterPolicyScope"].as_str().map(str::to_owned),
        dead_letter_queue: getatt_target(&properties["RedrivePolicy"]["deadLetterTargetArn"]),
    })
}

/// (route, function) of every `AWS::ApiGatewayV2::Route` whose target is an integration with a
/// function (`IntegrationUri: !GetAtt F.Arn`).
fn gateway_routes(resources: &Value) -> Vec<(RouteSpec, String)> {
    let mut routes = Vec::new();
    for (_, route) in object(resources) {
        if route["Type"] != "AWS::ApiGatewayV2::Route" {
            continue;
        }
        let properties = &route["Properties"];
        let Some((method, path)) = properties["RouteKey"]
            .as_str()
            .and_then(|key| key.split_once(' '))
        else {
            continue;
        };
        let target = match &properties["Target"]["Fn::Sub"] {
            Value::String(text) => text.as_str(),
            _ => continue,
        };
        let Some(integration) = target
            .strip_prefix("integrations/${")
            .and_then(|rest| rest.strip_suffix('}'))
        else {
            continue;
        };
        let authorization = match properties["AuthorizationType"].as_str() {
            Some("JWT") => {
                let authorizer = ref_target(&properties["AuthorizerId"]).unwrap_or_default();
                let jwt = &resources[authorizer.as_str()]["Properties"]["JwtConfiguration"];
                RouteAuthorization::Jwt {
                    issuer: jwt["Issuer"].clone(),
                    audience: jwt["Audience"].clone(),
                }
            }
            Some("AWS_IAM") => RouteAuthorization::Iam,
            _ => RouteAuthorization::None,
        };
        if let Some(function) =
            getatt_target(&resources[integration]["Properties"]["IntegrationUri"])
        {
            let route = RouteSpec {
                method: method.to_uppercase(),
                path: path.to_owned(),
                authorization,
            };
            routes.push((route, function));
        }
    }
    routes
}

fn cors(configuration: &Value, parameters: &BTreeMap<String, String>) -> CorsSpec {
    // A list, or a list parameter (`!Ref CorsAllowedOrigins`: its value is comma-separated).
    let list = |value: &Value| match value["Ref"].as_str() {
        Some(parameter) => parameters
            .get(parameter)
            .map(|text| {
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        None => strings(value),
    };
    CorsSpec {
        allow_origins: list(&configuration["AllowOrigins"]),
        allow_methods: list(&configuration["AllowMethods"]),
        allow_headers: list(&configuration["AllowHeaders"]),
        expose_headers: list(&configuration["ExposeHeaders"]),
        max_age: configuration["MaxAge"].as_u64(),
        allow_credentials: configuration["AllowCredentials"].as_bool() == Some(true),
    }
}

fn table(id: &str, properties: &Value) -> TableSpec {
    let pairs = |list: &Value, a: &str, b: &str| {
        array(list)
            .iter()
            .map(|e| {
                (
                    e[a].as_str().unwrap_or_default().to_owned(),
                    e[b].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let ttl = &properties["TimeToLiveSpecification"];
    TableSpec {
        logical_id: id.to_owned(),
        key_schema: pairs(&properties["KeySchema"], "AttributeName", "KeyType"),
        attributes: pairs(
            &properties["AttributeDefinitions"],
            "AttributeName",
            "AttributeType",
        ),
        ttl_attribute: (ttl["Enabled"].as_bool() == Some(true))
            .then(|| ttl["AttributeName"].as_str().map(str::to_owned))
            .flatten(),
        indexes: array(&properties["GlobalSecondaryIndexes"])
            .iter()
            .map(|index| IndexSpec {
                name: index["IndexName"].as_str().unwrap_or_default().to_owned(),
                key_schema: pairs(&index["KeySchema"], "AttributeName", "KeyType"),
                projection: index["Projection"]["ProjectionType"]
                    .as_str()
                    .unwrap_or("ALL")
                    .to_owned(),
            })
            .collect(),
    }
}

fn function(
    id: &str,
    resource: &Value,
    globals: &Value,
    resources: &Value,
    parameters: &BTreeMap<String, String>,
) -> Result<FunctionSpec, TemplateError> {
    // A number, or a parameter's value (`!Ref BatchingWindowSeconds`).
    let number = |value: &Value| match value["Ref"].as_str() {
        Some(name) => parameters.get(name).and_then(|v| v.parse().ok()),
        None => number(value),
    };
    let properties = &resource["Properties"];
    let binary = resource["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .ok_or_else(|| problem(id, "Metadata.BuildProperties.Binary names no cargo binary"))?
        .to_owned();
    let mut environment = BTreeMap::new();
    for scope in [globals, properties] {
        for (name, value) in object(&scope["Environment"]["Variables"]) {
            environment.insert(name.clone(), value.clone());
        }
    }
    let timeout_seconds = number(&properties["Timeout"])
        .or_else(|| number(&globals["Timeout"]))
        .unwrap_or(3);

    let mut sqs_sources = Vec::new();
    let mut http_routes = Vec::new();
    for (name, event) in object(&properties["Events"]) {
        let event_properties = &event["Properties"];
        match event["Type"].as_str().unwrap_or_default() {
            "SQS" => sqs_sources.push(SqsSource {
                queue: getatt_target(&event_properties["Queue"])
                    .ok_or_else(|| problem(id, format!("event {name}: Queue must be a GetAtt")))?,
                batch_size: number(&event_properties["BatchSize"]).unwrap_or(10),
                batching_window_seconds: number(
                    &event_properties["MaximumBatchingWindowInSeconds"],
                )
                .unwrap_or(0),
                maximum_concurrency: number(
                    &event_properties["ScalingConfig"]["MaximumConcurrency"],
                ),
                report_batch_item_failures: array(&event_properties["FunctionResponseTypes"])
                    .iter()
                    .any(|t| t == "ReportBatchItemFailures"),
            }),
            "HttpApi" => http_routes.push(RouteSpec {
                method: event_properties["Method"]
                    .as_str()
                    .unwrap_or("ANY")
                    .to_uppercase(),
                path: event_properties["Path"].as_str().unwrap_or("/").to_owned(),
                // SAM's own authorizers are not read; this template declares its routes.
                authorization: RouteAuthorization::None,
            }),
            _ => {}
        }
    }

    // Its policies: SAM's `Policies`, or those of the role it names (`Role: !GetAtt R.Arn`).
    let role_id = getatt_target(&properties["Role"]);
    let role = role_id.as_deref().and_then(|name| resources.get(name));
    let inline = role
        .map(|role| array(&role["Properties"]["Policies"]))
        .unwrap_or_default();
    // ... and the role's policies of their own (`AWS::IAM::RolePolicy` naming it).
    let attached = object(resources)
        .filter(|(_, r)| r["Type"] == "AWS::IAM::RolePolicy")
        .filter(|(_, r)| ref_target(&r["Properties"]["RoleName"]) == role_id)
        .map(|(_, r)| &r["Properties"]);
    let role_documents = inline
        .iter()
        .chain(attached)
        .map(|policy| &policy["PolicyDocument"]);
    let mut ses_identities = Vec::new();
    for document in array(&properties["Policies"]).iter().chain(role_documents) {
        for statement in array(&document["Statement"]) {
            let actions = match &statement["Action"] {
                Value::Array(list) => list.clone(),
                single => vec![single.clone()],
            };
            if actions.iter().any(|a| a == "ses:SendEmail") {
                ses_identities.push(statement["Resource"].clone());
            }
        }
    }

    Ok(FunctionSpec {
        logical_id: id.to_owned(),
        binary,
        timeout_seconds,
        environment,
        sqs_sources,
        http_routes,
        ses_identities,
    })
}

fn object(value: &Value) -> impl Iterator<Item = (&String, &Value)> {
    value.as_object().into_iter().flatten()
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The strings of a list of strings (anything else is skipped).
fn strings(value: &Value) -> Vec<String> {
    array(value)
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn number(value: &Value) -> Option<u32> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

pub(crate) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `X` of `{"Ref": "X"}`.
fn ref_target(value: &Value) -> Option<String> {
    value["Ref"].as_str().map(str::to_owned)
}

/// `X` of `{"Fn::GetAtt": "X.Arn"}` or `{"Fn::GetAtt": ["X", "Arn"]}`.
fn getatt_target(value: &Value) -> Option<String> {
    match &value["Fn::GetAtt"] {
        Value::String(path) => path.split('.').next().map(str::to_owned),
        Value::Array(parts) => parts.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project_template() -> Topology {
        let path = crate::emulator::project_root().join("template.yaml");
        Topology::load(&path, &BTreeMap::new()).unwrap()
    }

    #[test]
    fn the_project_template_describes_the_saga_on_the_fan_out() {
        let topology = project_template();
        assert_eq!(topology.topics, ["OrderEventsTopic"]);
        // The shape, whatever the number of consumers: each has a subscription, a queue and a
        // DLQ, a function and a table; besides them the API's function, SNS's delivery DLQ and
        // the idempotency table.
        let consumers = topology.consumers().count();
        assert!(consumers >= 5, "{consumers} consumers");
        assert_eq!(topology.subscriptions.len(), consumers);
        assert_eq!(topology.queues.len(), 2 * consumers + 1);
        assert_eq!(topology.tables.len(), consumers + 1);
        assert_eq!(topology.functions.len(), consumers + 1);
        let api = topology.function("OrderApiFunction").unwrap();
        let mut keys: Vec<String> = api.http_routes.iter().map(RouteSpec::key).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "GET /orders",
                "GET /orders/{orderId}",
                "POST /orders",
                "POST /orders/{orderId}/cancel"
            ]
        );
        for route in &api.http_routes {
            assert!(
                matches!(route.authorization, RouteAuthorization::Jwt { .. }),
                "{}",
                route.key()
            );
        }
        for subscription in &topology.subscriptions {
            assert!(
                subscription.raw_message_delivery,
                "{}",
                subscription.logical_id
            );
        }
        assert_eq!(
            topology.event_types_of("ShippingQueue"),
            ["OrderConfirmed", "OrderCancelled"]
        );
    }

    #[test]
    fn an_sqs_source_carries_its_batching_and_scaling_with_parameters_resolved() {
        let text = "Parameters:\n  Window: {Type: Number, Default: 1}\nResources:\n  Q:\n    Type: AWS::SQS::Queue\n  F:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildProperties: {Binary: f}}\n    Properties:\n      Events:\n        E:\n          Type: SQS\n          Properties:\n            Queue: !GetAtt Q.Arn\n            BatchSize: 7\n            MaximumBatchingWindowInSeconds: !Ref Window\n            ScalingConfig: {MaximumConcurrency: 4}\n";
        let source = |parameters: &[(&str, &str)]| {
            let parameters = parameters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            Topology::parse(text, &parameters).unwrap().functions[0].sqs_sources[0].clone()
        };
        let default = source(&[]);
        assert_eq!(
            (
                default.queue.as_str(),
                default.batch_size,
                default.batching_window_seconds
            ),
            ("Q", 7, 1)
        );
        assert_eq!(default.maximum_concurrency, Some(4));
        assert_eq!(source(&[("Window", "0")]).batching_window_seconds, 0);
    }

    #[test]
    fn the_project_template_is_all_standard_or_all_fifo_by_its_ordering() {
        let path = crate::emulator::project_root().join("template.yaml");
        for (ordering, fifo) in [("standard", false), ("fifo", true)] {
            let parameters = BTreeMap::from([("Ordering".to_owned(), ordering.to_owned())]);
            let topology = Topology::load(&path, &parameters).unwrap();
            let fifo_topics = if fifo {
                topology.topics.clone()
            } else {
                vec![]
            };
            assert_eq!(topology.fifo_topics, fifo_topics, "{ordering}");
            for queue in &topology.queues {
                assert_eq!(queue.fifo, fifo, "{ordering}: {}", queue.logical_id);
            }
            for function in topology.consumers() {
                let window = function.sqs_sources[0].batching_window_seconds;
                // Lambda gathers no batching window from a FIFO queue.
                assert_eq!(window == 0, fifo, "{ordering}: {}", function.logical_id);
            }
        }
    }

    #[test]
    fn intrinsics_resolve_in_short_and_long_form() {
        let topology = Topology::parse(
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildProperties: {Binary: f}}\n    Properties:\n      Environment:\n        Variables:\n          A: !Ref T\n          B: {\"Fn::GetAtt\": [Q, Arn]}\n          C: !Sub \"${AWS::Region}/${Q.Arn}/${P}\"\n",
            &BTreeMap::new(),
        )
        .unwrap();
        let mut resolver = Resolver {
            region: "eu-west-1".into(),
            account_id: "123".into(),
            ..Resolver::default()
        };
        resolver.parameters.insert("P".into(), "p".into());
        resolver.resources.insert(
            "T".into(),
            Physical {
                name: "t".into(),
                reference: "arn:t".into(),
                arn: "arn:t".into(),
            },
        );
        resolver.resources.insert(
            "Q".into(),
            Physical {
                name: "q".into(),
                reference: "http://q".into(),
                arn: "arn:q".into(),
            },
        );
        let env = &topology.functions[0].environment;
        assert_eq!(resolver.string(&env["A"]).unwrap(), "arn:t");
        assert_eq!(resolver.string(&env["B"]).unwrap(), "arn:q");
        assert_eq!(resolver.string(&env["C"]).unwrap(), "eu-west-1/arn:q/p");
    }

    #[test]
    fn conditions_decide_which_resources_exist() {
        let text = "Parameters:\n  Auth: {Type: String, Default: NONE}\nConditions:\n  UseJwt: !Equals [!Ref Auth, JWT]\n  NoJwt: !Not [!Condition UseJwt]\nResources:\n  Jwt:\n    Type: AWS::SNS::Topic\n    Condition: UseJwt\n  Plain:\n    Type: AWS::SNS::Topic\n    Condition: NoJwt\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      VisibilityTimeout: !If [UseJwt, 60, 30]\n      MessageRetentionPeriod: !If [UseJwt, 10, !Ref AWS::NoValue]\n";
        let defaults = Topology::parse(text, &BTreeMap::new()).unwrap();
        assert_eq!(defaults.topics, ["Plain"]);
        assert_eq!(defaults.queues[0].visibility_timeout, Some(30));
        assert_eq!(defaults.queues[0].message_retention, None);
        let jwt = BTreeMap::from([("Auth".to_owned(), "JWT".to_owned())]);
        let with_jwt = Topology::parse(text, &jwt).unwrap();
        assert_eq!(with_jwt.topics, ["Jwt"]);
        assert_eq!(with_jwt.queues[0].visibility_timeout, Some(60));
        assert_eq!(with_jwt.queues[0].message_retention, Some(10));
    }

    #[test]
    fn the_project_template_authorizes_with_its_own_user_pool_unless_told_otherwise() {
        let path = crate::emulator::project_root().join("template.yaml");
        let load = |parameters: &[(&str, &str)]| {
            let parameters = parameters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            Topology::load(&path, &parameters).unwrap()
        };
        let route = |topology: &Topology| {
            topology.function("OrderApiFunction").unwrap().http_routes[0]
                .authorization
                .clone()
        };

        let default = load(&[]);
        assert_eq!(default.user_pools[0].logical_id, "CustomerUserPool");
        assert_eq!(default.user_pools[0].username_attributes, ["email"]);
        assert_eq!(default.user_pool_clients[0].user_pool, "CustomerUserPool");
        assert_eq!(
            route(&default),
            RouteAuthorization::Jwt {
                issuer: serde_json::json!({"Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${CustomerUserPool}"}),
                audience: serde_json::json!([{"Ref": "CustomerUserPoolClient"}]),
            }
        );

        let external = load(&[("JwtIssuer", "https://issuer.example")]);
        assert!(external.user_pools.is_empty());
        assert_eq!(
            route(&external),
            RouteAuthorization::Jwt {
                issuer: serde_json::json!({"Ref": "JwtIssuer"}),
                audience: serde_json::json!({"Ref": "JwtAudience"}),
            }
        );

        let open = load(&[("ApiAuthorization", "NONE")]);
        assert!(open.user_pools.is_empty() && open.user_pool_clients.is_empty());
        assert_eq!(route(&open), RouteAuthorization::None);
    }

    #[test]
    fn an_intrinsic_the_runtime_cannot_evaluate_is_refused_naming_the_resource() {
        let text = "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Join [\"-\", [a, b]]\n";
        let error = Topology::parse(text, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("resource Q") && error.contains("Fn::Join"),
            "{error}"
        );
        let resolver = Resolver::default();
        let unresolved = resolver.resolve(&serde_json::json!({"Fn::Select": [0, ["a"]]}));
        assert!(unresolved.is_err());
    }
}
