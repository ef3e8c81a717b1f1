//! The integrations pages in a real browser (headless Chromium): an API key made with the scope
//! checkboxes, shown once and used, then revoked; a webhook endpoint added with its secret shown
//! once, a test event sent by the server's own delivery loop to a receiver on 127.0.0.1 and
//! verified there, its log entry sent again; the billing page. Every page is checked with
//! axe-core at 1280 and 390 px (`browser_product::shots`); screenshots land in
//! `target/e2e-screenshots/product-integrations-*.png`.

use std::time::{Duration, Instant};

use crate::browser::{click, expect_heading, fill, find, goto, path, text};
use crate::browser_mfa::{sign_up_and_in, wait_for, wait_for_text, with_browser_config, Ctx};
use crate::browser_product::shots;
use crate::webhooks::{verifies, Receiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_makes_a_key_adds_a_webhook_and_sees_it_delivered() {
    with_browser_config(
        "integrations",
        |c| {
            // The receiver listens on loopback, over plain HTTP.
            c.webhooks.allow_networks = vec!["127.0.0.1/32".into()];
            c.webhooks.allow_http = true;
            c.webhooks.poll_interval_ms = 100;
        },
        integrations_flow,
    )
    .await;
}

async fn value_of(cx: &Ctx, css: &str) -> String {
    find(&cx.b, css)
        .await
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default()
}

/// Waits (up to 20 s) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn integrations_flow(cx: Ctx) {
    let (b, base) = (&cx.b, cx.base.clone());
    let rx = Receiver::start().await;
    sign_up_and_in(&cx, "ines@example.com", "Ines Integrator").await;
    goto(b, &format!("{base}/orgs")).await;
    fill(b, "#org-name", "Northwind").await;
    click(b, "#create-org").await;
    expect_heading(b, "Northwind").await;
    let org = path(b).await.trim_start_matches("/orgs/").to_string();

    // From the settings to the keys, through the tabs.
    click(b, "#settings-link").await;
    expect_heading(b, "Organization settings").await;
    click(b, "#api-keys-tab").await;
    expect_heading(b, "API keys").await;
    find(b, "#no-keys").await;
    shots(b, "integrations-keys-empty").await;

    // A read-only key for items, from the checkboxes; shown once, and it works.
    fill(b, "#key-name", "Reporting").await;
    for scope in ["workspaces:read", "items:read"] {
        click(b, &format!("input[name=scopes][value=\"{scope}\"]")).await;
    }
    click(b, "#create-key").await;
    wait_for(b, "#new-key").await;
    let key = value_of(&cx, "#new-key").await;
    assert!(key.starts_with("srk_"), "{key}");
    shots(b, "integrations-key-shown").await;
    let api = reqwest::Client::new();
    let r = api
        .get(format!("{base}/api/v1/orgs/{org}/workspaces"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request by key");
    assert_eq!(r.status(), 200);
    goto(b, &format!("{base}/orgs/{org}/api-keys")).await;
    let row = text(b, "#keys tbody tr").await;
    assert!(
        row.contains("Reporting") && row.contains("items:read"),
        "{row}"
    );
    assert!(!b.source().await.expect("source").contains(&key));
    shots(b, "integrations-keys").await;
    click(b, "#keys tbody tr button.danger").await;
    wait_for_text(
        b,
        "#notice",
        "The key was revoked: it stopped working at once.",
    )
    .await;
    let r = api
        .get(format!("{base}/api/v1/orgs/{org}/workspaces"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request by key");
    assert_eq!(r.status(), 401);

    // An endpoint for every event; its secret shown once.
    click(b, "#webhooks-tab").await;
    expect_heading(b, "Webhooks").await;
    find(b, "#no-hooks").await;
    shots(b, "integrations-webhooks-empty").await;
    fill(b, "#hook-url", &rx.url).await;
    click(b, "#event-all").await;
    click(b, "#create-hook").await;
    wait_for(b, "#new-secret").await;
    let secret = value_of(&cx, "#new-secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    shots(b, "integrations-webhook-new").await;

    // A test event, sent by the server's delivery loop, verified at the receiver, logged.
    click(b, "#send-test").await;
    wait_for_text(
        b,
        "#notice",
        "A test event is on its way; it shows in the delivery log once sent.",
    )
    .await;
    until("the test event's arrival", || !rx.requests().is_empty()).await;
    let (headers, body) = rx.requests()[0].clone();
    assert!(
        verifies(&secret, &headers, &body),
        "signed with the shown secret"
    );
    let hook_page = path(b).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        goto(b, &format!("{base}{hook_page}")).await;
        if b.find(fantoccini::Locator::Css("#deliveries"))
            .await
            .is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the delivery was never logged");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let logged = text(b, "#deliveries tbody tr").await;
    assert!(
        logged.contains("webhook.test") && logged.contains("200"),
        "{logged}"
    );
    shots(b, "integrations-webhook-log").await;
    click(b, "#deliveries tbody tr button").await;
    wait_for_text(b, "#notice", "The event is on its way again.").await;
    until("the redelivery's arrival", || rx.requests().len() >= 2).await;

    // The plan, before any billing event.
    click(b, "#billing-tab").await;
    expect_heading(b, "Billing").await;
    assert_eq!(text(b, "#plan").await, "free");
    shots(b, "integrations-billing").await;
}
