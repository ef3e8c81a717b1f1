//! The retention purge: nothing is removed before its time; afterwards ended sessions, used and
//! expired tokens, sent mail, ended invitations (with their tokens), read and then old
//! notifications, share-link codes, and finished webhook messages (with their delivery logs) are
//! gone, while what
//! is still live stays and the account and org work on. Counted in the metrics.

use axum::http::StatusCode;
use serde_json::json;
use sqlx::Connection;
use strongroom::purge::{self, Purged};

use crate::documents::{id, room};
use crate::support::{Req, TestApp};

const DAY: i64 = 86_400;

async fn raw(t: &TestApp) -> sqlx::AnyConnection {
    sqlx::AnyConnection::connect(t.app.db.url())
        .await
        .expect("connect")
}

async fn count(t: &TestApp, sql: &str) -> i64 {
    use sqlx::Row;
    let mut c = raw(t).await;
    sqlx::query(sql)
        .fetch_one(&mut c)
        .await
        .expect(sql)
        .try_get::<i64, _>(0)
        .expect("count")
}

#[tokio::test]
async fn expired_data_is_purged_on_time_and_nothing_live_goes() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    t.verified_user("mia@example.com", "Mia").await;
    let mia = t.login("mia@example.com").await;
    t.join(&r.owner, &r.org, "mia@example.com", "admin", &mia)
        .await;
    let pending = t
        .send(
            Req::post(&format!("/api/v1/orgs/{}/invitations", r.org))
                .cookie(&r.owner)
                .json(json!({ "email": "later@example.com", "role": "member" })),
        )
        .await;
    assert_eq!(pending.status, StatusCode::CREATED, "{}", pending.text());
    t.mail_to("later@example.com").await;
    // Two mentions of Mia: she reads one.
    let mut notes = Vec::new();
    for i in 0..2 {
        let item = t
            .send(
                Req::post(&format!("{}/items", r.base))
                    .cookie(&r.owner)
                    .json(json!({ "title": format!("Item {i}") })),
            )
            .await;
        assert_eq!(item.status, StatusCode::CREATED, "{}", item.text());
        let c = t
            .send(
                Req::post(&format!("{}/items/{}/updates", r.base, id(&item.json())))
                    .cookie(&r.owner)
                    .json(json!({ "body": "@Mia have a look" })),
            )
            .await;
        assert_eq!(c.status, StatusCode::CREATED, "{}", c.text());
        notes.push(item);
    }
    let list = t
        .send(Req::get("/api/v1/me/notifications").cookie(&mia))
        .await
        .json();
    let first = list["items"][0]["id"].as_str().expect("note").to_string();
    let read = t
        .send(
            Req::post("/api/v1/me/notifications/read")
                .cookie(&mia)
                .json(json!({ "ids": [first] })),
        )
        .await;
    assert_eq!(read.status, StatusCode::NO_CONTENT, "{}", read.text());
    // A session signed out (revoked), and a finished and a pending webhook message.
    let extra = t.login("owner@example.com").await;
    let out = t
        .send(Req::post("/api/v1/auth/logout").cookie(&extra))
        .await;
    assert!(out.status.is_success(), "{}", out.text());
    let now = t.app.clock.now_ms();
    {
        let mut c = raw(&t).await;
        sqlx::query(
            "INSERT INTO webhooks (id, org_id, url_ct, events, secret_ct, created_by, created_at) \
             VALUES ('11111111-1111-7111-8111-111111111111', $1, $2, 'item.created', $2, 'x', $3)",
        )
        .bind(&r.org)
        .bind(vec![0u8; 8])
        .bind(now)
        .execute(&mut c)
        .await
        .expect("hook");
        for (id, status) in [("m-done", "delivered"), ("m-pending", "pending")] {
            sqlx::query(
                "INSERT INTO webhook_messages (id, org_id, webhook_id, event_id, event_type, payload, created_at, status) \
                 VALUES ($1, $2, '11111111-1111-7111-8111-111111111111', $1, 'item.created', '{}', $3, $4)",
            )
            .bind(id)
            .bind(&r.org)
            .bind(now)
            .bind(status)
            .execute(&mut c)
            .await
            .expect("message");
        }
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, org_id, webhook_id, message_id, attempt, at, status_code, duration_ms) \
             VALUES ('d1', $1, '11111111-1111-7111-8111-111111111111', 'm-done', 1, $2, 200, 5)",
        )
        .bind(&r.org)
        .bind(now)
        .execute(&mut c)
        .await
        .expect("delivery");
    }
    // A document shared with a partner, who asks for a code (and never uses it).
    let doc = crate::documents::upload(&t, &r, &r.owner, "nda.bin", b"for partners").await;
    let url = crate::documents::link(
        &t,
        &r,
        doc["id"].as_str().expect("doc"),
        json!({"expires_in_seconds": 3600, "recipient_email": "partner@outside.example"}),
    )
    .await;
    let asked = t
        .send(
            Req::post(&crate::documents::path_of(&url))
                .header("origin", "http://strongroom.test")
                .form(&[("step", "email"), ("email", "partner@outside.example")]),
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text());
    // Every mail sent (a mail still queued is never purged, whatever its age).
    t.new_mail().await;
    let read_before = count(
        &t,
        "SELECT COUNT(*) FROM notifications WHERE read_at IS NOT NULL",
    )
    .await;
    let unread_before = count(
        &t,
        "SELECT COUNT(*) FROM notifications WHERE read_at IS NULL",
    )
    .await;
    assert!(read_before >= 1 && unread_before >= 1);
    let tables = [
        "sessions",
        "user_tokens",
        "email_outbox",
        "invitations",
        "invitation_tokens",
        "notifications",
        "webhook_messages",
        "webhook_deliveries",
        "link_codes",
    ];
    let mut before = Vec::new();
    for table in tables {
        let n = count(&t, &format!("SELECT COUNT(*) FROM {table}")).await;
        assert!(n > 0, "{table} is seeded");
        before.push(n);
    }

    // Today nothing has ended long enough ago.
    let job = t.app.purge_job();
    assert_eq!(
        purge::run_once(&job).await.expect("purge"),
        Purged::default()
    );
    for (table, n) in tables.iter().zip(&before) {
        assert_eq!(
            count(&t, &format!("SELECT COUNT(*) FROM {table}")).await,
            *n,
            "{table}"
        );
    }

    // Forty days on: everything ended is gone; the unread notification and the pending message
    // stay.
    t.clock.advance_secs(40 * DAY);
    let p = purge::run_once(&job).await.expect("purge");
    assert!(
        p.sessions >= 3 && p.tokens >= 2 && p.sent_emails >= 3,
        "{p:?}"
    );
    assert_eq!(
        (
            p.invitations,
            p.notifications,
            p.webhook_messages,
            p.link_codes
        ),
        (2, u64::try_from(read_before).expect("n"), 1, 1),
        "{p:?}"
    );
    for (table, left) in [
        ("sessions", 0),
        ("user_tokens", 0),
        ("email_outbox", 0),
        ("invitations", 0),
        ("invitation_tokens", 0),
        ("notifications", unread_before),
        ("webhook_messages", 1),
        ("webhook_deliveries", 0),
        ("link_codes", 0),
    ] {
        assert_eq!(
            count(&t, &format!("SELECT COUNT(*) FROM {table}")).await,
            left,
            "{table}"
        );
    }
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM notifications WHERE read_at IS NULL"
        )
        .await,
        unread_before
    );
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM webhook_messages WHERE status = 'pending'"
        )
        .await,
        1
    );
    // The accounts, the org and its membership are untouched: both sign in and see the org.
    let owner = t.login("owner@example.com").await;
    let orgs = t.send(Req::get("/api/v1/orgs").cookie(&owner)).await;
    assert_eq!(orgs.status, StatusCode::OK);
    let mia = t.login("mia@example.com").await;
    let items = t
        .send(Req::get(&format!("{}/items", r.base)).cookie(&mia))
        .await;
    assert_eq!(items.status, StatusCode::OK, "{}", items.text());

    // Half a year on, the unread notification goes too.
    t.clock.advance_secs(141 * DAY);
    let p = purge::run_once(&job).await.expect("purge");
    assert_eq!(
        p.notifications,
        u64::try_from(unread_before).expect("n"),
        "{p:?}"
    );
    assert_eq!(count(&t, "SELECT COUNT(*) FROM notifications").await, 0);

    let text = strongroom::http::ops::metrics_handle()
        .as_ref()
        .expect("recorder")
        .render();
    for kind in [
        "sessions",
        "tokens",
        "sent_emails",
        "invitations",
        "notifications",
        "webhook_messages",
        "link_codes",
    ] {
        assert!(
            text.contains(&format!("strongroom_purged_total{{kind=\"{kind}\"}}")),
            "{kind} counted"
        );
    }
}

#[tokio::test]
async fn the_purge_runs_in_the_background_and_can_be_turned_off() {
    let t = TestApp::with(|c| c.retention.interval_secs = 3600).await;
    t.verified_user("a@example.com", "A").await;
    t.clock.advance_secs(30 * DAY);
    let (trigger, stop) = strongroom::shutdown::channel();
    let job = purge::spawn_job(t.app.purge_job(), stop).expect("running");
    let mut gone = false;
    for _ in 0..100 {
        if count(&t, "SELECT COUNT(*) FROM user_tokens").await == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    trigger.fire();
    job.await.expect("stops");
    assert!(gone, "the used verification token is purged at start");
    let off = TestApp::with(|c| c.retention.interval_secs = 0).await;
    let (_trigger, stop) = strongroom::shutdown::channel();
    assert!(purge::spawn_job(off.app.purge_job(), stop).is_none());
}

/// A shred secret whose org is gone (a deletion that stopped between its commit and the secret's
/// removal) is removed by the purge once it is an hour old; live orgs' secrets stay.
#[tokio::test]
async fn the_purge_removes_shred_secrets_whose_org_or_account_is_gone() {
    let t = TestApp::with(|c| c.accounts.deletion_grace_days = 0).await;
    let r = crate::documents::room(&t, "keeper@example.com").await;
    let vault = t.app.keyring.vault().expect("vault").clone();
    let orphan = uuid::Uuid::now_v7().to_string();
    vault.ensure(&orphan).expect("made");
    let fresh_orphan = uuid::Uuid::now_v7().to_string();
    vault.ensure(&fresh_orphan).expect("made");
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for id in [&orphan, &r.org] {
        std::fs::File::options()
            .write(true)
            .open(vault.dir().join(id))
            .and_then(|f| f.set_modified(two_hours_ago))
            .expect("age the file");
    }
    // Accounts: a live one's secret stays; one whose account is erased (an erasure that stopped
    // before destroying it) and one of no account at all go.
    let accounts = t.app.keyring.account_vault().expect("vault").clone();
    let keeper = t.me(&r.owner).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    t.verified_user("gone@example.com", "Gone").await;
    let gone_cookie = t.login("gone@example.com").await;
    let gone = t.me(&gone_cookie).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let res = t
        .send(crate::support::Req::post("/api/v1/me/deletion").cookie(&gone_cookie))
        .await;
    assert_eq!(
        res.status,
        axum::http::StatusCode::ACCEPTED,
        "{}",
        res.text()
    );
    accounts.ensure(&gone).expect("left behind");
    let stray = uuid::Uuid::now_v7().to_string();
    accounts.ensure(&stray).expect("made");
    for id in [&keeper, &gone, &stray] {
        std::fs::File::options()
            .write(true)
            .open(accounts.dir().join(id))
            .and_then(|f| f.set_modified(two_hours_ago))
            .expect("age the file");
    }
    let p = purge::run_once(&t.app.purge_job()).await.expect("purge");
    assert_eq!(p.shred_secrets, 3, "{p:?}");
    assert!(!accounts.dir().join(&gone).exists());
    assert!(!accounts.dir().join(&stray).exists());
    assert!(
        accounts.dir().join(&keeper).exists(),
        "a live account's secret stays"
    );
    assert_eq!(t.me(&r.owner).await.json()["email"], "keeper@example.com");
    assert!(!vault.dir().join(&orphan).exists());
    assert!(
        vault.dir().join(&fresh_orphan).exists(),
        "too young to judge"
    );
    assert!(
        vault.dir().join(&r.org).exists(),
        "a live org's secret stays"
    );
    let res = t
        .send(crate::support::Req::get(&format!("/api/v1/orgs/{}", r.org)).cookie(&r.owner))
        .await;
    assert_eq!(res.status, axum::http::StatusCode::OK);
}
