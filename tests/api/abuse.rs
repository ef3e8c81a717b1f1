//! Rate limits from the attacker's side.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Req, TestApp, PASSWORD};

#[tokio::test]
async fn sixth_failed_login_on_an_account_is_refused_from_any_address() {
    let t = TestApp::new().await;
    t.verified_user("sam@example.com", "Sam").await;
    for i in 0..5 {
        let r = t
            .login_as(
                "sam@example.com",
                "wrong guess number something",
                &format!("198.51.100.{}", 30 + i),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // Even the right password from a fresh address is refused inside the window.
    let r = t.login_as("sam@example.com", PASSWORD, "192.0.2.200").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "rate_limited");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=900).contains(&retry), "{retry}");
    assert!(r.session_cookie().is_none());
    // Unknown accounts are limited the same way (no enumeration through the limiter).
    for _ in 0..5 {
        t.login_as(
            "ghost@example.com",
            "wrong guess number something",
            "192.0.2.1",
        )
        .await;
    }
    assert_eq!(
        t.login_as("ghost@example.com", PASSWORD, "192.0.2.2")
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // After the window the owner gets in.
    t.clock.advance_secs(15 * 60 + 1);
    assert_eq!(
        t.login_as("sam@example.com", PASSWORD, "192.0.2.200")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn per_address_login_limit_ignores_spoofed_forwarded_for() {
    let t = TestApp::with(|c| c.rate_limits.login_per_ip = strongroom::config::Limit::new(3, 900))
        .await;
    for i in 0..3 {
        let r = t
            .send(Req::post("/api/v1/auth/login").ip("198.51.100.50").header("x-forwarded-for", &format!("10.9.9.{i}"))
                .json(json!({"email": format!("u{i}@example.com"), "password": "wrong guess number something"})))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = t
        .send(
            Req::post("/api/v1/auth/login")
                .ip("198.51.100.50")
                .header("x-forwarded-for", "10.9.9.99")
                .json(
                    json!({"email": "u9@example.com", "password": "wrong guess number something"}),
                ),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "X-Forwarded-For from an untrusted peer must be ignored"
    );
    // Another address is not affected: one office's failures do not lock out another.
    assert_eq!(
        t.login_as(
            "u9@example.com",
            "wrong guess number something",
            "198.51.100.51"
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_names_the_client() {
    let t = TestApp::with(|c| {
        c.rate_limits.login_per_ip = strongroom::config::Limit::new(2, 900);
        c.trusted_proxies = vec!["10.0.0.0/8".into()];
    })
    .await;
    for client in [
        "198.51.100.61",
        "198.51.100.62",
        "198.51.100.63",
        "198.51.100.64",
    ] {
        let r = t
            .send(Req::post("/api/v1/auth/login").ip("10.0.0.5").header("x-forwarded-for", client)
                .json(json!({"email": "x@example.com", "password": "wrong guess number something"})))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{client} is its own client behind the proxy"
        );
    }
}

#[tokio::test]
async fn signup_is_limited_per_address() {
    let t = TestApp::new().await;
    for i in 0..5 {
        assert_eq!(
            t.signup(&format!("s{i}@example.com"), "S").await.status,
            StatusCode::ACCEPTED
        );
    }
    let r = t.signup("s6@example.com", "S").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    assert_eq!(t.count("users").await, 5);
    t.clock.advance_secs(61);
    assert_eq!(
        t.signup("s7@example.com", "S").await.status,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn reset_and_resend_are_throttled_per_email_and_per_address() {
    let t = TestApp::new().await;
    t.verified_user("tia@example.com", "Tia").await;
    for email in ["tia@example.com", "nobody@example.com"] {
        for i in 0..3 {
            let r = t
                .send(
                    Req::post("/api/v1/auth/password-reset")
                        .ip(&format!("198.51.100.{}", 70 + i))
                        .json(json!({"email": email})),
                )
                .await;
            assert_eq!(r.status, StatusCode::ACCEPTED);
        }
        // The fourth request for the same address, from yet another IP, is throttled, whether or
        // not the account exists.
        let r = t
            .send(
                Req::post("/api/v1/auth/resend-verification")
                    .ip("198.51.100.99")
                    .json(json!({"email": email})),
            )
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{email}");
    }
    assert_eq!(
        t.new_mail()
            .await
            .iter()
            .filter(|m| m.to == "tia@example.com")
            .count(),
        3
    );
    let mut last = StatusCode::ACCEPTED;
    for i in 0..11 {
        last = t
            .send(
                Req::post("/api/v1/auth/password-reset")
                    .ip("198.51.100.111")
                    .json(json!({"email": format!("r{i}@example.com")})),
            )
            .await
            .status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS, "per-address limit");
}

#[tokio::test]
async fn every_auth_route_shares_a_general_per_address_limit() {
    let t =
        TestApp::with(|c| c.rate_limits.auth_per_ip = strongroom::config::Limit::new(4, 60)).await;
    for _ in 0..4 {
        t.send(
            Req::post("/api/v1/auth/verify-email")
                .ip("198.51.100.120")
                .json(json!({"token": "x"})),
        )
        .await;
    }
    let r = t
        .send(
            Req::post("/api/v1/auth/login")
                .ip("198.51.100.120")
                .json(json!({"email": "a@example.com", "password": "b"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let page = t
        .send(
            Req::post("/login")
                .ip("198.51.100.120")
                .form(&[("email", "a@example.com"), ("password", "b")]),
        )
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        t.send(Req::get("/healthz").ip("198.51.100.120"))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_cannot_slip_past_the_account_limit() {
    let t = std::sync::Arc::new(TestApp::new().await);
    t.verified_user("una@example.com", "Una").await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let t = t.clone();
        set.spawn(async move {
            t.login_as(
                "una@example.com",
                &format!("parallel guess number {i} xyz"),
                &format!("198.51.100.{}", 100 + i),
            )
            .await
            .status
        });
    }
    let statuses: Vec<StatusCode> = set.join_all().await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        15,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn rate_limited_pages_say_when_to_retry() {
    let t = TestApp::new().await;
    for i in 0..5 {
        t.send(Req::post("/login").ip("198.51.100.140").form(&[
            ("email", "vic@example.com"),
            ("password", &format!("guess {i} guess guess")),
        ]))
        .await;
    }
    let r = t
        .send(Req::post("/login").ip("198.51.100.141").form(&[
            ("email", "vic@example.com"),
            ("password", "guess six guess guess"),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    assert!(r.text().contains("Try again in"));
}

#[tokio::test]
async fn api_requests_are_limited_per_session_and_per_address() {
    let t = TestApp::with(|c| {
        c.rate_limits.api_per_session = strongroom::config::Limit::new(3, 60);
        c.rate_limits.api_per_ip = strongroom::config::Limit::new(5, 60);
    })
    .await;
    // Sign-up, verification and login are API requests too: each step gets a fresh window.
    t.verified_user("ann@example.com", "Ann").await;
    t.clock.advance_secs(61);
    t.verified_user("bob@example.com", "Bob").await;
    t.clock.advance_secs(61);
    let ann = t.login("ann@example.com").await;
    let bob = t.login("bob@example.com").await;
    t.clock.advance_secs(61);
    let me = |cookie: &str, ip: &str| Req::get("/api/v1/me").cookie(cookie).ip(ip);
    for _ in 0..3 {
        assert_eq!(
            t.send(me(&ann, "198.51.100.1")).await.status,
            StatusCode::OK
        );
    }
    // The session's budget is spent, from any address.
    let r = t.send(me(&ann, "198.51.100.2")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "rate_limited");
    assert!(r.header("retry-after").is_some());
    // Another session has its own, until its address has spent the address budget (5: three
    // from ann, and these two).
    for _ in 0..2 {
        assert_eq!(
            t.send(me(&bob, "198.51.100.1")).await.status,
            StatusCode::OK
        );
    }
    let r = t.send(me(&bob, "198.51.100.1")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    // Without a session too: the address is limited on every API route.
    let r = t
        .send(Req::get("/api/v1/openapi.json").ip("198.51.100.1"))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Pages are not API routes, and the windows slide.
    assert_eq!(
        t.send(Req::get("/healthz").ip("198.51.100.1")).await.status,
        StatusCode::OK
    );
    t.clock.advance_secs(61);
    assert_eq!(
        t.send(me(&ann, "198.51.100.1")).await.status,
        StatusCode::OK
    );
}
