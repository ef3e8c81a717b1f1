//! Organizations, members and invitations, and tenant isolation from the attacker's side.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Req, TestApp};

async fn user(t: &TestApp, email: &str) -> String {
    t.verified_user(email, &email[..3]).await;
    t.login(email).await
}

async fn create_org(t: &TestApp, cookie: &str, name: &str) -> String {
    let r = t
        .send(
            Req::post("/api/v1/orgs")
                .cookie(cookie)
                .json(json!({ "name": name })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["role"], "owner");
    r.json()["id"].as_str().expect("id").to_string()
}

fn user_id(t: &TestApp, me: Value) -> String {
    let _ = t;
    me["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn orgs_are_created_listed_paginated_and_renamed_by_admins_only() {
    let t = TestApp::new().await;
    let owner = user(&t, "own@example.com").await;
    let ids: Vec<String> = futures_lite(&t, &owner).await;
    let r = t
        .send(Req::get("/api/v1/orgs?limit=2").cookie(&owner))
        .await
        .json();
    assert_eq!(r["items"].as_array().expect("items").len(), 2);
    let cursor = r["next_cursor"].as_str().expect("more").to_string();
    let r2 = t
        .send(Req::get(&format!("/api/v1/orgs?limit=2&cursor={cursor}")).cookie(&owner))
        .await
        .json();
    assert_eq!(r2["items"].as_array().expect("items").len(), 1);
    assert_eq!(r2["next_cursor"], Value::Null);
    let mut seen: Vec<String> = r["items"]
        .as_array()
        .expect("a")
        .iter()
        .chain(r2["items"].as_array().expect("b"))
        .map(|o| o["id"].as_str().expect("id").to_string())
        .collect();
    seen.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(
        t.send(Req::get("/api/v1/orgs?limit=500").cookie(&owner))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        t.send(Req::get("/api/v1/orgs?cursor=%%%").cookie(&owner))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let org = &ids[0];
    let member = user(&t, "mem@example.com").await;
    t.join(&owner, org, "mem@example.com", "member", &member)
        .await;
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&member))
            .await
            .json()["role"],
        "member"
    );
    let rename = |c: &str| {
        Req::new(Method::PATCH, &format!("/api/v1/orgs/{org}"))
            .cookie(c)
            .json(json!({"name": "Renamed"}))
    };
    assert_eq!(t.send(rename(&member)).await.status, StatusCode::FORBIDDEN);
    let r = t.send(rename(&owner)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["name"], "Renamed");
}

async fn futures_lite(t: &TestApp, owner: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for n in ["Alpha", "Beta", "Gamma"] {
        ids.push(create_org(t, owner, n).await);
    }
    ids
}

#[tokio::test]
async fn a_foreign_org_is_not_found_on_every_route() {
    let t = TestApp::new().await;
    let alice = user(&t, "ali@example.com").await;
    let mallory = user(&t, "mal@example.com").await;
    let org = create_org(&t, &alice, "Alice Corp").await;
    let inv = t
        .send(
            Req::post(&format!("/api/v1/orgs/{org}/invitations"))
                .cookie(&alice)
                .json(json!({"email": "x@example.com", "role": "member"})),
        )
        .await
        .json();
    let inv_id = inv["id"].as_str().expect("id").to_string();
    let alice_id = user_id(&t, t.me(&alice).await.json());
    let routes = [
        (Method::GET, format!("/api/v1/orgs/{org}")),
        (Method::PATCH, format!("/api/v1/orgs/{org}")),
        (Method::DELETE, format!("/api/v1/orgs/{org}")),
        (Method::GET, format!("/api/v1/orgs/{org}/members")),
        (
            Method::PATCH,
            format!("/api/v1/orgs/{org}/members/{alice_id}"),
        ),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{org}/members/{alice_id}"),
        ),
        (Method::POST, format!("/api/v1/orgs/{org}/invitations")),
        (Method::GET, format!("/api/v1/orgs/{org}/invitations")),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{org}/invitations/{inv_id}"),
        ),
    ];
    let body = json!({"name": "Pwned", "role": "owner", "email": "mal@example.com"});
    for (m, p) in &routes {
        let r = t
            .send(Req::new(m.clone(), p).cookie(&mallory).json(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {p}: {}", r.text());
        assert_eq!(r.code(), "not_found");
        // Anonymous callers are told to sign in, and learn nothing either.
        let r = t.send(Req::new(m.clone(), p).json(body.clone())).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{m} {p}");
    }
    // A made-up org id looks exactly like a real foreign one.
    let fake = uuid::Uuid::now_v7();
    let a = t
        .send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&mallory))
        .await;
    let b = t
        .send(Req::get(&format!("/api/v1/orgs/{fake}")).cookie(&mallory))
        .await;
    assert_eq!(a.body, b.body);
    assert_eq!(
        t.send(Req::get("/api/v1/orgs/not-a-uuid").cookie(&mallory))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Nothing changed.
    let r = t
        .send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&alice))
        .await
        .json();
    assert_eq!(r["name"], "Alice Corp");
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}/invitations")).cookie(&alice))
            .await
            .json()["items"][0]["status"],
        "pending"
    );
}

#[tokio::test]
async fn ids_from_another_org_are_not_found_inside_mine() {
    let t = TestApp::new().await;
    let alice = user(&t, "ali@example.com").await;
    let bob = user(&t, "bob@example.com").await;
    let a = create_org(&t, &alice, "A").await;
    let b = create_org(&t, &bob, "B").await;
    let bob_id = user_id(&t, t.me(&bob).await.json());
    let inv_b = t
        .send(
            Req::post(&format!("/api/v1/orgs/{b}/invitations"))
                .cookie(&bob)
                .json(json!({"email": "z@example.com", "role": "member"})),
        )
        .await
        .json();
    let inv_b = inv_b["id"].as_str().expect("id").to_string();
    let r = t
        .send(
            Req::new(Method::PATCH, &format!("/api/v1/orgs/{a}/members/{bob_id}"))
                .cookie(&alice)
                .json(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        t.send(Req::delete(&format!("/api/v1/orgs/{a}/members/{bob_id}")).cookie(&alice))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.send(Req::delete(&format!("/api/v1/orgs/{a}/invitations/{inv_b}")).cookie(&alice))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = t
        .send(Req::get(&format!("/api/v1/orgs/{b}/invitations")).cookie(&bob))
        .await
        .json();
    assert_eq!(
        r["items"][0]["status"], "pending",
        "B's invitation untouched"
    );
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{b}/members")).cookie(&bob))
            .await
            .json()["items"][0]["role"],
        "owner"
    );
}

#[tokio::test]
async fn invitations_are_single_use_expire_and_need_the_invited_account() {
    let t = TestApp::new().await;
    let owner = user(&t, "own@example.com").await;
    let org = create_org(&t, &owner, "Org").await;
    let invite = |email: &str| {
        Req::post(&format!("/api/v1/orgs/{org}/invitations"))
            .cookie(&owner)
            .json(json!({"email": email, "role": "admin"}))
    };
    t.send(invite("dan@example.com")).await;
    let token = t
        .mail_to("dan@example.com")
        .await
        .token("/invitations/accept");
    let eve = user(&t, "eve@example.com").await;
    let accept = |c: &str, tok: &str| {
        Req::post("/api/v1/invitations/accept")
            .cookie(c)
            .json(json!({ "token": tok }))
    };
    let r = t.send(accept(&eve, &token)).await;
    assert_eq!(r.code(), "invalid_token", "another account cannot use it");
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&eve))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let dan = user(&t, "dan@example.com").await;
    assert_eq!(t.send(accept(&dan, &token)).await.json()["role"], "admin");
    assert_eq!(
        t.send(accept(&dan, &token)).await.code(),
        "invalid_token",
        "replay"
    );
    assert_eq!(
        t.send(Req::post("/api/v1/invitations/accept").json(json!({ "token": token })))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    t.send(invite("fay@example.com")).await;
    let late = t
        .mail_to("fay@example.com")
        .await
        .token("/invitations/accept");
    let r = t.send(invite("gus@example.com")).await.json();
    let revoked = t
        .mail_to("gus@example.com")
        .await
        .token("/invitations/accept");
    let id = r["id"].as_str().expect("id");
    assert_eq!(
        t.send(Req::delete(&format!("/api/v1/orgs/{org}/invitations/{id}")).cookie(&owner))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let gus = user(&t, "gus@example.com").await;
    assert_eq!(t.send(accept(&gus, &revoked)).await.code(), "invalid_token");
    t.clock.advance_secs(7 * 24 * 3600 + 1);
    let fay = user(&t, "fay@example.com").await;
    assert_eq!(t.send(accept(&fay, &late)).await.code(), "invalid_token");
    let owner = t.login("own@example.com").await; // the old session is long expired
    let list = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/invitations")).cookie(&owner))
        .await
        .json();
    let statuses: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["accepted", "expired", "revoked"]);
}

#[tokio::test]
async fn roles_guard_roles_and_the_last_owner_stays() {
    let t = TestApp::new().await;
    let owner = user(&t, "own@example.com").await;
    let org = create_org(&t, &owner, "Org").await;
    let admin = user(&t, "adm@example.com").await;
    t.join(&owner, &org, "adm@example.com", "admin", &admin)
        .await;
    let member = user(&t, "mem@example.com").await;
    t.join(&owner, &org, "mem@example.com", "member", &member)
        .await;
    let owner_id = user_id(&t, t.me(&owner).await.json());
    let member_id = user_id(&t, t.me(&member).await.json());
    let admin_id = user_id(&t, t.me(&admin).await.json());
    let set = |c: &str, uid: &str, role: &str| {
        Req::new(Method::PATCH, &format!("/api/v1/orgs/{org}/members/{uid}"))
            .cookie(c)
            .json(json!({ "role": role }))
    };

    // Members see masked emails; admins see them whole.
    let seen = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/members")).cookie(&member))
        .await
        .json();
    let emails: Vec<String> = seen["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["email"].as_str().expect("e").to_string())
        .collect();
    assert!(emails.iter().all(|e| e.contains("***")), "{emails:?}");
    let seen = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/members")).cookie(&admin))
        .await
        .json();
    assert!(seen["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|m| m["email"] == "own@example.com"));
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}/invitations")).cookie(&member))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    assert_eq!(
        t.send(set(&member, &admin_id, "member")).await.status,
        StatusCode::FORBIDDEN,
        "members change no roles"
    );
    assert_eq!(
        t.send(set(&admin, &member_id, "owner")).await.status,
        StatusCode::FORBIDDEN,
        "only owners make owners"
    );
    assert_eq!(
        t.send(set(&admin, &owner_id, "member")).await.status,
        StatusCode::FORBIDDEN,
        "only owners demote owners"
    );
    assert_eq!(
        t.send(set(&admin, &member_id, "admin")).await.json()["role"],
        "admin"
    );
    let r = t.send(set(&owner, &owner_id, "admin")).await;
    assert_eq!(r.code(), "last_owner");
    let r = t
        .send(Req::delete(&format!("/api/v1/orgs/{org}/members/{owner_id}")).cookie(&owner))
        .await;
    assert_eq!(r.code(), "last_owner", "the last owner cannot leave");
    assert_eq!(
        t.send(set(&owner, &admin_id, "owner")).await.json()["role"],
        "owner"
    );
    assert_eq!(
        t.send(Req::delete(&format!("/api/v1/orgs/{org}/members/{owner_id}")).cookie(&owner))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&owner))
            .await
            .status,
        StatusCode::NOT_FOUND,
        "gone after leaving"
    );
    let r = t
        .send(
            Req::post(&format!("/api/v1/orgs/{org}/invitations"))
                .cookie(&member)
                .json(json!({"email": "o@example.com", "role": "owner"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "an admin cannot invite owners"
    );
}

#[tokio::test]
async fn deleting_an_org_needs_the_owner_a_step_up_and_destroys_its_key() {
    let t = TestApp::new().await;
    let owner = user(&t, "own@example.com").await;
    let org = create_org(&t, &owner, "Doomed").await;
    let admin = user(&t, "adm@example.com").await;
    t.join(&owner, &org, "adm@example.com", "admin", &admin)
        .await;
    assert_eq!(
        t.send(Req::delete(&format!("/api/v1/orgs/{org}")).cookie(&admin))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    t.clock.advance_secs(11 * 60);
    assert_eq!(
        t.send(Req::delete(&format!("/api/v1/orgs/{org}")).cookie(&owner))
            .await
            .code(),
        "reauthentication_required"
    );
    t.send(
        Req::post("/api/v1/me/reauthenticate")
            .cookie(&owner)
            .json(json!({"password": crate::support::PASSWORD})),
    )
    .await;
    assert_eq!(
        t.send(Req::delete(&format!("/api/v1/orgs/{org}")).cookie(&owner))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&owner))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    use sqlx::Row;
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM data_keys WHERE id = $1")
        .bind(&org)
        .fetch_one(&mut *t.app.db.acquire().await.expect("conn"))
        .await
        .expect("q")
        .try_get("n")
        .expect("n");
    assert_eq!(n, 0, "the org's key is destroyed");
    let chain = t.chain(&org).await;
    assert_eq!(chain.last().map(|e| e.action.as_str()), Some("org.deleted"));
    assert_eq!(strongroom::audit::first_bad_seq(&chain), None);
}

#[tokio::test]
async fn the_database_itself_hides_other_tenants() {
    use sqlx::Row;
    let t = TestApp::new().await;
    let alice = user(&t, "ali@example.com").await;
    let bob = user(&t, "bob@example.com").await;
    let a = create_org(&t, &alice, "A").await;
    let b = create_org(&t, &bob, "B").await;
    for (c, o) in [(&alice, &a), (&bob, &b)] {
        t.send(
            Req::post(&format!("/api/v1/orgs/{o}/invitations"))
                .cookie(c)
                .json(json!({"email": "x@example.com", "role": "member"})),
        )
        .await;
    }
    let alice_id = user_id(&t, t.me(&alice).await.json());
    // A query that forgets its org filter, run through the app's own pool in A's context.
    let mut tx = crate::support::scoped_tx(&t.app, &a, &alice_id).await;
    let orgs: Vec<String> = sqlx::query("SELECT org_id FROM invitations")
        .fetch_all(&mut *tx)
        .await
        .expect("q")
        .into_iter()
        .map(|r| r.try_get("org_id").expect("o"))
        .collect();
    let members: Vec<String> = sqlx::query("SELECT org_id FROM org_members")
        .fetch_all(&mut *tx)
        .await
        .expect("q")
        .into_iter()
        .map(|r| r.try_get("org_id").expect("o"))
        .collect();
    tx.commit().await.expect("commit");
    if crate::support::backend_is_postgres() {
        assert_eq!(orgs, vec![a.clone()], "row-level security shows only A");
        assert_eq!(members, vec![a.clone()]);
        // Writes are held to the current org even where reads of one's own memberships are not:
        // inside A's context, B cannot be deleted, nor can the actor's membership in B.
        let bob_id = user_id(&t, t.me(&bob).await.json());
        let _ = bob_id;
        t.send(
            Req::post(&format!("/api/v1/orgs/{b}/invitations"))
                .cookie(&bob)
                .json(json!({"email": "ali@example.com", "role": "member"})),
        )
        .await;
        let token = t
            .new_mail()
            .await
            .into_iter()
            .rev()
            .find(|m| m.to == "ali@example.com")
            .expect("mail")
            .token("/invitations/accept");
        let r = t
            .send(
                Req::post("/api/v1/invitations/accept")
                    .cookie(&alice)
                    .json(json!({ "token": token })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let mut tx = crate::support::scoped_tx(&t.app, &a, &alice_id).await;
        let who: String = sqlx::query("SELECT CAST(current_user AS TEXT) AS u")
            .fetch_one(&mut *tx)
            .await
            .expect("q")
            .try_get("u")
            .expect("u");
        assert_eq!(who, "strongroom_app");
        let gone = sqlx::query("DELETE FROM orgs WHERE id = $1")
            .bind(&b)
            .execute(&mut *tx)
            .await
            .expect("q")
            .rows_affected();
        assert_eq!(gone, 0, "another org cannot be deleted from A's context");
        let left = sqlx::query("DELETE FROM org_members WHERE user_id = $1")
            .bind(&alice_id)
            .execute(&mut *tx)
            .await
            .expect("q")
            .rows_affected();
        assert_eq!(left, 1, "only the membership in A");
        let mine: i64 = sqlx::query("SELECT COUNT(*) AS n FROM org_members WHERE user_id = $1")
            .bind(&alice_id)
            .fetch_one(&mut *tx)
            .await
            .expect("q")
            .try_get("n")
            .expect("n");
        assert_eq!(
            mine, 1,
            "the membership in B is still there (and readable as one's own)"
        );
        tx.rollback().await.expect("rollback");
        // Without any tenant context, tenant tables are empty to the application.
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM invitations")
            .fetch_one(&mut *t.app.db.acquire().await.expect("conn"))
            .await
            .expect("q")
            .try_get("n")
            .expect("n");
        assert_eq!(n, 0);
        // And the application role cannot rewrite the audit trail, triggers aside.
        let e = sqlx::query("DELETE FROM audit_events")
            .execute(&mut *t.app.db.acquire().await.expect("writer"))
            .await
            .expect_err("refused");
        assert!(e.to_string().contains("permission denied"), "{e}");
    } else {
        // SQLite has the application wall only (README): the unfiltered query does see B.
        assert_eq!(orgs.len(), 2);
        assert!(orgs.contains(&b));
    }
}

#[tokio::test]
async fn an_org_can_require_mfa_of_its_members() {
    let t = TestApp::new().await;
    let (owner, _, _) = crate::mfa::user_with_totp(&t, "own@example.com").await;
    let org = create_org(&t, &owner, "Strict").await;
    let member = user(&t, "mem@example.com").await;
    t.join(&owner, &org, "mem@example.com", "member", &member)
        .await;
    let plain = user(&t, "pla@example.com").await;
    let plain_org = create_org(&t, &plain, "Lax").await;
    let r = t
        .send(
            Req::new(Method::PATCH, &format!("/api/v1/orgs/{plain_org}"))
                .cookie(&plain)
                .json(json!({"require_mfa": true})),
        )
        .await;
    assert_eq!(
        r.code(),
        "mfa_required",
        "whoever turns it on must have a second factor"
    );

    let r = t
        .send(
            Req::new(Method::PATCH, &format!("/api/v1/orgs/{org}"))
                .cookie(&owner)
                .json(json!({"require_mfa": true})),
        )
        .await;
    assert_eq!(r.json()["require_mfa"], true);
    for p in [
        format!("/api/v1/orgs/{org}"),
        format!("/api/v1/orgs/{org}/members"),
        format!("/api/v1/orgs/{org}/workspaces"),
    ] {
        let r = t.send(Req::get(&p).cookie(&member)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{p}");
        assert_eq!(r.code(), "mfa_required");
    }
    // A password-only session opened before enrolment stays blocked afterwards.
    let older = t.login("mem@example.com").await;
    // Their own security settings stay open, and enrolling lifts the block for this session.
    assert_eq!(t.me(&member).await.status, StatusCode::OK);
    let secret = t
        .send(Req::post("/api/v1/me/mfa/totp").cookie(&member))
        .await
        .json()["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let r = t
        .send(
            Req::post("/api/v1/me/mfa/totp/confirm")
                .cookie(&member)
                .json(json!({"code": crate::mfa::code_at(&t, &secret, 0)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&member))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&older))
            .await
            .code(),
        "mfa_required"
    );
}

#[tokio::test]
async fn superadmins_read_orgs_only_through_audited_bypass_routes_with_a_reason() {
    let t = TestApp::new().await;
    let owner = user(&t, "own@example.com").await;
    let org = create_org(&t, &owner, "Customer").await;
    let admin = user(&t, "sup@example.com").await;
    let read = |c: &str, reason: &str| {
        Req::post(&format!("/api/v1/admin/orgs/{org}"))
            .cookie(c)
            .json(json!({ "reason": reason }))
    };
    let why = "support ticket 4711";
    // Without the command-line grant, the bypass does not exist for anyone.
    assert_eq!(
        t.send(read(&admin, why)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.send(read(&owner, why)).await.status,
        StatusCode::NOT_FOUND
    );
    strongroom::tenancy::admin::grant_superadmin(&t.app, "sup@example.com")
        .await
        .expect("grant");
    // The regular org routes stay closed to a superadmin.
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.send(read(&admin, "short")).await.code(),
        "reason_required"
    );
    assert_eq!(
        t.send(read(&admin, "ticket \u{202e}4711 reversed"))
            .await
            .code(),
        "reason_required"
    );
    // Cross-site, it is refused before anything is read or recorded.
    let r = t
        .send(read(&admin, why).header("origin", "https://evil.example"))
        .await;
    assert_eq!(r.code(), "cross_origin_request");
    let r = t.send(read(&admin, why)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["name"], "Customer");
    let r = t
        .send(
            Req::post(&format!("/api/v1/admin/orgs/{org}/members"))
                .cookie(&admin)
                .json(json!({ "reason": why })),
        )
        .await;
    assert_eq!(r.json()["items"].as_array().expect("items").len(), 1);
    let chain = t.chain(&org).await;
    let uses: Vec<_> = chain
        .iter()
        .filter(|e| e.action == "superadmin.bypass")
        .collect();
    assert_eq!(uses.len(), 2);
    assert_eq!(uses[0].metadata["reason"], why);
    // Sensitive: a stale sign-in must step up first.
    t.clock.advance_secs(11 * 60);
    assert_eq!(
        t.send(read(&admin, why)).await.code(),
        "reauthentication_required"
    );
}

#[tokio::test]
async fn invitations_are_rate_limited_per_org() {
    let t = TestApp::with(|c| {
        c.rate_limits.invitations_per_org = strongroom::config::Limit::new(2, 3600)
    })
    .await;
    let owner = user(&t, "own@example.com").await;
    let org = create_org(&t, &owner, "Org").await;
    let invite = |n: u32| {
        Req::post(&format!("/api/v1/orgs/{org}/invitations"))
            .cookie(&owner)
            .json(json!({"email": format!("p{n}@example.com"), "role": "member"}))
    };
    assert_eq!(t.send(invite(1)).await.status, StatusCode::CREATED);
    assert_eq!(t.send(invite(2)).await.status, StatusCode::CREATED);
    let r = t.send(invite(3)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    assert_eq!(t.new_mail().await.len(), 2);
}

#[tokio::test]
async fn list_cursors_that_were_not_given_out_are_refused() {
    let t = TestApp::new().await;
    let owner = user(&t, "own@example.com").await;
    let org = create_org(&t, &owner, "Org").await;
    // "AA" decodes to a NUL byte, which PostgreSQL itself would reject.
    for c in ["AA", "%%", "bm90LWEtdXVpZA"] {
        for p in [
            "/api/v1/orgs",
            &format!("/api/v1/orgs/{org}/members"),
            &format!("/api/v1/orgs/{org}/workspaces"),
        ] {
            let r = t
                .send(Req::get(&format!("{p}?cursor={c}")).cookie(&owner))
                .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{p} {c}");
            assert_eq!(r.code(), "invalid_cursor");
        }
    }
}

/// The app role is asserted in every scoped transaction, not only when a connection is made: a
/// connection whose role was reset (a pooler, a stray `RESET ROLE`) still works as the app role
/// inside a tenant transaction. (PostgreSQL only: SQLite has no roles.)
#[tokio::test]
async fn a_reset_role_does_not_outlive_the_next_tenant_transaction() {
    use sqlx::Row;
    if !crate::support::backend_is_postgres() {
        return;
    }
    let t = TestApp::new().await;
    // A pool of one connection, so the reset one is the one the transaction gets.
    let db = strongroom::store::Db::connect(&t.app.config.database_url(), 1)
        .await
        .expect("db");
    let role = |r: sqlx::any::AnyRow| r.try_get::<String, _>("r").expect("role");
    {
        let mut c = db.acquire().await.expect("conn");
        let r = sqlx::query("SELECT CAST(current_user AS TEXT) AS r")
            .fetch_one(&mut *c)
            .await
            .expect("role");
        assert_eq!(
            role(r),
            "strongroom_app",
            "connections start as the app role"
        );
        sqlx::query("RESET ROLE")
            .execute(&mut *c)
            .await
            .expect("reset");
        let r = sqlx::query("SELECT CAST(current_user AS TEXT) AS r")
            .fetch_one(&mut *c)
            .await
            .expect("role");
        assert_ne!(role(r), "strongroom_app", "the reset took");
    }
    // Both ways into a tenant: a background job's (one statement of tenant context) ...
    let mut tx = strongroom::store::tenant::TenantTx::for_operator_read(&db, "some-org")
        .await
        .expect("tx");
    assert_eq!(tx.database_role().await.expect("role"), "strongroom_app");
    tx.rollback().await.expect("rollback");
    // ... and a member's, through the membership check (`strongroom_enter`).
    t.verified_user("reset@example.com", "Rita").await;
    let owner = t.login("reset@example.com").await;
    let r = t
        .send(
            Req::post("/api/v1/orgs")
                .cookie(&owner)
                .json(json!({"name": "Reset"})),
        )
        .await;
    let org = r.json()["id"].as_str().expect("org id").to_string();
    let user = t.me(&owner).await.json()["id"]
        .as_str()
        .expect("user id")
        .to_string();
    {
        let mut c = db.acquire().await.expect("conn");
        sqlx::query("RESET ROLE")
            .execute(&mut *c)
            .await
            .expect("reset");
    }
    let (mut tx, _) = strongroom::store::tenant::TenantTx::enter(
        &db,
        &org,
        &user,
        None,
        strongroom::store::tenant::Mode::Read,
    )
    .await
    .expect("enter")
    .expect("a member");
    assert_eq!(tx.database_role().await.expect("role"), "strongroom_app");
    tx.rollback().await.expect("rollback");
}
