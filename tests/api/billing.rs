//! The inbound billing webhook from the attacker's side: unsigned, wrongly signed, stale and
//! replayed events change nothing; a verified subscription event sets the org's plan once, audited;
//! an unconfigured server has no such endpoint.

use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

use crate::support::{Req, TestApp};

pub(crate) const SECRET: &str = "whsec_billing_test_secret";
const PATH: &str = "/api/v1/billing/stripe-webhook";

/// A `Stripe-Signature` header as Stripe makes it (written here from Stripe's documentation).
pub(crate) fn stripe_signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) fn event(
    id: &str,
    kind: &str,
    org: &str,
    customer: &str,
    plan: &str,
    status: &str,
) -> String {
    json!({
        "id": id,
        "type": kind,
        "data": {"object": {
            "id": "sub_1", "customer": customer, "status": status,
            "metadata": {"org_id": org},
            "items": {"data": [{"price": {"id": "price_1", "lookup_key": plan}}]}
        }}
    })
    .to_string()
}

async fn post(t: &TestApp, body: &str, signature: Option<String>) -> crate::support::TestResponse {
    let mut r = Req::post(PATH).raw("application/json", body.as_bytes().to_vec());
    if let Some(s) = signature {
        r = r.header("stripe-signature", &s);
    }
    t.send(r).await
}

async fn plan(t: &TestApp, owner: &str, org: &str) -> Value {
    t.send(Req::get(&format!("/api/v1/orgs/{org}/billing")).cookie(owner))
        .await
        .json()
}

#[tokio::test]
async fn only_verified_fresh_events_set_the_plan_and_replays_change_nothing() {
    let t = TestApp::with(|c| c.billing.stripe_webhook_secret = Some(SECRET.into())).await;
    t.verified_user("owner@example.com", "Owner").await;
    let owner = t.login("owner@example.com").await;
    let org = t
        .send(
            Req::post("/api/v1/orgs")
                .cookie(&owner)
                .json(json!({"name": "Paying"})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("org")
        .to_string();
    assert_eq!(plan(&t, &owner, &org).await["plan"], "free");
    let now = i64::try_from(t.clock_secs()).expect("secs");
    let body = event(
        "evt_1",
        "customer.subscription.created",
        &org,
        "cus_1",
        "business",
        "active",
    );

    // Unsigned, wrongly signed, signed over other bytes, stale, from the future: 400, no effect.
    for (sig, code) in [
        (None, "invalid_signature"),
        (
            Some(stripe_signature("whsec_wrong", now, &body)),
            "invalid_signature",
        ),
        (
            Some(stripe_signature(
                SECRET,
                now,
                &body.replace("business", "enterprise"),
            )),
            "invalid_signature",
        ),
        (
            Some(stripe_signature(SECRET, now - 301, &body)),
            "stale_timestamp",
        ),
        (
            Some(stripe_signature(SECRET, now + 301, &body)),
            "stale_timestamp",
        ),
        (Some("t=1,v1=nothex".to_string()), "invalid_signature"),
    ] {
        let r = post(&t, &body, sig.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{sig:?}: {}", r.text());
        assert_eq!(r.json()["code"], code, "{sig:?}");
    }
    assert_eq!(plan(&t, &owner, &org).await["plan"], "free");

    // Verified (beside a signature from an old secret): the plan is set and audited.
    let sig = format!(
        "{},v1={}",
        stripe_signature(SECRET, now, &body),
        "00".repeat(32)
    );
    let r = post(&t, &body, Some(sig.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["duplicate"], false);
    let p = plan(&t, &owner, &org).await;
    assert_eq!(
        (p["plan"].as_str(), p["status"].as_str()),
        (Some("business"), Some("active"))
    );
    // Replayed: acknowledged, nothing done twice.
    let r = post(&t, &body, Some(sig)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["duplicate"], true);
    let changes = |events: &[strongroom::audit::StoredEvent]| {
        events
            .iter()
            .filter(|e| e.action == "billing.plan_changed")
            .count()
    };
    assert_eq!(changes(&t.chain(&org).await), 1);

    // Later events find the org by its customer id alone; a deletion returns it to free.
    let later = json!({
        "id": "evt_2", "type": "customer.subscription.deleted",
        "data": {"object": {"id": "sub_1", "customer": "cus_1", "status": "canceled"}}
    })
    .to_string();
    let r = post(&t, &later, Some(stripe_signature(SECRET, now, &later))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(plan(&t, &owner, &org).await["plan"], "free");
    let chain = t.chain(&org).await;
    assert_eq!(changes(&chain), 2);
    let last = chain
        .iter()
        .rev()
        .find(|e| e.action == "billing.plan_changed")
        .expect("event");
    assert_eq!(last.metadata["from"], "business");
    assert_eq!(last.metadata["to"], "free");
    assert_eq!(last.actor_id, None);

    // Out of order: an update created before the deletion, delivered after it, restores nothing.
    let dated = |id: &str, kind: &str, status: &str, created: i64| {
        json!({
            "id": id, "type": kind, "created": created,
            "data": {"object": {"id": "sub_1", "customer": "cus_1", "status": status,
                "items": {"data": [{"price": {"lookup_key": "business"}}]}}}
        })
        .to_string()
    };
    let newer = dated("evt_10", "customer.subscription.deleted", "canceled", 2_000);
    let older = dated("evt_9", "customer.subscription.updated", "active", 1_000);
    for body in [&newer, &older] {
        let r = post(&t, body, Some(stripe_signature(SECRET, now, body))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    assert_eq!(
        plan(&t, &owner, &org).await["plan"],
        "free",
        "the late, older event is ignored"
    );
    assert_eq!(changes(&t.chain(&org).await), 2);

    // Not JSON, no id: 400. Another org's id that does not exist: acknowledged, nothing set.
    let r = post(&t, "{", Some(stripe_signature(SECRET, now, "{"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let ghost = event(
        "evt_3",
        "customer.subscription.created",
        &uuid::Uuid::now_v7().to_string(),
        "cus_9",
        "x",
        "active",
    );
    let r = post(&t, &ghost, Some(stripe_signature(SECRET, now, &ghost))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn without_a_configured_secret_there_is_no_billing_endpoint() {
    let t = TestApp::new().await;
    let body = event(
        "evt_1",
        "customer.subscription.created",
        "x",
        "cus_1",
        "business",
        "active",
    );
    let r = post(&t, &body, Some(stripe_signature(SECRET, 0, &body))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}
