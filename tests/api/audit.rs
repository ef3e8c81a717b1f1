//! Every auditable action that exists today is emitted, once, with the right actor and target.

use std::collections::BTreeSet;

use serde_json::json;
use strongroom::audit::Action;

use crate::support::{Req, TestApp, PASSWORD};

#[tokio::test]
async fn every_action_in_the_table_is_emitted_with_actor_and_target() {
    let t = TestApp::with(|c| {
        // A webhook endpoint on loopback where nothing listens: its one delivery fails and
        // disables it.
        c.webhooks.allow_networks = vec!["127.0.0.1/32".into()];
        c.webhooks.allow_http = true;
        c.webhooks.disable_after_failures = 1;
        c.billing.stripe_webhook_secret = Some(crate::billing::SECRET.into());
    })
    .await;
    t.verified_user("zoe@example.com", "Zoe").await; // signup, email verified
    t.login_as("zoe@example.com", "not the password at all", "198.51.100.9")
        .await; // login failed
    let a = t.login("zoe@example.com").await; // login succeeded
    let b = t.login("zoe@example.com").await;
    let b_id = t
        .send(Req::get("/api/v1/me/sessions").cookie(&b))
        .await
        .json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|s| s["current"] == true)
        .expect("current")["id"]
        .as_str()
        .expect("id")
        .to_string();
    t.send(Req::delete(&format!("/api/v1/me/sessions/{b_id}")).cookie(&a))
        .await; // session revoked
    t.send(Req::post("/api/v1/me/deletion").cookie(&a)).await; // deletion requested
    t.send(Req::delete("/api/v1/me/deletion").cookie(&a)).await; // and cancelled
    let export = t
        .send(Req::post("/api/v1/me/exports").cookie(&a))
        .await
        .json()["id"]
        .as_str()
        .expect("export")
        .to_string(); // export requested
    strongroom::exports::run_once(&t.app).await.expect("export");
    // (The request's own background build may be the one that built it.)
    for _ in 0..100 {
        let r = t
            .send(Req::get(&format!("/api/v1/me/exports/{export}/download")).cookie(&a))
            .await; // and downloaded
        if r.status == axum::http::StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    t.send(
        Req::new(axum::http::Method::PATCH, "/api/v1/me")
            .cookie(&a)
            .json(json!({"display_name": "Zoë"})),
    )
    .await;
    let new_pw = "a fresh passphrase for my account";
    t.send(
        Req::post("/api/v1/me/password")
            .cookie(&a)
            .json(json!({"current_password": PASSWORD, "new_password": new_pw})),
    )
    .await;
    t.send(Req::post("/api/v1/auth/password-reset").json(json!({"email": "zoe@example.com"})))
        .await;
    t.new_mail().await;
    t.send(Req::post("/api/v1/auth/password-reset").json(json!({"email": "zoe@example.com"})))
        .await;
    let token = t.mail_to("zoe@example.com").await.token("/reset-password");
    let c = {
        let r = t.login_as("zoe@example.com", new_pw, "198.51.100.9").await;
        r.session_cookie().expect("cookie")
    };
    t.send(Req::post("/api/v1/auth/logout").cookie(&c)).await; // logout
    t.send(
        Req::post("/api/v1/auth/password-reset/confirm")
            .json(json!({"token": token, "new_password": "and yet another passphrase"})),
    )
    .await;

    // Second factors: enrol, a pending login with a wrong then a right code, a recovery code,
    // step-up, new codes, removal.
    let final_pw = "and yet another passphrase";
    let s = t
        .login_as("zoe@example.com", final_pw, "198.51.100.9")
        .await
        .session_cookie()
        .expect("cookie");
    let secret = t
        .send(Req::post("/api/v1/me/mfa/totp").cookie(&s))
        .await
        .json()["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let r = t
        .send(
            Req::post("/api/v1/me/mfa/totp/confirm")
                .cookie(&s)
                .json(json!({"code": crate::mfa::code_at(&t, &secret, 0)})),
        )
        .await;
    let codes = r.json()["recovery_codes"].clone();
    t.clock.advance_secs(30);
    let pending = t
        .login_as("zoe@example.com", final_pw, "198.51.100.9")
        .await
        .session_cookie()
        .expect("pending");
    t.send(
        Req::post("/api/v1/auth/mfa/totp")
            .cookie(&pending)
            .json(json!({"code": "000000"})),
    )
    .await;
    let r = t
        .send(
            Req::post("/api/v1/auth/mfa/totp")
                .cookie(&pending)
                .json(json!({"code": crate::mfa::code_at(&t, &secret, 0)})),
        )
        .await;
    assert_eq!(r.status, axum::http::StatusCode::OK);
    let pending = t
        .login_as("zoe@example.com", final_pw, "198.51.100.9")
        .await
        .session_cookie()
        .expect("pending");
    let r = t
        .send(
            Req::post("/api/v1/auth/mfa/recovery-code")
                .cookie(&pending)
                .json(json!({"code": codes[0]})),
        )
        .await;
    assert_eq!(r.status, axum::http::StatusCode::OK);
    t.send(
        Req::post("/api/v1/me/reauthenticate")
            .cookie(&s)
            .json(json!({"password": final_pw})),
    )
    .await;
    t.send(
        Req::post("/api/v1/me/reauthenticate")
            .cookie(&s)
            .json(json!({"password": "wrong password guess"})),
    )
    .await;
    t.send(Req::post("/api/v1/me/mfa/recovery-codes").cookie(&s))
        .await;
    let r = t.send(Req::delete("/api/v1/me/mfa/totp").cookie(&s)).await;
    assert_eq!(r.status, axum::http::StatusCode::NO_CONTENT);

    // Organizations: create, rename, invite, a second user joins, role change, revoke, removal,
    // deletion (the step-up above is still fresh).
    let org = t
        .send(
            Req::post("/api/v1/orgs")
                .cookie(&s)
                .json(json!({"name": "Zoe Co"})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    t.send(
        Req::new(axum::http::Method::PATCH, &format!("/api/v1/orgs/{org}"))
            .cookie(&s)
            .json(json!({"name": "Zoe Company"})),
    )
    .await;
    t.send(
        Req::post(&format!("/api/v1/orgs/{org}/invitations"))
            .cookie(&s)
            .json(json!({"email": "yan@example.com", "role": "member"})),
    )
    .await;
    let invite = t
        .mail_to("yan@example.com")
        .await
        .token("/invitations/accept");
    t.verified_user("yan@example.com", "Yan").await;
    let yan = t.login("yan@example.com").await;
    let r = t
        .send(
            Req::post("/api/v1/invitations/accept")
                .cookie(&yan)
                .json(json!({ "token": invite })),
        )
        .await;
    assert_eq!(r.status, axum::http::StatusCode::OK);
    let yan_id = t.me(&yan).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    t.send(
        Req::new(
            axum::http::Method::PATCH,
            &format!("/api/v1/orgs/{org}/members/{yan_id}"),
        )
        .cookie(&s)
        .json(json!({"role": "admin"})),
    )
    .await;
    let inv = t
        .send(
            Req::post(&format!("/api/v1/orgs/{org}/invitations"))
                .cookie(&s)
                .json(json!({"email": "xi@example.com", "role": "member"})),
        )
        .await
        .json();
    t.send(
        Req::delete(&format!(
            "/api/v1/orgs/{org}/invitations/{}",
            inv["id"].as_str().expect("id")
        ))
        .cookie(&s),
    )
    .await;
    // The invited address asks not to be invited by this org again (no account, no actor).
    let optout = t
        .mail_to("xi@example.com")
        .await
        .token("/invitations/opt-out");
    let r = t
        .send(Req::post(&format!("/invitations/opt-out?token={optout}")))
        .await;
    assert_eq!(r.status, axum::http::StatusCode::OK);
    // Work: a workspace with a member, an item with a comment, then all removed.
    let ws = t
        .send(
            Req::post(&format!("/api/v1/orgs/{org}/workspaces"))
                .cookie(&s)
                .json(json!({"name": "Room", "kind": "deal"})),
        )
        .await
        .json();
    let wsb = format!(
        "/api/v1/orgs/{org}/workspaces/{}",
        ws["id"].as_str().expect("ws")
    );
    t.send(
        Req::new(axum::http::Method::PATCH, &wsb)
            .cookie(&s)
            .json(json!({"description": "Due diligence"})),
    )
    .await;
    t.send(
        Req::new(axum::http::Method::PUT, &format!("{wsb}/members/{yan_id}"))
            .cookie(&s)
            .json(json!({"role": "viewer"})),
    )
    .await;
    t.send(Req::delete(&format!("{wsb}/members/{yan_id}")).cookie(&s))
        .await;
    let item = t
        .send(
            Req::post(&format!("{wsb}/items"))
                .cookie(&s)
                .json(json!({"title": "Model"})),
        )
        .await
        .json();
    let itb = format!("{wsb}/items/{}", item["id"].as_str().expect("item"));
    t.send(
        Req::new(axum::http::Method::PATCH, &itb)
            .cookie(&s)
            .json(json!({"status": "done"})),
    )
    .await;
    t.send(
        Req::post(&format!("{itb}/updates"))
            .cookie(&s)
            .json(json!({"body": "Reviewed"})),
    )
    .await;
    t.send(Req::delete(&itb).cookie(&s)).await;
    // Documents: a folder, an upload, a rename, a download; a link for one recipient, who asks
    // for a code, gets one wrong, then downloads; the link revoked, the document and folder
    // deleted.
    let folder = t
        .send(
            Req::post(&format!("{wsb}/folders"))
                .cookie(&s)
                .json(json!({"name": "Diligence"})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("folder")
        .to_string();
    let doc = t
        .send(
            Req::post(&format!("{wsb}/documents?folder_id={folder}"))
                .cookie(&s)
                .file("model.txt", b"the model"),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("doc")
        .to_string();
    let docb = format!("{wsb}/documents/{doc}");
    t.send(
        Req::new(axum::http::Method::PATCH, &docb)
            .cookie(&s)
            .json(json!({"folder_id": null})),
    )
    .await;
    let r = t
        .send(Req::get(&format!("{docb}/content")).cookie(&s))
        .await;
    assert_eq!(r.body, b"the model");
    let url = t
        .send(
            Req::post(&format!("{docb}/links")).cookie(&s).json(
                json!({"expires_in_seconds": 3600, "recipient_email": "zed@outside.example"}),
            ),
        )
        .await
        .json()["url"]
        .as_str()
        .expect("url")
        .to_string();
    let share = url.trim_start_matches("http://strongroom.test").to_string();
    let page = t
        .send(Req::post(&share).form(&[("step", "email"), ("email", "zed@outside.example")]))
        .await
        .text();
    let code_id = crate::documents::code_id_in(&page);
    let code = crate::documents::mailed_code(&t, "zed@outside.example").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    t.send(Req::post(&share).form(&[("step", "code"), ("code_id", &code_id), ("code", wrong)]))
        .await;
    let r = t
        .send(Req::post(&share).form(&[("step", "code"), ("code_id", &code_id), ("code", &code)]))
        .await;
    let grant = crate::documents::grant_in(&r);
    let r = t.send(Req::get(&share).header("cookie", &grant)).await;
    assert_eq!(r.body, b"the model");
    let link = t
        .send(Req::get(&format!("{docb}/links")).cookie(&s))
        .await
        .json()[0]["id"]
        .as_str()
        .expect("link")
        .to_string();
    t.send(Req::delete(&format!("{docb}/links/{link}")).cookie(&s))
        .await;
    let r = t.send(Req::delete(&docb).cookie(&s)).await;
    assert_eq!(r.status, axum::http::StatusCode::NO_CONTENT);
    let r = t
        .send(Req::delete(&format!("{wsb}/folders/{folder}")).cookie(&s))
        .await;
    assert_eq!(r.status, axum::http::StatusCode::NO_CONTENT);
    let r = t.send(Req::delete(&wsb).cookie(&s)).await;
    assert_eq!(r.status, axum::http::StatusCode::NO_CONTENT);
    t.send(Req::delete(&format!("/api/v1/orgs/{org}/members/{yan_id}")).cookie(&s))
        .await;
    // The platform superadmin, granted on the command line, reads the org with a reason.
    strongroom::tenancy::admin::grant_superadmin(&t.app, "yan@example.com")
        .await
        .expect("grant");
    let r = t
        .send(
            Req::post(&format!("/api/v1/admin/orgs/{org}"))
                .cookie(&yan)
                .json(json!({"reason": "audit coverage check"})),
        )
        .await;
    assert_eq!(r.status, axum::http::StatusCode::OK, "{}", r.text());
    // An API key: made, refused from outside its network (no actor: the key is the target), and
    // revoked.
    let k = t
        .send(
            Req::post(&format!("/api/v1/orgs/{org}/api-keys"))
                .cookie(&s)
                .json(json!({"name": "CI", "scopes": ["items:read"], "allowed_networks": ["192.0.2.0/24"]})),
        )
        .await
        .json();
    let key_id = k["id"].as_str().expect("key id").to_string();
    let r = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/workspaces")).header(
            "authorization",
            &format!("Bearer {}", k["key"].as_str().expect("key")),
        ))
        .await;
    assert_eq!(r.status, axum::http::StatusCode::UNAUTHORIZED);
    let r = t
        .send(Req::delete(&format!("/api/v1/orgs/{org}/api-keys/{key_id}")).cookie(&s))
        .await;
    assert_eq!(r.status, axum::http::StatusCode::NO_CONTENT);
    // A webhook endpoint: made, tested, disabled by its failure (no actor), redelivered,
    // enabled, its secret rotated, deleted.
    let hooks = format!("/api/v1/orgs/{org}/webhooks");
    let hook = t
        .send(
            Req::post(&hooks)
                .cookie(&s)
                .json(json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("webhook")
        .to_string();
    t.send(Req::post(&format!("{hooks}/{hook}/test")).cookie(&s))
        .await;
    strongroom::tenancy::webhooks::run_once(&t.app)
        .await
        .expect("delivery loop");
    let delivery = t
        .send(Req::get(&format!("{hooks}/{hook}/deliveries")).cookie(&s))
        .await
        .json()["items"][0]["id"]
        .as_str()
        .expect("delivery")
        .to_string();
    for path in [
        format!("{hooks}/{hook}/deliveries/{delivery}/redeliver"),
        format!("{hooks}/{hook}/enable"),
        format!("{hooks}/{hook}/rotate-secret"),
    ] {
        let r = t.send(Req::post(&path).cookie(&s)).await;
        assert!(r.status.is_success(), "{path}: {}", r.text());
    }
    let r = t
        .send(Req::delete(&format!("{hooks}/{hook}")).cookie(&s))
        .await;
    assert_eq!(r.status, axum::http::StatusCode::NO_CONTENT);
    // A verified billing event sets the org's plan (no actor: Stripe).
    let now = i64::try_from(t.clock_secs()).expect("secs");
    let body = crate::billing::event(
        "evt_a",
        "customer.subscription.created",
        &org,
        "cus_a",
        "team",
        "active",
    );
    let r = t
        .send(
            Req::post("/api/v1/billing/stripe-webhook")
                .raw("application/json", body.clone().into_bytes())
                .header(
                    "stripe-signature",
                    &crate::billing::stripe_signature(crate::billing::SECRET, now, &body),
                ),
        )
        .await;
    assert_eq!(r.status, axum::http::StatusCode::OK, "{}", r.text());
    // An admin exports the trail (itself an audited data export).
    let r = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/audit-events/export")).cookie(&s))
        .await;
    assert_eq!(r.status, axum::http::StatusCode::OK, "{}", r.text());
    let r = t
        .send(Req::delete(&format!("/api/v1/orgs/{org}")).cookie(&s))
        .await;
    assert_eq!(r.status, axum::http::StatusCode::NO_CONTENT);

    let events = t.chain("platform").await;
    let org_events = t.chain(&org).await;
    assert_eq!(strongroom::audit::first_bad_seq(&org_events), None);
    for e in &org_events {
        if e.action == "invitation.opted_out" {
            assert_eq!(e.actor_id, None);
            assert_eq!(e.target_id.as_deref(), Some(org.as_str()));
            continue;
        }
        if e.action == "api_key.refused" {
            assert_eq!(e.actor_id, None);
            assert_eq!(e.target_id.as_deref(), Some(key_id.as_str()));
            continue;
        }
        if e.action == "billing.plan_changed" {
            assert_eq!(e.actor_id, None);
            assert_eq!(e.target_id.as_deref(), Some(org.as_str()));
            continue;
        }
        // The delivery loop disables an endpoint on its own.
        if e.action == "webhook.disabled" {
            assert_eq!(e.actor_id, None);
            assert_eq!(e.target_id.as_deref(), Some(hook.as_str()));
            continue;
        }
        // Whoever holds a share link acts without an account: the link is the target.
        if e.action.starts_with("share_link.")
            && e.action != "share_link.created"
            && e.action != "share_link.revoked"
        {
            assert_eq!(e.actor_id, None, "{}", e.action);
            assert_eq!(e.target_type.as_deref(), Some("share_link"), "{}", e.action);
            assert_eq!(e.target_id.as_deref(), Some(link.as_str()), "{}", e.action);
            continue;
        }
        let want = if matches!(
            e.action.as_str(),
            "invitation.accepted" | "superadmin.bypass"
        ) {
            &yan_id
        } else {
            &uid_of(&events)
        };
        assert_eq!(e.actor_id.as_deref(), Some(want.as_str()), "{}", e.action);
        assert!(
            e.target_type.is_some() && e.target_id.is_some(),
            "{} has a target",
            e.action
        );
    }
    let platform_only: Vec<&str> = events
        .iter()
        .map(|e| e.action.as_str())
        .filter(|a| !a.starts_with("auth.") && a.contains("org"))
        .collect();
    assert!(
        platform_only.is_empty(),
        "org events stay in the org chain: {platform_only:?}"
    );
    let emitted: BTreeSet<&str> = events
        .iter()
        .chain(&org_events)
        .map(|e| e.action.as_str())
        .collect();
    // Passkey actions need a WebAuthn authenticator: the browser test performs and checks them.
    let browser_only = [
        Action::PasskeyAdded,
        Action::PasskeyRenamed,
        Action::PasskeyRemoved,
    ];
    // Retention runs two years later, at the end of this test; key rotations are the operator's
    // commands, checked by the key rotation tests.
    let later = [
        // After the grace period: the erasure tests check it.
        Action::AccountErased,
        Action::AuditRetentionCheckpoint,
        Action::KeysMasterRotated,
        Action::KeysOrgRotationStarted,
        Action::KeysOrgRotated,
    ];
    let all: BTreeSet<&str> = Action::ALL
        .iter()
        .filter(|a| !browser_only.contains(a) && !later.contains(a))
        .map(|a| a.as_str())
        .collect();
    assert_eq!(
        emitted, all,
        "every action in the table, and nothing outside it"
    );
    let uid = events
        .iter()
        .find(|e| e.action == "user.signup")
        .and_then(|e| e.actor_id.clone())
        .expect("actor");
    for e in events.iter().filter(|e| {
        e.actor_id.as_deref() != Some(yan_id.as_str()) && e.action != "superadmin.granted"
    }) {
        assert_eq!(
            e.actor_id.as_deref(),
            Some(uid.as_str()),
            "{} has the user as actor",
            e.action
        );
        assert!(e.target_type.is_some(), "{} has a target", e.action);
        assert!(
            e.ip.as_deref().is_some_and(|ip| ip.ends_with(".0")),
            "{} has a masked IP",
            e.action
        );
    }
    let granted = events
        .iter()
        .find(|e| e.action == "superadmin.granted")
        .expect("granted");
    assert_eq!(
        (granted.actor_id.as_deref(), granted.target_id.as_deref()),
        (None, Some(yan_id.as_str())),
        "granted on the command line"
    );
    let revoked: Vec<_> = events
        .iter()
        .filter(|e| e.action == "session.revoked")
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].target_id.as_deref(), Some(b_id.as_str()));
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "user.password_reset_requested")
            .count(),
        2
    );
    assert_eq!(strongroom::audit::first_bad_seq(&events), None);
    let exported: Vec<_> = org_events
        .iter()
        .filter(|e| e.action == "audit.exported")
        .collect();
    assert_eq!(exported.len(), 1);
    assert_eq!(
        (
            exported[0].target_type.as_deref(),
            exported[0].target_id.as_deref()
        ),
        (Some("org"), Some(org.as_str()))
    );

    // Retention, two years on: each chain gets exactly one checkpoint, by nobody, on the chain.
    t.clock.advance_secs(731 * 24 * 3600);
    let removed = strongroom::audit::retention::run_once(&t.app.retention_job())
        .await
        .expect("retention");
    assert_eq!(removed.len(), 2, "{removed:?}");
    for chain in ["platform", org.as_str()] {
        let after = t.chain(chain).await;
        let checkpoints: Vec<_> = after
            .iter()
            .filter(|e| e.action == "audit.retention_checkpoint")
            .collect();
        assert_eq!(checkpoints.len(), 1, "{chain}");
        assert_eq!(checkpoints[0].actor_id, None);
        assert_eq!(
            (
                checkpoints[0].target_type.as_deref(),
                checkpoints[0].target_id.clone()
            ),
            (Some("audit_chain"), Some(chain.to_string()))
        );
    }
}

fn uid_of(events: &[strongroom::audit::StoredEvent]) -> String {
    events
        .iter()
        .find(|e| e.action == "user.signup")
        .and_then(|e| e.actor_id.clone())
        .expect("signup actor")
}

/// Sends `r` (which must succeed) and checks that exactly one event was appended across `chains`:
/// `want` = (chain, action, actor id, (target type, target id; "" = the `id` in the answer)).
async fn exactly_one(
    t: &TestApp,
    chains: &[&str],
    r: Req,
    want: (&str, &str, Option<&str>, (&str, &str)),
) -> serde_json::Value {
    let mut before = Vec::new();
    for c in chains {
        before.push(t.chain(c).await.len());
    }
    let res = t.send(r).await;
    assert!(
        res.status.is_success(),
        "{}: {} {}",
        want.1,
        res.status,
        res.text()
    );
    let mut new = Vec::new();
    for (c, n) in chains.iter().zip(before) {
        new.extend(t.chain(c).await.into_iter().skip(n));
    }
    assert_eq!(
        new.len(),
        1,
        "{}: exactly one event, got {:?}",
        want.1,
        new.iter().map(|e| &e.action).collect::<Vec<_>>()
    );
    let e = &new[0];
    let body = if res.header("content-type").as_deref() == Some("application/json") {
        res.json()
    } else {
        serde_json::Value::Null
    };
    let answered = body["id"].as_str().unwrap_or_default().to_string();
    let want_target = if want.3 .1.is_empty() {
        answered.as_str()
    } else {
        want.3 .1
    };
    assert!(!want_target.is_empty(), "{}: a target to expect", want.1);
    assert_eq!(
        (
            e.chain.as_str(),
            e.action.as_str(),
            e.actor_id.as_deref(),
            (e.target_type.as_deref(), e.target_id.as_deref())
        ),
        (want.0, want.1, want.2, (Some(want.3 .0), Some(want_target))),
    );
    body
}

/// Each change to an org and its contents, one request at a time: one event, the right action,
/// actor, target and chain, nothing else.
#[tokio::test]
async fn each_org_action_appends_exactly_one_event_to_the_org_chain() {
    let t = TestApp::new().await;
    t.verified_user("owner@example.com", "Owner").await;
    let s = t.login("owner@example.com").await;
    let me = t.me(&s).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let org = t
        .send(
            Req::post("/api/v1/orgs")
                .cookie(&s)
                .json(json!({"name": "Acme"})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let o = format!("/api/v1/orgs/{org}");
    let chains = ["platform", org.as_str()];
    let one = |r: Req, action: &'static str, target: (&'static str, String)| {
        let (t, me, org, chains) = (&t, me.clone(), org.clone(), chains);
        async move {
            exactly_one(
                t,
                &chains,
                r,
                (
                    org.as_str(),
                    action,
                    Some(me.as_str()),
                    (target.0, target.1.as_str()),
                ),
            )
            .await
        }
    };
    let patch = |p: &str| Req::new(axum::http::Method::PATCH, p).cookie(&s);
    one(
        patch(&o).json(json!({"name": "Acme Ltd"})),
        "org.updated",
        ("org", org.clone()),
    )
    .await;
    let inv_id = one(
        Req::post(&format!("{o}/invitations"))
            .cookie(&s)
            .json(json!({"email": "yan@example.com", "role": "member"})),
        "invitation.created",
        ("invitation", String::new()),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string();
    one(
        Req::delete(&format!("{o}/invitations/{inv_id}")).cookie(&s),
        "invitation.revoked",
        ("invitation", inv_id.clone()),
    )
    .await;
    let ws = one(
        Req::post(&format!("{o}/workspaces"))
            .cookie(&s)
            .json(json!({"name": "Room", "kind": "board"})),
        "workspace.created",
        ("workspace", String::new()),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let w = format!("{o}/workspaces/{ws}");
    one(
        patch(&w).json(json!({"name": "Room 2"})),
        "workspace.updated",
        ("workspace", ws.clone()),
    )
    .await;
    let item = one(
        Req::post(&format!("{w}/items"))
            .cookie(&s)
            .json(json!({"title": "A"})),
        "item.created",
        ("item", String::new()),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let i = format!("{w}/items/{item}");
    one(
        patch(&i).json(json!({"title": "B"})),
        "item.updated",
        ("item", item.clone()),
    )
    .await;
    one(
        Req::post(&format!("{i}/updates"))
            .cookie(&s)
            .json(json!({"body": "Hi"})),
        "comment.created",
        ("comment", String::new()),
    )
    .await;
    one(
        Req::delete(&i).cookie(&s),
        "item.deleted",
        ("item", item.clone()),
    )
    .await;
    one(
        Req::get(&format!("{o}/audit-events/export")).cookie(&s),
        "audit.exported",
        ("org", org.clone()),
    )
    .await;
    one(
        Req::delete(&w).cookie(&s),
        "workspace.deleted",
        ("workspace", ws.clone()),
    )
    .await;
    // A member joins; their role changes; they are removed; the org is deleted.
    let invite = t
        .send(
            Req::post(&format!("{o}/invitations"))
                .cookie(&s)
                .json(json!({"email": "kim@example.com", "role": "member"})),
        )
        .await;
    assert!(invite.status.is_success());
    let token = t
        .mail_to("kim@example.com")
        .await
        .token("/invitations/accept");
    t.verified_user("kim@example.com", "Kim").await;
    let kim = t.login("kim@example.com").await;
    let kim_id = t.me(&kim).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let accepted = exactly_one(
        &t,
        &chains,
        Req::post("/api/v1/invitations/accept")
            .cookie(&kim)
            .json(json!({ "token": token })),
        (
            org.as_str(),
            "invitation.accepted",
            Some(kim_id.as_str()),
            ("invitation", invite.json()["id"].as_str().expect("id")),
        ),
    )
    .await;
    assert!(accepted.is_object());
    one(
        patch(&format!("{o}/members/{kim_id}")).json(json!({"role": "admin"})),
        "member.role_changed",
        ("user", kim_id.clone()),
    )
    .await;
    one(
        Req::delete(&format!("{o}/members/{kim_id}")).cookie(&s),
        "member.removed",
        ("user", kim_id.clone()),
    )
    .await;
    // Reading the trail, or verifying it, records nothing.
    for p in ["audit-events", "audit-events/verify"] {
        let before = t.chain(&org).await.len();
        let r = t.send(Req::get(&format!("{o}/{p}")).cookie(&s)).await;
        assert_eq!(r.status, axum::http::StatusCode::OK);
        assert_eq!(t.chain(&org).await.len(), before, "{p}");
    }
}
