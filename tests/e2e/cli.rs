//! End-to-end: the operator CLI (the `orderflow` binary, as `cargo run --` runs it) against a
//! running system on the emulator, each command as the documentation shows it: `token` gives a
//! working ID token every time for a local customer, new or existing; `audit` passes once the
//! orders settled; `dlq list`, `dlq redrive` and `dlq purge --yes` see, move back and delete a
//! dead letter; `picture` writes the live view's PNG. (`demo`, `up` and the README's tour run in
//! CI, `.ci/run`.)

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use crate::openapi::{post_order, send};

/// Runs `orderflow args...` with the runtime's endpoints in the environment, as `up` prints
/// its commands; its stdout, or the test fails with its stderr.
fn orderflow(endpoints: &[(String, String)], args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(args)
        .envs(endpoints.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("the orderflow binary runs");
    assert!(
        output.status.success(),
        "orderflow {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn token_works_every_time_for_a_local_customer() {
    let options = options();
    let prefix = options.provision.prefix.clone();
    let runtime = start(options).await;
    let environment = runtime.endpoints().environment();
    // Signed up by the runtime first (as the demo's customers are), then asked for twice.
    bearer_of(&runtime, "ada@example.com").await;
    for email in [
        "ada@example.com",
        "ada@example.com",
        "newcomer@example.com",
        "newcomer@example.com",
    ] {
        let token = orderflow(&environment, &["token", email, "--prefix", &prefix]);
        assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
        let url = format!("{}/orders", runtime.api_url());
        let listed = send(
            "GET",
            &url,
            &[("authorization", &format!("Bearer {token}"))],
            Vec::new(),
        )
        .await
        .unwrap();
        assert_eq!(listed.status, 200, "{email}: {:?}", listed.json());
    }
    runtime.shutdown().await;
}

#[tokio::test]
async fn audit_and_the_dead_letter_commands_work_as_documented() {
    let options = options();
    let prefix = options.provision.prefix.clone();
    let runtime = start(options).await;
    let environment = runtime.endpoints().environment();
    let bearer = bearer(&runtime).await;
    let placed = post_order(&runtime.api_url(), &bearer, &order())
        .await
        .unwrap();
    let accepted = BTreeSet::from([placed.json()["orderId"].as_str().unwrap().to_owned()]);
    wait_settled(
        &runtime,
        &accepted,
        BTreeMap::new(),
        Duration::from_secs(60),
    )
    .await;
    let audit = orderflow(&environment, &["audit", "--prefix", &prefix]);
    assert!(audit.contains("1 confirmed"), "{audit}");

    // A message no consumer can read, in payment's dead-letter queue.
    let queue = queue_of(&runtime, &payment::SPEC);
    let dlq = dlq_of(&runtime, &queue);
    let sqs = aws_sdk_sqs::Client::new(runtime.sdk());
    sqs.send_message()
        .queue_url(runtime.deployment().reference(&dlq))
        .message_body("not an event at all")
        .send()
        .await
        .unwrap();
    let listed = orderflow(
        &environment,
        &["dlq", "list", "payment", "--prefix", &prefix],
    );
    assert!(
        listed.starts_with("1 message(s)") && listed.contains("not an event"),
        "{listed}"
    );
    // Redriven, payment refuses it again at once: back in the DLQ, with the reason.
    orderflow(
        &environment,
        &["dlq", "redrive", "payment", "--prefix", &prefix],
    );
    eventually(
        Duration::from_secs(30),
        "the dead letter back in the DLQ",
        || async {
            let listed = orderflow(
                &environment,
                &["dlq", "list", "payment", "--prefix", &prefix],
            );
            listed.contains("failed permanently")
        },
    )
    .await;
    orderflow(
        &environment,
        &["dlq", "purge", "payment", "--yes", "--prefix", &prefix],
    );
    assert_eq!(depth(&runtime, &dlq).await, 0);
    runtime.shutdown().await;
}

#[tokio::test]
async fn picture_writes_the_live_view_as_a_png() {
    let out = std::env::temp_dir().join(format!("live-{}.png", uuid::Uuid::now_v7()));
    let out_text = out.display().to_string();
    orderflow(&[], &["picture", "--orders", "4", "--out", &out_text]);
    let png = std::fs::read(&out).expect("the picture is written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let _ = std::fs::remove_file(out);
}
