//! Server-side sessions: listing, revocation, timeouts, fixation, cookie attributes.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Req, TestApp};

#[tokio::test]
async fn sessions_are_listed_and_revoked_at_once() {
    let t = TestApp::new().await;
    t.verified_user("mia@example.com", "Mia").await;
    let a = t.login("mia@example.com").await;
    let r = t
        .send(
            Req::post("/api/v1/auth/login")
                .ip("198.51.100.20")
                .header("user-agent", "PhoneBrowser/2")
                .json(json!({"email": "mia@example.com", "password": crate::support::PASSWORD})),
        )
        .await;
    let b = r.session_cookie().expect("cookie");
    let c = t.login("mia@example.com").await;

    let list = t
        .send(Req::get("/api/v1/me/sessions").cookie(&a))
        .await
        .json();
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    assert_eq!(list["next_cursor"], serde_json::Value::Null);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    let phone = items
        .iter()
        .find(|s| s["user_agent"] == "PhoneBrowser/2")
        .expect("phone session");
    assert_eq!(phone["ip"], "198.51.100.20");
    for key in ["id", "created_at", "last_seen_at"] {
        assert!(phone[key].is_string(), "{key}");
    }

    // Revoke one: its cookie stops working at once.
    let id = phone["id"].as_str().expect("id");
    assert_eq!(
        t.send(Req::delete(&format!("/api/v1/me/sessions/{id}")).cookie(&a))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(t.me(&b).await.status, StatusCode::UNAUTHORIZED);
    // Again, or someone else's: not found.
    assert_eq!(
        t.send(Req::delete(&format!("/api/v1/me/sessions/{id}")).cookie(&a))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    t.verified_user("ned@example.com", "Ned").await;
    let ned = t.login("ned@example.com").await;
    let ned_id = t
        .send(Req::get("/api/v1/me/sessions").cookie(&ned))
        .await
        .json()["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        t.send(Req::delete(&format!("/api/v1/me/sessions/{ned_id}")).cookie(&a))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(t.me(&ned).await.status, StatusCode::OK);

    // Ids that are not UUIDs (a NUL byte would make PostgreSQL itself fail) are simply not found.
    for bad in ["%00", "not-a-uuid", "1%27%20OR%201%3D1"] {
        let r = t
            .send(Req::delete(&format!("/api/v1/me/sessions/{bad}")).cookie(&a))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
    }
    // Revoke all others: only the current one lives.
    assert_eq!(
        t.send(Req::delete("/api/v1/me/sessions").cookie(&a))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(t.me(&c).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.me(&a).await.status, StatusCode::OK);

    // Logout revokes server-side, not just in the browser.
    let r = t.send(Req::post("/api/v1/auth/logout").cookie(&a)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r
        .header("set-cookie")
        .expect("clears")
        .contains("Max-Age=0"));
    assert_eq!(t.me(&a).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.send(Req::post("/api/v1/auth/logout").cookie(&a))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn idle_and_absolute_timeouts_end_sessions() {
    let t = TestApp::new().await;
    t.verified_user("ola@example.com", "Ola").await;
    let idle = t.login("ola@example.com").await;
    t.clock.advance_secs(29 * 60);
    assert_eq!(t.me(&idle).await.status, StatusCode::OK);
    t.clock.advance_secs(29 * 60);
    assert_eq!(
        t.me(&idle).await.status,
        StatusCode::OK,
        "activity extends the idle window"
    );
    t.clock.advance_secs(31 * 60);
    assert_eq!(t.me(&idle).await.status, StatusCode::UNAUTHORIZED);

    let busy = t.login("ola@example.com").await;
    for _ in 0..(12 * 60 / 20 - 1) {
        t.clock.advance_secs(20 * 60);
        assert_eq!(t.me(&busy).await.status, StatusCode::OK);
    }
    t.clock.advance_secs(20 * 60 + 1);
    assert_eq!(
        t.me(&busy).await.status,
        StatusCode::UNAUTHORIZED,
        "12 h absolute lifetime"
    );
}

#[tokio::test]
async fn timeouts_are_configurable() {
    let t = TestApp::with(|c| {
        c.session.idle_timeout_secs = 60;
        c.session.absolute_timeout_secs = 120;
    })
    .await;
    t.verified_user("pia@example.com", "Pia").await;
    let s = t.login("pia@example.com").await;
    t.clock.advance_secs(61);
    assert_eq!(t.me(&s).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_cookie_planted_before_login_never_becomes_the_session() {
    let t = TestApp::new().await;
    t.verified_user("quin@example.com", "Quin").await;
    let planted = "attacker-chosen-value-AAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let r = t
        .send(
            Req::post("/api/v1/auth/login")
                .cookie(planted)
                .json(json!({"email": "quin@example.com", "password": crate::support::PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let issued = r.session_cookie().expect("new cookie");
    assert_ne!(issued, planted);
    assert_eq!(issued.len(), 43, "256-bit base64url token");
    assert_eq!(t.me(planted).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.me(&issued).await.status, StatusCode::OK);
    // Only a keyed hash is stored.
    use sqlx::Row;
    let stored: Vec<String> = sqlx::query("SELECT token_hash FROM sessions")
        .fetch_all(&mut *t.app.db.acquire().await.expect("conn"))
        .await
        .expect("rows")
        .into_iter()
        .map(|r| r.try_get("token_hash").expect("hash"))
        .collect();
    assert!(!stored.contains(&issued));
}

/// The `Set-Cookie` header of the cookie whose name and `=` start it (a login sets several).
fn set_cookie(r: &crate::support::TestResponse, prefix: &str) -> String {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} cookie"))
        .to_string()
}

#[tokio::test]
async fn cookie_attributes_follow_the_public_url() {
    let t = TestApp::new().await;
    t.verified_user("rae@example.com", "Rae").await;
    let r = t
        .login_as("rae@example.com", crate::support::PASSWORD, "198.51.100.1")
        .await;
    let c = set_cookie(&r, "strongroom_session=");
    assert!(c.starts_with("strongroom_session="));
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(c.contains(attr), "{c}");
    }
    assert!(!c.contains("Secure") && !c.contains("Domain"));
    assert!(r.header("strict-transport-security").is_none());

    let t = TestApp::with(|c| c.public_url = Some("https://strongroom.example".into())).await;
    t.verified_user("rae@example.com", "Rae").await;
    let r = t
        .login_as("rae@example.com", crate::support::PASSWORD, "198.51.100.1")
        .await;
    let c = set_cookie(&r, "__Host-strongroom_session=");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
        assert!(c.contains(attr), "{c}");
    }
    // The device cookie (see identity::lockout) is as private, and stricter.
    let d = set_cookie(&r, "__Host-strongroom_device=");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(d.contains(attr), "{d}");
    }
    assert!(!d.contains("Domain"), "{d}");
    assert!(r
        .header("strict-transport-security")
        .expect("hsts")
        .contains("max-age="));
    let token = r.session_cookie().expect("cookie");
    assert_eq!(t.me(&token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn reads_record_activity_at_most_once_a_minute_and_revocation_still_counts_at_once() {
    use sqlx::{Connection, Row};
    let t = TestApp::new().await;
    t.verified_user("lee@example.com", "Lee").await;
    let s = t.login("lee@example.com").await;
    let other = t.login("lee@example.com").await;
    let last_seen = || async {
        let mut c = sqlx::AnyConnection::connect(&t.app.config.database_url())
            .await
            .expect("connect");
        let rows = sqlx::query("SELECT last_seen_at FROM sessions ORDER BY created_at, id")
            .fetch_all(&mut c)
            .await
            .expect("rows");
        rows.iter()
            .map(|r| r.try_get::<i64, _>("last_seen_at").expect("at"))
            .collect::<Vec<_>>()
    };
    let at_login = last_seen().await;
    t.clock.advance_secs(30);
    for _ in 0..5 {
        assert_eq!(t.me(&s).await.status, StatusCode::OK);
    }
    assert_eq!(last_seen().await, at_login, "no write within the minute");
    t.clock.advance_secs(31);
    assert_eq!(t.me(&s).await.status, StatusCode::OK);
    let now = at_login[0] + 61_000;
    assert_eq!(last_seen().await, vec![now, at_login[1]]);
    // Revoking the other session ends it on its very next request.
    let r = t.send(Req::delete("/api/v1/me/sessions").cookie(&s)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(t.me(&other).await.status, StatusCode::UNAUTHORIZED);
}

/// Reads do not queue behind writes: with the database's writer busy (on SQLite the one writer
/// connection held by a long transaction), a signed-in read still answers at once.
#[tokio::test]
async fn reads_answer_while_the_writer_is_busy() {
    let t = TestApp::new().await;
    t.verified_user("rob@example.com", "Rob").await;
    let s = t.login("rob@example.com").await;
    let org = t
        .send(
            Req::post("/api/v1/orgs")
                .cookie(&s)
                .json(json!({"name": "Org"})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("org")
        .to_string();
    // A long write transaction holds the writer.
    let mut writer = t.app.db.begin().await.expect("writer");
    sqlx::query("UPDATE users SET updated_at = updated_at")
        .execute(&mut *writer)
        .await
        .expect("write");
    let read = async {
        let me = t.me(&s).await;
        let org = t
            .send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&s))
            .await;
        (me.status, org.status)
    };
    let answered = tokio::time::timeout(std::time::Duration::from_secs(3), read).await;
    assert_eq!(
        answered.expect("reads answered while the writer was busy"),
        (StatusCode::OK, StatusCode::OK)
    );
    writer.rollback().await.expect("rollback");
}
