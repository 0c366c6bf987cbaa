//! The rules `template.yaml` must keep, checked on the template itself: what an experienced AWS
//! engineer would look for before signing off a deployment of this fan-out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{json, Value};

/// The template as CloudFormation reads it once `AWS::LanguageExtensions` ran: the consumers'
/// loop expanded, so each rule holds for every consumer.
fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml");
    local_runtime::template::expanded(&path).expect("template.yaml parses and expands")
}

fn resources(template: &Value) -> impl Iterator<Item = (&String, &Value)> {
    template["Resources"].as_object().into_iter().flatten()
}

fn of_type<'a>(
    template: &'a Value,
    kind: &'a str,
) -> impl Iterator<Item = (&'a String, &'a Value)> {
    resources(template).filter(move |(_, r)| r["Type"] == kind)
}

fn list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        single => vec![single.clone()],
    }
}

/// What `value` can be: both branches of an `Fn::If` (the `standard` and `fifo` orderings),
/// leaving out `AWS::NoValue`; any other value as itself.
fn branches(value: &Value) -> Vec<Value> {
    match value["Fn::If"].as_array() {
        Some(parts) if parts.len() == 3 => parts[1..]
            .iter()
            .filter(|v| v["Ref"] != "AWS::NoValue")
            .cloned()
            .collect(),
        _ => vec![value.clone()],
    }
}

/// `X` of `{"Fn::GetAtt": "X.Arn"}` / `{"Fn::GetAtt": ["X", "Arn"]}`.
fn getatt(value: &Value) -> Option<String> {
    match &value["Fn::GetAtt"] {
        Value::String(path) => path.split('.').next().map(str::to_owned),
        Value::Array(parts) => parts.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}

fn number(template: &Value, value: &Value) -> u64 {
    if let Some(name) = value["Ref"].as_str() {
        return number(template, &template["Parameters"][name]["Default"]);
    }
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

/// The largest value `value` can take: a parameter's `MaxValue` (its default without one).
fn largest(template: &Value, value: &Value) -> u64 {
    match value["Ref"].as_str() {
        Some(name) if template["Parameters"][name].get("MaxValue").is_some() => {
            number(template, &template["Parameters"][name]["MaxValue"])
        }
        _ => number(template, value),
    }
}

/// (function id, event properties) of every SQS event source.
fn sqs_sources(template: &Value) -> Vec<(String, Value)> {
    let mut sources = Vec::new();
    for (id, function) in of_type(template, "AWS::Serverless::Function") {
        for (_, event) in function["Properties"]["Events"]
            .as_object()
            .into_iter()
            .flatten()
        {
            if event["Type"] == "SQS" {
                sources.push((id.clone(), event["Properties"].clone()));
            }
        }
    }
    sources
}

/// Logical ids of the resources an alarm watches with `namespace`/`metric`, by the dimension
/// `dimension` (`QueueName: !GetAtt Q.QueueName`, `FunctionName: !Ref F`).
fn alarmed(template: &Value, namespace: &str, metric: &str, dimension: &str) -> BTreeSet<String> {
    of_type(template, "AWS::CloudWatch::Alarm")
        .filter(|(_, alarm)| {
            alarm["Properties"]["Namespace"] == namespace
                && alarm["Properties"]["MetricName"] == metric
        })
        .flat_map(|(_, alarm)| list(&alarm["Properties"]["Dimensions"]))
        .filter(|d| d["Name"] == dimension)
        .filter_map(|d| {
            getatt(&d["Value"]).or_else(|| d["Value"]["Ref"].as_str().map(str::to_owned))
        })
        .collect()
}

fn function_timeout(template: &Value, function: &str) -> u64 {
    let own = &template["Resources"][function]["Properties"]["Timeout"];
    if own.is_null() {
        number(template, &template["Globals"]["Function"]["Timeout"])
    } else {
        number(template, own)
    }
}

/// Every service's spec (src/services.rs).
fn services() -> impl Iterator<Item = lambda_kit::spec::ServiceSpec> {
    let specs: Vec<_> = orderflow::services::registry().specs().copied().collect();
    specs.into_iter()
}

#[test]
fn every_consumer_queue_has_a_dlq_with_an_alarm_and_a_backlog_alarm() {
    let template = template();
    let dlq_alarms = alarmed(
        &template,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
    );
    let age_alarms = alarmed(
        &template,
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        "QueueName",
    );
    let sources = sqs_sources(&template);
    assert_eq!(
        sources.len(),
        services().filter(|s| s.is_consumer()).count(),
        "one SQS source per consumer spec: add the consumer to the template's consumer loop"
    );
    for (function, source) in sources {
        let queue = getatt(&source["Queue"]).expect("the source names a queue of this template");
        let redrive = &template["Resources"][&queue]["Properties"]["RedrivePolicy"];
        let dlq = getatt(&redrive["deadLetterTargetArn"])
            .unwrap_or_else(|| panic!("{queue} (of {function}) has no dead-letter queue"));
        assert!(
            dlq_alarms.contains(&dlq),
            "no alarm on the messages in {dlq}"
        );
        assert!(
            age_alarms.contains(&queue),
            "no backlog-age alarm on {queue}"
        );
    }
    // The subscriptions' own dead-letter queue is watched as well.
    for (id, subscription) in of_type(&template, "AWS::SNS::Subscription") {
        let dlq = getatt(&subscription["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
            .unwrap_or_else(|| panic!("{id} has no dead-letter queue for failed deliveries"));
        assert!(dlq_alarms.contains(&dlq), "no alarm on {dlq}");
    }
}

#[test]
fn visibility_timeout_covers_six_timeouts_plus_the_batching_window() {
    let template = template();
    for (function, source) in sqs_sources(&template) {
        let queue = getatt(&source["Queue"]).unwrap();
        let visibility = number(
            &template,
            &template["Resources"][&queue]["Properties"]["VisibilityTimeout"],
        );
        let window = source.get("MaximumBatchingWindowInSeconds").map_or(0, |w| {
            branches(w)
                .iter()
                .map(|w| largest(&template, w))
                .max()
                .unwrap_or(0)
        });
        let timeout = function_timeout(&template, &function);
        assert!(
            visibility >= 6 * timeout + window,
            "{queue}: visibility {visibility} s < 6 x {timeout} s + {window} s of {function}"
        );
    }
}

#[test]
fn every_sqs_source_reports_batch_item_failures_and_is_bounded() {
    let template = template();
    for (function, source) in sqs_sources(&template) {
        assert!(
            list(&source["FunctionResponseTypes"]).contains(&json!("ReportBatchItemFailures")),
            "{function}: a failed record would fail and redeliver its whole batch"
        );
        let concurrency = number(&template, &source["ScalingConfig"]["MaximumConcurrency"]);
        assert!(
            (2..=1000).contains(&concurrency),
            "{function}: MaximumConcurrency {concurrency}"
        );
        assert!(
            source.get("MaximumBatchingWindowInSeconds").is_some(),
            "{function}: no batching window"
        );
    }
}

#[test]
fn every_function_is_watched_traced_and_keeps_logs_for_a_bounded_time() {
    let template = template();
    let errors = alarmed(&template, "AWS/Lambda", "Errors", "FunctionName");
    let throttles = alarmed(&template, "AWS/Lambda", "Throttles", "FunctionName");
    assert_eq!(template["Globals"]["Function"]["Tracing"], "Active");
    let functions: Vec<_> = of_type(&template, "AWS::Serverless::Function").collect();
    assert_eq!(
        functions.len(),
        services().count(),
        "template.yaml deploys a function per spec of src/services.rs"
    );
    for (id, function) in functions {
        assert!(errors.contains(id), "no Errors alarm on {id}");
        assert!(throttles.contains(id), "no Throttles alarm on {id}");
        let group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} logs to no log group of this template"));
        let retention = &template["Resources"][group]["Properties"]["RetentionInDays"];
        assert!(!retention.is_null(), "{group} keeps logs forever");
    }
}

#[test]
fn everything_is_encrypted_at_rest() {
    let template = template();
    let mut checked = 0;
    for (id, queue) in of_type(&template, "AWS::SQS::Queue") {
        let p = &queue["Properties"];
        assert!(
            p["SqsManagedSseEnabled"] == true || !p["KmsMasterKeyId"].is_null(),
            "queue {id} is not encrypted"
        );
        checked += 1;
    }
    for (id, topic) in of_type(&template, "AWS::SNS::Topic") {
        assert!(
            !topic["Properties"]["KmsMasterKeyId"].is_null(),
            "topic {id} is not encrypted"
        );
        checked += 1;
    }
    for (id, table) in of_type(&template, "AWS::DynamoDB::Table") {
        assert_eq!(
            table["Properties"]["SSESpecification"]["SSEEnabled"], true,
            "table {id} does not use a KMS key"
        );
        checked += 1;
    }
    // Each consumer's queue and DLQ and SNS's delivery DLQ; the order events and alarm topics;
    // each service's table and the idempotency table: every one of them was checked.
    let consumers = services().filter(|s| s.is_consumer()).count();
    let tables = services().filter(|s| s.table_variable.is_some()).count();
    assert_eq!(
        checked,
        (2 * consumers + 1) + 2 + (tables + 1),
        "queues, topics and tables"
    );
}

/// Whether `document` denies every request made without TLS.
fn denies_insecure_transport(document: &Value) -> bool {
    list(&document["Statement"]).iter().any(|s| {
        s["Effect"] == "Deny"
            && s["Principal"] == "*"
            && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    })
}

#[test]
fn queues_and_topics_refuse_plain_http_and_only_the_topic_sends() {
    let template = template();
    let mut covered = BTreeSet::new();
    for (id, policy) in of_type(&template, "AWS::SQS::QueuePolicy") {
        let document = &policy["Properties"]["PolicyDocument"];
        assert!(
            denies_insecure_transport(document),
            "{id} allows plain HTTP"
        );
        for statement in list(&document["Statement"]) {
            if statement["Effect"] != "Allow" {
                continue;
            }
            assert_eq!(
                statement["Principal"],
                json!({"Service": "sns.amazonaws.com"}),
                "{id}"
            );
            assert_eq!(statement["Action"], "sqs:SendMessage", "{id}");
            assert_eq!(
                statement["Condition"]["ArnEquals"]["aws:SourceArn"],
                json!({"Ref": "OrderEventsTopic"}),
                "{id}: someone other than the order events topic may send"
            );
        }
        for queue in list(&policy["Properties"]["Queues"]) {
            covered.insert(queue["Ref"].as_str().unwrap_or_default().to_owned());
        }
    }
    for (id, _) in of_type(&template, "AWS::SQS::Queue") {
        assert!(covered.contains(id), "queue {id} has no policy");
    }
    let mut topics_covered = BTreeSet::new();
    for (id, policy) in of_type(&template, "AWS::SNS::TopicPolicy") {
        assert!(
            denies_insecure_transport(&policy["Properties"]["PolicyDocument"]),
            "{id} allows plain HTTP"
        );
        for topic in list(&policy["Properties"]["Topics"]) {
            topics_covered.insert(topic["Ref"].as_str().unwrap_or_default().to_owned());
        }
    }
    for (id, _) in of_type(&template, "AWS::SNS::Topic") {
        assert!(topics_covered.contains(id), "topic {id} has no policy");
    }
}

/// The statements of the role `function` runs with (`Role: !GetAtt R.Arn`).
fn role_statements(template: &Value, function: &Value) -> Vec<Value> {
    let role = getatt(&function["Properties"]["Role"]).unwrap_or_default();
    // Its inline policies, and the policies of their own that name it.
    let attached = of_type(template, "AWS::IAM::RolePolicy")
        .filter(|(_, p)| target(&p["Properties"]["RoleName"]).as_deref() == Some(role.as_str()))
        .map(|(_, p)| p["Properties"].clone());
    list(&template["Resources"][&role]["Properties"]["Policies"])
        .into_iter()
        .chain(attached)
        .flat_map(|policy| list(&policy["PolicyDocument"]["Statement"]))
        .collect()
}

/// The logical id a `Ref` or `Fn::GetAtt` names.
fn target(value: &Value) -> Option<String> {
    getatt(value).or_else(|| value["Ref"].as_str().map(str::to_owned))
}

/// The resource a policy statement names: [`target`], or for an index of a table
/// (`!Sub ${Table.Arn}/index/Name`), the table.
fn policy_target(value: &Value) -> Option<String> {
    target(value).or_else(|| {
        let text = value["Fn::Sub"].as_str()?;
        let (table, index) = text.strip_prefix("${")?.split_once(".Arn}/index/")?;
        (!index.is_empty() && index.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            .then(|| table.to_owned())
    })
}

/// Checked on the template as deployed (SAM's expansion), where the generated roles are: each
/// function has a role of its own with no managed policy; no wildcard action; `*` only for
/// actions that have no resource types; queue, table, topic and log actions only on the
/// function's own queue (sending only to that queue's DLQ), the tables and topic its
/// environment names, and its own log group.
#[test]
fn the_deployed_roles_grant_each_function_only_its_own_resources() {
    let expanded = expanded_template();
    let known = iam_actions();
    let functions: Vec<_> = of_type(&expanded, "AWS::Lambda::Function").collect();
    assert_eq!(functions.len(), services().count());
    let roles: BTreeSet<&String> = of_type(&expanded, "AWS::IAM::Role")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(roles.len(), functions.len(), "one role per function");
    let mut granted = 0;
    for (id, function) in functions {
        let p = &function["Properties"];
        let role_id = getatt(&p["Role"]).unwrap_or_else(|| panic!("{id} has no role here"));
        let role = &expanded["Resources"][&role_id]["Properties"];
        assert!(
            role["ManagedPolicyArns"].is_null(),
            "{role_id}: managed policies {}",
            role["ManagedPolicyArns"]
        );
        let queues: BTreeSet<String> = of_type(&expanded, "AWS::Lambda::EventSourceMapping")
            .filter(|(_, m)| target(&m["Properties"]["FunctionName"]).as_ref() == Some(id))
            .filter_map(|(_, m)| target(&m["Properties"]["EventSourceArn"]))
            .collect();
        let named: BTreeSet<String> = p["Environment"]["Variables"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, v)| target(v))
            .collect();
        // Its queue's DLQ, where the kit sends a permanent failure (sqs:SendMessage only).
        let dead_letter_queues: BTreeSet<String> = queues
            .iter()
            .filter_map(|q| {
                getatt(
                    &expanded["Resources"][q]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"],
                )
            })
            .collect();
        let log_group = target(&p["LoggingConfig"]["LogGroup"]);
        let own = |action: &str, service: &str, resource: &str| match service {
            "sqs" if action == "sqs:SendMessage" => dead_letter_queues.contains(resource),
            "sqs" => queues.contains(resource),
            "dynamodb" | "sns" => named.contains(resource),
            "logs" => log_group.as_deref() == Some(resource),
            _ => false,
        };
        let statements = role_statements(&expanded, function);
        for statement in &statements {
            let resources = list(&statement["Resource"]);
            for action in list(&statement["Action"]) {
                let action = action.as_str().unwrap_or_default();
                assert!(!action.contains('*'), "{role_id}: wildcard action {action}");
                let has_resources = known.get(&action.to_ascii_lowercase()).copied();
                let service = action.split(':').next().unwrap_or_default();
                for resource in &resources {
                    if resource == "*" {
                        assert_eq!(
                            has_resources,
                            Some(false),
                            "{role_id}: {action} on * where a narrower resource exists"
                        );
                        continue;
                    }
                    if ["sqs", "dynamodb", "sns", "logs"].contains(&service) {
                        let named = policy_target(resource)
                            .unwrap_or_else(|| panic!("{role_id}: {action} on {resource}"));
                        assert!(
                            own(action, service, &named),
                            "{role_id}: {action} on {named}, not a resource of {id}"
                        );
                    }
                    granted += 1;
                }
            }
        }
        for queue in &queues {
            assert!(
                statements.iter().any(|s| {
                    list(&s["Action"]).contains(&json!("sqs:ReceiveMessage"))
                        && list(&s["Resource"])
                            .iter()
                            .any(|r| target(r).as_ref() == Some(queue))
                }),
                "{role_id} cannot receive from {queue}, which feeds {id}"
            );
        }
    }
    assert!(granted >= 30, "only {granted} grants checked");
}

/// The event type a message of the document is a version of: `OrderPlacedV2` is `OrderPlaced`.
fn event_type_of(message: &str) -> String {
    let digits = message.trim_end_matches(|c: char| c.is_ascii_digit());
    match digits.strip_suffix('V') {
        Some(event_type) if digits.len() < message.len() => event_type.to_owned(),
        _ => message.to_owned(),
    }
}

/// `events/asyncapi.yaml`: which service sends and which receives each event type.
struct EventDocument {
    /// (service, event type) of every send operation.
    sends: BTreeSet<(String, String)>,
    /// (service, event type) of every receive operation.
    receives: BTreeSet<(String, String)>,
    messages: BTreeSet<String>,
}

impl EventDocument {
    fn load() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("events/asyncapi.yaml");
        let text = std::fs::read_to_string(path).expect("events/asyncapi.yaml is readable");
        let document =
            local_runtime::template::document(&text).expect("the AsyncAPI document parses");
        let mut sends = BTreeSet::new();
        let mut receives = BTreeSet::new();
        for (id, operation) in document["operations"].as_object().into_iter().flatten() {
            let service = operation["x-service"]
                .as_str()
                .unwrap_or_else(|| panic!("{id} names no x-service"));
            for message in list(&operation["messages"]) {
                let reference = message["$ref"].as_str().unwrap_or_default();
                let event_type = event_type_of(reference.rsplit('/').next().unwrap_or_default());
                let pair = (service.to_owned(), event_type);
                match operation["action"].as_str() {
                    Some("send") => sends.insert(pair),
                    Some("receive") => receives.insert(pair),
                    other => panic!("{id}: action {other:?}"),
                };
            }
        }
        let messages = document["components"]["messages"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, _)| event_type_of(name))
            .collect();
        Self {
            sends,
            receives,
            messages,
        }
    }

    fn types_of(pairs: &BTreeSet<(String, String)>, service: &str) -> BTreeSet<String> {
        pairs
            .iter()
            .filter(|(s, _)| s == service)
            .map(|(_, t)| t.clone())
            .collect()
    }
}

/// The binary of the function fed by `queue` (a logical id).
fn binary_reading(template: &Value, queue: &str) -> String {
    let (function, _) = sqs_sources(template)
        .into_iter()
        .find(|(_, source)| getatt(&source["Queue"]).as_deref() == Some(queue))
        .unwrap_or_else(|| panic!("no function reads {queue}"));
    template["Resources"][&function]["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_event_document_describes_exactly_the_catalogue() {
    let document = EventDocument::load();
    let catalogue: BTreeSet<String> = order_events::EVENT_TYPES
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(document.messages, catalogue);
    let sent: BTreeSet<String> = document.sends.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(sent, catalogue, "every type has a producer");
    for event_type in &catalogue {
        let producers = document
            .sends
            .iter()
            .filter(|(_, t)| t == event_type)
            .count();
        assert_eq!(producers, 1, "{event_type} has one producer");
    }
}

#[test]
fn filter_policies_route_each_event_type_to_the_services_that_read_it() {
    let template = template();
    let document = EventDocument::load();
    let catalogue: BTreeSet<&str> = order_events::EVENT_TYPES.iter().copied().collect();
    let mut consumed = BTreeSet::new();
    for (id, subscription) in of_type(&template, "AWS::SNS::Subscription") {
        let p = &subscription["Properties"];
        assert_eq!(p["FilterPolicyScope"], "MessageAttributes", "{id}");
        let types: BTreeSet<String> = list(&p["FilterPolicy"][order_events::attribute::EVENT_TYPE])
            .iter()
            .map(|t| t.as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(!types.is_empty(), "{id} filters on no event type");
        for event_type in &types {
            assert!(
                catalogue.contains(event_type.as_str()),
                "{id} wants {event_type}, which the catalogue does not define"
            );
        }
        let queue = getatt(&p["Endpoint"]).unwrap_or_default();
        let service = binary_reading(&template, &queue);
        assert_eq!(
            types,
            EventDocument::types_of(&document.receives, &service),
            "{id}: the filter policy of {service}'s queue differs from what events/asyncapi.yaml says it receives"
        );
        consumed.extend(types);
    }
    let published: BTreeSet<String> = document.sends.iter().map(|(_, t)| t.clone()).collect();
    for event_type in &consumed {
        assert!(
            published.contains(event_type),
            "a consumer waits for {event_type}, which nothing publishes"
        );
    }
    for event_type in &published {
        assert!(
            consumed.contains(event_type),
            "{event_type} is published but no queue receives it (document it as terminal or route it)"
        );
    }
}

#[test]
fn every_publisher_may_publish_to_the_topic_and_knows_it() {
    let template = template();
    let document = EventDocument::load();
    let publishers: BTreeSet<&str> = document.sends.iter().map(|(s, _)| s.as_str()).collect();
    for (id, function) in of_type(&template, "AWS::Serverless::Function") {
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_default();
        let publishes = publishers.contains(binary);
        // The topic is in every function's environment (Globals); only a publisher may use it.
        let knows = [
            &function["Properties"]["Environment"]["Variables"]["TOPIC_ARN"],
            &template["Globals"]["Function"]["Environment"]["Variables"]["TOPIC_ARN"],
        ]
        .iter()
        .any(|v| v["Ref"] == "OrderEventsTopic");
        assert!(knows || !publishes, "{id} publishes but has no TOPIC_ARN");
        let may_publish = role_statements(&template, function)
            .iter()
            .any(|statement| {
                list(&statement["Action"]).contains(&json!("sns:Publish"))
                    && statement["Resource"]["Ref"] == "OrderEventsTopic"
            });
        assert_eq!(
            may_publish, publishes,
            "{id}: sns:Publish on the topic if and only if it publishes"
        );
    }
}

#[test]
fn the_api_is_throttled_and_its_authorization_and_identity_follow_a_parameter() {
    let template = template();
    let stage = &template["Resources"]["OrdersApiStage"]["Properties"];
    assert!(!stage["DefaultRouteSettings"]["ThrottlingRateLimit"].is_null());
    assert!(!stage["DefaultRouteSettings"]["ThrottlingBurstLimit"].is_null());
    assert!(!stage["AccessLogSettings"]["DestinationArn"].is_null());
    let authorization = &template["Parameters"]["ApiAuthorization"];
    assert_eq!(
        authorization["AllowedValues"],
        json!(["JWT", "AWS_IAM", "NONE"])
    );
    assert_eq!(
        authorization["Default"], "JWT",
        "customers sign in unless told otherwise"
    );
    // The order API takes the customer from the token exactly when the routes check one.
    let environment = &template["Resources"]["OrderApiFunction"]["Properties"]["Environment"];
    assert_eq!(
        environment["Variables"]["CUSTOMER_IDENTITY"],
        json!({"Fn::If": ["UseJwtAuthorizer", "token", "body"]})
    );
    for (id, route) in of_type(&template, "AWS::ApiGatewayV2::Route") {
        assert!(
            route["Properties"]["AuthorizationType"]["Fn::If"].is_array(),
            "{id}: authorization is fixed, not the ApiAuthorization parameter's"
        );
    }
}

#[test]
fn the_openapi_document_describes_exactly_the_routes_of_the_template_and_the_function() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("events/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("events/openapi.yaml is readable");
    let document = local_runtime::template::document(&text).expect("the OpenAPI document parses");
    // Preflights (`options`) are API Gateway's own answers with CORS, not routes.
    const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head"];
    let documented: BTreeSet<String> = document["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| !item[**m].is_null())
                .map(move |m| format!("{} {path}", m.to_ascii_uppercase()))
        })
        .collect();
    let template = template();
    let routed: BTreeSet<String> = of_type(&template, "AWS::ApiGatewayV2::Route")
        .map(|(_, route)| {
            route["Properties"]["RouteKey"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let served: BTreeSet<String> = order_api::ROUTES.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        documented, routed,
        "the document lists the template's routes"
    );
    assert_eq!(served, routed, "the function serves the template's routes");
}

#[test]
fn the_tables_of_orders_money_stock_and_shipments_are_kept_and_every_record_table_recoverable() {
    let template = template();
    assert!(
        list(&template["Transform"]).contains(&json!("AWS::LanguageExtensions")),
        "DeletionPolicy may follow a parameter only with AWS::LanguageExtensions"
    );
    assert_eq!(template["Parameters"]["KeepData"]["Default"], "true");
    let keep = json!({"Fn::If": ["KeepsData", "Retain", "Delete"]});
    for id in [
        "InventoryTable",
        "PaymentTable",
        "ShippingTable",
        "OrdersTable",
    ] {
        let table = &template["Resources"][id];
        assert_eq!(table["DeletionPolicy"], keep, "{id}");
        assert_eq!(table["UpdateReplacePolicy"], keep, "{id}");
        assert_eq!(
            table["Properties"]["DeletionProtectionEnabled"],
            json!({"Fn::If": ["KeepsData", true, false]}),
            "{id}"
        );
    }
    // Every table whose items do not expire (all but the idempotency entries) can be restored.
    let mut recoverable = 0;
    for (id, table) in of_type(&template, "AWS::DynamoDB::Table") {
        if !table["Properties"]["TimeToLiveSpecification"].is_null() {
            continue;
        }
        assert_eq!(
            table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
            true,
            "{id} has no point-in-time recovery"
        );
        recoverable += 1;
    }
    // The services' own tables (and nothing else without expiry).
    assert_eq!(
        recoverable,
        services().filter(|s| s.table_variable.is_some()).count(),
        "one recoverable table per service that owns one: give the service's <Name>Table \
         point-in-time recovery"
    );
}

/// The retention of a queue in seconds (SQS's default: 4 days).
fn retention(template: &Value, queue: &Value) -> u64 {
    match &queue["Properties"]["MessageRetentionPeriod"] {
        Value::Null => 345_600,
        value => number(template, value),
    }
}

#[test]
fn every_dead_letter_queue_outlives_its_source_and_takes_only_its_failures() {
    let template = template();
    let mut dead_letter_queues = BTreeSet::new();
    for (id, queue) in of_type(&template, "AWS::SQS::Queue") {
        let Some(dlq_id) = getatt(&queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        else {
            continue;
        };
        let dlq = &template["Resources"][&dlq_id];
        // A message's age counts from its first send, in the DLQ too.
        assert!(
            retention(&template, dlq) > retention(&template, queue),
            "{dlq_id} keeps messages no longer than {id}"
        );
        let allow = &dlq["Properties"]["RedriveAllowPolicy"];
        assert_eq!(allow["redrivePermission"], "byQueue", "{dlq_id}");
        let sources = list(&allow["sourceQueueArns"]);
        assert_eq!(sources.len(), 1, "{dlq_id} names one source");
        // Under each ordering, the ARN it names is the queue's name under that ordering.
        let names = branches(&queue["Properties"]["QueueName"]);
        let arns = branches(&sources[0]);
        assert_eq!(
            names.len(),
            arns.len(),
            "{dlq_id}: a source for each name of {id}"
        );
        for (name, arn) in names.iter().zip(&arns) {
            let name = name["Fn::Sub"]
                .as_str()
                .unwrap_or_else(|| panic!("{id} has no QueueName"));
            let arn = arn["Fn::Sub"].as_str().unwrap_or_default();
            assert!(
                arn.starts_with("arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:")
                    && arn.ends_with(&format!(":{name}")),
                "{dlq_id} names {arn}, not {id}"
            );
        }
        dead_letter_queues.insert(dlq_id);
    }
    assert_eq!(
        dead_letter_queues.len(),
        services().filter(|s| s.is_consumer()).count(),
        "one DLQ per consumer"
    );
    // The queue SNS sends undeliverable events to is no queue's DLQ.
    for (id, queue) in of_type(&template, "AWS::SQS::Queue") {
        let is_source = !queue["Properties"]["RedrivePolicy"].is_null();
        if !is_source && !dead_letter_queues.contains(id) {
            assert_eq!(
                queue["Properties"]["RedriveAllowPolicy"]["redrivePermission"], "denyAll",
                "{id}"
            );
        }
    }
}

#[test]
fn customers_come_from_the_stacks_user_pool_or_an_external_issuer_with_its_audience() {
    let template = template();
    // The JWT authorizer trusts the stack's own user pool unless an issuer is given.
    assert_eq!(
        template["Conditions"]["CreatesUserPool"],
        json!({"Fn::And": [{"Condition": "UseJwtAuthorizer"}, {"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}]})
    );
    let jwt = &template["Resources"]["OrdersJwtAuthorizer"]["Properties"]["JwtConfiguration"];
    assert_eq!(jwt["Issuer"]["Fn::If"][0], "CreatesUserPool");
    assert_eq!(jwt["Issuer"]["Fn::If"][2], json!({"Ref": "JwtIssuer"}));
    assert_eq!(
        jwt["Audience"]["Fn::If"],
        json!(["CreatesUserPool", [{"Ref": "CustomerUserPoolClient"}], {"Ref": "JwtAudience"}])
    );
    for id in ["CustomerUserPool", "CustomerUserPoolClient"] {
        assert_eq!(
            template["Resources"][id]["Condition"], "CreatesUserPool",
            "{id}"
        );
    }
    // An external issuer needs its audience, and JWT authorization; the pool's client is the
    // only audience of the stack's own tokens.
    let rules: Vec<(Value, String)> = template["Rules"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, rule)| {
            let asserts: Vec<Value> = list(&rule["Assertions"])
                .iter()
                .map(|a| a["Assert"].clone())
                .collect();
            (
                rule["RuleCondition"].clone(),
                serde_json::to_string(&asserts).unwrap_or_default(),
            )
        })
        .collect();
    let external = json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}]});
    let asserted = |condition: &Value, parameter: &str| {
        rules.iter().any(|(c, asserts)| {
            c == condition && asserts.contains(&format!("{{\"Ref\":\"{parameter}\"}}"))
        })
    };
    assert!(
        asserted(&external, "JwtAudience"),
        "no rule asserts JwtAudience for an external issuer"
    );
    assert!(
        asserted(&external, "ApiAuthorization"),
        "no rule ties JwtIssuer to JWT authorization"
    );
    let own = json!({"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]});
    assert!(
        asserted(&own, "JwtAudience"),
        "no rule refuses an audience for the stack's own pool"
    );
    assert!(template["Parameters"]["JwtIssuer"]["AllowedPattern"]
        .as_str()
        .is_some_and(|p| p.contains("https://")));
}

/// The IAM catalogue cfn-lint ships (pinned in infra/requirements.txt): every action as
/// `service:action` in lower case, and whether it has resource types (when not, a policy can
/// only name `*`).
fn iam_actions() -> BTreeMap<String, bool> {
    let output = python()
        .args([
            "-c",
            "import cfnlint, os; print(os.path.join(os.path.dirname(cfnlint.__file__), \
             'data', 'AdditionalSpecs', 'Policies.json'))",
        ])
        .output()
        .expect("python runs");
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let catalogue: Value = serde_json::from_str(&text).expect("the IAM catalogue parses");
    catalogue
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(service, entry)| {
            entry["Actions"]
                .as_object()
                .into_iter()
                .flatten()
                .map(move |(action, details)| {
                    let has_resources = list(&details["Resources"]).iter().any(Value::is_string);
                    (format!("{service}:{action}"), has_resources)
                })
        })
        .collect()
}

/// The Python of the pinned tools (moto, cfn-lint, the SAM translator), installed on first use.
fn python() -> std::process::Command {
    let python = local_runtime::emulator::install().expect("the pinned tools are installed");
    std::process::Command::new(python)
}

/// `template.yaml` as CloudFormation deploys it: expanded by the SAM translator
/// (`infra/sam/translate.py`), with the roles, policies and event source mappings SAM generates.
fn expanded_template() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // SAM's transform runs on what the language extensions made of the template, as on AWS.
    let extended = std::env::temp_dir().join(format!("template-{}.json", std::process::id()));
    std::fs::write(&extended, template().to_string()).expect("a temporary file");
    let output = python()
        .arg(root.join("infra/sam/translate.py"))
        .arg(&extended)
        .output()
        .expect("python runs");
    let _ = std::fs::remove_file(&extended);
    assert!(
        output.status.success(),
        "the SAM translator refused the template: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the expanded template is JSON")
}

/// Every `Action` of every policy statement anywhere in `value` (inline, resource and key
/// policies alike).
fn statement_actions(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if map.contains_key("Effect") {
                for action in list(&map["Action"]) {
                    into.push(action.as_str().unwrap_or_default().to_owned());
                }
            }
            map.values().for_each(|v| statement_actions(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| statement_actions(v, into)),
        _ => {}
    }
}

#[test]
fn every_policy_names_only_real_iam_actions() {
    let template = template();
    let known = iam_actions();
    assert!(
        known.contains_key("sqs:sendmessage"),
        "the catalogue is read"
    );
    let mut actions = Vec::new();
    statement_actions(&template["Resources"], &mut actions);
    assert!(actions.len() >= 20, "found only {} actions", actions.len());
    for action in actions {
        let lower = action.to_ascii_lowercase();
        let exists = match lower.split_once('*') {
            // `kms:GenerateDataKey*`, `kms:*`: a prefix of at least one action.
            Some((prefix, _)) => known.keys().any(|k| k.starts_with(prefix)),
            None => known.contains_key(&lower),
        };
        assert!(exists, "{action} is not an IAM action");
    }
}

#[test]
fn the_access_log_names_the_caller_and_why_an_authorizer_refused() {
    let template = template();
    let format = template["Resources"]["OrdersApiStage"]["Properties"]["AccessLogSettings"]
        ["Format"]
        .as_str()
        .expect("the stage has an access log format");
    let line: Value = serde_json::from_str(format).expect("each access log line is JSON");
    assert_eq!(line["caller"], "$context.authorizer.claims.sub");
    assert_eq!(line["iamCaller"], "$context.identity.userArn");
    assert_eq!(line["authorizerError"], "$context.authorizer.error");
    assert_eq!(line["status"], "$context.status");
}

/// A value as the dashboard's `!Sub` body names it: `${X}` for `!Ref X`, `${X.Attr}` for
/// `!GetAtt X.Attr`, the text itself otherwise.
fn as_substituted(value: &Value) -> String {
    if let Some(name) = value["Ref"].as_str() {
        return format!("${{{name}}}");
    }
    match &value["Fn::GetAtt"] {
        Value::String(path) => return format!("${{{path}}}"),
        Value::Array(parts) => {
            let parts: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
            return format!("${{{}}}", parts.join("."));
        }
        _ => {}
    }
    value.as_str().unwrap_or_default().to_owned()
}

/// A metric as a dashboard row or an alarm names it: namespace, name, dimensions (sorted).
type Metric = (String, String, BTreeSet<(String, String)>);

/// Every metric the dashboards' widgets draw, with the search expressions: each dashboard's body
/// is its `!Sub` text, the stack's references left as written and its own variables (a
/// consumer's `Service`) put in.
fn dashboard(template: &Value) -> (BTreeSet<Metric>, Vec<String>) {
    let dashboards: Vec<_> = of_type(template, "AWS::CloudWatch::Dashboard").collect();
    assert!(!dashboards.is_empty(), "the template has dashboards");
    let mut metrics = BTreeSet::new();
    let mut expressions = Vec::new();
    for (id, dashboard) in dashboards {
        let sub = &dashboard["Properties"]["DashboardBody"]["Fn::Sub"];
        let (text, variables) = match sub {
            Value::Array(parts) => (&parts[0], parts[1].clone()),
            text => (text, json!({})),
        };
        let mut body = text
            .as_str()
            .unwrap_or_else(|| panic!("the body of {id} is a !Sub text"))
            .to_owned();
        for (name, value) in variables.as_object().into_iter().flatten() {
            let value = value
                .as_str()
                .unwrap_or_else(|| panic!("{id}: variable {name} is no literal"));
            body = body.replace(&format!("${{{name}}}"), value);
        }
        let parsed: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("the body of {id}: {e}"));
        for widget in parsed["widgets"].as_array().expect("widgets") {
            for row in list(&widget["properties"]["metrics"]) {
                let row = row.as_array().expect("a metric row is a list");
                if let Some(expression) = row.first().and_then(|o| o["expression"].as_str()) {
                    expressions.push(expression.to_owned());
                    continue;
                }
                let texts: Vec<String> = row
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                let dimensions = texts[2..]
                    .chunks(2)
                    .map(|pair| (pair[0].clone(), pair[1].clone()))
                    .collect();
                metrics.insert((texts[0].clone(), texts[1].clone(), dimensions));
            }
        }
    }
    (metrics, expressions)
}

#[test]
fn the_dashboard_shows_every_queue_dlq_function_service_and_alarmed_metric() {
    let template = template();
    let (metrics, expressions) = dashboard(&template);
    let drawn = |namespace: &str, name: &str, dimension: &str, value: &str| {
        metrics.iter().any(|(ns, metric, dimensions)| {
            ns == namespace
                && metric == name
                && dimensions.contains(&(dimension.to_owned(), value.to_owned()))
        })
    };
    for (queue, _) in of_type(&template, "AWS::SQS::Queue") {
        let name = format!("${{{queue}.QueueName}}");
        assert!(
            drawn(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "QueueName",
                &name
            ),
            "queue {queue} is not on the dashboard: add its ApproximateNumberOfMessagesVisible \
             (QueueName {name}) to a widget of the Dashboard in template.yaml"
        );
    }
    for (queue, _) in sqs_sources(&template)
        .iter()
        .filter_map(|(_, source)| getatt(&source["Queue"]).map(|q| (q, ())))
    {
        let name = format!("${{{queue}.QueueName}}");
        for metric in [
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateAgeOfOldestMessage",
        ] {
            assert!(
                drawn("AWS/SQS", metric, "QueueName", &name),
                "the dashboard lacks {metric} of {queue}: add it to the queue's widgets"
            );
        }
    }
    for (function, properties) in of_type(&template, "AWS::Serverless::Function") {
        let name = format!("${{{function}}}");
        for metric in ["Errors", "Throttles"] {
            assert!(
                drawn("AWS/Lambda", metric, "FunctionName", &name),
                "function {function} is not on the dashboard: add its {metric} (FunctionName \
                 {name}) to the functions' widget"
            );
        }
        let binary = properties["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_default();
        let is_consumer = properties["Properties"]["Events"]
            .as_object()
            .into_iter()
            .flatten()
            .any(|(_, e)| e["Type"] == "SQS");
        if is_consumer {
            let namespace = "${AWS::StackName}";
            for metric in ["RecordsReceived", "RecordsFailed"] {
                assert!(
                    drawn(namespace, metric, "service", binary),
                    "the dashboard lacks {metric} of service {binary}: add a row for it"
                );
            }
            assert!(
                expressions.iter().any(|e| e.contains("EventAge")
                    && e.contains(&format!("service=\"{binary}\""))),
                "the dashboard lacks the lag (EventAge) of service {binary}: add its SEARCH \
                 expression to the service's lag widget"
            );
        }
    }
    for (alarm, properties) in of_type(&template, "AWS::CloudWatch::Alarm") {
        let properties = &properties["Properties"];
        let dimensions: BTreeSet<(String, String)> = list(&properties["Dimensions"])
            .iter()
            .map(|d| (as_substituted(&d["Name"]), as_substituted(&d["Value"])))
            .collect();
        let metric = (
            as_substituted(&properties["Namespace"]),
            as_substituted(&properties["MetricName"]),
            dimensions,
        );
        assert!(
            metrics.contains(&metric),
            "alarm {alarm} watches {metric:?}, which no dashboard widget draws: add it"
        );
    }
}

#[test]
fn the_topic_traces_actively_and_x_ray_accepts_its_segments() {
    let template = template();
    let topics: Vec<_> = of_type(&template, "AWS::SNS::Topic")
        .filter(|(id, _)| id.as_str() == "OrderEventsTopic")
        .collect();
    assert_eq!(topics[0].1["Properties"]["TracingConfig"], "Active");
    let policies: Vec<_> = of_type(&template, "AWS::XRay::ResourcePolicy").collect();
    assert_eq!(policies.len(), 1, "one X-Ray resource policy for the topic");
    let document = policies[0].1["Properties"]["PolicyDocument"]["Fn::Sub"]
        .as_str()
        .expect("a !Sub policy document");
    let document: Value = serde_json::from_str(document).expect("the policy is JSON");
    let statement = &document["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "sns.amazonaws.com");
    assert_eq!(
        statement["Condition"]["ArnLike"]["aws:SourceArn"], "${OrderEventsTopic}",
        "only this topic's segments are accepted"
    );
    assert!(list(&statement["Action"]).contains(&json!("xray:PutTraceSegments")));
}

/// `OrderApiFunction` -> `order-api`: what the Makefile builds for a logical id.
fn kebab_binary(logical_id: &str) -> String {
    let stem = logical_id.strip_suffix("Function").unwrap_or(logical_id);
    let mut out = String::new();
    for (i, c) in stem.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The Makefile finds a function's crate from its logical id alone (`sam build` tells it no
/// more), and SAM packages each consumer from its own directory.
#[test]
fn each_function_s_binary_is_its_logical_id_and_its_crate_is_under_functions() {
    let template = template();
    let mut binaries = BTreeSet::new();
    for (id, function) in of_type(&template, "AWS::Serverless::Function") {
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            binary,
            kebab_binary(id),
            "{id}: the Makefile builds it as {}; name the function after its binary",
            kebab_binary(id)
        );
        assert_eq!(
            function["Properties"]["CodeUri"],
            format!("functions/{binary}"),
            "{id}: CodeUri is its crate (Mappings.Consumers.<Name>.CodeUri for a consumer)"
        );
        binaries.insert(binary.to_owned());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crates: BTreeSet<String> = std::fs::read_dir(root.join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        crates, binaries,
        "every crate under functions/ is a function of template.yaml (the Makefile builds them all)"
    );
}

/// The consumers are named in the loops over them and in Mappings.Consumers: the lists agree,
/// and only consumers publish through the Publishers loop.
#[test]
fn the_consumer_loops_and_their_mapping_name_the_same_consumers() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml is readable");
    let raw = local_runtime::template::document(&text).expect("template.yaml parses");
    let mapped: BTreeSet<String> = raw["Mappings"]["Consumers"]
        .as_object()
        .expect("Mappings.Consumers")
        .keys()
        .cloned()
        .collect();
    let names = |section: &str, loop_name: &str| -> BTreeSet<String> {
        list(&raw[section][format!("Fn::ForEach::{loop_name}")][1])
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    for (section, loop_name) in [("Resources", "Consumers"), ("Outputs", "ConsumerQueues")] {
        assert_eq!(
            names(section, loop_name),
            mapped,
            "{section}: Fn::ForEach::{loop_name} and Mappings.Consumers name different consumers: \
             add the consumer to both"
        );
    }
    let publishers = names("Resources", "Publishers");
    assert!(
        publishers.is_subset(&mapped),
        "Fn::ForEach::Publishers names {:?}, which are not consumers",
        publishers.difference(&mapped).collect::<Vec<_>>()
    );
}
