//! The smaller findings of the hardening review, each from the attacker's side: metrics off the
//! public port, cross-site Referers, hidden characters in names, the item edit form's empty due
//! date, account notices driven by the query string, signing out of a pending MFA session, status
//! names at rest, file modes in the data dir, and duplicate session cookies.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::mfa::{code_at, user_with_totp};
use crate::support::{Req, ServerProcess, TestApp, PASSWORD};

/// A verified, signed-in user with an org: (cookie, org id).
async fn org_owner(t: &TestApp, email: &str) -> (String, String) {
    t.verified_user(email, "Owner").await;
    let c = t.login(email).await;
    let r = t
        .send(
            Req::post("/api/v1/orgs")
                .cookie(&c)
                .json(json!({"name": "Org"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let org = r.json()["id"].as_str().expect("id").to_string();
    (c, org)
}

async fn created(t: &TestApp, c: &str, path: &str, body: Value) -> Value {
    let r = t.send(Req::post(path).cookie(c).json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.text());
    r.json()
}

/// How many entries a list route shows (row counts would see nothing under PostgreSQL's
/// row-level security outside a tenant transaction).
async fn listed(t: &TestApp, c: &str, path: &str) -> usize {
    let r = t.send(Req::get(path).cookie(c)).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    r.json()["items"].as_array().expect("items").len()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

// ---------------------------------------------------------------------------------------------
// 1. /metrics is not public

const METRICS_TOKEN: &str = "metrics-token-3f9a1c7e5b2d4f60";

#[tokio::test]
async fn metrics_are_not_on_the_main_listener_without_a_token() {
    let t = TestApp::new().await;
    t.send(Req::get("/healthz")).await;
    for r in [
        Req::get("/metrics"),
        Req::get("/metrics").header("authorization", "Bearer anything-at-all-0000"),
        Req::get("/metrics").header("authorization", "Bearer "),
    ] {
        let r = t.send(r).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
        assert!(!r.text().contains("http_requests_total"));
    }
}

#[tokio::test]
async fn metrics_token_opens_metrics_to_the_right_bearer_only() {
    let t = TestApp::with(|c| c.metrics_token = Some(METRICS_TOKEN.into())).await;
    t.send(Req::get("/healthz")).await;
    for wrong in [
        None,
        Some("Bearer wrong-token-0000000000000".to_string()),
        Some(format!("Bearer {METRICS_TOKEN}x")),
        Some(format!(
            "Bearer {}",
            &METRICS_TOKEN[..METRICS_TOKEN.len() - 1]
        )),
        Some(format!("Basic {METRICS_TOKEN}")),
        Some(METRICS_TOKEN.to_string()),
    ] {
        let mut r = Req::get("/metrics");
        if let Some(h) = &wrong {
            r = r.header("authorization", h);
        }
        let r = t.send(r).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{wrong:?}");
        assert!(!r.text().contains("http_requests_total"), "{wrong:?}");
    }
    let r = t
        .send(Req::get("/metrics").header("authorization", &format!("Bearer {METRICS_TOKEN}")))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("http_requests_total"), "{}", r.text());
}

#[tokio::test]
async fn metrics_listen_serves_metrics_on_the_admin_address_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let server =
        ServerProcess::start(dir.path(), &[("STRONGROOM_METRICS_LISTEN", "127.0.0.1:0")]).await;
    let admin = server
        .seen
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v["fields"]["metrics_addr"].as_str().map(str::to_string))
        .expect("the admin listener's address is logged as metrics_addr");
    assert_ne!(admin, server.addr);
    let health = reqwest::get(format!("http://{}/healthz", server.addr))
        .await
        .expect("get");
    assert_eq!(health.status(), 200);
    let public = reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .expect("get");
    assert_eq!(public.status(), 404, "not on the public port");
    let m = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .expect("get");
    assert_eq!(m.status(), 200);
    assert!(m
        .text()
        .await
        .expect("text")
        .contains("http_requests_total"));
    // The admin listener serves metrics and nothing else.
    let other = reqwest::get(format!("http://{admin}/api/v1/me"))
        .await
        .expect("get");
    assert_eq!(other.status(), 404);
    let (status, _) = server.stop().await;
    assert!(status.success());
}

#[tokio::test]
async fn check_config_refuses_metrics_on_the_public_address_and_weak_tokens() {
    let dir = tempfile::tempdir().expect("tmp");
    let check = |env: &[(&str, &str)]| {
        let mut c = crate::support::strongroom_bin();
        c.current_dir(dir.path()).arg("check-config");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run")
    };
    for (env, key) in [
        (
            vec![
                ("STRONGROOM_LISTEN", "127.0.0.1:8080"),
                ("STRONGROOM_METRICS_LISTEN", "127.0.0.1:8080"),
            ],
            "metrics_listen",
        ),
        (
            vec![
                ("STRONGROOM_LISTEN", "0.0.0.0:8080"),
                ("STRONGROOM_METRICS_LISTEN", "127.0.0.1:8080"),
            ],
            "metrics_listen",
        ),
        (
            vec![("STRONGROOM_METRICS_LISTEN", "nonsense")],
            "metrics_listen",
        ),
        (vec![("STRONGROOM_METRICS_TOKEN", "\"\"")], "metrics_token"),
        (vec![("STRONGROOM_METRICS_TOKEN", "short")], "metrics_token"),
    ] {
        let out = check(&env);
        assert_eq!(out.status.code(), Some(2), "{env:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(key),
            "{env:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = check(&[
        ("STRONGROOM_METRICS_LISTEN", "127.0.0.1:9090"),
        ("STRONGROOM_METRICS_TOKEN", METRICS_TOKEN),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A cross-site Referer gives a request away when Origin and Sec-Fetch-Site are missing

#[tokio::test]
async fn cross_site_referer_without_origin_is_refused() {
    let t = TestApp::new().await;
    t.verified_user("rita@example.com", "Rita").await;
    let c = t.login("rita@example.com").await;
    for referer in [
        "https://evil.example/attack.html",
        "http://strongroom.test.evil.example/",
        "https://strongroom.test/",
        "http://strongroom.test:8080/",
        "not a url",
    ] {
        // A cookie-authenticated API call...
        let r = t
            .send(
                Req::new(Method::PATCH, "/api/v1/me")
                    .cookie(&c)
                    .header("referer", referer)
                    .json(json!({"display_name": "Pwned"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{referer}");
        assert_eq!(r.code(), "cross_origin_request", "{referer}");
        // ...and a page form.
        let r = t
            .send(
                Req::post("/orgs")
                    .cookie(&c)
                    .header("referer", referer)
                    .form(&[("name", "Planted org")]),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{referer}");
    }
    assert_eq!(t.me(&c).await.json()["display_name"], "Rita");
    assert_eq!(
        listed(&t, &c, "/api/v1/orgs").await,
        0,
        "no org was created"
    );

    // This site's own pages, and clients that send no Referer at all, still work.
    let r = t
        .send(
            Req::post("/orgs")
                .cookie(&c)
                .header("referer", "http://strongroom.test/orgs")
                .form(&[("name", "Real org")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let r = t
        .send(
            Req::new(Method::PATCH, "/api/v1/me")
                .cookie(&c)
                .json(json!({"display_name": "Rita R"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = t
        .send(
            Req::new(Method::PATCH, "/api/v1/me")
                .cookie(&c)
                .header("referer", "http://strongroom.test/account")
                .json(json!({"display_name": "Rita S"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn an_allowed_origin_may_be_the_referer() {
    let t = TestApp::with(|c| c.allowed_origins = vec!["https://app.example.com".into()]).await;
    t.verified_user("rob@example.com", "Rob").await;
    let c = t.login("rob@example.com").await;
    let r = t
        .send(
            Req::new(Method::PATCH, "/api/v1/me")
                .cookie(&c)
                .header("referer", "https://app.example.com/settings")
                .json(json!({"display_name": "Rob R"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

// ---------------------------------------------------------------------------------------------
// 3. Invisible and direction-changing characters in names

/// Invisible, direction-changing and control characters an attacker could hide in a name.
const HIDDEN: [&str; 12] = [
    "\u{200B}", "\u{200D}", "\u{200F}", "\u{2060}", "\u{2064}", "\u{FEFF}", "\u{202A}", "\u{202E}",
    "\u{2066}", "\u{2069}", "\u{2028}", "\u{0007}",
];

fn assert_refused(r: &crate::support::TestResponse, field: &str, what: &str) {
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{what}: {}",
        r.text()
    );
    assert_eq!(r.code(), "invalid_characters", "{what}");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(field),
        "{what}: the field is named: {}",
        r.text()
    );
}

#[tokio::test]
async fn hidden_characters_are_refused_in_display_names() {
    let t = TestApp::new().await;
    for (n, h) in HIDDEN.iter().enumerate() {
        let r = t
            .send(
                Req::post("/api/v1/auth/signup")
                    .ip(&format!("198.51.100.{}", n + 1))
                    .json(json!({
                        "email": format!("eve{n}@example.com"),
                        "password": PASSWORD,
                        "display_name": format!("Ad{h}min"),
                    })),
            )
            .await;
        assert_refused(&r, "display_name", &format!("signup {h:?}"));
    }
    assert_eq!(t.count("users").await, 0, "no account was made");
    assert!(t.new_mail().await.is_empty(), "no mail was sent");

    t.verified_user("vic@example.com", "Victor").await;
    let c = t.login("vic@example.com").await;
    for h in HIDDEN {
        let r = t
            .send(
                Req::new(Method::PATCH, "/api/v1/me")
                    .cookie(&c)
                    .json(json!({"display_name": format!("Vic{h}tor")})),
            )
            .await;
        assert_refused(&r, "display_name", &format!("PATCH /me {h:?}"));
    }
    assert_eq!(t.me(&c).await.json()["display_name"], "Victor");
}

/// An org owner's session with a board holding one item: (cookie, org id, workspace path, item
/// path).
async fn board_with_item(t: &TestApp, email: &str) -> (String, String, String, String) {
    let (c, org) = org_owner(t, email).await;
    let ws = created(
        t,
        &c,
        &format!("/api/v1/orgs/{org}/workspaces"),
        json!({"name": "Room", "kind": "board"}),
    )
    .await;
    let ws_path = format!("/api/v1/orgs/{org}/workspaces/{}", id(&ws));
    let item = created(
        t,
        &c,
        &format!("{ws_path}/items"),
        json!({"title": "Item", "status": "todo"}),
    )
    .await;
    let item_path = format!("{ws_path}/items/{}", id(&item));
    (c, org, ws_path, item_path)
}

#[tokio::test]
async fn hidden_characters_are_refused_in_org_workspace_status_and_item_names() {
    let t = TestApp::new().await;
    let (c, org, ws_path, item_path) = board_with_item(&t, "olga@example.com").await;
    let ws_list = format!("/api/v1/orgs/{org}/workspaces");
    let item_list = format!("{ws_path}/items");
    let (orgs, workspaces, items) = (
        listed(&t, &c, "/api/v1/orgs").await,
        listed(&t, &c, &ws_list).await,
        listed(&t, &c, &item_list).await,
    );
    let org_path = format!("/api/v1/orgs/{org}");
    for h in HIDDEN {
        // (method, path, body, field the problem names, what is being tried)
        let attempts = [
            (
                Method::POST,
                "/api/v1/orgs",
                json!({"name": format!("Acme{h} Corp")}),
                "name",
                "new org",
            ),
            (
                Method::PATCH,
                &org_path,
                json!({"name": format!("Org{h}")}),
                "name",
                "org rename",
            ),
            (
                Method::POST,
                &ws_list,
                json!({"name": format!("{h}Room"), "kind": "board"}),
                "name",
                "new workspace",
            ),
            (
                Method::PATCH,
                &ws_path,
                json!({"name": format!("Ro{h}om")}),
                "name",
                "workspace rename",
            ),
            (
                Method::PATCH,
                &ws_path,
                json!({"statuses": ["todo", format!("do{h}ne")]}),
                "statuses",
                "statuses",
            ),
            (
                Method::POST,
                &item_list,
                json!({"title": format!("Pay{h} invoice"), "status": "todo"}),
                "title",
                "new item",
            ),
            (
                Method::PATCH,
                &item_path,
                json!({"title": format!("It{h}em")}),
                "title",
                "item rename",
            ),
        ];
        for (method, path, body, field, what) in attempts {
            let r = t.send(Req::new(method, path).cookie(&c).json(body)).await;
            assert_refused(&r, field, &format!("{what} {h:?}"));
        }
    }
    // A workspace description keeps line breaks but no other control character.
    let r = t
        .send(
            Req::new(Method::PATCH, &ws_path)
                .cookie(&c)
                .json(json!({"description": "line\u{0000}"})),
        )
        .await;
    assert_refused(&r, "description", "description NUL");
    assert_eq!(listed(&t, &c, "/api/v1/orgs").await, orgs);
    assert_eq!(listed(&t, &c, &ws_list).await, workspaces);
    assert_eq!(listed(&t, &c, &item_list).await, items);
    let w = t.send(Req::get(&ws_path).cookie(&c)).await.json();
    assert_eq!(w["name"], "Room");
    assert_eq!(w["description"], "");
    assert_eq!(w["statuses"], json!(["todo", "doing", "done"]));
    let i = t.send(Req::get(&item_path).cookie(&c)).await.json();
    assert_eq!(i["title"], "Item");
    let o = t
        .send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&c))
        .await
        .json();
    assert_eq!(o["name"], "Org");
    // Ordinary names in other scripts still work.
    let r = t
        .send(
            Req::new(Method::PATCH, &item_path)
                .cookie(&c)
                .json(json!({"title": "Zoë · 李 · Ångström"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn nul_is_refused_in_comments() {
    let t = TestApp::new().await;
    let (c, _, _, item_path) = board_with_item(&t, "nora@example.com").await;
    let updates = format!("{item_path}/updates");
    for body in ["before\u{0000}after", "\u{0000}", "bell\u{0007}"] {
        let r = t
            .send(Req::post(&updates).cookie(&c).json(json!({ "body": body })))
            .await;
        assert_refused(&r, "body", &format!("{body:?}"));
    }
    assert_eq!(listed(&t, &c, &updates).await, 0, "nothing was written");
    // Line breaks from a textarea are fine.
    created(
        &t,
        &c,
        &updates,
        json!({"body": "line one\r\nline two\tend"}),
    )
    .await;
    assert_eq!(listed(&t, &c, &updates).await, 1);
}

// ---------------------------------------------------------------------------------------------
// 4. The item edit form round-trips an empty due date

fn capture(html: &str, re: &str) -> String {
    regex::Regex::new(re)
        .expect("regex")
        .captures(html)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("{re} not in the page"))
}

#[tokio::test]
async fn item_edit_form_round_trips_an_empty_due_date() {
    let t = TestApp::new().await;
    let (c, org) = org_owner(&t, "dora@example.com").await;
    let ws = id(&created(
        &t,
        &c,
        &format!("/api/v1/orgs/{org}/workspaces"),
        json!({"name": "Room", "kind": "board"}),
    )
    .await);
    let item = id(&created(
        &t,
        &c,
        &format!("/api/v1/orgs/{org}/workspaces/{ws}/items"),
        json!({"title": "No deadline", "status": "doing"}),
    )
    .await);
    let page = format!("/orgs/{org}/workspaces/{ws}/items/{item}");
    let r = t.send(Req::get(&page).cookie(&c)).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    let due = capture(
        &html,
        r#"<input id="edit-due" name="due_on" type="date" value="([^"]*)""#,
    );
    assert_eq!(due, "", "an empty due date renders empty");
    assert!(!html.to_lowercase().contains("value=\"none\""), "{html}");
    // Post the form back exactly as rendered.
    let title = capture(
        &html,
        r#"<input id="edit-title" name="title" value="([^"]*)""#,
    );
    let status = capture(&html, r#"<option value="([^"]*)" selected>"#);
    let r = t
        .send(Req::post(&page).cookie(&c).form(&[
            ("title", &title),
            ("status", &status),
            ("assignee_id", ""),
            ("due_on", &due),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let i = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/workspaces/{ws}/items/{item}")).cookie(&c))
        .await
        .json();
    assert_eq!(i["due_on"], Value::Null);
    assert_eq!(i["title"], "No deadline");
    assert_eq!(i["status"], "doing");
}

// ---------------------------------------------------------------------------------------------
// 5. Notices come from server state, not the query string

const REAUTH_CLAIM: &str = "You can make sensitive changes";

#[tokio::test]
async fn account_page_does_not_claim_a_reauthentication_that_did_not_happen() {
    let t = TestApp::new().await;
    t.verified_user("cora@example.com", "Cora").await;
    let c = t.login("cora@example.com").await;
    // Well past the step-up window of the sign-in itself.
    t.clock
        .advance_secs(t.app.config.session.reauth_window_secs + 60);
    let r = t.send(Req::get("/account?confirmed=1").cookie(&c)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        !r.text().contains(REAUTH_CLAIM),
        "a crafted link cannot claim it"
    );
    // And the claim would have been false: sensitive changes are refused.
    let r = t
        .send(Req::post("/api/v1/me/mfa/recovery-codes").cookie(&c))
        .await;
    assert_eq!(r.code(), "reauthentication_required");

    // After a real re-authentication the page says so.
    let r = t
        .send(
            Req::post("/account/reauthenticate")
                .cookie(&c)
                .form(&[("password", PASSWORD), ("code", "")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let to = r.header("location").expect("location");
    let r = t.send(Req::get(&to).cookie(&c)).await;
    assert!(r.text().contains(REAUTH_CLAIM), "{}", r.text());
    // Until the window closes.
    t.clock
        .advance_secs(t.app.config.session.reauth_window_secs + 1);
    let r = t.send(Req::get(&to).cookie(&c)).await;
    assert!(!r.text().contains(REAUTH_CLAIM));
}

// ---------------------------------------------------------------------------------------------
// 6. A session waiting for its second factor can sign out

async fn pending(t: &TestApp, email: &str) -> String {
    let r = t.login_as(email, PASSWORD, "198.51.100.20").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["mfa_required"], true);
    r.session_cookie().expect("pending cookie")
}

fn finish_totp(pending: &str, code: &str) -> Req {
    Req::post("/api/v1/auth/mfa/totp")
        .cookie(pending)
        .json(json!({ "code": code }))
}

#[tokio::test]
async fn a_pending_mfa_session_can_sign_out() {
    let t = TestApp::new().await;
    let (_, secret, _) = user_with_totp(&t, "pia@example.com").await;

    // API.
    let p = pending(&t, "pia@example.com").await;
    let r = t.send(Req::post("/api/v1/auth/logout").cookie(&p)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert!(
        r.header("set-cookie")
            .unwrap_or_default()
            .contains("Max-Age=0"),
        "the cookie is cleared"
    );
    let r = t.send(finish_totp(&p, &code_at(&t, &secret, 0))).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "revoked server-side: a stolen pending cookie cannot finish"
    );
    assert!(t.audit_actions().await.iter().any(|a| a == "auth.logout"));

    // Page.
    t.clock.advance_secs(30);
    let p = pending(&t, "pia@example.com").await;
    let mfa_page = t.send(Req::get("/login/mfa").cookie(&p)).await.text();
    assert!(
        mfa_page.contains("action=\"/logout\""),
        "the page offers it"
    );
    let r = t.send(Req::post("/logout").cookie(&p)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location").as_deref(), Some("/login"));
    let r = t.send(finish_totp(&p, &code_at(&t, &secret, 0))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A second logout of the same cookie is 401.
    let r = t.send(Req::post("/api/v1/auth/logout").cookie(&p)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------------------------
// 7. Status names are encrypted at rest

/// The raw `statuses` column of every workspace of `org`, then the raw `status` of every item.
async fn raw_statuses(t: &TestApp, org: &str, cookie: &str) -> Vec<String> {
    use sqlx::Row;
    let user = t.me(cookie).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let mut tx = crate::support::scoped_tx(&t.app, org, &user).await;
    let mut raw = Vec::new();
    for (sql, col) in [
        (
            "SELECT statuses FROM workspaces WHERE org_id = $1",
            "statuses",
        ),
        ("SELECT status FROM items WHERE org_id = $1", "status"),
    ] {
        for r in sqlx::query(sql)
            .bind(org)
            .fetch_all(&mut *tx)
            .await
            .expect("select")
        {
            raw.push(r.try_get::<String, _>(col).expect("column"));
        }
    }
    tx.commit().await.expect("commit");
    raw
}

#[tokio::test]
async fn status_names_are_encrypted_at_rest() {
    let t = TestApp::new().await;
    let (c, org) = org_owner(&t, "sam@example.com").await;
    let labels = ["Project Kestrel sourcing", "Falcon diligence", "Closed"];
    let ws = created(
        &t,
        &c,
        &format!("/api/v1/orgs/{org}/workspaces"),
        json!({"name": "Deal room", "kind": "deal", "statuses": labels}),
    )
    .await;
    assert_eq!(ws["statuses"], json!(labels));
    let ws_path = format!("/api/v1/orgs/{org}/workspaces/{}", id(&ws));
    let raw = raw_statuses(&t, &org, &c).await;
    assert_eq!(raw.len(), 1);
    for needle in ["Kestrel", "Falcon", "Closed", "sourcing"] {
        assert!(
            !raw[0].contains(needle),
            "{needle} in plaintext: {}",
            raw[0]
        );
    }
    // Renamed statuses are stored encrypted too, and read back.
    let r = t
        .send(
            Req::new(Method::PATCH, &ws_path)
                .cookie(&c)
                .json(json!({"statuses": ["Project Kestrel sourcing", "Heron review"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let raw = raw_statuses(&t, &org, &c).await;
    assert!(
        !raw[0].contains("Heron") && !raw[0].contains("Kestrel"),
        "{}",
        raw[0]
    );
    assert_eq!(
        t.send(Req::get(&ws_path).cookie(&c)).await.json()["statuses"],
        json!(["Project Kestrel sourcing", "Heron review"])
    );
    let list = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/workspaces")).cookie(&c))
        .await
        .json();
    assert_eq!(list["items"][0]["statuses"][1], "Heron review");
    // Items take those statuses (the list is decrypted for validation too), and store them
    // encrypted as well.
    let item = created(
        &t,
        &c,
        &format!("{ws_path}/items"),
        json!({"title": "Target", "status": "Heron review"}),
    )
    .await;
    assert_eq!(item["status"], "Heron review");
    let item_path = format!("{ws_path}/items/{}", id(&item));
    let raw = raw_statuses(&t, &org, &c).await;
    assert_eq!(raw.len(), 2);
    for r in &raw {
        assert!(!r.contains("Heron") && !r.contains("Kestrel"), "{r}");
    }
    assert_eq!(
        t.send(Req::get(&item_path).cookie(&c)).await.json()["status"],
        "Heron review"
    );

    // A status list written before this change (plaintext JSON) still works, and is sealed the
    // first time the workspace is opened.
    let user = t.me(&c).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let mut tx = crate::support::scoped_tx(&t.app, &org, &user).await;
    sqlx::query("UPDATE workspaces SET statuses = $2 WHERE org_id = $1")
        .bind(&org)
        .bind(r#"["Legacy open","Legacy shut"]"#)
        .execute(&mut *tx)
        .await
        .expect("plant legacy row");
    sqlx::query("UPDATE items SET status = $2 WHERE org_id = $1")
        .bind(&org)
        .bind("Legacy open")
        .execute(&mut *tx)
        .await
        .expect("plant legacy item");
    tx.commit().await.expect("commit");
    let w = t.send(Req::get(&ws_path).cookie(&c)).await.json();
    assert_eq!(w["statuses"], json!(["Legacy open", "Legacy shut"]));
    let raw = raw_statuses(&t, &org, &c).await;
    for r in &raw {
        assert!(!r.contains("Legacy"), "re-encrypted: {r}");
    }
    assert_eq!(
        t.send(Req::get(&ws_path).cookie(&c)).await.json()["statuses"],
        json!(["Legacy open", "Legacy shut"])
    );
    assert_eq!(
        t.send(Req::get(&item_path).cookie(&c)).await.json()["status"],
        "Legacy open"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Every file in the data dir is private

#[cfg(unix)]
fn assert_private_tree(root: &std::path::Path) -> usize {
    use std::os::unix::fs::PermissionsExt;
    let mut files = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mode = std::fs::metadata(&dir).expect("dir").permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o700,
            "{} is {:o}",
            dir.display(),
            mode & 0o777
        );
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let e = e.expect("entry");
            let meta = std::fs::symlink_metadata(e.path()).expect("meta");
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                files += 1;
                let mode = meta.permissions().mode();
                assert_eq!(
                    mode & 0o777,
                    0o600,
                    "{} is {:o}",
                    e.path().display(),
                    mode & 0o777
                );
            }
        }
    }
    files
}

#[cfg(unix)]
#[tokio::test]
async fn every_file_in_the_data_dir_is_private() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = ServerProcess::start(dir.path(), &[]).await;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://{}/api/v1/auth/signup", server.addr))
        .json(&json!({"email": "fay@example.com", "password": PASSWORD, "display_name": "Fay"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(r.status(), 202);
    let data = dir.path().join("strongroom-data");
    let outbox = data.join("outbox");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_dir(&outbox)
        .map(|d| d.count() == 0)
        .unwrap_or(true)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no mail in the outbox"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let files = assert_private_tree(&data);
    assert!(files >= 2, "master key and a mail at least");
    if !crate::support::backend_is_postgres() {
        assert!(data.join("strongroom.db").is_file());
        assert!(data.join("strongroom.db-wal").is_file());
    }
    let (status, _) = server.stop().await;
    assert!(status.success());
    assert_private_tree(&data);
}

#[cfg(unix)]
#[tokio::test]
async fn an_embedded_sqlite_database_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    if crate::support::backend_is_postgres() {
        return;
    }
    // The library, without the binary's umask: the test process keeps its own.
    let t = TestApp::new().await;
    t.signup("gus@example.com", "Gus").await;
    for f in ["test.db", "test.db-wal", "test.db-shm"] {
        let path = t.dir.path().join(f);
        if f == "test.db" || path.exists() {
            let mode = std::fs::metadata(&path).expect(f).permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{f} is {:o}", mode & 0o777);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 9. Two different session cookies: no session

#[tokio::test]
async fn two_different_session_cookies_give_no_session() {
    let t = TestApp::new().await;
    t.verified_user("ida@example.com", "Ida").await;
    t.verified_user("mal@example.com", "Mal").await;
    let ida = t.login("ida@example.com").await;
    let mal = t.login("mal@example.com").await;
    let name = t.cookie_name();
    let garbage = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (a, b) in [
        (ida.as_str(), garbage),
        (garbage, ida.as_str()),
        (ida.as_str(), mal.as_str()),
        (mal.as_str(), ida.as_str()),
    ] {
        // In one Cookie header...
        let one = format!("{name}={a}; {name}={b}");
        let r = t.send(Req::get("/api/v1/me").header("cookie", &one)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{one}");
        let r = t.send(Req::get("/account").header("cookie", &one)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "pages: signed out");
        assert_eq!(r.header("location").as_deref(), Some("/login"));
        let r = t.send(Req::get("/orgs").header("cookie", &one)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "pages: signed out");
        // ...or in two.
        let r = t
            .send(
                Req::get("/api/v1/me")
                    .header("cookie", &format!("{name}={a}"))
                    .header("cookie", &format!("other=1; {name}={b}")),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // A state change is refused the same way.
        let r = t
            .send(
                Req::new(Method::PATCH, "/api/v1/me")
                    .header("cookie", &one)
                    .json(json!({"display_name": "Swapped"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(t.me(&ida).await.json()["display_name"], "Ida");
    assert_eq!(t.me(&mal).await.json()["display_name"], "Mal");
    // The same cookie twice is still that session; other cookies do not matter.
    let r = t
        .send(
            Req::get("/api/v1/me")
                .header("cookie", &format!("{name}={ida}; theme=dark; {name}={ida}")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["display_name"], "Ida");
}
