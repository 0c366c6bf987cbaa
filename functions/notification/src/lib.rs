//! Notification: e-mails the customer a confirmation of the placed order (Amazon SES v2).
//!
//! Idempotency mode: claim / complete. SES has no idempotency key, so the event is first
//! claimed (INPROGRESS idempotency entry), then the e-mail is sent, then the notification item
//! (`NOTIFICATIONS_TABLE`, one per order, with the SES message id) and the COMPLETED entry are
//! written in one transaction. A duplicate delivery during the send sees INPROGRESS and is
//! retried later; a failed send releases the claim. Only a crash after SES accepted the e-mail
//! and before the commit can lead to a second e-mail, once the claim expires at the invocation
//! deadline: the inherent limit of an API without idempotency keys.

use std::future::Future;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lambda_kit::consumer::{ConfigError, EventHandler, FunctionEnv};
use lambda_kit::effect::{DynamoEffectStore, EffectStore};
use lambda_kit::idempotency::{Claim, DynamoIdempotency, Effect, IdempotencyStore};
use lambda_kit::RecordError;
use order_events::{format_amount, OrderPlaced, OrderPlacedEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The name idempotency keys are scoped by.
pub const SERVICE: &str = "notification";

/// A sent e-mail as the notifications table holds it: one per order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationItem {
    pub order_id: Uuid,
    /// The mail service's message id.
    pub message_id: String,
    pub recipient: String,
    pub event_id: Uuid,
    pub sent_at: DateTime<Utc>,
}

impl NotificationItem {
    /// The function environment variable naming the notifications table.
    pub const TABLE_VARIABLE: &'static str = "NOTIFICATIONS_TABLE";
    /// The table's partition key.
    pub const KEY: &'static str = "orderId";
}

/// An e-mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// The order confirmation e-mail.
pub fn confirmation(order: &OrderPlaced) -> Email {
    let mut body = format!("Thank you for your order {}.\n\n", order.order_id);
    for line in &order.items {
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
    /// Reads `NOTIFICATIONS_TABLE`, `IDEMPOTENCY_TABLE` and `SENDER_EMAIL`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &FunctionEnv) -> Result<Self, ConfigError> {
        let client = aws_sdk_dynamodb::Client::new(sdk);
        let idempotency =
            DynamoIdempotency::new(client, env.require("IDEMPOTENCY_TABLE")?, SERVICE);
        let store = DynamoEffectStore::new(
            env.require(NotificationItem::TABLE_VARIABLE)?,
            NotificationItem::KEY,
            idempotency,
        );
        let mailer = SesMailer::new(
            aws_sdk_sesv2::Client::new(sdk),
            env.require("SENDER_EMAIL")?,
        );
        Ok(Self::new(mailer, store))
    }
}

impl<M: Mailer, S: EffectStore> EventHandler for Notification<M, S> {
    type Event = OrderPlacedEvent;

    async fn apply(
        &self,
        event: OrderPlacedEvent,
        deadline: SystemTime,
    ) -> Result<(), RecordError> {
        let key = event.idempotency_key();
        if let Claim::AlreadyCompleted(_) = self.store.entries().claim(&key, deadline).await? {
            tracing::info!("confirmation already sent; acknowledged");
            return Ok(());
        }
        let email = confirmation(&event.data);
        let message_id = match self.mailer.send(&email).await {
            Ok(id) => id,
            Err(error) => {
                self.store.entries().release(&key).await?;
                return Err(error);
            }
        };
        let item = NotificationItem {
            order_id: event.order_id(),
            message_id: message_id.clone(),
            recipient: email.to.clone(),
            event_id: event.id,
            sent_at: Utc::now(),
        };
        match self.store.commit(&key, &item, true).await? {
            Effect::Applied(()) => tracing::info!(%message_id, "confirmation e-mail sent"),
            Effect::AlreadyApplied => tracing::warn!(
                %message_id,
                "a confirmation for this order was recorded meanwhile"
            ),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
