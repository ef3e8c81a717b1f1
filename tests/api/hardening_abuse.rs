//! Findings of the black-box attack, from the attacker's side: invitations as a spam and phishing
//! relay, lockout as a denial of service, and unlimited creation.

use axum::http::StatusCode;
use serde_json::json;
use strongroom::config::Limit;

use crate::support::{Req, TestApp, TestResponse, PASSWORD};

const PHISH: &str = "URGENT: account locked, reset at https://evil.example/r";

async fn user(t: &TestApp, email: &str) -> String {
    t.verified_user(email, &email[..3]).await;
    t.login(email).await
}

async fn create_org(t: &TestApp, cookie: &str, name: &str) -> TestResponse {
    t.send(
        Req::post("/api/v1/orgs")
            .cookie(cookie)
            .json(json!({ "name": name })),
    )
    .await
}

async fn org(t: &TestApp, cookie: &str, name: &str) -> String {
    let r = create_org(t, cookie, name).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_str().expect("id").to_string()
}

async fn invite(t: &TestApp, cookie: &str, org: &str, email: &str) -> TestResponse {
    t.send(
        Req::post(&format!("/api/v1/orgs/{org}/invitations"))
            .cookie(cookie)
            .json(json!({"email": email, "role": "member"})),
    )
    .await
}

/// Rows in `table` across every tenant: a direct connection (on PostgreSQL as the superuser the
/// tests connect as, which row-level security does not limit).
async fn count(t: &TestApp, table: &str) -> i64 {
    use sqlx::{Connection, Row};
    let mut c = sqlx::AnyConnection::connect(&t.app.config.database_url())
        .await
        .expect("connect");
    sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .fetch_one(&mut c)
        .await
        .expect("count")
        .try_get::<i64, _>("n")
        .expect("n")
}

fn assert_limited(r: &TestResponse) {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(r.code(), "rate_limited");
    let secs: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(secs >= 1);
}

#[tokio::test]
async fn one_address_gets_at_most_three_invitations_a_day_whatever_the_org() {
    let t = TestApp::new().await;
    let spammer = user(&t, "spammer@example.com").await;
    let mut orgs = Vec::new();
    for i in 0..4 {
        orgs.push(org(&t, &spammer, &format!("{PHISH} {i}")).await);
    }
    for o in &orgs[..3] {
        let r = invite(&t, &spammer, o, "victim@example.com").await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    // A fourth org does not help: the budget is the recipient's.
    let r = invite(&t, &spammer, &orgs[3], "victim@example.com").await;
    assert_limited(&r);
    assert_eq!(count(&t, "invitations").await, 3);
    let mails = t.new_mail().await;
    assert_eq!(
        mails
            .iter()
            .filter(|m| m.to == "victim@example.com")
            .count(),
        3
    );
    // Another address is still reachable, and the victim again a day later.
    let r = invite(&t, &spammer, &orgs[3], "other@example.com").await;
    assert_eq!(r.status, StatusCode::CREATED);
    t.clock.advance_secs(24 * 3600 + 1);
    let spammer = t.login("spammer@example.com").await;
    let r = invite(&t, &spammer, &orgs[3], "victim@example.com").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[tokio::test]
async fn an_inviter_is_limited_across_all_their_orgs_and_org_creation_is_limited() {
    let t = TestApp::with(|c| {
        c.rate_limits.invitations_per_inviter = Limit::new(3, 24 * 3600);
        c.rate_limits.orgs_per_account = Limit::new(2, 24 * 3600);
    })
    .await;
    let spammer = user(&t, "spammer@example.com").await;
    let a = org(&t, &spammer, "First").await;
    let b = org(&t, &spammer, "Second").await;
    // A third org is refused: the per-org invitation limit cannot be dodged with new orgs.
    assert_limited(&create_org(&t, &spammer, "Third").await);
    assert_eq!(count(&t, "orgs").await, 2);
    for (o, n) in [(&a, 1), (&a, 2), (&b, 3)] {
        let r = invite(&t, &spammer, o, &format!("p{n}@example.com")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    assert_limited(&invite(&t, &spammer, &b, "p4@example.com").await);
    assert_eq!(count(&t, "invitations").await, 3);
    // Someone else's budget is their own.
    let other = user(&t, "other@example.com").await;
    let c = org(&t, &other, "Theirs").await;
    assert_eq!(
        invite(&t, &other, &c, "p5@example.com").await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn invitation_emails_quote_the_org_name_defuse_links_and_never_put_it_in_the_subject() {
    let t = TestApp::new().await;
    let spammer = user(&t, "spammer@example.com").await;
    let o = org(&t, &spammer, PHISH).await;
    assert_eq!(
        invite(&t, &spammer, &o, "victim@example.com").await.status,
        StatusCode::CREATED
    );
    let m = t.mail_to("victim@example.com").await;
    assert!(!m.subject.contains("URGENT"), "{}", m.subject);
    assert!(!m.subject.contains("evil"), "{}", m.subject);
    assert!(!m.body.contains("https://evil.example"), "{}", m.body);
    assert!(!m.body.contains("evil.example"), "{}", m.body);
    // Quoted, defused, and marked as chosen by someone else.
    let quoted = "\"URGENT: account locked, reset at hxxps[://]evil[.]example/r\"";
    assert!(m.body.contains(quoted), "{}", m.body);
    assert!(m.body.contains("not by Strongroom"), "{}", m.body);
    // One-click opt-out, in the body and as RFC 8058 headers.
    let optout = format!(
        "http://strongroom.test/invitations/opt-out?token={}",
        m.token("/invitations/opt-out")
    );
    assert!(
        m.head.contains(&format!("List-Unsubscribe: <{optout}>")),
        "{}",
        m.head
    );
    assert!(
        m.head
            .contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{}",
        m.head
    );
}

#[tokio::test]
async fn the_opt_out_link_stops_that_org_in_one_click() {
    let t = TestApp::new().await;
    let spammer = user(&t, "spammer@example.com").await;
    let o = org(&t, &spammer, "Spam Inc").await;
    let other = org(&t, &spammer, "Other Org").await;
    let inv = invite(&t, &spammer, &o, "victim@example.com").await;
    assert_eq!(inv.status, StatusCode::CREATED);
    let m = t.mail_to("victim@example.com").await;
    let token = m.token("/invitations/opt-out");
    let accept = m.token("/invitations/accept");
    let path = format!("/invitations/opt-out?token={token}");
    // Opening the link (as a mail scanner would) changes nothing.
    let r = t.send(Req::get(&path).header("accept", "text/html")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("stop-invitations"), "{}", r.text());
    assert_eq!(count(&t, "invitation_optouts").await, 0);
    // A forged or altered token does nothing.
    let (org_part, rest) = token.split_once('_').expect("token");
    for bad in [
        format!("{other}_{rest}"),
        format!("{org_part}_{}", rest.replace('a', "b")),
        "nonsense".to_string(),
    ] {
        let r = t
            .send(Req::post(&format!("/invitations/opt-out?token={bad}")).raw(
                "application/x-www-form-urlencoded",
                b"List-Unsubscribe=One-Click".to_vec(),
            ))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(count(&t, "invitation_optouts").await, 0);
    // The mail client's one-click POST (no cookie, no Origin), as RFC 8058 describes it.
    let r = t
        .send(Req::post(&path).raw(
            "application/x-www-form-urlencoded",
            b"List-Unsubscribe=One-Click".to_vec(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(count(&t, "invitation_optouts").await, 1);
    // Again is harmless.
    assert_eq!(t.send(Req::post(&path)).await.status, StatusCode::OK);
    // The pending invitation died with it, and the org cannot invite that address again.
    let victim = user(&t, "victim@example.com").await;
    let r = t
        .send(
            Req::post("/api/v1/invitations/accept")
                .cookie(&victim)
                .json(json!({ "token": accept })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = invite(&t, &spammer, &o, "Victim@Example.com").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.code(), "invitations_declined");
    assert!(t.new_mail().await.is_empty());
    // Other orgs are not affected, and the opt-out is in the org's audit trail.
    assert_eq!(
        invite(&t, &spammer, &other, "victim@example.com")
            .await
            .status,
        StatusCode::CREATED
    );
    let actions: Vec<String> = t.chain(&o).await.into_iter().map(|e| e.action).collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "invitation.opted_out")
            .count(),
        1,
        "{actions:?}"
    );
}

/// Logs in and returns (session, device cookie).
async fn login_with_device(t: &TestApp, email: &str) -> (String, String) {
    let r = t.login_as(email, PASSWORD, "198.51.100.1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let device = device_cookie(&r).expect("a device cookie after a good password");
    (r.session_cookie().expect("session"), device)
}

fn device_cookie(r: &TestResponse) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("strongroom_device="))
        .map(|c| {
            assert!(c.contains("HttpOnly"), "{c}");
            assert!(c.contains("SameSite=Strict"), "{c}");
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            pair.trim_start_matches("strongroom_device=").to_string()
        })
}

fn login_req(email: &str, password: &str, ip: &str, device: Option<&str>) -> Req {
    let r = Req::post("/api/v1/auth/login")
        .ip(ip)
        .json(json!({"email": email, "password": password}));
    match device {
        Some(d) => r.header("cookie", &format!("strongroom_device={d}")),
        None => r,
    }
}

async fn lock_out(t: &TestApp, email: &str) {
    for i in 0..5 {
        let r = t
            .send(login_req(
                email,
                "attacker guess number one",
                &format!("203.0.113.{}", 50 + i),
                None,
            ))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = t
        .send(login_req(email, PASSWORD, "203.0.113.99", None))
        .await;
    assert_limited(&r);
}

#[tokio::test]
async fn strangers_cannot_lock_the_owner_out_of_a_device_that_signed_in_before() {
    let t = TestApp::new().await;
    t.verified_user("owner@example.com", "Owner").await;
    let (_, device) = login_with_device(&t, "owner@example.com").await;
    t.new_mail().await;
    lock_out(&t, "owner@example.com").await;
    // More guesses do not send more mail: one notice per lockout.
    t.send(login_req(
        "owner@example.com",
        "attacker guess number two",
        "203.0.113.60",
        None,
    ))
    .await;
    // The owner is told, with the masked source and never the full address.
    let mails = t.new_mail().await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let notice = &mails[0];
    assert_eq!(notice.to, "owner@example.com");
    assert!(notice.subject.contains("paused"), "{}", notice.subject);
    assert!(notice.body.contains("203.0.113.0"), "{}", notice.body);
    assert!(!notice.body.contains("203.0.113.54"), "{}", notice.body);
    assert!(!notice.body.contains("203.0.113.60"), "{}", notice.body);
    // The owner's known device gets in with the right password; an unknown client does not.
    let r = t
        .send(login_req(
            "owner@example.com",
            PASSWORD,
            "198.51.100.1",
            Some(&device),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let session = r.session_cookie().expect("session");
    assert_limited(
        &t.send(login_req(
            "owner@example.com",
            PASSWORD,
            "198.51.100.1",
            None,
        ))
        .await,
    );
    // Step-up on /me/reauthenticate works the same way: the device passes, a stranger's
    // lockout does not stop it.
    let reauth = |dev: Option<&str>| {
        let r = Req::post("/api/v1/me/reauthenticate")
            .cookie(&session)
            .json(json!({ "password": PASSWORD }));
        match dev {
            Some(d) => r.header("cookie", &format!("strongroom_device={d}")),
            None => r,
        }
    };
    assert_limited(&t.send(reauth(None)).await);
    let r = t.send(reauth(Some(&device))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    // Unknown accounts are told nothing, and nobody is mailed.
    lock_out(&t, "nobody@example.com").await;
    assert!(t.new_mail().await.is_empty());
}

#[tokio::test]
async fn a_device_cookie_has_its_own_small_budget_and_works_only_for_its_account() {
    let t = TestApp::with(|c| c.rate_limits.login_per_device = Limit::new(3, 900)).await;
    t.verified_user("owner@example.com", "Owner").await;
    t.verified_user("mallory@example.com", "Mallory").await;
    let (_, device) = login_with_device(&t, "owner@example.com").await;
    let (_, mallory_device) = login_with_device(&t, "mallory@example.com").await;
    lock_out(&t, "owner@example.com").await;
    // Mallory's own device cookie is no key to the owner's account, nor is a forged one.
    let (id, rest) = device.split_once('.').expect("cookie");
    let (issued, _) = rest.split_once('.').expect("cookie");
    for fake in [
        mallory_device.clone(),
        format!("{id}.{issued}.{}", "0".repeat(64)),
        format!("{id}.{}.{}", issued.len(), rest),
        "garbage".into(),
    ] {
        let r = t
            .send(login_req(
                "owner@example.com",
                PASSWORD,
                "198.51.100.7",
                Some(&fake),
            ))
            .await;
        assert_limited(&r);
    }
    // The device's own budget: three wrong passwords, then even it must wait.
    for _ in 0..3 {
        let r = t
            .send(login_req(
                "owner@example.com",
                "owner typo in password",
                "198.51.100.1",
                Some(&device),
            ))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_limited(
        &t.send(login_req(
            "owner@example.com",
            PASSWORD,
            "198.51.100.1",
            Some(&device),
        ))
        .await,
    );
    // A device cookie expires: half a year later it is an unknown client again.
    t.clock.advance_secs(181 * 24 * 3600);
    let (_, fresh) = login_with_device(&t, "owner@example.com").await;
    assert_ne!(fresh, device);
    lock_out(&t, "owner@example.com").await;
    assert_limited(
        &t.send(login_req(
            "owner@example.com",
            PASSWORD,
            "198.51.100.1",
            Some(&device),
        ))
        .await,
    );
    let r = t
        .send(login_req(
            "owner@example.com",
            PASSWORD,
            "198.51.100.1",
            Some(&fresh),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn creation_is_limited_per_account() {
    let t = TestApp::with(|c| {
        let two = Limit::new(2, 3600);
        let rl = &mut c.rate_limits;
        rl.workspaces_per_account = two;
        rl.items_per_account = two;
        rl.comments_per_account = two;
        rl.totp_enrolments_per_account = two;
    })
    .await;
    let me = user(&t, "maker@example.com").await;
    let o = org(&t, &me, "Org").await;
    let ws_path = format!("/api/v1/orgs/{o}/workspaces");
    let new_ws = || {
        Req::post(&ws_path)
            .cookie(&me)
            .json(json!({"name": "Room", "kind": "board"}))
    };
    let ws = t.send(new_ws()).await.json()["id"]
        .as_str()
        .expect("ws")
        .to_string();
    assert_eq!(t.send(new_ws()).await.status, StatusCode::CREATED);
    assert_limited(&t.send(new_ws()).await);
    assert_eq!(count(&t, "workspaces").await, 2);
    let items = format!("{ws_path}/{ws}/items");
    let new_item = || Req::post(&items).cookie(&me).json(json!({"title": "Task"}));
    let item = t.send(new_item()).await.json()["id"]
        .as_str()
        .expect("item")
        .to_string();
    assert_eq!(t.send(new_item()).await.status, StatusCode::CREATED);
    assert_limited(&t.send(new_item()).await);
    assert_eq!(count(&t, "items").await, 2);
    let updates = format!("{items}/{item}/updates");
    let new_comment = || {
        Req::post(&updates)
            .cookie(&me)
            .json(json!({"body": "Hello"}))
    };
    assert_eq!(t.send(new_comment()).await.status, StatusCode::CREATED);
    assert_eq!(t.send(new_comment()).await.status, StatusCode::CREATED);
    assert_limited(&t.send(new_comment()).await);
    let totp = || Req::post("/api/v1/me/mfa/totp").cookie(&me);
    assert_eq!(t.send(totp()).await.status, StatusCode::OK);
    assert_eq!(t.send(totp()).await.status, StatusCode::OK);
    assert_limited(&t.send(totp()).await);
    // Someone else in the same org still has their own budget.
    let other = user(&t, "other@example.com").await;
    let r = t
        .send(
            Req::post("/api/v1/orgs")
                .cookie(&other)
                .json(json!({"name": "Elsewhere"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}
