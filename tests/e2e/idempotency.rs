//! The DynamoDB idempotency entries and the inventory store against the emulator's DynamoDB:
//! every state transition the exactly-once effects rest on (first call, replay with the stored
//! result, in-progress duplicate, takeover of an expired claim, expired completed record,
//! payload mismatch, failed work releasing its claim, transactional commit and rollback).

use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use inventory::{DynamoInventory, InventoryStore, Rejection, Reservation};
use lambda_kit::idempotency::{
    s, Claim, DynamoIdempotency, Effect, EntryAttributes, IdempotencyError, IdempotencyKey,
    IdempotencyStore, Idempotent, Run, RunError,
};
use local_runtime::provision::{provision, Deployment};
use local_runtime::sdk::sdk_config;
use local_runtime::template::Topology;
use order_events::testing::sample_event;

async fn deploy() -> (aws_config::SdkConfig, Deployment) {
    let sdk = sdk_config(crate::common::endpoints().as_ref()).await;
    let topology = Topology::load(
        &local_runtime::emulator::project_root().join("template.yaml"),
        &Default::default(),
    )
    .unwrap();
    let deployment = provision(&topology, &sdk, &crate::common::options().provision)
        .await
        .unwrap();
    (sdk, deployment)
}

fn idempotency(sdk: &aws_config::SdkConfig, deployment: &Deployment) -> DynamoIdempotency {
    DynamoIdempotency::new(
        aws_sdk_dynamodb::Client::new(sdk),
        deployment.reference("IdempotencyTable"),
        "test",
    )
}

fn shipment(deployment: &Deployment, order: &str) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(deployment.reference("ShippingTable"))
        .item("orderId", s(order))
        .condition_expression("attribute_not_exists(orderId)")
        .build()
        .unwrap();
    TransactWriteItem::builder().put(put).build()
}

#[tokio::test]
async fn a_committed_key_is_not_committed_again_and_a_changed_payload_is_refused() {
    let (sdk, deployment) = deploy().await;
    let idempotency = idempotency(&sdk, &deployment);
    let key = IdempotencyKey::new("event-1", "payload");

    let first = idempotency
        .commit(&key, vec![shipment(&deployment, "o-1")])
        .await
        .unwrap();
    assert_eq!(first, Effect::Applied(()));
    let again = idempotency
        .commit(&key, vec![shipment(&deployment, "o-1b")])
        .await
        .unwrap();
    assert_eq!(again, Effect::AlreadyDone(()));
    assert!(idempotency.is_completed(&key).await.unwrap());

    let changed = IdempotencyKey::new("event-1", "another payload");
    let refused = idempotency.commit(&changed, vec![]).await;
    assert!(
        matches!(refused, Err(IdempotencyError::PayloadMismatch(_))),
        "{refused:?}"
    );

    let shipments = orderflow::report::count_items(&sdk, &deployment, "ShippingTable")
        .await
        .unwrap();
    assert_eq!(shipments, 1, "the second commit wrote nothing");
}

#[tokio::test]
async fn a_failed_effect_condition_writes_neither_effect_nor_entry() {
    let (sdk, deployment) = deploy().await;
    let idempotency = idempotency(&sdk, &deployment);
    let first = IdempotencyKey::new("event-a", "a");
    idempotency
        .commit(&first, vec![shipment(&deployment, "o-2")])
        .await
        .unwrap();

    // Another event about the same order: the shipment's own condition fails.
    let second = IdempotencyKey::new("event-b", "b");
    let outcome = idempotency
        .commit(&second, vec![shipment(&deployment, "o-2")])
        .await;
    assert!(
        matches!(
            outcome,
            Err(IdempotencyError::EffectConditionFailed { index: 0, .. })
        ),
        "{outcome:?}"
    );
    assert!(
        !idempotency.is_completed(&second).await.unwrap(),
        "no idempotency entry for the failed commit"
    );
}

#[tokio::test]
async fn claim_complete_release_and_takeover() {
    let (sdk, deployment) = deploy().await;
    let idempotency = idempotency(&sdk, &deployment);
    let key = IdempotencyKey::new("event-c", "c");
    let later = SystemTime::now() + Duration::from_secs(60);

    assert_eq!(
        idempotency.claim(&key, later).await.unwrap(),
        Claim::Acquired
    );
    let duplicate = idempotency.claim(&key, later).await;
    assert!(
        matches!(duplicate, Err(IdempotencyError::InProgress(_))),
        "{duplicate:?}"
    );

    // A failed attempt releases its claim; the retry acquires it.
    idempotency.release(&key).await.unwrap();
    assert_eq!(
        idempotency.claim(&key, later).await.unwrap(),
        Claim::Acquired
    );
    let done = idempotency
        .complete_with(
            &key,
            Some("\"result\"".into()),
            vec![shipment(&deployment, "o-3")],
        )
        .await
        .unwrap();
    assert_eq!(done, Effect::Applied(()));
    assert_eq!(
        idempotency.claim(&key, later).await.unwrap(),
        Claim::AlreadyDone(Some("\"result\"".into())),
        "a replay gets the stored result"
    );

    // A claim whose holder ran past its deadline is taken over.
    let crashed = IdempotencyKey::new("event-d", "d");
    let past = SystemTime::now() - Duration::from_secs(1);
    assert_eq!(
        idempotency.claim(&crashed, past).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        idempotency.claim(&crashed, later).await.unwrap(),
        Claim::Acquired
    );
}

#[tokio::test]
async fn idempotent_runs_over_dynamodb_replay_and_release() {
    let (sdk, deployment) = deploy().await;
    let idempotent = Idempotent::new(idempotency(&sdk, &deployment));
    let key = IdempotencyKey::new("request-1", "body");
    let later = SystemTime::now() + Duration::from_secs(60);

    let failed = idempotent
        .run(&key, later, || async { Err::<String, _>("down") })
        .await;
    assert!(matches!(failed, Err(RunError::Work("down"))));
    let first = idempotent
        .run(&key, later, || async {
            Ok::<_, &str>("accepted".to_owned())
        })
        .await;
    assert_eq!(first.unwrap(), Run::Applied("accepted".to_owned()));
    let replay = idempotent
        .run(&key, later, || async { Ok::<_, &str>("again".to_owned()) })
        .await;
    assert_eq!(replay.unwrap(), Run::AlreadyDone("accepted".to_owned()));
    let mismatch = IdempotencyKey::new("request-1", "another body");
    let refused = idempotent
        .run(&mismatch, later, || async { Ok::<_, &str>(String::new()) })
        .await;
    assert!(matches!(
        refused,
        Err(RunError::Idempotency(IdempotencyError::PayloadMismatch(_)))
    ));
}

#[tokio::test]
async fn attribute_names_are_configurable() {
    let (sdk, deployment) = deploy().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = format!(
        "{}CustomIdempotency",
        deployment.reference("IdempotencyTable")
    );
    client
        .create_table()
        .table_name(&table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let attributes = EntryAttributes {
        id: "pk".into(),
        status: "state".into(),
        expiration: "ttl".into(),
        in_progress_expiration: "lease_until".into(),
        data: "result".into(),
        validation: "payload_sha256".into(),
    };
    let store =
        DynamoIdempotency::new(client.clone(), &table, "custom").with_attributes(attributes);
    let key = IdempotencyKey::new("k", "p");
    let later = SystemTime::now() + Duration::from_secs(60);
    assert_eq!(store.claim(&key, later).await.unwrap(), Claim::Acquired);
    store.complete(&key, Some("42".into())).await.unwrap();
    let item = client
        .get_item()
        .table_name(&table)
        .key("pk", s(store.entry_id(&key)))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["state"], s("COMPLETED"));
    assert_eq!(item["result"], s("42"));
    assert!(item.contains_key("ttl") && item.contains_key("payload_sha256"));
    assert_eq!(
        store.claim(&key, later).await.unwrap(),
        Claim::AlreadyDone(Some("42".into()))
    );
}

#[tokio::test]
async fn an_expired_completed_entry_no_longer_blocks() {
    let (sdk, deployment) = deploy().await;
    let idempotency = idempotency(&sdk, &deployment).expires_after(Duration::ZERO);
    let key = IdempotencyKey::new("event-e", "e");
    assert_eq!(
        idempotency.commit(&key, vec![]).await.unwrap(),
        Effect::Applied(())
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!idempotency.is_completed(&key).await.unwrap());
    assert_eq!(
        idempotency.commit(&key, vec![]).await.unwrap(),
        Effect::Applied(())
    );
}

#[tokio::test]
async fn inventory_reserves_atomically_and_never_goes_negative() {
    let (sdk, deployment) = deploy().await;
    let store = DynamoInventory::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        deployment.reference("InventoryTable"),
    );
    // The sample order wants 2 keyboards and 1 mouse.
    store.set_stock("SKU-KEYBOARD", 3).await.unwrap();
    store.set_stock("SKU-MOUSE", 5).await.unwrap();

    let first = sample_event();
    assert_eq!(
        store.reserve(&first).await.unwrap(),
        Effect::Applied(Reservation::Reserved)
    );
    assert_eq!(
        store.reserve(&first).await.unwrap(),
        Effect::AlreadyDone(())
    );

    let second = sample_event();
    let rejected = store.reserve(&second).await.unwrap();
    let expected = Rejection::InsufficientStock {
        sku: "SKU-KEYBOARD".into(),
        requested: 2,
        available: 1,
    };
    assert_eq!(rejected, Effect::Applied(Reservation::Rejected(expected)));
    assert_eq!(store.stock("SKU-KEYBOARD").await.unwrap(), Some(1));
    assert_eq!(
        store.stock("SKU-MOUSE").await.unwrap(),
        Some(4),
        "no partial decrement"
    );

    store.set_stock("SKU-KEYBOARD", 10).await.unwrap();
    let mut unknown = sample_event();
    unknown.data.lines[1].sku = "SKU-NOPE".into();
    let rejected = store.reserve(&unknown).await.unwrap();
    assert_eq!(
        rejected,
        Effect::Applied(Reservation::Rejected(Rejection::UnknownSku(
            "SKU-NOPE".into()
        )))
    );
}
