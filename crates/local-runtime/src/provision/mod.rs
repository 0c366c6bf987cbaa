//! Creates the template's resources on an AWS endpoint (the emulator) with the real SDK
//! clients: tables, topics, queues with their redrive policies, subscriptions with raw delivery
//! and filter policies, queue policies, the customers' user pool (`provision/cognito.rs`), and
//! the SES identities the functions send from.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::template::{Physical, Resolver, TemplateError, Topology};

mod cognito;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{resource}: {message}")]
    Aws { resource: String, message: String },
}

/// An AWS call's error, with its source chain, as the resource's provisioning error.
pub(crate) fn aws_error(resource: &str, error: impl std::error::Error) -> ProvisionError {
    ProvisionError::Aws {
        resource: resource.to_owned(),
        message: aws_sdk_sqs::error::DisplayErrorContext(error).to_string(),
    }
}

/// How to provision.
#[derive(Debug, Clone, Default)]
pub struct ProvisionOptions {
    /// Prefix of every physical name, so several deployments can share one emulator.
    pub prefix: String,
    /// Parameter values that replace the template's defaults.
    pub parameter_overrides: BTreeMap<String, String>,
    /// Replaces every queue's visibility timeout (seconds). Local use only: it makes retries
    /// and dead-letter moves happen in seconds instead of minutes.
    pub visibility_timeout_override: Option<u32>,
}

/// What was created: physical resources by logical id, a resolver over them, and the template
/// they came from.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub resolver: Resolver,
    pub topology: Topology,
}

impl Deployment {
    /// The physical name (what `Ref` gives) of the resource that the function built from
    /// `binary` names in its environment variable `variable` (`SERVICE_TABLE: !Ref PaymentTable`): how
    /// operator tools find a service's table without naming it.
    pub fn referenced_by(&self, binary: &str, variable: &str) -> Option<String> {
        let function = self
            .topology
            .functions
            .iter()
            .find(|f| f.binary == binary)?;
        let logical_id = function.environment.get(variable)?.get("Ref")?.as_str()?;
        self.physical(logical_id).map(|p| p.reference.clone())
    }

    pub fn physical(&self, logical_id: &str) -> Option<&Physical> {
        self.resolver.resources.get(logical_id)
    }

    /// A queue's URL, a topic's ARN, a table's name: what `Ref` gives.
    pub fn reference(&self, logical_id: &str) -> String {
        self.physical(logical_id)
            .map(|p| p.reference.clone())
            .unwrap_or_default()
    }
}

/// A resolver that knows the region and the parameter defaults, and no resources yet.
fn empty_resolver(topology: &Topology, sdk: &SdkConfig) -> Resolver {
    Resolver {
        region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
        parameters: topology.parameters.clone(),
        ..Resolver::default()
    }
}

/// Provisions `topology` on the endpoint `sdk` points at.
pub async fn provision(
    topology: &Topology,
    sdk: &SdkConfig,
    options: &ProvisionOptions,
) -> Result<Deployment, ProvisionError> {
    let mut resolver = empty_resolver(topology, sdk);
    resolver
        .parameters
        .extend(options.parameter_overrides.clone());
    let name = |logical_id: &str| format!("{}{logical_id}", options.prefix);

    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    for table in &topology.tables {
        let physical = create_table(&dynamodb, table, &name(&table.logical_id)).await?;
        resolver
            .resources
            .insert(table.logical_id.clone(), physical);
    }

    cognito::create(topology, sdk, &options.prefix, &mut resolver).await?;

    let sns = aws_sdk_sns::Client::new(sdk);
    for topic in &topology.topics {
        // A FIFO topic's name ends in `.fifo`; events carry their own deduplication ids.
        let fifo = topology.fifo_topics.contains(topic);
        let topic_name = name(topic) + if fifo { ".fifo" } else { "" };
        let mut request = sns.create_topic().name(&topic_name);
        if fifo {
            request = request
                .attributes("FifoTopic", "true")
                .attributes("ContentBasedDeduplication", "false");
        }
        let arn = request
            .send()
            .await
            .map_err(|e| aws_error(topic, e))?
            .topic_arn
            .unwrap_or_default();
        resolver.account_id = arn.split(':').nth(4).unwrap_or_default().to_owned();
        resolver.resources.insert(
            topic.clone(),
            Physical {
                name: topic_name,
                reference: arn.clone(),
                arn,
            },
        );
    }

    // Dead-letter queues first: a redrive policy names its target's ARN.
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut queues: Vec<_> = topology.queues.iter().collect();
    queues.sort_by_key(|q| q.redrive.is_some());
    for queue in queues {
        let queue_name = queue_name(&options.prefix, queue);
        let mut request = sqs.create_queue().queue_name(&queue_name);
        if queue.fifo {
            request = request.attributes(QueueAttributeName::FifoQueue, "true");
        }
        if let Some(seconds) = options
            .visibility_timeout_override
            .or(queue.visibility_timeout)
        {
            request =
                request.attributes(QueueAttributeName::VisibilityTimeout, seconds.to_string());
        }
        if let Some(seconds) = queue.message_retention {
            request = request.attributes(
                QueueAttributeName::MessageRetentionPeriod,
                seconds.to_string(),
            );
        }
        if let Some((target, max_receive_count)) = &queue.redrive {
            let policy = serde_json::json!({
                "deadLetterTargetArn": resolver.attribute_of(target, "Arn")?,
                "maxReceiveCount": resolver.string(max_receive_count)?.parse::<u32>().unwrap_or(5),
            });
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = request
            .send()
            .await
            .map_err(|e| aws_error(&queue.logical_id, e))?
            .queue_url
            .unwrap_or_default();
        let physical = queue_physical(&sqs, &queue.logical_id, queue_name, url).await?;
        resolver
            .resources
            .insert(queue.logical_id.clone(), physical);
    }

    for subscription in &topology.subscriptions {
        let mut request = sns
            .subscribe()
            .topic_arn(resolver.attribute_of(&subscription.topic, "Arn")?)
            .protocol("sqs")
            .endpoint(resolver.attribute_of(&subscription.queue, "Arn")?)
            .return_subscription_arn(true);
        if subscription.raw_message_delivery {
            request = request.attributes("RawMessageDelivery", "true");
        }
        if let Some(policy) = &subscription.filter_policy {
            request = request.attributes("FilterPolicy", resolver.resolve(policy)?.to_string());
        }
        if let Some(scope) = &subscription.filter_policy_scope {
            request = request.attributes("FilterPolicyScope", scope);
        }
        if let Some(queue) = &subscription.dead_letter_queue {
            let policy = serde_json::json!({
                "deadLetterTargetArn": resolver.attribute_of(queue, "Arn")?,
            });
            request = request.attributes("RedrivePolicy", policy.to_string());
        }
        request
            .send()
            .await
            .map_err(|e| aws_error(&subscription.logical_id, e))?;
    }

    for policy in &topology.queue_policies {
        let document = resolver.resolve(&policy.document)?.to_string();
        for queue in &policy.queues {
            sqs.set_queue_attributes()
                .queue_url(resolver.attribute_of(queue, "QueueUrl")?)
                .attributes(QueueAttributeName::Policy, &document)
                .send()
                .await
                .map_err(|e| aws_error(&policy.logical_id, e))?;
        }
    }

    let ses = aws_sdk_sesv2::Client::new(sdk);
    for function in &topology.functions {
        for resource in &function.ses_identities {
            let arn = resolver.string(resource)?;
            let identity = arn
                .rsplit_once("identity/")
                .map(|(_, id)| id)
                .unwrap_or(&arn);
            let created = ses
                .create_email_identity()
                .email_identity(identity)
                .send()
                .await;
            if let Err(e) = created {
                if !e
                    .as_service_error()
                    .is_some_and(|e| e.is_already_exists_exception())
                {
                    return Err(aws_error(&function.logical_id, e));
                }
            }
        }
    }

    Ok(Deployment {
        resolver,
        topology: topology.clone(),
    })
}

/// A queue's physical name: the prefix and its logical id (FIFO queues end in `.fifo`).
fn queue_name(prefix: &str, queue: &crate::template::QueueSpec) -> String {
    let suffix = if queue.fifo { ".fifo" } else { "" };
    format!("{prefix}{}{suffix}", queue.logical_id)
}

/// A queue as `Ref` and `GetAtt` see it: its name, URL, and ARN (asked of SQS).
async fn queue_physical(
    sqs: &aws_sdk_sqs::Client,
    logical_id: &str,
    name: String,
    url: String,
) -> Result<Physical, ProvisionError> {
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| aws_error(logical_id, e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_default();
    Ok(Physical {
        name,
        reference: url,
        arn,
    })
}

/// A key schema, (attribute name, `HASH` or `RANGE`) pairs, as `CreateTable` takes it: the
/// table's and each index's.
fn key_schema(
    pairs: &[(String, String)],
) -> Result<Vec<KeySchemaElement>, aws_sdk_dynamodb::error::BuildError> {
    pairs
        .iter()
        .map(|(attribute, kind)| {
            KeySchemaElement::builder()
                .attribute_name(attribute)
                .key_type(KeyType::from(kind.as_str()))
                .build()
        })
        .collect()
}

/// A table's global secondary index as `CreateTable` takes it.
fn global_index(
    index: &crate::template::IndexSpec,
) -> Result<GlobalSecondaryIndex, aws_sdk_dynamodb::error::BuildError> {
    GlobalSecondaryIndex::builder()
        .index_name(&index.name)
        .set_key_schema(Some(key_schema(&index.key_schema)?))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::from(index.projection.as_str()))
                .build(),
        )
        .build()
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table: &crate::template::TableSpec,
    table_name: &str,
) -> Result<Physical, ProvisionError> {
    let mut request = client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest);
    request = request.set_key_schema(Some(
        key_schema(&table.key_schema).map_err(|e| aws_error(&table.logical_id, e))?,
    ));
    for (attribute, kind) in &table.attributes {
        let definition = AttributeDefinition::builder()
            .attribute_name(attribute)
            .attribute_type(ScalarAttributeType::from(kind.as_str()))
            .build()
            .map_err(|e| aws_error(&table.logical_id, e))?;
        request = request.attribute_definitions(definition);
    }
    for index in &table.indexes {
        request = request.global_secondary_indexes(
            global_index(index).map_err(|e| aws_error(&table.logical_id, e))?,
        );
    }
    let description = match request.send().await {
        Ok(output) => output.table_description,
        // A persistent endpoint (LocalStack) may have it from an earlier run.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            client
                .describe_table()
                .table_name(table_name)
                .send()
                .await
                .map_err(|e| aws_error(&table.logical_id, e))?
                .table
        }
        Err(e) => return Err(aws_error(&table.logical_id, e)),
    };
    let arn = description.and_then(|d| d.table_arn).unwrap_or_default();
    if let Some(attribute) = &table.ttl_attribute {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attribute)
            .enabled(true)
            .build()
            .map_err(|e| aws_error(&table.logical_id, e))?;
        let enabled = client
            .update_time_to_live()
            .table_name(table_name)
            .time_to_live_specification(ttl)
            .send()
            .await;
        // On a table from an earlier run, TTL is already on: DynamoDB refuses to enable it twice.
        if let Err(e) = enabled {
            let already = client
                .describe_time_to_live()
                .table_name(table_name)
                .send()
                .await
                .ok()
                .and_then(|d| d.time_to_live_description)
                .and_then(|d| d.attribute_name)
                .is_some_and(|name| &name == attribute);
            if !already {
                return Err(aws_error(&table.logical_id, e));
            }
        }
    }
    Ok(Physical {
        name: table_name.to_owned(),
        reference: table_name.to_owned(),
        arn,
    })
}

/// Finds the resources an earlier [`provision`] with `prefix` created (for operator commands
/// run against a system that is already up).
pub async fn locate(
    topology: &Topology,
    sdk: &SdkConfig,
    prefix: &str,
) -> Result<Deployment, ProvisionError> {
    let mut resolver = empty_resolver(topology, sdk);
    for table in &topology.tables {
        let name = format!("{prefix}{}", table.logical_id);
        resolver.resources.insert(
            table.logical_id.clone(),
            Physical {
                name: name.clone(),
                reference: name,
                arn: String::new(),
            },
        );
    }
    let sqs = aws_sdk_sqs::Client::new(sdk);
    for queue in &topology.queues {
        let name = queue_name(prefix, queue);
        let url = sqs
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .map_err(|e| aws_error(&queue.logical_id, e))?
            .queue_url
            .unwrap_or_default();
        let physical = queue_physical(&sqs, &queue.logical_id, name, url).await?;
        resolver
            .resources
            .insert(queue.logical_id.clone(), physical);
    }
    cognito::locate(topology, sdk, prefix, &mut resolver).await?;
    Ok(Deployment {
        resolver,
        topology: topology.clone(),
    })
}
