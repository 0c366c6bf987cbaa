//! The live view in a real browser (Debian's headless Chromium over WebDriver): a customer signs
//! in, places an order and sees it decided; a stopped consumer's lag and backlog grow on the
//! page and shrink once it is started again.

use std::time::Duration;

use fantoccini::Locator;
use local_runtime::runtime::LocalRuntime;
use orderflow::live::browser::Browser;

use crate::common;

/// A runtime with the demo's catalogue and the live view; the view's URL.
async fn start() -> (LocalRuntime, String) {
    let runtime = LocalRuntime::start(common::options(), orderflow::services::registry())
        .await
        .expect("the runtime starts");
    orderflow::shop::seed_catalogue(&runtime)
        .await
        .expect("the catalogue is seeded");
    let url = orderflow::live::serve(&runtime, orderflow::shop::customers());
    (runtime, url)
}

/// Opens the view and waits until it draws one lane per consumer of the template.
async fn open(runtime: &LocalRuntime, url: &str) -> Browser {
    let browser = Browser::start(1400, 1000).await.expect("Chromium starts");
    browser.client.goto(url).await.expect("the page loads");
    let lanes = runtime.topology().consumers().count();
    browser
        .wait_for(
            &format!("return document.querySelectorAll('.lane').length === {lanes}"),
            Duration::from_secs(10),
        )
        .await
        .expect("the topology is drawn");
    browser
}

/// Signs in as `email` through the page's form.
async fn sign_in(browser: &Browser, email: &str) {
    browser
        .eval(&format!(
            "document.getElementById('customer').value = '{email}'"
        ))
        .await
        .unwrap();
    click(browser, "sign-in-button").await;
    browser
        .wait_for(
            &format!("return document.getElementById('who').textContent.includes('{email}')"),
            Duration::from_secs(10),
        )
        .await
        .expect("signed in");
}

async fn click(browser: &Browser, id: &str) {
    browser
        .client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id} is on the page: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("#{id} clicks: {e}"));
}

/// Places an order of one `sku` through the page's form; the order id the API answered.
async fn place(browser: &Browser, sku: &str) -> String {
    browser
        .eval("document.getElementById('message').dataset.placed = ''")
        .await
        .unwrap();
    browser
        .eval(&format!("document.getElementById('sku').value = '{sku}'"))
        .await
        .unwrap();
    click(browser, "place-button").await;
    let id = browser
        .wait_for(
            "return document.getElementById('message').dataset.placed",
            Duration::from_secs(10),
        )
        .await
        .expect("the API answered with an order id");
    id.as_str().unwrap().to_owned()
}

/// The status the page shows for `order` (waits until it shows one of `statuses`).
/// Clicks the cancel button of `order`. The page draws its orders anew with each picture (every
/// 500 ms), so a button found just before a redraw is gone when clicked: then the new one is.
async fn click_cancel(browser: &Browser, order: &str) {
    let button = format!(".order[data-order-id=\"{order}\"] button.cancel");
    for _ in 0..5 {
        let clicked = browser
            .client
            .find(Locator::Css(&button))
            .await
            .expect("a waiting order of the signed-in customer has a cancel button")
            .click()
            .await;
        match clicked {
            Ok(()) => return,
            Err(e) if e.is_stale_element_reference() => continue,
            Err(e) => panic!("clicking cancel on {order}: {e}"),
        }
    }
    panic!("the cancel button of {order} was redrawn under every click");
}

async fn status_becomes(browser: &Browser, order: &str, statuses: &[&str]) -> String {
    let wanted = serde_json::to_string(statuses).unwrap();
    let waited = browser
        .wait_for(
            &format!(
                "const row = document.querySelector('.order[data-order-id=\"{order}\"]');
                 return row && {wanted}.includes(row.dataset.status) && row.dataset.status"
            ),
            Duration::from_secs(60),
        )
        .await;
    let status = match waited {
        Ok(status) => status,
        Err(e) => {
            let shown = browser
                .eval("return document.body.innerText")
                .await
                .unwrap_or_default();
            panic!(
                "order {order} reaches one of {statuses:?} on the page: {e}\nthe page shows:\n{}",
                shown.as_str().unwrap_or_default()
            )
        }
    };
    status.as_str().unwrap().to_owned()
}

/// What the page shows for `service`: (messages waiting in its queue, its lag in ms).
async fn lane(browser: &Browser, service: &str) -> (u64, u64) {
    let shown = browser
        .eval(&format!(
            "const lane = document.querySelector('.lane[data-service=\"{service}\"]');
             return [Number(lane.querySelector('.depth').dataset.visible),
                     Number(lane.querySelector('.lag').dataset.ms)]"
        ))
        .await
        .unwrap();
    (
        shown[0].as_u64().unwrap_or_default(),
        shown[1].as_u64().unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_customer_places_an_order_on_the_page_and_sees_it_decided() {
    let (runtime, url) = start().await;
    let browser = open(&runtime, &url).await;
    sign_in(&browser, "ada@example.com").await;
    let order = place(&browser, "SKU-MOUSE").await;
    let status = status_becomes(&browser, &order, &["CONFIRMED", "SHIPPED"]).await;
    assert!(["CONFIRMED", "SHIPPED"].contains(&status.as_str()));
    // The business panel counted it.
    let placed = browser
        .wait_for(
            "return Number(document.getElementById('placed').textContent) >= 1",
            Duration::from_secs(5),
        )
        .await;
    assert!(placed.is_ok(), "the page counts the order as placed");
    browser.close().await;
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_stopped_consumer_falls_behind_on_the_page_and_catches_up_once_started() {
    let (runtime, url) = start().await;
    runtime.set_source_enabled("PaymentFunction", false);
    let browser = open(&runtime, &url).await;
    sign_in(&browser, "grace@example.com").await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(place(&browser, "SKU-KEYBOARD").await);
    }
    // Payment hears nothing: its queue fills and its lag grows, picture after picture.
    browser
        .wait_for(
            "const lane = document.querySelector('.lane[data-service=\"payment\"]');
             return Number(lane.querySelector('.depth').dataset.visible) >= 3",
            Duration::from_secs(20),
        )
        .await
        .expect("payment's backlog shows");
    let (_, first_lag) = lane(&browser, "payment").await;
    // The page redraws on each picture, so the lag it shows moves in steps: wait for a second's
    // growth rather than sampling after a fixed sleep.
    let grown = browser
        .wait_for(
            &format!(
                "const lane = document.querySelector('.lane[data-service=\"payment\"]');
                 return Number(lane.querySelector('.lag').dataset.ms) >= {}",
                first_lag + 1000
            ),
            Duration::from_secs(10),
        )
        .await;
    let (waiting, later_lag) = lane(&browser, "payment").await;
    assert!(waiting >= 3, "payment's queue holds the orders: {waiting}");
    assert!(
        grown.is_ok() && later_lag >= first_lag + 1000,
        "payment's lag grows while it is stopped: {first_lag} ms then {later_lag} ms"
    );
    let (_, inventory_lag) = lane(&browser, "inventory").await;
    assert!(
        inventory_lag < 5_000,
        "inventory keeps up: {inventory_lag} ms"
    );

    // The customer cancels one of the waiting orders from the page.
    let cancelled = &orders[0];
    status_becomes(&browser, cancelled, &["PENDING"]).await;
    click_cancel(&browser, cancelled).await;
    status_becomes(&browser, cancelled, &["CANCELLED"]).await;

    runtime.set_source_enabled("PaymentFunction", true);
    browser
        .wait_for(
            "const lane = document.querySelector('.lane[data-service=\"payment\"]');
             return Number(lane.querySelector('.depth').dataset.visible) === 0
                 && Number(lane.querySelector('.lag').dataset.ms) < 5000",
            Duration::from_secs(30),
        )
        .await
        .expect("payment catches up: its queue drains and its lag falls");
    for order in &orders[1..] {
        status_becomes(&browser, order, &["CONFIRMED", "SHIPPED"]).await;
    }
    browser.close().await;
    runtime.shutdown().await;
}
