//! Signup, verification, login, password change and reset, from the user's and the attacker's side.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{comparable_headers, Req, TestApp, PASSWORD};

#[tokio::test]
async fn signup_verify_login_and_me() {
    let t = TestApp::new().await;
    let r = t.signup("Alice@Example.com", "Alice").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json(), json!({"status": "accepted"}));
    let mail = t.mail_to("alice@example.com").await;
    let token = mail.token("/verify-email");

    // Right password, email not verified: no session.
    let r = t
        .login_as("alice@example.com", PASSWORD, "198.51.100.1")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "email_not_verified");
    assert!(r.session_cookie().is_none());

    let r = t
        .send(Req::post("/api/v1/auth/verify-email").json(json!({ "token": token })))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"status": "verified"}));

    let cookie = t.login("alice@example.com").await;
    let me = t.me(&cookie).await.json();
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["display_name"], "Alice");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["mfa"], json!({"totp": false, "passkeys": 0}));

    let r = t
        .send(
            Req::new(axum::http::Method::PATCH, "/api/v1/me")
                .cookie(&cookie)
                .json(json!({"display_name": "Alice B."})),
        )
        .await;
    assert_eq!(r.json()["display_name"], "Alice B.");
    assert_eq!(
        t.audit_actions().await,
        [
            "user.signup",
            "auth.login_failed",
            "user.email_verified",
            "auth.login_succeeded",
            "user.profile_updated"
        ]
    );
    assert_eq!(
        t.send(Req::get("/api/v1/me")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn verification_tokens_are_single_use_and_expire() {
    let t = TestApp::new().await;
    t.signup("bob@example.com", "Bob").await;
    let token = t.mail_to("bob@example.com").await.token("/verify-email");
    let verify = |tok: String| Req::post("/api/v1/auth/verify-email").json(json!({ "token": tok }));
    assert_eq!(t.send(verify(token.clone())).await.status, StatusCode::OK);
    let replay = t.send(verify(token)).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.code(), "invalid_token");
    assert_eq!(
        t.send(verify("made-up".into())).await.code(),
        "invalid_token"
    );

    t.signup("carol@example.com", "Carol").await;
    let token = t.mail_to("carol@example.com").await.token("/verify-email");
    t.clock.advance_secs(24 * 3600 + 1);
    assert_eq!(t.send(verify(token)).await.code(), "invalid_token");
    // Resend gives a fresh link that works; the old one stays dead.
    let r = t
        .send(
            Req::post("/api/v1/auth/resend-verification")
                .json(json!({"email": "carol@example.com"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let fresh = t.mail_to("carol@example.com").await.token("/verify-email");
    assert_eq!(t.send(verify(fresh)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn signup_does_not_reveal_taken_emails_and_tells_the_owner() {
    let t = TestApp::new().await;
    t.verified_user("dana@example.com", "Dana").await;
    let body = |e: &str| json!({"email": e, "password": "an attacker's own long passphrase", "display_name": "Eve"});
    let taken = t
        .send(
            Req::post("/api/v1/auth/signup")
                .ip("198.51.100.2")
                .json(body("dana@example.com")),
        )
        .await;
    let fresh = t
        .send(
            Req::post("/api/v1/auth/signup")
                .ip("198.51.100.3")
                .json(body("erin@example.com")),
        )
        .await;
    assert_eq!(taken.status, fresh.status);
    assert_eq!(taken.body, fresh.body);
    assert_eq!(
        comparable_headers(&taken.headers),
        comparable_headers(&fresh.headers)
    );
    let mails = t.new_mail().await;
    let owner: Vec<_> = mails
        .iter()
        .filter(|m| m.to == "dana@example.com")
        .collect();
    assert_eq!(owner.len(), 1);
    assert!(
        owner[0].body.contains("already has one"),
        "{}",
        owner[0].body
    );
    assert!(!owner[0].body.contains("token="));
    // Logging in with the password just used answers the same for both: "not verified".
    let attacker_pw = "an attacker's own long passphrase";
    let a = t
        .login_as("dana@example.com", attacker_pw, "198.51.100.9")
        .await;
    let b = t
        .login_as("erin@example.com", attacker_pw, "198.51.100.9")
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!((a.status, &a.body), (b.status, &b.body));
    assert_eq!(
        comparable_headers(&a.headers),
        comparable_headers(&b.headers)
    );
    // The attacker's password did not replace the owner's, and got no session.
    assert!(a.session_cookie().is_none());
    assert_eq!(
        t.login_as("dana@example.com", PASSWORD, "198.51.100.9")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(t.count("users").await, 2);
}

#[tokio::test]
async fn login_reset_and_resend_answer_alike_for_unknown_accounts() {
    let t = TestApp::new().await;
    t.verified_user("fay@example.com", "Fay").await;
    let wrong = t
        .login_as(
            "fay@example.com",
            "not the right passphrase at all",
            "198.51.100.4",
        )
        .await;
    let unknown = t
        .login_as(
            "nobody@example.com",
            "not the right passphrase at all",
            "198.51.100.5",
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(
        comparable_headers(&wrong.headers),
        comparable_headers(&unknown.headers)
    );

    for path in [
        "/api/v1/auth/password-reset",
        "/api/v1/auth/resend-verification",
    ] {
        let a = t
            .send(
                Req::post(path)
                    .ip("198.51.100.6")
                    .json(json!({"email": "fay@example.com"})),
            )
            .await;
        let b = t
            .send(
                Req::post(path)
                    .ip("198.51.100.7")
                    .json(json!({"email": "nobody@example.com"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{path}");
        assert_eq!((a.status, &a.body), (b.status, &b.body), "{path}");
        assert_eq!(
            comparable_headers(&a.headers),
            comparable_headers(&b.headers),
            "{path}"
        );
    }
    // Only the real account got mail (a reset link; resend says nothing to a verified account).
    let mails = t.new_mail().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, "fay@example.com");
}

#[tokio::test]
async fn weak_passwords_are_refused_with_a_reason_and_nothing_is_written() {
    let t = TestApp::new().await;
    let cases = [
        ("short pass", "at least 15"),
        ("passwordpassword123", "weak"),
        ("gina-loves-ginas-garden-2024", "email"),
        ("the-great-Bartholomew-Quill-story", "name"),
    ];
    for (pw, why) in cases {
        let r = t
            .send(Req::post("/api/v1/auth/signup").json(json!({"email": "gina@example.com", "password": pw, "display_name": "Bartholomew Quill"})))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{pw}");
        assert_eq!(r.code(), "weak_password");
        assert!(
            r.json()["detail"].as_str().unwrap_or("").contains(why),
            "{pw}: {}",
            r.text()
        );
    }
    // 128 code points of any script are accepted and never truncated.
    let long: String = "Съешь же ещё этих мягких французских булок, да выпей чаю; широкая электрификация южных губерний даст мощный толчок подъёму сельского хозяйства"
        .chars()
        .take(128)
        .collect();
    assert_eq!(long.chars().count(), 128);
    let r = t
        .send(
            Req::post("/api/v1/auth/signup")
                .json(json!({"email": "hal@example.com", "password": long, "display_name": "Hal"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(t.count("users").await, 1);
    let tok = t.mail_to("hal@example.com").await.token("/verify-email");
    t.send(Req::post("/api/v1/auth/verify-email").json(json!({ "token": tok })))
        .await;
    assert_eq!(
        t.login_as("hal@example.com", &long, "198.51.100.1")
            .await
            .status,
        StatusCode::OK
    );
    let truncated: String = long.chars().take(127).collect();
    assert_eq!(
        t.login_as("hal@example.com", &truncated, "198.51.100.1")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn password_change_revokes_other_sessions_and_notifies() {
    let t = TestApp::new().await;
    t.verified_user("ivan@example.com", "Ivan").await;
    let a = t.login("ivan@example.com").await;
    let b = t.login("ivan@example.com").await;
    let new_pw = "a brand new passphrase for me";
    let change = |cur: &str| {
        Req::post("/api/v1/me/password")
            .cookie(&a)
            .json(json!({"current_password": cur, "new_password": new_pw}))
    };
    let r = t.send(change("wrong current password here")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "invalid_current_password");
    assert_eq!(
        t.send(change(PASSWORD)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(t.me(&a).await.status, StatusCode::OK);
    assert_eq!(t.me(&b).await.status, StatusCode::UNAUTHORIZED);
    assert!(t
        .mail_to("ivan@example.com")
        .await
        .subject
        .contains("password was changed"));
    assert_eq!(
        t.login_as("ivan@example.com", PASSWORD, "198.51.100.1")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.login_as("ivan@example.com", new_pw, "198.51.100.1")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn password_reset_is_single_use_expires_and_revokes_every_session() {
    let t = TestApp::new().await;
    t.verified_user("jo@example.com", "Jo").await;
    let s1 = t.login("jo@example.com").await;
    let s2 = t.login("jo@example.com").await;
    let ask = || Req::post("/api/v1/auth/password-reset").json(json!({"email": "jo@example.com"}));
    assert_eq!(t.send(ask()).await.status, StatusCode::ACCEPTED);
    let token = t.mail_to("jo@example.com").await.token("/reset-password");
    let new_pw = "jo picks a fresh long passphrase";
    let confirm = |tok: &str, pw: &str| {
        Req::post("/api/v1/auth/password-reset/confirm")
            .json(json!({"token": tok, "new_password": pw}))
    };

    // A refused password does not burn the link.
    let weak = t.send(confirm(&token, "tooshort")).await;
    assert_eq!(weak.code(), "weak_password");
    assert_eq!(
        t.send(confirm(&token, new_pw)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(t.me(&s1).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.me(&s2).await.status, StatusCode::UNAUTHORIZED);
    assert!(t
        .mail_to("jo@example.com")
        .await
        .subject
        .contains("password was changed"));
    let replay = t
        .send(confirm(&token, "yet another long passphrase here"))
        .await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.code(), "invalid_token");
    assert_eq!(
        t.login_as("jo@example.com", new_pw, "198.51.100.1")
            .await
            .status,
        StatusCode::OK
    );

    // A link older than 30 minutes is dead; asking again voids the previous link.
    t.send(ask()).await;
    let old = t.mail_to("jo@example.com").await.token("/reset-password");
    t.send(ask()).await;
    let newer = t.mail_to("jo@example.com").await.token("/reset-password");
    assert_eq!(
        t.send(confirm(&old, "some other long passphrase"))
            .await
            .code(),
        "invalid_token"
    );
    t.clock.advance_secs(30 * 60 + 1);
    assert_eq!(
        t.send(confirm(&newer, "some other long passphrase"))
            .await
            .code(),
        "invalid_token"
    );
    let actions = t.audit_actions().await;
    assert!(actions.contains(&"user.password_reset_requested".to_string()));
    assert!(actions.contains(&"user.password_reset_completed".to_string()));
}

#[tokio::test]
async fn personal_data_is_encrypted_at_rest() {
    let t = TestApp::new().await;
    t.verified_user("kim.secret@example.com", "Kimberly Zebrafish")
        .await;
    let _c = t.login("kim.secret@example.com").await;
    let needles = [
        "kim.secret@example.com",
        "Kimberly Zebrafish",
        "203.0.113.10",
    ];
    let haystack: Vec<u8> = if crate::support::backend_is_postgres() {
        use sqlx::Row;
        let mut all = Vec::new();
        for table in [
            "users",
            "sessions",
            "user_tokens",
            "audit_events",
            "email_outbox",
            "data_keys",
        ] {
            let rows = sqlx::query(&format!("SELECT CAST(t.* AS TEXT) AS r FROM {table} t"))
                .fetch_all(&mut *t.app.db.acquire().await.expect("conn"))
                .await
                .expect("dump");
            for r in rows {
                all.extend(r.try_get::<String, _>("r").expect("text").into_bytes());
            }
        }
        assert!(all.len() > 1000, "the dump must hold the rows");
        all
    } else {
        let mut all = Vec::new();
        for f in ["test.db", "test.db-wal"] {
            if let Ok(b) = std::fs::read(t.dir.path().join(f)) {
                all.extend(b);
            }
        }
        all
    };
    for n in needles {
        assert!(
            !haystack.windows(n.len()).any(|w| w == n.as_bytes()),
            "{n} found in plaintext"
        );
    }
    // The emails are found all the same (blind index), and a ciphertext moved to another row fails.
    use sqlx::Row;
    let row = sqlx::query("SELECT id, email_ct FROM users")
        .fetch_one(&mut *t.app.db.acquire().await.expect("conn"))
        .await
        .expect("row");
    let id: String = row.try_get("id").expect("id");
    let ct: Vec<u8> = row.try_get("email_ct").expect("ct");
    let k = &t.app.keyring;
    let here = strongroom::crypto::FieldAd {
        scope: "platform",
        table: "users",
        column: "email",
        row: &id,
        account: Some(&id),
    };
    assert_eq!(
        k.open_field_string(&here, &ct).expect("opens"),
        "kim.secret@example.com"
    );
    let elsewhere = strongroom::crypto::FieldAd {
        scope: "platform",
        table: "users",
        column: "email",
        row: "another-row",
        account: Some(&id),
    };
    assert!(k.open_field(&elsewhere, &ct).is_err());
    // Nor does it open as another account's field.
    let other_account = strongroom::crypto::FieldAd {
        account: Some("another-account"),
        ..here
    };
    assert!(k.open_field(&other_account, &ct).is_err());
}

#[tokio::test]
async fn audit_chain_verifies_masks_personal_data_and_refuses_edits() {
    let t = TestApp::new().await;
    t.verified_user("lee@example.com", "Lee").await;
    t.login_as(
        "lee@example.com",
        "definitely the wrong password",
        "198.51.100.77",
    )
    .await;
    let _c = t.login("lee@example.com").await;
    let mut c = t.app.db.acquire().await.expect("conn");
    let events = strongroom::audit::load_platform_chain(&mut c)
        .await
        .expect("chain");
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=events.len() as i64).collect::<Vec<_>>()
    );
    assert_eq!(strongroom::audit::first_bad_seq(&events), None);
    let failed = events
        .iter()
        .find(|e| e.action == "auth.login_failed")
        .expect("failure event");
    assert_eq!(failed.ip.as_deref(), Some("198.51.100.0"));
    assert_eq!(failed.metadata["email"], "l***@e***.com");
    let all = serde_json::to_string(&events).expect("json");
    assert!(!all.contains("lee@example.com") && !all.contains("198.51.100.77"));

    // Tampering is detected at the right place.
    let mut forged = events.clone();
    forged[1].metadata = json!({"email": "x"});
    assert_eq!(strongroom::audit::first_bad_seq(&forged), Some(2));
    let mut dropped = events.clone();
    dropped.remove(1);
    assert_eq!(strongroom::audit::first_bad_seq(&dropped), Some(2));

    // The database refuses UPDATE and DELETE.
    for sql in [
        "UPDATE audit_events SET action = 'x'",
        "DELETE FROM audit_events",
    ] {
        assert!(
            sqlx::query(sql).execute(&mut *c).await.is_err(),
            "{sql} must be refused"
        );
    }
    assert_eq!(
        strongroom::audit::load_platform_chain(&mut c)
            .await
            .expect("chain")
            .len(),
        events.len()
    );
}

#[tokio::test]
async fn login_upgrades_stored_hashes_when_the_cost_rises() {
    use sqlx::Row;
    let t = TestApp::new().await;
    t.verified_user("max@example.com", "Max").await;
    let hash = || async {
        sqlx::query("SELECT password_hash FROM users")
            .fetch_one(&mut *t.app.db.acquire().await.expect("conn"))
            .await
            .expect("row")
            .try_get::<String, _>("password_hash")
            .expect("hash")
    };
    assert!(hash().await.contains("m=64,t=1,p=1"));
    let mut cfg = (*t.app.config).clone();
    cfg.password.argon2_memory_kib = 256;
    cfg.password.argon2_iterations = 2;
    let stronger = strongroom::state::App::build(cfg, t.clock.clone())
        .await
        .expect("app");
    let ctx = strongroom::identity::RequestCtx {
        ip: "198.51.100.1".parse().expect("ip"),
        user_agent: String::new(),
        device: None,
    };
    strongroom::identity::login(&stronger, &ctx, "max@example.com", PASSWORD)
        .await
        .expect("login");
    let upgraded = hash().await;
    assert!(
        upgraded.starts_with("$argon2id$") && upgraded.contains("m=256,t=2,p=1"),
        "{upgraded}"
    );
    assert!(
        strongroom::identity::login(&stronger, &ctx, "max@example.com", PASSWORD)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_stranger_who_signed_up_first_cannot_keep_the_account() {
    let t = TestApp::new().await;
    let attacker_pw = "the attacker chose this passphrase";
    let r = t
        .send(Req::post("/api/v1/auth/signup").ip("198.51.100.66").json(
            json!({"email": "olga@example.com", "password": attacker_pw, "display_name": "Olga"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let attackers_link = t.mail_to("olga@example.com").await.token("/verify-email");
    // The owner signs up later with her own password and confirms with the link she received.
    t.signup("olga@example.com", "Olga").await;
    let owners_link = t.mail_to("olga@example.com").await.token("/verify-email");
    assert_ne!(attackers_link, owners_link);
    let r = t
        .send(Req::post("/api/v1/auth/verify-email").json(json!({ "token": owners_link })))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        t.login_as("olga@example.com", attacker_pw, "198.51.100.66")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.login_as("olga@example.com", PASSWORD, "198.51.100.67")
            .await
            .status,
        StatusCode::OK
    );
    // The other link died with the confirmation.
    let r = t
        .send(Req::post("/api/v1/auth/verify-email").json(json!({ "token": attackers_link })))
        .await;
    assert_eq!(r.code(), "invalid_token");
    assert_eq!(t.count("users").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_used_twice_at_once_works_once() {
    let t = std::sync::Arc::new(TestApp::new().await);
    t.signup("pat@example.com", "Pat").await;
    let token = t.mail_to("pat@example.com").await.token("/verify-email");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (t, token) = (t.clone(), token.clone());
        set.spawn(async move {
            t.send(Req::post("/api/v1/auth/verify-email").json(json!({ "token": token })))
                .await
                .status
        });
    }
    let statuses: Vec<StatusCode> = set.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::BAD_REQUEST)
            .count(),
        3,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_password_change_voids_earlier_reset_links() {
    let t = TestApp::new().await;
    t.verified_user("quincy@example.com", "Quincy").await;
    t.send(Req::post("/api/v1/auth/password-reset").json(json!({"email": "quincy@example.com"})))
        .await;
    let link = t
        .mail_to("quincy@example.com")
        .await
        .token("/reset-password");
    let s = t.login("quincy@example.com").await;
    let new_pw = "a different passphrase entirely";
    let r = t
        .send(
            Req::post("/api/v1/me/password")
                .cookie(&s)
                .json(json!({"current_password": PASSWORD, "new_password": new_pw})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = t
        .send(
            Req::post("/api/v1/auth/password-reset/confirm")
                .json(json!({"token": link, "new_password": "the thief's new passphrase"})),
        )
        .await;
    assert_eq!(r.code(), "invalid_token");
    assert_eq!(
        t.login_as("quincy@example.com", new_pw, "198.51.100.1")
            .await
            .status,
        StatusCode::OK
    );
}
