//! Dead-letter queue tooling: what is in a consumer's DLQ, moving it back to the source queue
//! once the cause is fixed, and purging it.
//!
//! A message lands in a DLQ in one of two ways: at once, sent by the consumer, when it failed
//! permanently (a malformed body, an unsupported schema version: the reason travels with it as
//! its `failureReason` attribute); or after its queue received it `maxReceiveCount` times
//! without the consumer succeeding (a dependency that kept failing: the consumer logged why each
//! time). Fix the cause, then redrive: the consumers are
//! idempotent, so a message that was (partly) processed before does no harm.

use aws_config::SdkConfig;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

use local_runtime::provision::Deployment;
use local_runtime::template::Topology;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The source queue and the DLQ of a consumer (both logical ids), from the template: the queue
/// of the function's SQS event source, and that queue's redrive target.
pub fn queues_of(topology: &Topology, consumer: &str) -> Option<(String, String)> {
    let function = topology.functions.iter().find(|f| f.binary == consumer)?;
    let source = function.sqs_sources.first()?.queue.clone();
    let dlq = topology.dead_letter_queue_of(&source)?.to_owned();
    Some((source, dlq))
}

/// A message in a DLQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    pub event_id: Option<String>,
    pub order_id: Option<String>,
    pub receive_count: u32,
    /// Why it failed, when the consumer sent it here at once as a permanent failure (its
    /// `failureReason` attribute); `None` when the redrive policy moved it after
    /// `maxReceiveCount` receives (the consumer's log says why each receive failed).
    pub reason: Option<String>,
    /// The first 120 characters of the body.
    pub excerpt: String,
}

fn dead_letter(message: &aws_sdk_sqs::types::Message) -> DeadLetter {
    let body = message.body.clone().unwrap_or_default();
    let (event_id, order_id) = match order_events::parse_any(&body) {
        Ok(event) => (Some(event.id.to_string()), Some(event.subject)),
        // Unreadable as an event (that may be why it is here): take what the JSON offers.
        Err(_) => {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let field = |name: &str| json[name].as_str().map(str::to_owned);
            (field("id"), field("subject"))
        }
    };
    let receive_count = message
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse().ok())
        .unwrap_or_default();
    let reason = message
        .message_attributes
        .as_ref()
        .and_then(|a| a.get(lambda_kit::dead_letters::attribute::REASON))
        .and_then(|value| value.string_value.clone());
    DeadLetter {
        message_id: message.message_id.clone().unwrap_or_default(),
        event_id,
        order_id,
        receive_count,
        reason,
        excerpt: body.chars().take(120).collect(),
    }
}

/// Lists up to `max` messages of the queue at `url` without consuming them: they are hidden
/// while the listing runs (so none is listed twice) and made visible again at the end.
pub async fn list(sdk: &SdkConfig, url: &str, max: usize) -> Result<Vec<DeadLetter>, BoxError> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut listed = Vec::new();
    let mut receipts = Vec::new();
    while listed.len() < max {
        let messages = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await?
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in &messages {
            listed.push(dead_letter(message));
            receipts.extend(message.receipt_handle.clone());
        }
    }
    for receipt in receipts {
        sqs.change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await?;
    }
    listed.truncate(max);
    Ok(listed)
}

/// How a redrive went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redrive {
    /// SQS moves the messages itself (`StartMessageMoveTask`); this is the task handle.
    MoveTaskStarted(String),
    /// The endpoint has no message move tasks: this many messages were copied and deleted.
    Moved(usize),
}

/// Moves every message of the DLQ back to its source queue. Uses SQS `StartMessageMoveTask`
/// where the endpoint supports it; otherwise receives, sends to the source, then deletes from
/// the DLQ, one message at a time: interrupted anywhere, a message is at worst in both queues
/// (the consumers are idempotent), never in neither.
pub async fn redrive(
    sdk: &SdkConfig,
    deployment: &Deployment,
    source: &str,
    dlq: &str,
) -> Result<Redrive, BoxError> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let arn = |logical: &str| {
        deployment
            .physical(logical)
            .map(|p| p.arn.clone())
            .unwrap_or_default()
    };
    let task = sqs
        .start_message_move_task()
        .source_arn(arn(dlq))
        .destination_arn(arn(source))
        .send()
        .await;
    match task {
        Ok(output) => {
            return Ok(Redrive::MoveTaskStarted(
                output.task_handle.unwrap_or_default(),
            ))
        }
        Err(e) => tracing::info!(
            error = %aws_sdk_sqs::error::DisplayErrorContext(e),
            "no message move task here; moving messages one by one"
        ),
    }

    let (source_url, dlq_url) = (deployment.reference(source), deployment.reference(dlq));
    let mut moved = 0;
    loop {
        let messages = sqs
            .receive_message()
            .queue_url(&dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await?
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            return Ok(Redrive::Moved(moved));
        }
        // Into a FIFO queue: back into its message group, deduplicated by the dead letter's
        // own id (the original's deduplication id may still be remembered).
        let fifo = source_url.ends_with(".fifo");
        for message in messages {
            let group = message
                .attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId).cloned());
            sqs.send_message()
                .queue_url(&source_url)
                .message_body(message.body.unwrap_or_default())
                .set_message_attributes(message.message_attributes)
                .set_message_group_id(group.filter(|_| fifo))
                .set_message_deduplication_id(message.message_id.filter(|_| fifo))
                .send()
                .await?;
            sqs.delete_message()
                .queue_url(&dlq_url)
                .receipt_handle(message.receipt_handle.unwrap_or_default())
                .send()
                .await?;
            moved += 1;
        }
    }
}

/// Deletes every message of the queue at `url`. `confirmed` must be true: the messages are gone
/// for good.
pub async fn purge(sdk: &SdkConfig, url: &str, confirmed: bool) -> Result<(), BoxError> {
    if !confirmed {
        return Err("purging deletes every message for good; confirm with --yes".into());
    }
    aws_sdk_sqs::Client::new(sdk)
        .purge_queue()
        .queue_url(url)
        .send()
        .await?;
    Ok(())
}

/// Messages in the queue at `url`: visible plus in flight.
pub async fn depth(sdk: &SdkConfig, url: &str) -> Result<u64, BoxError> {
    let (visible, in_flight) = depths(&aws_sdk_sqs::Client::new(sdk), url).await?;
    Ok(visible + in_flight)
}

/// Messages in the queue at `url`, visible and in flight, as SQS's approximate counts say.
pub async fn depths(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<(u64, u64), BoxError> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    let number = |name: &QueueAttributeName| {
        attributes
            .get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((
        number(&QueueAttributeName::ApproximateNumberOfMessages),
        number(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}
