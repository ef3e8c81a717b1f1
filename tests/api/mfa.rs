//! Second factors from the attacker's side: TOTP replay and drift, pending sessions, recovery codes,
//! rate limits and step-up.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{Req, TestApp, PASSWORD};

/// The code an authenticator app shows for `secret` at the app's clock plus `offset_steps`.
pub fn code_at(t: &TestApp, secret: &str, offset_steps: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).expect("base32");
    let totp = totp_rs::Builder::new()
        .with_secret(secret.as_bytes().to_vec())
        .build()
        .expect("totp");
    let secs = t.clock_secs() as i64 + offset_steps * 30;
    totp.generate(secs as u64).to_string()
}

/// Signs up, logs in, enrols TOTP; returns (cookie, base32 secret, recovery codes).
pub async fn user_with_totp(t: &TestApp, email: &str) -> (String, String, Vec<String>) {
    t.verified_user(email, "Mfa User").await;
    let cookie = t.login(email).await;
    let r = t
        .send(Req::post("/api/v1/me/mfa/totp").cookie(&cookie))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let e = r.json();
    let secret = e["secret"].as_str().expect("secret").to_string();
    assert!(e["otpauth_uri"]
        .as_str()
        .expect("uri")
        .starts_with("otpauth://totp/Strongroom"));
    assert!(e["qr_svg"].as_str().expect("svg").contains("<svg"));
    // Not active until confirmed.
    assert_eq!(t.me(&cookie).await.json()["mfa"]["totp"], false);
    let r = t
        .send(
            Req::post("/api/v1/me/mfa/totp/confirm")
                .cookie(&cookie)
                .json(json!({"code": code_at(t, &secret, 0)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let codes: Vec<String> = r.json()["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("s").to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    assert_eq!(t.me(&cookie).await.json()["mfa"]["totp"], true);
    t.clock.advance_secs(30);
    (cookie, secret, codes)
}

async fn pending_login(t: &TestApp, email: &str) -> String {
    let r = t.login_as(email, PASSWORD, "198.51.100.1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_eq!(body["mfa_required"], true);
    assert!(
        body.get("user").is_none(),
        "no user data before the second factor"
    );
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    r.session_cookie().expect("pending cookie")
}

fn totp_req(pending: &str, code: &str) -> Req {
    Req::post("/api/v1/auth/mfa/totp")
        .cookie(pending)
        .json(json!({ "code": code }))
}

#[tokio::test]
async fn totp_login_upgrades_the_session_and_refuses_replay() {
    let t = TestApp::new().await;
    let (_, secret, _) = user_with_totp(&t, "amy@example.com").await;
    let pending = pending_login(&t, "amy@example.com").await;
    // The pending session can do nothing but finish MFA (or sign out: hardening_small).
    for (m, p) in [
        (Method::GET, "/api/v1/me"),
        (Method::GET, "/api/v1/me/sessions"),
        (Method::DELETE, "/api/v1/me/sessions"),
        (Method::POST, "/api/v1/me/mfa/recovery-codes"),
    ] {
        assert_eq!(
            t.send(Req::new(m.clone(), p).cookie(&pending)).await.status,
            StatusCode::UNAUTHORIZED,
            "{m} {p}"
        );
    }
    assert_eq!(
        t.send(Req::get("/account").cookie(&pending)).await.status,
        StatusCode::SEE_OTHER
    );
    let code = code_at(&t, &secret, 0);
    let r = t.send(totp_req(&pending, &code)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["mfa_required"], false);
    assert_eq!(r.json()["user"]["email"], "amy@example.com");
    let full = r.session_cookie().expect("new cookie");
    assert_ne!(full, pending, "a new token after the second factor");
    assert_eq!(t.me(&full).await.status, StatusCode::OK);
    assert_eq!(
        t.send(totp_req(&pending, &code)).await.status,
        StatusCode::UNAUTHORIZED,
        "the pending session is gone"
    );

    // The same code, still inside its window, is refused on a new login.
    let again = pending_login(&t, "amy@example.com").await;
    let r = t.send(totp_req(&again, &code)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "invalid_code");
    t.clock.advance_secs(30);
    assert_eq!(
        t.send(totp_req(&again, &code_at(&t, &secret, 0)))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn drift_of_one_step_is_accepted_three_is_not() {
    let t = TestApp::new().await;
    let (_, secret, _) = user_with_totp(&t, "ben@example.com").await;
    t.clock.advance_secs(300);
    let pending = pending_login(&t, "ben@example.com").await;
    assert_eq!(
        t.send(totp_req(&pending, &code_at(&t, &secret, -3)))
            .await
            .code(),
        "invalid_code"
    );
    assert_eq!(
        t.send(totp_req(&pending, &code_at(&t, &secret, 3)))
            .await
            .code(),
        "invalid_code"
    );
    assert_eq!(
        t.send(totp_req(&pending, &code_at(&t, &secret, -1)))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn five_wrong_codes_end_the_pending_session_and_it_expires() {
    let t = TestApp::new().await;
    let (_, secret, _) = user_with_totp(&t, "cal@example.com").await;
    let pending = pending_login(&t, "cal@example.com").await;
    for i in 0..5 {
        let r = t
            .send(totp_req(&pending, &format!("{:06}", 100_000 + i)))
            .await;
        assert_eq!(r.code(), "invalid_code");
    }
    let r = t.send(totp_req(&pending, &code_at(&t, &secret, 0))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.code(),
        "unauthenticated",
        "the pending session was revoked"
    );

    let slow = pending_login(&t, "cal@example.com").await;
    t.clock.advance_secs(5 * 60 + 1);
    assert_eq!(
        t.send(totp_req(&slow, &code_at(&t, &secret, 0)))
            .await
            .code(),
        "unauthenticated"
    );
}

#[tokio::test]
async fn second_factor_attempts_are_rate_limited_per_account() {
    let t = TestApp::new().await;
    let (_, secret, _) = user_with_totp(&t, "dee@example.com").await;
    let mut last = StatusCode::OK;
    for round in 0..3 {
        let pending = pending_login(&t, "dee@example.com").await;
        for i in 0..4 {
            last = t
                .send(totp_req(
                    &pending,
                    &format!("{:06}", 200_000 + round * 10 + i),
                ))
                .await
                .status;
        }
    }
    assert_eq!(
        last,
        StatusCode::TOO_MANY_REQUESTS,
        "more than 10 wrong codes in 15 minutes"
    );
    let pending = pending_login(&t, "dee@example.com").await;
    let r = t.send(totp_req(&pending, &code_at(&t, &secret, 0))).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right code waits"
    );
    assert!(r.header("retry-after").is_some());
}

#[tokio::test]
async fn a_recovery_code_works_exactly_once_and_is_reported() {
    let t = TestApp::new().await;
    let (_, _, codes) = user_with_totp(&t, "eve@example.com").await;
    t.new_mail().await;
    let pending = pending_login(&t, "eve@example.com").await;
    let r = t
        .send(
            Req::post("/api/v1/auth/mfa/recovery-code")
                .cookie(&pending)
                .json(json!({"code": codes[3].to_lowercase()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mail = t.mail_to("eve@example.com").await;
    assert!(mail.body.contains("9 unused codes remain"), "{}", mail.body);
    let pending = pending_login(&t, "eve@example.com").await;
    let r = t
        .send(
            Req::post("/api/v1/auth/mfa/recovery-code")
                .cookie(&pending)
                .json(json!({"code": codes[3]})),
        )
        .await;
    assert_eq!(r.code(), "invalid_code");
    let r = t
        .send(
            Req::post("/api/v1/auth/mfa/recovery-code")
                .cookie(&pending)
                .json(json!({"code": codes[4]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let actions = t.audit_actions().await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "mfa.recovery_code_used")
            .count(),
        2
    );
}

#[tokio::test]
async fn step_up_expires_after_ten_minutes_and_guards_sensitive_actions() {
    let t = TestApp::new().await;
    let (cookie, secret, old_codes) = user_with_totp(&t, "fin@example.com").await;
    t.clock.advance_secs(10 * 60);
    let regen = || Req::post("/api/v1/me/mfa/recovery-codes").cookie(&cookie);
    let r = t.send(regen()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "reauthentication_required");
    let r = t
        .send(Req::delete("/api/v1/me/mfa/totp").cookie(&cookie))
        .await;
    assert_eq!(r.code(), "reauthentication_required");
    let wrong = t
        .send(
            Req::post("/api/v1/me/reauthenticate")
                .cookie(&cookie)
                .json(json!({"password": "not my password at all"})),
        )
        .await;
    // A wrong password from a valid session is 422, not 401 (which would read as "signed out").
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.code(), "invalid_credentials");
    assert_eq!(t.me(&cookie).await.status, StatusCode::OK);
    let r = t
        .send(
            Req::post("/api/v1/me/reauthenticate")
                .cookie(&cookie)
                .json(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = t.send(regen()).await;
    assert_eq!(r.status, StatusCode::OK);
    let new_codes = r.json()["recovery_codes"].as_array().expect("codes").len();
    assert_eq!(new_codes, 10);
    // The old set is void.
    let pending = pending_login(&t, "fin@example.com").await;
    let r = t
        .send(
            Req::post("/api/v1/auth/mfa/recovery-code")
                .cookie(&pending)
                .json(json!({"code": old_codes[0]})),
        )
        .await;
    assert_eq!(r.code(), "invalid_code");
    // Step-up with a TOTP code works too, and lapses again after ten minutes.
    t.clock.advance_secs(11 * 60);
    assert_eq!(t.send(regen()).await.code(), "reauthentication_required");
    let r = t
        .send(
            Req::post("/api/v1/me/reauthenticate")
                .cookie(&cookie)
                .json(json!({"code": code_at(&t, &secret, 0)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(t.send(regen()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn removing_totp_needs_proof_signs_out_other_sessions_and_emails() {
    let t = TestApp::new().await;
    let (cookie, secret, _) = user_with_totp(&t, "gus@example.com").await;
    let other = {
        let p = pending_login(&t, "gus@example.com").await;
        t.send(totp_req(&p, &code_at(&t, &secret, 0)))
            .await
            .session_cookie()
            .expect("cookie")
    };
    t.clock.advance_secs(11 * 60);
    t.new_mail().await;
    let r = t
        .send(
            Req::delete("/api/v1/me/mfa/totp")
                .cookie(&cookie)
                .json(json!({"code": "000000"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "invalid_code");
    t.clock.advance_secs(30);
    let r = t
        .send(
            Req::delete("/api/v1/me/mfa/totp")
                .cookie(&cookie)
                .json(json!({"code": code_at(&t, &secret, 0)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(t.me(&other).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.me(&cookie).await.json()["mfa"]["totp"], false);
    assert!(t
        .mail_to("gus@example.com")
        .await
        .subject
        .contains("turned off"));
    let r = t
        .login_as("gus@example.com", PASSWORD, "198.51.100.1")
        .await;
    assert_eq!(r.json()["mfa_required"], false);
}

#[tokio::test]
async fn passkeys_need_a_domain_name_in_the_public_url() {
    let t = TestApp::with(|c| c.public_url = Some("http://127.0.0.1:9".into())).await;
    t.verified_user("hal@example.com", "Hal").await;
    let s = t.login("hal@example.com").await;
    let r = t
        .send(Req::post("/api/v1/me/passkeys/register/start").cookie(&s))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "passkeys_unavailable");
}

#[tokio::test]
async fn passkey_ceremonies_refuse_forged_or_stale_answers() {
    let t = TestApp::new().await;
    t.verified_user("ida@example.com", "Ida").await;
    let s = t.login("ida@example.com").await;
    let r = t
        .send(Req::post("/api/v1/me/passkeys/register/start").cookie(&s))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let opts = r.json();
    assert_eq!(opts["publicKey"]["rp"]["id"], "strongroom.test");
    assert_eq!(
        opts["publicKey"]["authenticatorSelection"]["residentKey"],
        "required"
    );
    assert!(opts["publicKey"]["challenge"]
        .as_str()
        .is_some_and(|c| c.len() >= 32));

    let finish = |cred: serde_json::Value| {
        Req::post("/api/v1/me/passkeys/register/finish")
            .cookie(&s)
            .json(json!({"name": "Laptop", "credential": cred}))
    };
    let r = t.send(finish(json!({"nonsense": true}))).await;
    assert_eq!(r.code(), "invalid_credential");
    let forged = json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
        "response": {"attestationObject": "o2NmbXRkbm9uZQ", "clientDataJSON": "e30"}
    });
    let r = t.send(finish(forged.clone())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "passkey_rejected", "{}", r.text());
    // The challenge was spent by that answer: a second try needs a new ceremony.
    assert_eq!(t.send(finish(forged)).await.code(), "ceremony_expired");
    assert_eq!(t.count("passkeys").await, 0);
    assert_eq!(
        t.send(Req::get("/api/v1/me/passkeys").cookie(&s))
            .await
            .json()["items"],
        json!([])
    );

    // Passwordless sign-in: a challenge for anyone, and nothing for a forged answer.
    let r = t.send(Req::post("/api/v1/auth/passkey/start")).await;
    assert_eq!(r.status, StatusCode::OK);
    let ceremony = r.json()["ceremony_id"]
        .as_str()
        .expect("ceremony")
        .to_string();
    let assertion = json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
        "response": {"authenticatorData": "AAAA", "clientDataJSON": "e30", "signature": "AAAA", "userHandle": null}
    });
    let r = t
        .send(
            Req::post("/api/v1/auth/passkey/finish")
                .json(json!({"ceremony_id": ceremony, "credential": assertion})),
        )
        .await;
    assert!(
        matches!(
            r.status,
            StatusCode::UNAUTHORIZED | StatusCode::UNPROCESSABLE_ENTITY
        ),
        "{}",
        r.text()
    );
    assert!(r.session_cookie().is_none());

    // Management of passkeys that are not there.
    let id = uuid::Uuid::now_v7().to_string();
    let r = t
        .send(
            Req::new(Method::PATCH, &format!("/api/v1/me/passkeys/{id}"))
                .cookie(&s)
                .json(json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        t.send(Req::delete(&format!("/api/v1/me/passkeys/{id}")).cookie(&s))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.send(Req::delete("/api/v1/me/passkeys/%00").cookie(&s))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Registration is a sensitive action: after ten minutes it needs a step-up.
    t.clock.advance_secs(11 * 60);
    let r = t
        .send(Req::post("/api/v1/me/passkeys/register/start").cookie(&s))
        .await;
    assert_eq!(r.code(), "reauthentication_required");
}

#[tokio::test]
async fn a_pending_session_reaches_no_account_route_or_page() {
    let t = TestApp::new().await;
    let (_, _, _) = user_with_totp(&t, "jan@example.com").await;
    let pending = pending_login(&t, "jan@example.com").await;
    let id = uuid::Uuid::now_v7().to_string();
    let api = [
        (Method::POST, "/api/v1/me/mfa/totp".to_string()),
        (Method::POST, "/api/v1/me/mfa/totp/confirm".to_string()),
        (Method::DELETE, "/api/v1/me/mfa/totp".to_string()),
        (Method::POST, "/api/v1/me/reauthenticate".to_string()),
        (Method::POST, "/api/v1/me/password".to_string()),
        (Method::PATCH, "/api/v1/me".to_string()),
        (Method::GET, "/api/v1/me/passkeys".to_string()),
        (
            Method::POST,
            "/api/v1/me/passkeys/register/start".to_string(),
        ),
        (
            Method::POST,
            "/api/v1/me/reauthenticate/passkey/start".to_string(),
        ),
        (Method::DELETE, format!("/api/v1/me/passkeys/{id}")),
        (Method::DELETE, format!("/api/v1/me/sessions/{id}")),
    ];
    for (m, p) in api {
        let r = t
            .send(
                Req::new(m.clone(), &p)
                    .cookie(&pending)
                    .json(json!({"code": "123456", "password": PASSWORD})),
            )
            .await;
        assert!(
            matches!(
                r.status,
                StatusCode::UNAUTHORIZED | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{m} {p}: {}",
            r.status
        );
        assert_ne!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{m} {p} must be refused before its body is read"
        );
    }
    for p in [
        "/account/mfa/totp",
        "/account/mfa/recovery-codes",
        "/account/reauthenticate",
        "/account/password",
        "/account/sessions/revoke-others",
    ] {
        let r = t
            .send(
                Req::post(p)
                    .cookie(&pending)
                    .form(&[("password", PASSWORD), ("code", "123456")]),
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{p}");
        assert_eq!(r.header("location").as_deref(), Some("/login"), "{p}");
    }
    // Nothing changed: the pending session still finishes normally later, with the owner's factors.
    assert_eq!(t.count("recovery_codes").await, 10);
}

#[tokio::test]
async fn removing_totp_by_code_is_limited_and_audited() {
    let t = TestApp::new().await;
    let (cookie, secret, _) = user_with_totp(&t, "kai@example.com").await;
    let mut statuses = Vec::new();
    for i in 0..11 {
        let r = t
            .send(
                Req::delete("/api/v1/me/mfa/totp")
                    .cookie(&cookie)
                    .json(json!({"code": format!("{:06}", 300_000 + i)})),
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
            .count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(statuses[10], StatusCode::TOO_MANY_REQUESTS);
    let r = t
        .send(
            Req::delete("/api/v1/me/mfa/totp")
                .cookie(&cookie)
                .json(json!({"code": code_at(&t, &secret, 0)})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right code waits"
    );
    assert_eq!(t.me(&cookie).await.json()["mfa"]["totp"], true);
    let failures = t
        .audit_actions()
        .await
        .into_iter()
        .filter(|a| a == "auth.mfa_failed")
        .count();
    assert_eq!(failures, 10);
}

#[tokio::test]
async fn secrets_and_codes_are_not_stored_in_the_clear() {
    let t = TestApp::new().await;
    let (_, secret, codes) = user_with_totp(&t, "lea@example.com").await;
    use sqlx::Row;
    let row = sqlx::query("SELECT secret_ct FROM mfa_totp")
        .fetch_one(&mut *t.app.db.acquire().await.expect("conn"))
        .await
        .expect("row");
    let ct: Vec<u8> = row.try_get("secret_ct").expect("ct");
    let raw = totp_rs::Secret::try_from_base32(&secret)
        .expect("b32")
        .as_bytes()
        .to_vec();
    assert!(
        !ct.windows(raw.len()).any(|w| w == raw.as_slice()),
        "raw secret stored"
    );
    assert!(
        !ct.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "base32 secret stored"
    );
    let hashes: Vec<String> = sqlx::query("SELECT code_hash FROM recovery_codes")
        .fetch_all(&mut *t.app.db.acquire().await.expect("conn"))
        .await
        .expect("rows")
        .into_iter()
        .map(|r| r.try_get("code_hash").expect("h"))
        .collect();
    assert_eq!(hashes.len(), 10);
    for c in &codes {
        let plain = c.replace('-', "");
        assert!(hashes
            .iter()
            .all(|h| !h.contains(&plain) && !h.contains(c.as_str())));
        // 16 base32 characters: 80 bits.
        assert_eq!(plain.len(), 16, "{c}");
    }
}

#[tokio::test]
async fn the_otpauth_uri_says_sha1_six_digits_thirty_seconds() {
    let t = TestApp::new().await;
    t.verified_user("max@example.com", "Max").await;
    let s = t.login("max@example.com").await;
    let e = t
        .send(Req::post("/api/v1/me/mfa/totp").cookie(&s))
        .await
        .json();
    let uri = e["otpauth_uri"].as_str().expect("uri");
    let parsed = totp_rs::Totp::from_url(uri).expect("a valid otpauth URI");
    assert_eq!(parsed.digits(), 6);
    assert_eq!(parsed.step(), 30);
    assert!(matches!(parsed.algorithm(), totp_rs::Algorithm::SHA1));
    assert_eq!(parsed.issuer(), Some("Strongroom"));
    assert!(uri.contains(&format!("secret={}", e["secret"].as_str().expect("secret"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_code_raced_on_two_logins_works_once() {
    let t = std::sync::Arc::new(TestApp::new().await);
    let (_, secret, _) = user_with_totp(&t, "ned@example.com").await;
    let a = pending_login(&t, "ned@example.com").await;
    let b = pending_login(&t, "ned@example.com").await;
    let code = code_at(&t, &secret, 0);
    let mut set = tokio::task::JoinSet::new();
    for p in [a, b] {
        let (t, code) = (t.clone(), code.clone());
        set.spawn(async move { t.send(totp_req(&p, &code)).await.status });
    }
    let statuses = set.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_codes_cannot_exceed_five_per_pending_session() {
    let t = std::sync::Arc::new(
        TestApp::with(|c| c.rate_limits.mfa_per_account = strongroom::config::Limit::new(100, 900))
            .await,
    );
    let (_, _, _) = user_with_totp(&t, "ola@example.com").await;
    let p = pending_login(&t, "ola@example.com").await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (t, p) = (t.clone(), p.clone());
        set.spawn(async move {
            t.send(totp_req(&p, &format!("{:06}", 400_000 + i)))
                .await
                .code()
        });
    }
    let codes = set.join_all().await;
    assert_eq!(
        codes.iter().filter(|c| *c == "invalid_code").count(),
        5,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| *c == "unauthenticated").count(),
        7,
        "{codes:?}"
    );
}

#[tokio::test]
async fn password_change_is_a_step_up_action_and_failed_step_ups_are_audited() {
    let t = TestApp::new().await;
    t.verified_user("pam@example.com", "Pam").await;
    let s = t.login("pam@example.com").await;
    t.clock.advance_secs(11 * 60);
    let new_pw = "a fresh passphrase for later";
    let change = || {
        Req::post("/api/v1/me/password")
            .cookie(&s)
            .json(json!({"current_password": PASSWORD, "new_password": new_pw}))
    };
    assert_eq!(t.send(change()).await.code(), "reauthentication_required");
    let r = t
        .send(
            Req::post("/api/v1/me/reauthenticate")
                .cookie(&s)
                .json(json!({"password": "not the password at all"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "invalid_credentials");
    assert!(t
        .audit_actions()
        .await
        .contains(&"auth.reauthentication_failed".to_string()));
    t.send(
        Req::post("/api/v1/me/reauthenticate")
            .cookie(&s)
            .json(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(t.send(change()).await.status, StatusCode::NO_CONTENT);
    // The page asks for the step-up instead of failing.
    t.clock.advance_secs(11 * 60);
    let r = t
        .send(Req::post("/account/password").cookie(&s).form(&[
            ("current_password", new_pw),
            ("new_password", "another passphrase again"),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("Confirm it is you"));
}

/// A wrong code while setting up an authenticator app is the user's typo, not a lost session:
/// 422 `invalid_code` on the API (401 would make a client sign its user out), the session still
/// works, and the pending secret survives, so the one already scanned still confirms. The page
/// shows the same secret again with the error tied to the code field.
#[tokio::test]
async fn a_wrong_code_at_totp_setup_keeps_the_session_and_the_scanned_secret() {
    let t = TestApp::new().await;
    t.verified_user("hal@example.com", "Hal").await;
    let cookie = t.login("hal@example.com").await;
    let r = t
        .send(Req::post("/api/v1/me/mfa/totp").cookie(&cookie))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let secret = r.json()["secret"].as_str().expect("secret").to_string();
    let confirm = |code: String| {
        Req::post("/api/v1/me/mfa/totp/confirm")
            .cookie(&cookie)
            .json(json!({ "code": code }))
    };
    let right = code_at(&t, &secret, 0);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    let r = t.send(confirm(wrong.to_string())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.code(), "invalid_code");
    assert_eq!(t.me(&cookie).await.status, StatusCode::OK);
    assert_eq!(t.me(&cookie).await.json()["mfa"]["totp"], false);

    // The same on the page: 422, the same secret shown again, the error on the field.
    let r = t
        .send(
            Req::post("/account/mfa/totp/confirm")
                .cookie(&cookie)
                .form(&[("code", wrong)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let page = r.text();
    assert!(page.contains(&format!(">{secret}</code>")), "{page}");
    assert!(
        page.contains(r#"aria-invalid="true" aria-describedby="code-error""#),
        "{page}"
    );
    assert!(page.contains(r#"id="code-error""#), "{page}");

    // The secret scanned at the start still confirms.
    let r = t.send(confirm(right)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(t.me(&cookie).await.json()["mfa"]["totp"], true);
}
