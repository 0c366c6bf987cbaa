//! End-to-end: the operator CLI (the `orderflow` binary, as `cargo run --` runs it) against a
//! running system on the emulator: `token` gives a working ID token every time for a local
//! customer, new or existing, and the token is one the API accepts.

use std::process::Command;

use crate::common::*;
use crate::openapi::send;

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
