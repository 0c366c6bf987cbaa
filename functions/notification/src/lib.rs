//! Notification: e-mails the customer when the order is confirmed, when it is cancelled, with
//! the reason, and when their cancellation was refused, with the reason (Amazon SES v2). A
//! confirmation that arrives after the cancellation was sent is not sent.
//!
//! Idempotency: SES has no idempotency key. The notification item (`SERVICE_TABLE`, one per
//! order and kind of e-mail, with the SES message id and the event's key) is written once the
//! e-mail was sent, so a delivery that finds it does nothing. Before the send, the event is
//! claimed (an INPROGRESS idempotency entry), so a concurrent duplicate is retried later
//! instead of sending too; a failed send releases the claim. Only a crash after SES accepted the
//! e-mail and before the item was written can lead to a second e-mail, once the claim expires at
//! the invocation deadline: the inherent limit of an API without idempotency keys.

use std::future::Future;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lambda_kit::consumer::{ConfigError, EventHandler, FunctionEnv};
use lambda_kit::effect::{DynamoEffectStore, EffectStore};
use lambda_kit::idempotency::{Claim, DynamoIdempotency, Effect, IdempotencyStore};
use lambda_kit::spec::{ServiceSpec, SERVICE_TABLE};
use lambda_kit::RecordError;
use order_events::{
    format_amount, CancellationRefused, CloudEvent, EventData, OrderCancelled, OrderConfirmed,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What this service is: its name (the binary, the metrics' `service`, the scope of its
/// idempotency keys), its table, what it consumes and announces.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: "notification",
    table_variable: Some(SERVICE_TABLE),
    consumes: NotificationEvent::TYPES,
    publishes: &[],
};

/// Which e-mail about an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EmailKind {
    Confirmation,
    Cancellation,
    /// The customer's cancellation could not be done.
    CancellationRefused,
}

/// The key of an order's e-mail of one kind.
pub fn notification_id(order_id: Uuid, kind: EmailKind) -> String {
    let kind = match kind {
        EmailKind::Confirmation => "confirmation",
        EmailKind::Cancellation => "cancellation",
        EmailKind::CancellationRefused => "cancellation-refused",
    };
    format!("{order_id}#{kind}")
}

/// A sent e-mail as the notifications table holds it: one per order and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationItem {
    /// `<order id>#confirmation`, `<order id>#cancellation` or
    /// `<order id>#cancellation-refused`.
    pub notification_id: String,
    pub order_id: Uuid,
    pub kind: EmailKind,
    /// The mail service's message id.
    pub message_id: String,
    pub recipient: String,
    pub event_id: Uuid,
    pub sent_at: DateTime<Utc>,
}

impl NotificationItem {
    /// The table's partition key.
    pub const KEY: &'static str = "notificationId";
}

/// An e-mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// The order confirmation e-mail.
pub fn confirmation(order: &OrderConfirmed) -> Email {
    let mut body = format!("Thank you for your order {}.\n\n", order.order_id);
    for line in &order.lines {
        let amount = line.amount_minor().map_or_else(
            || "(amount out of range)".to_owned(),
            |amount| format_amount(amount, &order.currency),
        );
        body.push_str(&format!("  {} x {}  {amount}\n", line.quantity, line.sku));
    }
    body.push_str(&format!(
        "\nTotal: {}\n",
        format_amount(order.total_minor, &order.currency)
    ));
    Email {
        to: order.customer_email.clone(),
        subject: format!("Order {} confirmed", order.order_id),
        body,
    }
}

/// The cancellation e-mail, with the reason.
pub fn cancellation(order: &OrderCancelled) -> Email {
    let body = format!(
        "Your order {} was cancelled: {}.\n\n{}\n\nNothing was charged; any amount held or paid \
         ({}) is released or refunded.\n",
        order.order_id,
        order.reason.describe(),
        order.detail,
        format_amount(order.total_minor, &order.currency),
    );
    Email {
        to: order.customer_email.clone(),
        subject: format!("Order {} cancelled", order.order_id),
        body,
    }
}

/// The e-mail that tells the customer their cancellation could not be done, and why.
pub fn cancellation_refused(refusal: &CancellationRefused) -> Email {
    let body = format!(
        "We could not cancel your order {}: {} ({}).\n\nThe order goes ahead as placed; \
         you can return it once it arrives.\n",
        refusal.order_id,
        refusal.reason.describe(),
        refusal.detail,
    );
    Email {
        to: refusal.customer_email.clone(),
        subject: format!("Order {}: cancellation not possible", refusal.order_id),
        body,
    }
}

order_events::consumed_events! {
    /// What notification reacts to.
    pub enum NotificationEvent {
        Confirmed(OrderConfirmed),
        Cancelled(OrderCancelled),
        CancellationRefused(CancellationRefused),
    }
}

/// Sends e-mail; answers the provider's message id.
pub trait Mailer: Send + Sync {
    fn send(&self, email: &Email) -> impl Future<Output = Result<String, RecordError>> + Send;
}

/// Sends through Amazon SES v2 `SendEmail` from a verified sender address.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    sender: String,
}

impl SesMailer {
    pub fn new(client: aws_sdk_sesv2::Client, sender: impl Into<String>) -> Self {
        Self {
            client,
            sender: sender.into(),
        }
    }
}

impl Mailer for SesMailer {
    async fn send(&self, email: &Email) -> Result<String, RecordError> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        let text = |data: &str| Content::builder().data(data).charset("UTF-8").build();
        let message = Message::builder()
            .subject(text(&email.subject)?)
            .body(Body::builder().text(text(&email.body)?).build())
            .build();
        let output = self
            .client
            .send_email()
            .from_email_address(&self.sender)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| aws_sdk_sesv2::error::DisplayErrorContext(e).to_string())?;
        Ok(output.message_id.unwrap_or_default())
    }
}

/// The notification consumer.
pub struct Notification<M, S> {
    mailer: M,
    store: S,
}

impl<M: Mailer, S: EffectStore> Notification<M, S> {
    pub fn new(mailer: M, store: S) -> Self {
        Self { mailer, store }
    }

    pub fn mailer(&self) -> &M {
        &self.mailer
    }

    pub fn store(&self) -> &S {
        &self.store
    }
}

impl Notification<SesMailer, DynamoEffectStore> {
    /// Reads `SERVICE_TABLE`, `IDEMPOTENCY_TABLE` and `SENDER_EMAIL`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        let client = lambda_kit::calls::dynamodb_client(sdk);
        let idempotency =
            DynamoIdempotency::new(client, env.require("IDEMPOTENCY_TABLE")?, SPEC.name);
        let store = DynamoEffectStore::new(
            env.require(SERVICE_TABLE)?,
            NotificationItem::KEY,
            idempotency,
        );
        let mailer = SesMailer::new(
            aws_sdk_sesv2::Client::from_conf(
                aws_sdk_sesv2::config::Builder::from(sdk)
                    .interceptor(lambda_kit::calls::CallCounter)
                    .build(),
            ),
            env.require("SENDER_EMAIL")?,
        );
        Ok(Self::new(mailer, store))
    }
}

impl<M: Mailer, S: EffectStore> Notification<M, S> {
    /// Sends `email` once for the event and records it.
    async fn send_once<T: EventData>(
        &self,
        event: &CloudEvent<T>,
        kind: EmailKind,
        email: Email,
        deadline: SystemTime,
    ) -> Result<(), RecordError> {
        let key = event.idempotency_key();
        let id = notification_id(event.order_id(), kind);
        // The e-mail's item is written once it was sent: found, the e-mail went out.
        if let Some(sent) = self.store.load::<NotificationItem>(&id).await? {
            sent.applied.contains(&key, &id)?;
            tracing::info!(?kind, "e-mail already sent; acknowledged");
            return Ok(());
        }
        // The claim keeps a concurrent duplicate from sending it too; it is left to expire,
        // since the item, once written, answers every later delivery.
        if let Claim::AlreadyDone(_) = self.store.entries().claim(&key, deadline).await? {
            tracing::info!(?kind, "e-mail already sent; acknowledged");
            return Ok(());
        }
        let message_id = match self.mailer.send(&email).await {
            Ok(id) => id,
            Err(error) => {
                self.store.entries().release(&key).await?;
                return Err(error);
            }
        };
        let item = NotificationItem {
            notification_id: id,
            order_id: event.order_id(),
            kind,
            message_id: message_id.clone(),
            recipient: email.to.clone(),
            event_id: event.id,
            sent_at: Utc::now(),
        };
        match self.store.create(&key, &item).await? {
            Effect::Applied(()) => tracing::info!(%message_id, ?kind, "e-mail sent"),
            Effect::AlreadyDone(()) => tracing::warn!(
                %message_id,
                ?kind,
                "this e-mail was recorded for the order meanwhile"
            ),
        }
        Ok(())
    }
}

impl<M: Mailer, S: EffectStore> EventHandler for Notification<M, S> {
    const SPEC: ServiceSpec = SPEC;
    type Event = NotificationEvent;

    async fn apply(
        &self,
        event: NotificationEvent,
        deadline: SystemTime,
    ) -> Result<(), RecordError> {
        match &event {
            NotificationEvent::Confirmed(event) => {
                let cancelled = notification_id(event.order_id(), EmailKind::Cancellation);
                if self
                    .store
                    .load::<NotificationItem>(&cancelled)
                    .await?
                    .is_some()
                {
                    tracing::info!("the order was cancelled already; no confirmation");
                    return Ok(());
                }
                let email = confirmation(&event.data);
                self.send_once(event, EmailKind::Confirmation, email, deadline)
                    .await
            }
            NotificationEvent::Cancelled(event) => {
                let email = cancellation(&event.data);
                self.send_once(event, EmailKind::Cancellation, email, deadline)
                    .await
            }
            NotificationEvent::CancellationRefused(event) => {
                let email = cancellation_refused(&event.data);
                self.send_once(event, EmailKind::CancellationRefused, email, deadline)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests;
