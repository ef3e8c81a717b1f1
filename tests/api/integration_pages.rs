//! The integrations pages without a browser: API keys made with scope checkboxes, shown once,
//! used, listed with their last use, revoked; webhook endpoints added (hostile URLs refused),
//! their secret shown once, a test event delivered and verified, redelivered from the log,
//! the secret rotated, a failing endpoint turned on again, deletion; the billing plan as the
//! signed events set it. Only the org's admins reach these pages: members and strangers get the
//! 404 page, an API key gets nothing, and the key, endpoint and rotation forms ask for a recent
//! step-up. Every page is free of inline script and style.

use axum::http::StatusCode;

use crate::org_pages::{page, submit, submit_ok, user};
use crate::support::{Req, TestApp, PASSWORD};
use crate::webhooks::{app as hooks_app, run, verifies, Receiver};

/// The value of the read-only input `id` (a key or a secret shown once).
fn shown(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\" value=\""))?;
    let rest = &html[at + id.len() + 13..];
    let escaped = &rest[..rest.find('"')?];
    Some(
        escaped
            .replace("&#x2f;", "/")
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// An org's owner, a member of it, a stranger to it (their session cookies), and the org.
struct Cast {
    owner: String,
    org: String,
    mia: String,
    stranger: String,
}

async fn cast(t: &TestApp) -> Cast {
    let owner = user(t, "olga@example.com", "Olga").await;
    let loc = submit_ok(t, &owner, "/orgs", &[("name", "Acme")]).await;
    let org = crate::org_pages::id_in(&loc, "/orgs/");
    let mia = user(t, "mia@example.com", "Mia").await;
    t.join(&owner, &org, "mia@example.com", "member", &mia)
        .await;
    let stranger = user(t, "sam@example.com", "Sam").await;
    Cast {
        owner,
        org,
        mia,
        stranger,
    }
}

/// A member gets the 403 page for `path` (a GET, or a POST of a key's form), a stranger the 404
/// page (they are not told the org exists).
async fn only_admins(t: &TestApp, member: &str, stranger: &str, path: &str, post: bool) {
    for (who, status) in [
        (member, StatusCode::FORBIDDEN),
        (stranger, StatusCode::NOT_FOUND),
    ] {
        let r = if post {
            submit(t, who, path, &[("name", "x"), ("scopes", "items:read")]).await
        } else {
            t.send(Req::get(path).cookie(who)).await
        };
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(!r.text().contains("id=\"key-form\""), "{path}");
        assert!(!r.text().contains("id=\"hook-form\""), "{path}");
    }
}

#[tokio::test]
async fn api_keys_are_made_shown_once_used_and_revoked_through_the_pages() {
    let t = TestApp::new().await;
    let Cast {
        owner,
        org,
        mia,
        stranger,
    } = cast(&t).await;
    let keys = format!("/orgs/{org}/api-keys");

    // The settings pages link to one another; the key page starts empty and offers every scope.
    let html = page(&t, &owner, &format!("/orgs/{org}/settings")).await;
    assert!(html.contains(&format!("href=\"{keys}\"")));
    assert!(html.contains(&format!("href=\"/orgs/{org}/webhooks\"")));
    assert!(html.contains(&format!("href=\"/orgs/{org}/billing\"")));
    let html = page(&t, &owner, &keys).await;
    assert!(html.contains("id=\"no-keys\""));
    for scope in strongroom::tenancy::api_keys::Scope::ALL.map(|s| s.as_str()) {
        assert!(
            html.contains(&format!("name=\"scopes\" value=\"{scope}\"")),
            "{scope}"
        );
    }
    only_admins(&t, &mia, &stranger, &keys, false).await;
    only_admins(&t, &mia, &stranger, &keys, true).await;
    assert_eq!(t.count("api_keys").await, 0, "refused forms made no key");

    // A form that cannot make a key says why, keeps what was typed, and makes nothing.
    for (form, field) in [
        (
            vec![("name", "Nightly export"), ("expires_in_days", "30")],
            "scopes",
        ),
        (
            vec![
                ("name", "Nightly export"),
                ("scopes", "items:read"),
                ("scopes", "items:delete"),
                ("expires_in_days", "30"),
            ],
            "scopes",
        ),
        (
            vec![
                ("name", "Nightly export"),
                ("scopes", "items:read"),
                ("expires_in_days", "30"),
                ("allowed_networks", "10.0.0.0/8\nnot-a-network"),
            ],
            "allowed_networks",
        ),
        (
            vec![
                ("name", "Nightly export"),
                ("scopes", "items:read"),
                ("expires_in_days", "30"),
                ("rate_limit_per_minute", "lots"),
            ],
            "rate_limit_per_minute",
        ),
        (
            vec![
                ("name", "Nightly export"),
                ("scopes", "items:read"),
                ("expires_in_days", "-4"),
            ],
            "expires_at",
        ),
    ] {
        let r = submit(&t, &owner, &keys, &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{form:?}");
        let html = r.text();
        assert!(html.contains("id=\"error\""), "{form:?}");
        assert!(html.contains("value=\"Nightly export\""), "kept the name");
        assert!(
            html.contains(&format!("id=\"{}\"", field_id(field)))
                && html.contains("aria-invalid=\"true\""),
            "{field} marked"
        );
        assert!(shown(&html, "new-key").is_none());
    }
    assert_eq!(t.count("api_keys").await, 0);

    // Made: the page answers with the whole key, once; it works within its scopes only.
    let r = submit(
        &t,
        &owner,
        &keys,
        &[
            ("name", "Nightly export"),
            ("scopes", "workspaces:read"),
            ("scopes", "items:read"),
            ("expires_in_days", "90"),
            ("rate_limit_per_minute", "120"),
            ("allowed_networks", "203.0.113.0/24"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    crate::org_pages::assert_clean("new key", &html);
    let key = shown(&html, "new-key").expect("the key, shown once");
    assert!(key.starts_with("srk_"), "{key}");
    let bearer = |r: Req| r.header("authorization", &format!("Bearer {key}"));
    let r = t
        .send(bearer(Req::get(&format!("/api/v1/orgs/{org}/workspaces"))))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = t
        .send(bearer(Req::get(&format!(
            "/api/v1/orgs/{org}/audit-events"
        ))))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "not in its scopes");
    // A key never opens a page.
    let r = t.send(bearer(Req::get(&keys))).await;
    assert_ne!(r.status, StatusCode::OK);
    assert!(!r.text().contains("Create a key"));

    // Listed without its secret, with its scopes, limits, and last use (masked).
    let html = page(&t, &owner, &keys).await;
    assert!(shown(&html, "new-key").is_none());
    // srk_<prefix>_<secret>: the secret itself may hold underscores.
    let secret = key.splitn(3, '_').nth(2).expect("secret");
    assert!(secret.len() >= 32, "{key}");
    assert!(!html.contains(secret), "the secret is never shown again");
    let prefix: String = key.split('_').take(2).collect::<Vec<_>>().join("_");
    assert!(html.contains(&prefix), "the prefix names it");
    for text in [
        "Nightly export",
        "workspaces:read",
        "items:read",
        "120 requests a minute",
        "only from 203.0.113.0&#x2f;24",
        "from 203.0.113.0<",
        "by Olga",
    ] {
        assert!(html.contains(text), "{text}");
    }

    // Revoked from the page: refused at once.
    let key_id = {
        let at = html.find("data-key-id=\"").expect("row") + 13;
        html[at..at + 36].to_string()
    };
    let loc = submit_ok(&t, &owner, &format!("{keys}/{key_id}/revoke"), &[]).await;
    assert_eq!(loc, format!("{keys}?done=key_revoked"));
    let html = page(&t, &owner, &loc).await;
    assert!(html.contains("The key was revoked"));
    assert!(html.contains("state-revoked"));
    assert!(
        !html.contains(&format!("{key_id}/revoke")),
        "no second revoke"
    );
    let r = t
        .send(bearer(Req::get(&format!("/api/v1/orgs/{org}/workspaces"))))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Revoking is for admins: a member's post changes nothing.
    let r = submit(&t, &mia, &format!("{keys}/{key_id}/revoke"), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Past the step-up window, making a key asks who you are first, and comes back here.
    t.clock
        .advance_secs(t.app.config.session.reauth_window_secs + 60);
    let form = [
        ("name", "Later"),
        ("scopes", "items:read"),
        ("expires_in_days", "never"),
    ];
    let html = page(&t, &owner, &keys).await;
    assert!(html.contains("id=\"stepup-hint\""));
    let r = submit(&t, &owner, &keys, &form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("Confirm it is you"));
    let next = r.header("set-cookie").unwrap_or_default();
    assert!(
        next.contains(&format!("={}", keys.replace('/', "%2F"))),
        "{next}"
    );
    assert_eq!(t.count("api_keys").await, 1);
    let r = submit(
        &t,
        &owner,
        "/account/reauthenticate",
        &[("password", PASSWORD), ("code", "")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let r = submit(&t, &owner, &keys, &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(shown(&r.text(), "new-key").is_some());

    // Each change is on the record.
    let events = crate::support::chain_of(&t.app, &org).await;
    for action in ["api_key.created", "api_key.revoked"] {
        assert!(events.iter().any(|a| a == action), "{action}: {events:?}");
    }
}

/// The id of the input (or fieldset) a field's error marks.
fn field_id(field: &str) -> &'static str {
    match field {
        "scopes" => "key-scopes",
        "allowed_networks" => "key-networks",
        "rate_limit_per_minute" => "key-rate",
        "expires_at" => "key-expires",
        "url" => "hook-url",
        "events" => "hook-events",
        _ => "key-name",
    }
}

#[tokio::test]
async fn webhooks_are_added_tested_redelivered_rotated_and_deleted_through_the_pages() {
    let t = hooks_app(|c| c.webhooks.disable_after_failures = 1).await;
    let rx = Receiver::start().await;
    let Cast {
        owner,
        org,
        mia,
        stranger,
    } = cast(&t).await;
    let hooks = format!("/orgs/{org}/webhooks");
    let html = page(&t, &owner, &hooks).await;
    assert!(html.contains("id=\"no-hooks\""));
    assert!(html.contains("name=\"events\" value=\"*\""));
    assert!(html.contains("name=\"events\" value=\"member.removed\""));
    only_admins(&t, &mia, &stranger, &hooks, false).await;
    let r = submit(
        &t,
        &mia,
        &hooks,
        &[("url", rx.url.as_str()), ("events", "*")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Hostile or incomplete forms: the reason, the typed URL kept, nothing registered.
    for (url, events, field) in [
        ("http://169.254.169.254/latest/meta-data/", "*", "url"),
        ("http://10.0.0.1/hook", "*", "url"),
        ("file:///etc/passwd", "*", "url"),
        ("http://user:pw@127.0.0.1/hook", "*", "url"),
        (rx.url.as_str(), "", "events"),
        (rx.url.as_str(), "item.exploded", "events"),
    ] {
        let mut form = vec![("url", url)];
        if !events.is_empty() {
            form.push(("events", events));
        }
        let r = submit(&t, &owner, &hooks, &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let html = r.text();
        assert!(html.contains("id=\"error\""), "{url}");
        assert!(
            html.contains(&format!("id=\"{}\"", field_id(field)))
                && html.contains("aria-invalid=\"true\""),
            "{url}: {field} marked"
        );
        assert!(shown(&html, "new-secret").is_none());
    }
    assert_eq!(
        crate::documents::tenant_count(&t, &org, "webhooks").await,
        0
    );

    // Added: its page answers with the secret, once.
    let r = submit(
        &t,
        &owner,
        &hooks,
        &[("url", rx.url.as_str()), ("events", "item.created")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    crate::org_pages::assert_clean("new endpoint", &html);
    let secret = shown(&html, "new-secret").expect("the secret, shown once");
    assert!(secret.starts_with("whsec_"));
    assert!(html.contains("id=\"no-deliveries\""));
    let hook_id = {
        let at = html.find(&format!("{hooks}/")).expect("hook link") + hooks.len() + 1;
        html[at..at + 36].to_string()
    };
    let hook = format!("{hooks}/{hook_id}");
    let html = page(&t, &owner, &hook).await;
    assert!(!html.contains(&secret[6..]), "never shown again");
    only_admins(&t, &mia, &stranger, &hook, false).await;

    // A test event: queued, delivered signed, logged with its status.
    let loc = submit_ok(&t, &owner, &format!("{hook}/test"), &[]).await;
    assert_eq!(loc, format!("{hook}?done=tested"));
    run(&t).await;
    let got = rx.requests();
    assert_eq!(got.len(), 1);
    assert!(
        verifies(&secret, &got[0].0, &got[0].1),
        "signed with the shown secret"
    );
    assert!(got[0].1.contains("\"webhook.test\""));
    let html = page(&t, &owner, &loc).await;
    assert!(html.contains("A test event is on its way"));
    assert!(html.contains("webhook.test"));
    assert!(html.contains("<span class=\"tag state-active\">200</span>"));

    // Sent again from the log: the same message, the same id.
    let delivery = {
        let at = html.find("data-delivery-id=\"").expect("row") + 18;
        html[at..at + 36].to_string()
    };
    let loc = submit_ok(
        &t,
        &owner,
        &format!("{hook}/deliveries/{delivery}/redeliver"),
        &[],
    )
    .await;
    assert_eq!(loc, format!("{hook}?done=redelivered"));
    run(&t).await;
    let got = rx.requests();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].0.get("webhook-id"),
        got[1].0.get("webhook-id"),
        "a redelivery is the same message"
    );
    let r = submit(
        &t,
        &owner,
        &format!("{hook}/deliveries/not-a-delivery/redeliver"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Rotated: a new secret, shown once; both sign during the overlap.
    let r = submit(&t, &owner, &format!("{hook}/rotate-secret"), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let rotated = shown(&r.text(), "new-secret").expect("the new secret");
    assert_ne!(rotated, secret);
    assert!(r.text().contains("The previous secret also signs"));
    submit_ok(&t, &owner, &format!("{hook}/test"), &[]).await;
    run(&t).await;
    let got = rx.requests();
    assert!(verifies(&rotated, &got[2].0, &got[2].1));
    assert!(verifies(&secret, &got[2].0, &got[2].1));

    // Failing (the receiver answers 500; one failure disables it here): shown disabled, then
    // turned on again from its page.
    rx.answer(&[500]);
    submit_ok(&t, &owner, &format!("{hook}/test"), &[]).await;
    run(&t).await;
    let html = page(&t, &owner, &hook).await;
    assert!(html.contains("id=\"hook-state\">disabled"), "disabled");
    assert!(html.contains("<span class=\"tag state-failed\">500</span>"));
    assert!(html.contains("id=\"enable-hook\""));
    let loc = submit_ok(&t, &owner, &format!("{hook}/enable"), &[]).await;
    let html = page(&t, &owner, &loc).await;
    assert!(html.contains("The endpoint is on again"));
    assert!(html.contains("id=\"hook-state\">active"));
    assert!(!html.contains("id=\"enable-hook\""));

    // Deleting needs the box ticked; then it is gone, and its page with it.
    let r = submit(&t, &owner, &format!("{hook}/delete"), &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        crate::documents::tenant_count(&t, &org, "webhooks").await,
        1
    );
    let r = submit(&t, &mia, &format!("{hook}/delete"), &[("confirm", "on")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "members cannot");
    let loc = submit_ok(&t, &owner, &format!("{hook}/delete"), &[("confirm", "on")]).await;
    assert_eq!(loc, format!("{hooks}?done=hook_deleted"));
    let html = page(&t, &owner, &loc).await;
    assert!(html.contains("id=\"no-hooks\""));
    let r = t.send(Req::get(&hook).cookie(&owner)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Past the step-up window, adding an endpoint asks who you are first.
    t.clock
        .advance_secs(t.app.config.session.reauth_window_secs + 60);
    let r = submit(
        &t,
        &owner,
        &hooks,
        &[("url", rx.url.as_str()), ("events", "*")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("Confirm it is you"));
    assert_eq!(
        crate::documents::tenant_count(&t, &org, "webhooks").await,
        0
    );

    let events = crate::support::chain_of(&t.app, &org).await;
    for action in [
        "webhook.created",
        "webhook.tested",
        "webhook.redelivered",
        "webhook.secret_rotated",
        "webhook.disabled",
        "webhook.enabled",
        "webhook.deleted",
    ] {
        assert!(events.iter().any(|a| a == action), "{action}: {events:?}");
    }
}

#[tokio::test]
async fn the_billing_page_shows_the_plan_the_signed_events_set() {
    use crate::billing::{event, stripe_signature, SECRET};
    let t = TestApp::with(|c| c.billing.stripe_webhook_secret = Some(SECRET.into())).await;
    let Cast {
        owner,
        org,
        mia,
        stranger,
    } = cast(&t).await;
    let billing = format!("/orgs/{org}/billing");
    let html = page(&t, &owner, &billing).await;
    assert!(html.contains("id=\"plan\"><strong>free</strong>"));
    assert!(html.contains("None yet"));
    only_admins(&t, &mia, &stranger, &billing, false).await;

    let now = i64::try_from(t.clock_secs()).expect("secs");
    let body = event(
        "evt_page",
        "customer.subscription.created",
        &org,
        "cus_9",
        "business",
        "active",
    );
    let r = t
        .send(
            Req::post("/api/v1/billing/stripe-webhook")
                .raw("application/json", body.clone().into_bytes())
                .header("stripe-signature", &stripe_signature(SECRET, now, &body)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = page(&t, &owner, &billing).await;
    assert!(
        html.contains("id=\"plan\"><strong>business</strong>"),
        "{html}"
    );
    assert!(html.contains("id=\"plan-status\">active"));
}
