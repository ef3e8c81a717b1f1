//! Account deletion from the owner's and the attacker's side: a step-up first, a grace period that
//! signing in and cancelling ends, the only owner of an org refused, and an erasure after which
//! the account cannot sign in, its address signs up anew, and no plaintext or blind index of the
//! address is left anywhere in the database.

use axum::http::{Method, StatusCode};
use base64::Engine;
use serde_json::{json, Value};

use crate::documents::{member, room};
use crate::support::{Req, TestApp, PASSWORD};

const DAY: i64 = 86_400;

async fn erase_due(t: &TestApp) -> usize {
    strongroom::identity::erasure::erase_due(&t.app)
        .await
        .expect("erasure job")
}

/// Where signing in on the sign-in page sends the browser.
async fn lands_after_sign_in(t: &TestApp, email: &str) -> String {
    let page = t
        .send(
            Req::post("/login")
                .header("origin", "http://strongroom.test")
                .form(&[("email", email), ("password", PASSWORD)]),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text());
    page.header("location").expect("a redirect")
}

#[tokio::test]
async fn a_deletion_waits_out_its_grace_period_and_can_be_cancelled() {
    let t = TestApp::new().await;
    t.verified_user("ada@example.com", "Ada").await;
    let ada = t.login("ada@example.com").await;
    t.new_mail().await;

    // A stolen session that has not just proved the password cannot ask for it.
    t.clock
        .advance_secs(t.app.config.session.reauth_window_secs + 1);
    let r = t.send(Req::post("/api/v1/me/deletion").cookie(&ada)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.code(), "reauthentication_required");
    assert!(t.me(&ada).await.json()["deletion_scheduled_for"].is_null());
    let r = t
        .send(
            Req::post("/api/v1/me/reauthenticate")
                .cookie(&ada)
                .json(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    let r = t.send(Req::post("/api/v1/me/deletion").cookie(&ada)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let when = r.json()["scheduled_for"]
        .as_str()
        .expect("scheduled_for")
        .to_string();
    let expected = strongroom::clock::rfc3339(t.app.clock.now_ms() + 14 * DAY * 1000);
    assert_eq!(when, expected, "fourteen days by default");
    assert_eq!(
        t.me(&ada).await.json()["deletion_scheduled_for"],
        json!(when)
    );
    let mail = t.mail_to("ada@example.com").await;
    assert!(mail.subject.contains("will be deleted"), "{}", mail.subject);
    assert!(mail.body.contains("cancel"), "{}", mail.body);

    // Thirteen days on, nothing has happened and Ada signs in and cancels.
    t.clock.advance_secs(13 * DAY);
    assert_eq!(erase_due(&t).await, 0);
    let ada = t.login("ada@example.com").await;
    assert_eq!(
        t.me(&ada).await.json()["deletion_scheduled_for"],
        json!(when),
        "signing in shows the deletion, to cancel"
    );
    // Signing in on the pages lands where the deletion can be cancelled.
    assert_eq!(
        lands_after_sign_in(&t, "ada@example.com").await,
        "/account#your-data"
    );
    let r = t
        .send(Req::delete("/api/v1/me/deletion").cookie(&ada))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let again = t
        .send(Req::delete("/api/v1/me/deletion").cookie(&ada))
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(t.me(&ada).await.json()["deletion_scheduled_for"].is_null());
    t.clock.advance_secs(5 * DAY);
    assert_eq!(erase_due(&t).await, 0, "a cancelled deletion never happens");
    let ada = t.login("ada@example.com").await;
    assert_eq!(
        lands_after_sign_in(&t, "ada@example.com").await,
        "/",
        "home again"
    );

    // Asked again, it happens at the end of the grace period.
    let r = t.send(Req::post("/api/v1/me/deletion").cookie(&ada)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    t.clock.advance_secs(14 * DAY - 60);
    assert_eq!(erase_due(&t).await, 0, "not a minute early");
    t.clock.advance_secs(61);
    assert_eq!(erase_due(&t).await, 1);
    assert_eq!(erase_due(&t).await, 0, "once");
    assert_eq!(t.me(&ada).await.status, StatusCode::UNAUTHORIZED);
    let r = t
        .login_as("ada@example.com", PASSWORD, "198.51.100.4")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());

    let actions = t.audit_actions().await;
    for a in [
        "account.deletion_requested",
        "account.deletion_cancelled",
        "account.erased",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn the_only_owner_of_an_org_hands_it_over_first() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    let res = t
        .send(Req::post("/api/v1/me/deletion").cookie(&r.owner))
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert_eq!(res.code(), "last_owner");
    assert!(res.text().contains("Deal Co"), "{}", res.text());
    assert!(t.me(&r.owner).await.json()["deletion_scheduled_for"].is_null());

    // With a second owner, it can go.
    let (co, co_id) = member(&t, &r, "co@example.com", "editor").await;
    let res = t
        .send(
            Req::new(
                Method::PATCH,
                &format!("/api/v1/orgs/{}/members/{co_id}", r.org),
            )
            .cookie(&r.owner)
            .json(json!({ "role": "owner" })),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let res = t
        .send(Req::post("/api/v1/me/deletion").cookie(&r.owner))
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    // If the other owner leaves during the grace period, the erasure waits for a new owner.
    let me = t.me(&co).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let owner_id = t.me(&r.owner).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(me, co_id);
    let res = t
        .send(
            Req::new(
                Method::PATCH,
                &format!("/api/v1/orgs/{}/members/{co_id}", r.org),
            )
            .cookie(&r.owner)
            .json(json!({ "role": "member" })),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    t.clock.advance_secs(15 * DAY);
    assert_eq!(erase_due(&t).await, 0, "the only owner is not erased");
    let owner = t.login("owner@example.com").await;
    assert_eq!(t.me(&owner).await.json()["id"], json!(owner_id));
}

/// Every string in every row of every table, and what base64 strings decode to.
async fn every_value(t: &TestApp) -> Vec<(String, String)> {
    let contents = crate::backup::contents(t.app.db.url()).await;
    let mut out = Vec::new();
    for (table, rows) in contents {
        for row in rows {
            let v: Value = serde_json::from_str(&row).expect("row");
            for (_, cell) in v.as_object().expect("object") {
                if let Some(s) = cell.as_str() {
                    out.push((table.clone(), s.to_lowercase()));
                    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s) {
                        out.push((
                            table.clone(),
                            String::from_utf8_lossy(&bytes).to_lowercase(),
                        ));
                    }
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn an_erased_account_leaves_no_trace_of_its_address_and_the_address_signs_up_anew() {
    let t = TestApp::with(|c| c.accounts.deletion_grace_days = 0).await;
    let r = room(&t, "olivia@example.com").await;
    let erin_email = "erin.erased@example.com";
    let (erin, erin_id) = member(&t, &r, erin_email, "editor").await;
    // Erin is an admin: she makes an API key and invites someone (still pending).
    let res = t
        .send(
            Req::new(
                Method::PATCH,
                &format!("/api/v1/orgs/{}/members/{erin_id}", r.org),
            )
            .cookie(&r.owner)
            .json(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let key = t
        .send(
            Req::post(&format!("/api/v1/orgs/{}/api-keys", r.org))
                .cookie(&erin)
                .json(json!({ "name": "Erin's sync", "scopes": ["items:read"] })),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.text());
    let key = key.json()["key"].as_str().expect("key").to_string();
    let res = t
        .send(
            Req::post(&format!("/api/v1/orgs/{}/invitations", r.org))
                .cookie(&erin)
                .json(json!({ "email": "pending@example.com", "role": "member" })),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    // She writes an item and a comment, and is assigned another (a notification).
    let mine = t
        .send(
            Req::post(&format!("{}/items", r.base))
                .cookie(&erin)
                .json(json!({ "title": "Erin's item" })),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let res = t
        .send(
            Req::post(&format!("{}/items/{mine}/updates", r.base))
                .cookie(&erin)
                .json(json!({ "body": "A note from Erin" })),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let assigned = t
        .send(
            Req::post(&format!("{}/items", r.base))
                .cookie(&r.owner)
                .json(json!({ "title": "For Erin", "assignee_id": erin_id })),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    // Another org invites her (pending), and a third one she opted out of.
    let other = room(&t, "other@example.com").await;
    let res = t
        .send(
            Req::post(&format!("/api/v1/orgs/{}/invitations", other.org))
                .cookie(&other.owner)
                .json(json!({ "email": erin_email, "role": "member" })),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let optout = t.mail_to(erin_email).await.token("/invitations/opt-out");
    let third = room(&t, "third@example.com").await;
    let res = t
        .send(
            Req::post(&format!("/api/v1/orgs/{}/invitations", third.org))
                .cookie(&third.owner)
                .json(json!({ "email": erin_email, "role": "member" })),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let optout_third = t.mail_to(erin_email).await.token("/invitations/opt-out");
    let res = t
        .send(Req::post(&format!(
            "/invitations/opt-out?token={optout_third}"
        )))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(!optout.is_empty());
    assert_eq!(
        crate::documents::tenant_count(&t, &third.org, "invitation_optouts").await,
        1
    );

    let bidx = t.app.keyring.blind_index(erin_email);
    let before = every_value(&t).await;
    assert!(
        before.iter().any(|(_, v)| v.contains(&bidx.to_lowercase())),
        "the check can see a blind index"
    );

    let res = t.send(Req::post("/api/v1/me/deletion").cookie(&erin)).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());

    // She is gone: no session, no sign-in, no key, no membership.
    assert_eq!(t.me(&erin).await.status, StatusCode::UNAUTHORIZED);
    let r2 = t.login_as(erin_email, PASSWORD, "198.51.100.7").await;
    assert_eq!(r2.status, StatusCode::UNAUTHORIZED);
    let by_key = t
        .send(
            Req::get(&format!("{}/items", r.base))
                .header("authorization", &format!("Bearer {key}")),
        )
        .await;
    assert_eq!(by_key.status, StatusCode::UNAUTHORIZED, "{}", by_key.text());
    let members = t
        .send(Req::get(&format!("/api/v1/orgs/{}/members", r.org)).cookie(&r.owner))
        .await
        .json();
    assert!(!members.to_string().contains(&erin_id), "{members}");
    let item = t
        .send(Req::get(&format!("{}/items/{assigned}", r.base)).cookie(&r.owner))
        .await
        .json();
    assert!(item["assignee_id"].is_null(), "{item}");
    // What she wrote stays, under "Deleted user".
    let page = t
        .send(
            Req::get(&format!(
                "{}/items/{mine}",
                r.base.trim_start_matches("/api/v1")
            ))
            .cookie(&r.owner),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.text();
    assert!(text.contains("A note from Erin"), "{text}");
    assert!(text.contains("Deleted user"), "{text}");

    // No plaintext and no blind index of her address, in any table.
    for (table, v) in every_value(&t).await {
        assert!(!v.contains(erin_email), "{table} holds her address: {v}");
        assert!(
            !v.contains(&bidx.to_lowercase()),
            "{table} holds its blind index"
        );
    }
    // The chains still verify, and say what happened.
    let checks = strongroom::backup::verify_chains(
        t.app.db.url(),
        strongroom::backup::configured_master(&t.app.config).expect("master"),
        None,
    )
    .await
    .expect("verify");
    for c in &checks {
        assert!(c.valid, "{c:?}");
    }
    let org_chain = t.chain(&r.org).await;
    let left = org_chain
        .iter()
        .find(|e| e.action == "member.removed" && e.target_id.as_deref() == Some(&erin_id))
        .expect("member.removed");
    assert_eq!(left.metadata["erased"], json!(true), "{}", left.metadata);
    let platform = t.chain("platform").await;
    assert!(platform
        .iter()
        .any(|e| e.action == "account.erased" && e.actor_id.as_deref() == Some(&erin_id)));

    // The address signs up again as somebody new.
    t.verified_user(erin_email, "Erin again").await;
    let again = t.login(erin_email).await;
    let me = t.me(&again).await.json();
    assert_ne!(me["id"], json!(erin_id));
    assert_eq!(me["email"], json!(erin_email));
    let orgs = t.send(Req::get("/api/v1/orgs").cookie(&again)).await.json();
    assert_eq!(orgs["items"], json!([]), "no membership comes back");
}

/// An account made before accounts had shred secrets: its email, name and sessions' addresses
/// sealed under the platform key alone, and no secret in the vault.
async fn make_legacy(t: &TestApp, user_id: &str) {
    use sqlx::Row;
    use strongroom::identity::{email_ad, name_ad, sessions};
    let k = &t.app.keyring;
    let mut c = t.app.db.acquire().await.expect("conn");
    let u = sqlx::query("SELECT email_ct, display_name_ct FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&mut *c)
        .await
        .expect("user");
    let email = k
        .open_field(&email_ad(user_id), &u.get::<Vec<u8>, _>("email_ct"))
        .expect("opens");
    let name = k
        .open_field(&name_ad(user_id), &u.get::<Vec<u8>, _>("display_name_ct"))
        .expect("opens");
    sqlx::query(
        "UPDATE users SET email_ct = $2, display_name_ct = $3, account_sealed = 0 WHERE id = $1",
    )
    .bind(user_id)
    .bind(k.seal_platform_field(&email_ad(user_id), &email))
    .bind(k.seal_platform_field(&name_ad(user_id), &name))
    .execute(&mut *c)
    .await
    .expect("legacy user");
    let rows = sqlx::query("SELECT id, ip_ct, user_agent_ct FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(&mut *c)
        .await
        .expect("sessions");
    for r in rows {
        let sid: String = r.get("id");
        let ip = k
            .open_field(
                &sessions::ip_ad(&sid, user_id),
                &r.get::<Vec<u8>, _>("ip_ct"),
            )
            .expect("opens");
        let ua = k
            .open_field(
                &sessions::ua_ad(&sid, user_id),
                &r.get::<Vec<u8>, _>("user_agent_ct"),
            )
            .expect("opens");
        sqlx::query("UPDATE sessions SET ip_ct = $2, user_agent_ct = $3 WHERE id = $1")
            .bind(&sid)
            .bind(k.seal_platform_field(&sessions::ip_ad(&sid, user_id), &ip))
            .bind(k.seal_platform_field(&sessions::ua_ad(&sid, user_id), &ua))
            .execute(&mut *c)
            .await
            .expect("legacy session");
    }
    k.destroy_account_secret(user_id).expect("no secret");
}

/// Sealed fields of an account: `(email_ct, display_name_ct, account_sealed, [ip_ct])`.
async fn sealed_of(t: &TestApp, user_id: &str) -> (Vec<u8>, Vec<u8>, i64, Vec<Vec<u8>>) {
    use sqlx::Row;
    let mut c = t.app.db.acquire().await.expect("conn");
    let u =
        sqlx::query("SELECT email_ct, display_name_ct, account_sealed FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&mut *c)
            .await
            .expect("user");
    let ips = sqlx::query("SELECT ip_ct FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(&mut *c)
        .await
        .expect("sessions")
        .into_iter()
        .map(|r| r.get("ip_ct"))
        .collect();
    (
        u.get("email_ct"),
        u.get("display_name_ct"),
        u.get("account_sealed"),
        ips,
    )
}

#[tokio::test]
async fn accounts_made_before_shred_secrets_are_sealed_with_one_at_start_and_then_erased_for_good()
{
    use strongroom::crypto::sealed_for_account;
    let t = TestApp::with(|c| c.accounts.deletion_grace_days = 0).await;
    t.verified_user("ada@example.com", "Ada").await;
    let ada = t.login("ada@example.com").await;
    let ada_id = t.me(&ada).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    // New accounts are sealed with a secret from the start.
    let (email, name, sealed, ips) = sealed_of(&t, &ada_id).await;
    assert!(sealed_for_account(&email) && sealed_for_account(&name));
    assert_eq!(sealed, 1);
    assert!(!ips.is_empty() && ips.iter().all(|c| sealed_for_account(c)));

    make_legacy(&t, &ada_id).await;
    let (email, _, sealed, ips) = sealed_of(&t, &ada_id).await;
    assert!(!sealed_for_account(&email) && sealed == 0);
    assert!(ips.iter().all(|c| !sealed_for_account(c)));
    // Legacy fields still open: the account works as before...
    assert_eq!(t.me(&ada).await.json()["email"], "ada@example.com");

    // ...until start-up seals them with a secret made for the account (once).
    let adopted = strongroom::keys::adopt_accounts(&t.app.db, &t.app.keyring)
        .await
        .expect("adopt");
    assert_eq!(adopted, 1);
    let again = strongroom::keys::adopt_accounts(&t.app.db, &t.app.keyring)
        .await
        .expect("adopt");
    assert_eq!(again, 0);
    let (email, name, sealed, ips) = sealed_of(&t, &ada_id).await;
    assert!(sealed_for_account(&email) && sealed_for_account(&name));
    assert_eq!(sealed, 1);
    assert!(ips.iter().all(|c| sealed_for_account(c)));
    assert!(t
        .app
        .keyring
        .account_vault()
        .expect("vault")
        .secret(&ada_id)
        .expect("read")
        .is_some());
    let me = t.me(&ada).await.json();
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["display_name"], "Ada");
    let list = t
        .send(Req::get("/api/v1/me/sessions").cookie(&ada))
        .await
        .json();
    assert!(list["items"][0]["ip"].is_string(), "{list}");
    let fresh = t.login("ada@example.com").await;

    // Erased: the secret goes, what it sealed in any copy never opens, and the erased row's
    // placeholders (sealed under the platform key alone) are not re-sealed with a new secret.
    let r = t
        .send(Req::post("/api/v1/me/deletion").cookie(&fresh))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert!(matches!(
        t.app
            .keyring
            .open_field(&strongroom::identity::email_ad(&ada_id), &email),
        Err(strongroom::crypto::CryptoError::Shredded)
    ));
    assert_eq!(
        strongroom::keys::adopt_accounts(&t.app.db, &t.app.keyring)
            .await
            .expect("adopt"),
        0
    );
    assert!(t
        .app
        .keyring
        .account_vault()
        .expect("vault")
        .secret(&ada_id)
        .expect("read")
        .is_none());
}
