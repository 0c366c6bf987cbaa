//! Reads the SAM template: the one description of the topology, for AWS and for the local
//! runtime alike.
//!
//! Only what the local runtime needs is interpreted: topics, queues and their redrive policies,
//! subscriptions, queue policies, tables, functions with their environment and SQS event
//! sources, and HTTP routes (SAM `HttpApi` events or `AWS::ApiGatewayV2::Route`s integrated
//! with a function). Resources with a `Condition` are AWS-only extras (the alarm topic, the JWT
//! authorizer) and are left out. Intrinsic functions (`Ref`, `Fn::GetAtt`, `Fn::Sub`, short or long
//! form) are kept as JSON and resolved against the provisioned resources by [`Resolver`].

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
    Yaml(#[from] serde_yaml::Error),
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
}

/// An SQS event source of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsSource {
    pub queue: String,
    pub batch_size: u32,
    pub report_batch_item_failures: bool,
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
    /// (method, path) of HTTP API routes.
    pub http_routes: Vec<(String, String)>,
    /// `ses:SendEmail` resources its policies allow, unresolved.
    pub ses_identities: Vec<Value>,
}

/// Everything the local runtime builds from the template.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    /// Parameter defaults.
    pub parameters: BTreeMap<String, String>,
    pub topics: Vec<String>,
    pub queues: Vec<QueueSpec>,
    pub subscriptions: Vec<SubscriptionSpec>,
    pub queue_policies: Vec<QueuePolicySpec>,
    pub tables: Vec<TableSpec>,
    pub functions: Vec<FunctionSpec>,
}

impl Topology {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let template = document(text)?;
        let mut topology = Topology::default();

        for (name, parameter) in object(&template["Parameters"]) {
            if let Some(default) = scalar(&parameter["Default"]) {
                topology.parameters.insert(name.clone(), default);
            }
        }
        let globals = &template["Globals"]["Function"];
        let resources = &template["Resources"];
        for (id, resource) in object(resources) {
            if resource.get("Condition").is_some() {
                continue;
            }
            let properties = &resource["Properties"];
            match resource["Type"].as_str().unwrap_or_default() {
                "AWS::SNS::Topic" => topology.topics.push(id.clone()),
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
                "AWS::Serverless::Function" => {
                    topology.functions.push(function(id, resource, globals)?)
                }
                _ => {}
            }
        }
        for (method, path, function) in gateway_routes(resources) {
            if let Some(spec) = topology
                .functions
                .iter_mut()
                .find(|f| f.logical_id == function)
            {
                spec.http_routes.push((method, path));
            }
        }
        Ok(topology)
    }

    pub fn function(&self, logical_id: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.logical_id == logical_id)
    }
}

/// A template as JSON, short-form tags (`!Ref X`) turned into their long form.
pub fn document(text: &str) -> Result<Value, TemplateError> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(text)?;
    Ok(to_json(yaml))
}

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

/// (method, path, function) of every `AWS::ApiGatewayV2::Route` whose target is an
/// integration with a function (`IntegrationUri: !GetAtt F.Arn`).
fn gateway_routes(resources: &Value) -> Vec<(String, String, String)> {
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
        if let Some(function) =
            getatt_target(&resources[integration]["Properties"]["IntegrationUri"])
        {
            routes.push((method.to_uppercase(), path.to_owned(), function));
        }
    }
    routes
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
    }
}

fn function(id: &str, resource: &Value, globals: &Value) -> Result<FunctionSpec, TemplateError> {
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
                report_batch_item_failures: array(&event_properties["FunctionResponseTypes"])
                    .iter()
                    .any(|t| t == "ReportBatchItemFailures"),
            }),
            "HttpApi" => http_routes.push((
                event_properties["Method"]
                    .as_str()
                    .unwrap_or("ANY")
                    .to_uppercase(),
                event_properties["Path"].as_str().unwrap_or("/").to_owned(),
            )),
            _ => {}
        }
    }

    let mut ses_identities = Vec::new();
    for policy in array(&properties["Policies"]) {
        for statement in array(&policy["Statement"]) {
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

/// YAML to JSON, turning CloudFormation short-form tags (`!Ref X`) into their long form
/// (`{"Ref": "X"}`, `{"Fn::GetAtt": ...}`).
fn to_json(value: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (yaml_key(k), to_json(v)))
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let key = if name == "Ref" {
                "Ref".to_owned()
            } else {
                format!("Fn::{name}")
            };
            Value::Object(Map::from_iter([(key, to_json(tagged.value))]))
        }
    }
}

fn yaml_key(key: serde_yaml::Value) -> String {
    match key {
        serde_yaml::Value::String(s) => s,
        other => serde_yaml::to_string(&other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

fn object(value: &Value) -> impl Iterator<Item = (&String, &Value)> {
    value.as_object().into_iter().flatten()
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn number(value: &Value) -> Option<u32> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

fn scalar(value: &Value) -> Option<String> {
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

/// What a provisioned resource answers to `Ref` and `Fn::GetAtt X.Arn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Physical {
    /// The physical name (queue name, table name, topic name).
    pub name: String,
    /// What `Ref` returns: a queue's URL, a topic's ARN, a table's name.
    pub reference: String,
    pub arn: String,
}

/// Resolves intrinsic functions against provisioned resources and parameter values.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    pub resources: BTreeMap<String, Physical>,
    pub parameters: BTreeMap<String, String>,
    pub region: String,
    pub account_id: String,
}

impl Resolver {
    /// Resolves `value` to a string (numbers and booleans as their text).
    pub fn string(&self, value: &Value) -> Result<String, TemplateError> {
        match self.resolve(value)? {
            Value::String(s) => Ok(s),
            other => scalar(&other).ok_or_else(|| TemplateError::Unresolved(other.to_string())),
        }
    }

    /// Resolves every intrinsic function inside `value`.
    pub fn resolve(&self, value: &Value) -> Result<Value, TemplateError> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, argument) = map
                    .iter()
                    .next()
                    .into_iter()
                    .next()
                    .ok_or_else(|| TemplateError::Unresolved(value.to_string()))?;
                match key.as_str() {
                    "Ref" => self
                        .reference(argument.as_str().unwrap_or_default())
                        .map(Value::String),
                    "Fn::GetAtt" => {
                        let path = match argument {
                            Value::Array(parts) => parts
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join("."),
                            other => other.as_str().unwrap_or_default().to_owned(),
                        };
                        self.attribute(&path).map(Value::String)
                    }
                    "Fn::Sub" => self.substitute(argument).map(Value::String),
                    _ => Ok(Value::Object(self.resolve_map(map)?)),
                }
            }
            Value::Object(map) => Ok(Value::Object(self.resolve_map(map)?)),
            Value::Array(items) => items
                .iter()
                .map(|item| self.resolve(item))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            other => Ok(other.clone()),
        }
    }

    fn resolve_map(&self, map: &Map<String, Value>) -> Result<Map<String, Value>, TemplateError> {
        map.iter()
            .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
            .collect()
    }

    fn reference(&self, name: &str) -> Result<String, TemplateError> {
        let pseudo = match name {
            "AWS::Region" => Some(self.region.clone()),
            "AWS::AccountId" => Some(self.account_id.clone()),
            "AWS::Partition" => Some("aws".to_owned()),
            "AWS::URLSuffix" => Some("amazonaws.com".to_owned()),
            "AWS::StackName" => Some("local".to_owned()),
            _ => None,
        };
        pseudo
            .or_else(|| self.parameters.get(name).cloned())
            .or_else(|| self.resources.get(name).map(|r| r.reference.clone()))
            .ok_or_else(|| TemplateError::Unresolved(format!("Ref {name}")))
    }

    /// `Fn::GetAtt resource.attribute` (`Arn`, `QueueUrl`, `QueueName`/`TopicName`/`Name`).
    pub fn attribute_of(&self, resource: &str, attribute: &str) -> Result<String, TemplateError> {
        self.attribute(&format!("{resource}.{attribute}"))
    }

    fn attribute(&self, path: &str) -> Result<String, TemplateError> {
        let (resource, attribute) = path.split_once('.').unwrap_or((path, ""));
        let physical = self
            .resources
            .get(resource)
            .ok_or_else(|| TemplateError::Unresolved(format!("GetAtt {path}")))?;
        match attribute {
            "Arn" => Ok(physical.arn.clone()),
            "QueueName" | "TopicName" | "Name" => Ok(physical.name.clone()),
            "QueueUrl" => Ok(physical.reference.clone()),
            _ => Err(TemplateError::Unresolved(format!("GetAtt {path}"))),
        }
    }

    fn substitute(&self, argument: &Value) -> Result<String, TemplateError> {
        let (text, variables) = match argument {
            Value::Array(parts) => (
                parts.first().and_then(Value::as_str).unwrap_or_default(),
                parts.get(1).and_then(Value::as_object),
            ),
            other => (other.as_str().unwrap_or_default(), None),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| TemplateError::Unresolved(format!("Sub {text}")))?;
            let name = &after[..end];
            let value = match variables.and_then(|v| v.get(name)) {
                Some(value) => self.string(value)?,
                None if name.contains('.') && !name.starts_with("AWS::") => self.attribute(name)?,
                None => self.reference(name)?,
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project_template() -> Topology {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml");
        Topology::load(&path).unwrap()
    }

    #[test]
    fn the_project_template_describes_the_fan_out() {
        let topology = project_template();
        assert_eq!(topology.topics, ["OrderEventsTopic"]);
        assert_eq!(topology.queues.len(), 9);
        assert_eq!(topology.subscriptions.len(), 4);
        assert_eq!(topology.tables.len(), 5);
        assert_eq!(topology.functions.len(), 5);
        let api = topology.function("OrderApiFunction").unwrap();
        assert_eq!(api.http_routes, [("POST".to_owned(), "/orders".to_owned())]);
        for subscription in &topology.subscriptions {
            assert!(
                subscription.raw_message_delivery,
                "{}",
                subscription.logical_id
            );
            assert_eq!(
                subscription.filter_policy,
                Some(serde_json::json!({"eventType": ["OrderPlaced"]}))
            );
        }
    }

    #[test]
    fn intrinsics_resolve_in_short_and_long_form() {
        let topology = Topology::parse(
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildProperties: {Binary: f}}\n    Properties:\n      Environment:\n        Variables:\n          A: !Ref T\n          B: {\"Fn::GetAtt\": [Q, Arn]}\n          C: !Sub \"${AWS::Region}/${Q.Arn}/${P}\"\n",
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
}
