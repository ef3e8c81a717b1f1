//! API keys from the attacker's side: the key is shown once and stored hashed; revoked, expired,
//! malformed and foreign keys get nothing; management, account and session routes are closed to
//! keys; the key's rate limit and client networks hold; members cannot make keys; a creator who
//! loses the admin role or leaves takes their keys along. (Every route × every scope is in the
//! isolation matrix, `matrix.rs`.) On SQLite and PostgreSQL.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Req, TestApp};

use crate::documents::{room as org, Room as Org};

async fn make_key(t: &TestApp, o: &Org, body: Value) -> Value {
    let r = t
        .send(
            Req::post(&format!("/api/v1/orgs/{}/api-keys", o.org))
                .cookie(&o.owner)
                .json(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

fn bearer(r: Req, key: &Value) -> Req {
    r.header(
        "authorization",
        &format!("Bearer {}", key["key"].as_str().expect("key")),
    )
}

fn items(o: &Org) -> String {
    format!("{}/items", o.base)
}

#[tokio::test]
async fn a_key_is_shown_once_stored_hashed_and_works_within_its_org_and_scopes() {
    let t = TestApp::new().await;
    let o = org(&t, "owner@example.com").await;
    let k = make_key(
        &t,
        &o,
        json!({"name": "Zapier", "scopes": ["items:read", "items:write"]}),
    )
    .await;
    let key = k["key"].as_str().expect("key").to_string();
    let prefix = k["prefix"].as_str().expect("prefix").to_string();
    assert!(key.starts_with(&format!("{prefix}_")), "{key} {prefix}");
    assert_eq!(k["scopes"], json!(["items:read", "items:write"]));
    // Nowhere in the database, nor in the list.
    // After the prefix: the secret itself may hold '_' (base64url).
    let secret = key[prefix.len() + 1..].to_string();
    assert!(secret.len() >= 43, "{secret}");
    {
        use sqlx::Row;
        let row = sqlx::query("SELECT * FROM api_keys")
            .fetch_one(&mut *t.app.db.acquire().await.expect("conn"))
            .await
            .expect("row");
        for i in 0..row.len() {
            if let Ok(Some(v)) = row.try_get::<Option<String>, _>(i) {
                assert!(!v.contains(&secret), "column {i} holds the secret");
            }
        }
    }
    let list = t
        .send(Req::get(&format!("/api/v1/orgs/{}/api-keys", o.org)).cookie(&o.owner))
        .await;
    assert!(!list.text().contains(&secret));
    assert_eq!(list.json()["items"][0]["prefix"], json!(prefix));

    // It writes and reads items, and the audit trail names the key.
    let r = t
        .send(bearer(
            Req::post(&items(&o)).json(json!({"title": "From a key"})),
            &k,
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = t.send(bearer(Req::get(&items(&o)), &k)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["items"][0]["title"], "From a key");
    let created = t
        .chain(&o.org)
        .await
        .into_iter()
        .find(|e| e.action == "item.created")
        .expect("item.created");
    assert_eq!(
        created.metadata["api_key_id"], k["id"],
        "{}",
        created.metadata
    );
    // Search reaches comments too: it takes items:read and updates:read.
    let search = format!("/api/v1/orgs/{}/search?q=key", o.org);
    let r = t.send(bearer(Req::get(&search), &k)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let both = make_key(
        &t,
        &o,
        json!({"name": "search", "scopes": ["items:read", "updates:read"]}),
    )
    .await;
    let r = t.send(bearer(Req::get(&search), &both)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Without the scope: 403; the key's last use is recorded, masked.
    let r = t
        .send(bearer(
            Req::get(&format!("/api/v1/orgs/{}/workspaces", o.org)),
            &k,
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.json()["code"], "insufficient_scope");
    let list = t
        .send(Req::get(&format!("/api/v1/orgs/{}/api-keys", o.org)).cookie(&o.owner))
        .await
        .json();
    assert_eq!(list["items"][0]["last_used_ip"], "203.0.113.0");
    assert!(list["items"][0]["last_used_at"].is_string());
}

#[tokio::test]
async fn revoked_expired_malformed_and_foreign_keys_get_nothing() {
    let t = TestApp::new().await;
    let o = org(&t, "owner@example.com").await;
    let other = org(&t, "other@example.com").await;
    let k = make_key(&t, &o, json!({"name": "k", "scopes": ["items:read"]})).await;
    let soon = strongroom::clock::rfc3339((t.clock_secs() as i64 + 3600) * 1000);
    let short = make_key(
        &t,
        &o,
        json!({"name": "short", "scopes": ["items:read"], "expires_at": soon}),
    )
    .await;
    assert_eq!(
        t.send(bearer(Req::get(&items(&o)), &k)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        t.send(bearer(Req::get(&items(&o)), &short)).await.status,
        StatusCode::OK
    );
    // Another org's workspace: as if it did not exist.
    let r = t.send(bearer(Req::get(&items(&other)), &k)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    // Malformed or made up: 401, cookie or not.
    let key = k["key"].as_str().expect("key");
    for bad in [
        "srk_".to_string(),
        format!("{key}x"),
        key.replacen("srk_", "sk_", 1),
        format!(
            "srk_000000000000_{}",
            key.splitn(3, '_').nth(2).expect("secret")
        ),
        "Bearer".to_string(),
    ] {
        let r = t
            .send(
                Req::get(&items(&o))
                    .cookie(&o.owner)
                    .header("authorization", &format!("Bearer {bad}")),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}: {}", r.text());
    }
    // Expired: an hour later.
    t.clock.advance_secs(3601);
    assert_eq!(
        t.send(bearer(Req::get(&items(&o)), &short)).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Revoked: at once (by the owner, signed in again after the hour).
    let owner = t.login("owner@example.com").await;
    let r = t
        .send(
            Req::delete(&format!(
                "/api/v1/orgs/{}/api-keys/{}",
                o.org,
                k["id"].as_str().expect("id")
            ))
            .cookie(&owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(
        t.send(bearer(Req::get(&items(&o)), &k)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let list = t
        .send(Req::get(&format!("/api/v1/orgs/{}/api-keys", o.org)).cookie(&owner))
        .await
        .json();
    let states: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|k| k["status"].as_str().expect("status"))
        .collect();
    assert_eq!(states, ["expired", "revoked"]);
}

#[tokio::test]
async fn keys_never_reach_account_session_mfa_or_management_routes() {
    let t = TestApp::new().await;
    let o = org(&t, "owner@example.com").await;
    let all = [
        "workspaces:read",
        "workspaces:write",
        "items:read",
        "items:write",
        "updates:read",
        "updates:write",
        "documents:read",
        "documents:write",
        "audit:read",
    ];
    let k = make_key(&t, &o, json!({"name": "everything", "scopes": all})).await;
    let org_path = format!("/api/v1/orgs/{}", o.org);
    for (method, path, body) in [
        (Method::GET, "/api/v1/me".to_string(), Value::Null),
        (Method::GET, "/api/v1/me/sessions".to_string(), Value::Null),
        (Method::POST, "/api/v1/me/mfa/totp".to_string(), Value::Null),
        (Method::GET, "/api/v1/orgs".to_string(), Value::Null),
        (
            Method::POST,
            "/api/v1/orgs".to_string(),
            json!({"name": "Key org"}),
        ),
        (Method::GET, format!("{org_path}/api-keys"), Value::Null),
        (
            Method::POST,
            format!("{org_path}/api-keys"),
            json!({"name": "child", "scopes": ["items:read"]}),
        ),
        (
            Method::POST,
            format!("{org_path}/invitations"),
            json!({"email": "x@example.com", "role": "admin"}),
        ),
        (
            Method::PATCH,
            org_path.clone(),
            json!({"name": "Renamed by a key"}),
        ),
        (Method::DELETE, org_path.clone(), Value::Null),
        (Method::POST, "/api/v1/auth/logout".to_string(), Value::Null),
    ] {
        let mut req = Req::new(method.clone(), &path);
        if !body.is_null() {
            req = req.json(body);
        }
        let r = t.send(bearer(req, &k)).await;
        assert!(
            matches!(r.status, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED),
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
    }
    // Nothing changed: one key, the org's name as it was.
    let list = t
        .send(Req::get(&format!("{org_path}/api-keys")).cookie(&o.owner))
        .await
        .json();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let org = t.send(Req::get(&org_path).cookie(&o.owner)).await.json();
    assert_eq!(org["name"], "Deal Co");
    // A page with a key is not a signed-in page.
    let r = t
        .send(bearer(Req::get("/").header("accept", "text/html"), &k))
        .await;
    assert!(!r.text().contains("Sign out"), "{}", r.status);
}

#[tokio::test]
async fn a_keys_rate_limit_and_networks_hold_and_refusals_are_audited() {
    let t = TestApp::new().await;
    let o = org(&t, "owner@example.com").await;
    let k = make_key(
        &t,
        &o,
        json!({"name": "slow", "scopes": ["items:read"], "rate_limit_per_minute": 3}),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            t.send(bearer(Req::get(&items(&o)), &k)).await.status,
            StatusCode::OK
        );
    }
    let r = t.send(bearer(Req::get(&items(&o)), &k)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    // A minute later it may go on.
    t.clock.advance_secs(61);
    assert_eq!(
        t.send(bearer(Req::get(&items(&o)), &k)).await.status,
        StatusCode::OK
    );

    let net = make_key(&t, &o, json!({"name": "office", "scopes": ["items:read"], "allowed_networks": ["198.51.100.0/24", "2001:db8::/32"]})).await;
    let r = t
        .send(bearer(Req::get(&items(&o)).ip("198.51.100.77"), &net))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = t
        .send(bearer(Req::get(&items(&o)).ip("2001:db8::5"), &net))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = t
        .send(bearer(Req::get(&items(&o)).ip("192.0.2.1"), &net))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let refused: Vec<_> = t
        .chain(&o.org)
        .await
        .into_iter()
        .filter(|e| e.action == "api_key.refused")
        .collect();
    assert_eq!(refused.len(), 1);
    // Tried again and again from elsewhere: always refused, recorded up to a bound per key.
    for i in 0..15 {
        let r = t
            .send(bearer(
                Req::get(&items(&o)).ip(&format!("192.0.2.{}", i + 2)),
                &net,
            ))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let recorded = t
        .chain(&o.org)
        .await
        .into_iter()
        .filter(|e| e.action == "api_key.refused")
        .count();
    assert_eq!(recorded, 10, "the chain is not flooded");
    assert_eq!(refused[0].target_id.as_deref(), net["id"].as_str());
    assert_eq!(refused[0].ip.as_deref(), Some("192.0.2.0"), "masked");
}

#[tokio::test]
async fn only_admins_make_keys_and_bad_requests_change_nothing() {
    let t = TestApp::new().await;
    let o = org(&t, "owner@example.com").await;
    t.verified_user("member@example.com", "Member").await;
    let member = t.login("member@example.com").await;
    t.join(&o.owner, &o.org, "member@example.com", "member", &member)
        .await;
    let path = format!("/api/v1/orgs/{}/api-keys", o.org);
    let r = t
        .send(
            Req::post(&path)
                .cookie(&member)
                .json(json!({"name": "mine", "scopes": ["items:read"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(
        t.send(Req::get(&path).cookie(&member)).await.status,
        StatusCode::FORBIDDEN
    );
    for (body, code) in [
        (json!({"name": "x", "scopes": []}), "invalid_scope"),
        (
            json!({"name": "x", "scopes": ["items:admin"]}),
            "invalid_scope",
        ),
        (
            json!({"name": "", "scopes": ["items:read"]}),
            "invalid_name",
        ),
        (
            json!({"name": "x", "scopes": ["items:read"], "expires_at": "2001-01-01T00:00:00Z"}),
            "invalid_expiry",
        ),
        (
            json!({"name": "x", "scopes": ["items:read"], "expires_at": "tomorrow"}),
            "invalid_expiry",
        ),
        (
            json!({"name": "x", "scopes": ["items:read"], "rate_limit_per_minute": 0}),
            "invalid_rate_limit",
        ),
        (
            json!({"name": "x", "scopes": ["items:read"], "allowed_networks": ["10.0.0.0/33"]}),
            "invalid_network",
        ),
    ] {
        let r = t
            .send(Req::post(&path).cookie(&o.owner).json(body.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text()
        );
        assert_eq!(r.json()["code"], code, "{body}");
    }
    let r = t
        .send(
            Req::post(&path)
                .cookie(&o.owner)
                .json(json!({"name": "x", "scopes": ["items:read"], "admin": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(t.count("api_keys").await, 0);
}

#[tokio::test]
async fn a_creator_who_stops_being_an_admin_or_leaves_takes_their_keys_along() {
    let t = TestApp::new().await;
    let o = org(&t, "owner@example.com").await;
    t.verified_user("admin@example.com", "Admin").await;
    let admin = t.login("admin@example.com").await;
    t.join(&o.owner, &o.org, "admin@example.com", "admin", &admin)
        .await;
    let admin_id = t.me(&admin).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let path = format!("/api/v1/orgs/{}/api-keys", o.org);
    let mk = |name: &str| {
        Req::post(&path)
            .cookie(&admin)
            .json(json!({"name": name, "scopes": ["workspaces:read"]}))
    };
    let k1 = t.send(mk("one")).await.json();
    let ws = format!("/api/v1/orgs/{}/workspaces", o.org);
    assert_eq!(
        t.send(bearer(Req::get(&ws), &k1)).await.status,
        StatusCode::OK
    );
    let r = t
        .send(
            Req::new(
                Method::PATCH,
                &format!("/api/v1/orgs/{}/members/{admin_id}", o.org),
            )
            .cookie(&o.owner)
            .json(json!({"role": "member"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        t.send(bearer(Req::get(&ws), &k1)).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Made admin again, a new key; then removed from the org.
    t.send(
        Req::new(
            Method::PATCH,
            &format!("/api/v1/orgs/{}/members/{admin_id}", o.org),
        )
        .cookie(&o.owner)
        .json(json!({"role": "admin"})),
    )
    .await;
    let k2 = t.send(mk("two")).await.json();
    assert_eq!(
        t.send(bearer(Req::get(&ws), &k2)).await.status,
        StatusCode::OK
    );
    let r = t
        .send(Req::delete(&format!("/api/v1/orgs/{}/members/{admin_id}", o.org)).cookie(&o.owner))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(
        t.send(bearer(Req::get(&ws), &k2)).await.status,
        StatusCode::UNAUTHORIZED
    );
}
