//! An order's state: the item the orders table holds per order ([`OrderItem`]: what is known
//! about the order and what the saga decided, [`state`]), and the view the API answers with
//! ([`OrderView`]). The order service moves it with each event it hears; the order API inserts
//! a just-placed order and reads it back. Both depend on this crate, not on each other.

use lambda_kit::consumer::{ConfigError, FunctionEnv};
use lambda_kit::effect::{DynamoEffectStore, EffectStore};
use lambda_kit::idempotency::DynamoIdempotency;
use lambda_kit::RecordError;
use order_events::OrderPlacedEvent;

pub mod listing;
pub mod state;
mod view;
pub use state::{Cancellation, Decision, Fact, OrderItem, Placed, Refusal, Status, Step};
pub use view::{OrderView, RefusalView, TimelineEntry};

/// The service that owns the orders table: the scope of the idempotency entries written with
/// its items.
pub const OWNER: &str = "orders";

/// The orders table (named by the environment variable `table_variable`: the order service's
/// own `SERVICE_TABLE`, the order API's `ORDERS_TABLE`) and the order service's idempotency
/// entries (`IDEMPOTENCY_TABLE`): what the order service writes and the order API reads.
pub fn store_from_env(
    sdk: &aws_config::SdkConfig,
    env: &FunctionEnv,
    table_variable: &str,
) -> Result<DynamoEffectStore, ConfigError> {
    let client = lambda_kit::calls::dynamodb_client(sdk);
    let idempotency = DynamoIdempotency::new(client, env.require("IDEMPOTENCY_TABLE")?, OWNER);
    Ok(DynamoEffectStore::new(
        env.require(table_variable)?,
        OrderItem::KEY,
        idempotency,
    ))
}

/// Inserts a just-published order, so that it is visible before the API answers 202: one
/// conditional write, which does nothing when the order service knows the order already (its
/// event overtook the API). The order service treats the order as it would its event: the fact
/// is the same.
pub async fn insert_placed<S: EffectStore>(
    store: &S,
    event: &OrderPlacedEvent,
) -> Result<(), RecordError> {
    let mut item = OrderItem::new(event.order_id());
    item.apply(Fact::Placed(event.data.clone()), event.time);
    store.insert(&item).await?;
    Ok(())
}

#[cfg(test)]
mod state_tests;
