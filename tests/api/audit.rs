//! Every auditable action that exists today is emitted, once, with the right actor and target.

use std::collections::BTreeSet;

use serde_json::json;
use strongroom::audit::Action;

use crate::support::{Req, TestApp, PASSWORD};

#[tokio::test]
async fn every_action_in_the_table_is_emitted_with_actor_and_target() {
    let t = TestApp::new().await;
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
    // Retention runs two years later, at the end of this test.
    let later = [Action::AuditRetentionCheckpoint];
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
    let removed = strongroom::audit::retention::run_once(&t.app)
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
