//! HTTP hardening: headers, cross-origin guard, body limits, problem documents, operations routes.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{Req, TestApp};

fn assert_security_headers(r: &crate::support::TestResponse) {
    let csp = r.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self'")
            && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        r.header("referrer-policy").as_deref(),
        Some("same-origin"),
        "the full URL (with a token in it) never leaves the site"
    );
    assert!(r
        .header("permissions-policy")
        .expect("permissions")
        .contains("camera=()"));
    assert_eq!(
        r.header("cross-origin-opener-policy").as_deref(),
        Some("same-origin")
    );
    assert!(r.header("x-request-id").expect("request id").len() >= 32);
}

#[tokio::test]
async fn security_headers_on_every_kind_of_response() {
    let t = TestApp::new().await;
    for path in [
        "/healthz",
        "/login",
        "/api/v1/me",
        "/nope",
        "/static/style.css",
    ] {
        let r = t.send(Req::get(path)).await;
        assert_security_headers(&r);
    }
    let r = t.send(Req::get("/nope")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(r.json()["code"], "not_found");
    let r = t.send(Req::new(Method::PUT, "/api/v1/auth/login")).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.json()["code"], "method_not_allowed");
    // A client-sent request id is not echoed into our logs or headers.
    let r = t
        .send(Req::get("/healthz").header("x-request-id", "evil-injected-id"))
        .await;
    assert_ne!(
        r.header("x-request-id").as_deref(),
        Some("evil-injected-id")
    );
}

#[tokio::test]
async fn cross_origin_state_changes_are_refused_even_with_a_valid_cookie() {
    let t = TestApp::new().await;
    t.verified_user("uma@example.com", "Uma").await;
    let s = t.login("uma@example.com").await;
    let revoke_all = || Req::delete("/api/v1/me/sessions").cookie(&s);
    let r = t
        .send(revoke_all().header("origin", "https://evil.example"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "cross_origin_request");
    let r = t
        .send(
            Req::post("/api/v1/auth/logout")
                .cookie(&s)
                .header("sec-fetch-site", "cross-site"),
        )
        .await;
    assert_eq!(r.code(), "cross_origin_request");
    let r = t
        .send(
            Req::post("/account/password")
                .cookie(&s)
                .header("origin", "null")
                .form(&[("current_password", "x")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(t.me(&s).await.status, StatusCode::OK, "nothing was revoked");
    // The same request from our own origin works.
    let r = t
        .send(
            Req::post("/api/v1/auth/logout")
                .cookie(&s)
                .header("origin", "http://strongroom.test")
                .header("sec-fetch-site", "same-origin"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn cors_only_for_configured_origins() {
    let t = TestApp::with(|c| c.allowed_origins = vec!["https://app.partner.example".into()]).await;
    let pre = |origin: &str| {
        Req::new(Method::OPTIONS, "/api/v1/me")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
    };
    let ok = t.send(pre("https://app.partner.example")).await;
    assert_eq!(
        ok.header("access-control-allow-origin").as_deref(),
        Some("https://app.partner.example")
    );
    assert_eq!(
        ok.header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    let no = t.send(pre("https://evil.example")).await;
    assert!(no.header("access-control-allow-origin").is_none());
    let plain = TestApp::new().await;
    assert!(plain
        .send(pre("https://evil.example"))
        .await
        .header("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn oversized_malformed_and_unknown_bodies_change_nothing() {
    let t = TestApp::new().await;
    let big = format!(
        "{{\"email\":\"a@example.com\",\"password\":\"{}\",\"display_name\":\"A\"}}",
        "x".repeat(10 * 1024 * 1024)
    );
    let r = t
        .send(Req::post("/api/v1/auth/signup").raw("application/json", big.into_bytes()))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(r.code(), "payload_too_large");

    let r = t
        .send(Req::post("/api/v1/auth/signup").raw(
            "application/json",
            b"{\"email\": \"a@example.com\",".to_vec(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "invalid_body");

    let r = t
        .send(Req::post("/api/v1/auth/signup").json(json!({"email": "a@example.com", "password": crate::support::PASSWORD, "display_name": "A", "is_admin": true})))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json()["detail"]
        .as_str()
        .expect("detail")
        .contains("is_admin"));
    let r = t
        .send(
            Req::post("/api/v1/auth/signup")
                .json(json!({"email": 7, "password": "x", "display_name": "A"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = t
        .send(Req::post("/api/v1/auth/signup").raw("text/plain", b"hello".to_vec()))
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(t.count("users").await, 0);
    assert_eq!(t.count("email_outbox").await, 0);
    assert_eq!(t.count("audit_events").await, 0);
}

#[tokio::test]
async fn problem_documents_never_leak_internals() {
    let t = TestApp::new().await;
    let r = t
        .send(Req::post("/api/v1/auth/verify-email").json(json!({"token": "' OR 1=1 --"})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let body = r.json();
    for key in ["type", "title", "status", "code", "detail"] {
        assert!(body.get(key).is_some(), "{key}");
    }
    let text = r.text().to_lowercase();
    for leak in ["sql", "select", "/src/", "panicked", "sqlite", "postgres"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}

#[tokio::test]
async fn operations_routes() {
    let t = TestApp::new().await;
    assert_eq!(
        t.send(Req::get("/healthz")).await.json(),
        json!({"status": "ok"})
    );
    let ready = t.send(Req::get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(
        ready.json()["checks"],
        json!({"database": "ok", "object_store": "ok"})
    );
    // Metrics are not public: without a token configured they are not on the main listener at
    // all (hardening_small covers the token and the admin listener).
    let m = t.send(Req::get("/metrics")).await;
    assert_eq!(m.status, StatusCode::NOT_FOUND);
    let sec = t.send(Req::get("/.well-known/security.txt")).await.text();
    for field in [
        "Contact: ",
        "Expires: ",
        "Preferred-Languages: ",
        "Canonical: ",
    ] {
        assert!(sec.contains(field), "{sec}");
    }
    let doc = t.send(Req::get("/api/v1/openapi.json")).await.json();
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    let expected = [
        ("post", "/api/v1/auth/signup"),
        ("post", "/api/v1/auth/verify-email"),
        ("post", "/api/v1/auth/resend-verification"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/logout"),
        ("post", "/api/v1/auth/password-reset"),
        ("post", "/api/v1/auth/password-reset/confirm"),
        ("get", "/api/v1/me"),
        ("patch", "/api/v1/me"),
        ("post", "/api/v1/me/password"),
        ("get", "/api/v1/me/sessions"),
        ("delete", "/api/v1/me/sessions"),
        ("delete", "/api/v1/me/sessions/{id}"),
        ("get", "/api/v1/openapi.json"),
        ("post", "/api/v1/auth/mfa/totp"),
        ("post", "/api/v1/auth/mfa/recovery-code"),
        ("post", "/api/v1/auth/passkey/start"),
        ("post", "/api/v1/auth/passkey/finish"),
        ("post", "/api/v1/me/mfa/totp"),
        ("delete", "/api/v1/me/mfa/totp"),
        ("post", "/api/v1/me/mfa/totp/confirm"),
        ("post", "/api/v1/me/mfa/recovery-codes"),
        ("post", "/api/v1/me/reauthenticate"),
        ("post", "/api/v1/me/passkeys/register/start"),
        ("post", "/api/v1/me/passkeys/register/finish"),
        ("get", "/api/v1/me/passkeys"),
        ("patch", "/api/v1/me/passkeys/{id}"),
        ("delete", "/api/v1/me/passkeys/{id}"),
    ];
    for (method, path) in expected {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let t = TestApp::new().await;
    t.app.db.close().await;
    let r = t.send(Req::get("/readyz")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["checks"]["database"], "failed");
    // Requests that need the database get a retryable 503, not a 500.
    let r = t
        .send(Req::post("/api/v1/auth/verify-email").json(json!({"token": "x"})))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.code(), "service_unavailable");
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
}

#[tokio::test]
async fn a_request_that_stalls_is_cut_off_with_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().expect("tmp");
    let server = crate::support::ServerProcess::start(
        dir.path(),
        &[("STRONGROOM_REQUEST_TIMEOUT_SECS", "1")],
    )
    .await;
    let mut s = tokio::net::TcpStream::connect(&server.addr)
        .await
        .expect("connect");
    // Announce a body and never send it (slowloris).
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        server.addr
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("answered in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("application/problem+json") && text.contains("request_timeout"),
        "{text}"
    );
    let (status, _) = server.stop().await;
    assert!(status.success());
}

/// Browsers get error pages, API clients problem documents: an unknown address, a method the route
/// does not take (a GET of /logout), an API path even when the client says it wants HTML.
#[tokio::test]
async fn browsers_get_error_pages_and_api_clients_problem_documents() {
    let t = TestApp::new().await;
    let html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

    let r = t
        .send(Req::get("/no/such/page").header("accept", html))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    let page = r.text();
    assert!(page.contains("Page not found"), "{page}");
    assert!(page.contains(r#"href="/static/style.css""#), "{page}");
    assert!(
        !page.contains("request-id"),
        "no reference on a 404: {page}"
    );
    assert!(r.header("content-security-policy").is_some());

    // The same address for an API client: a problem document.
    let r = t.send(Req::get("/no/such/page")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(r.code(), "not_found");

    // A GET of a POST-only page route: a 405 page that keeps `Allow`.
    let r = t
        .send(Req::get("/account/reauthenticate").header("accept", html))
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.text().contains("Not available this way"), "{}", r.text());
    assert!(r.header("allow").is_some_and(|a| a.contains("POST")));

    // API paths stay machine-readable whatever the Accept header says.
    let r = t
        .send(Req::get("/api/v1/no-such-route").header("accept", html))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/problem+json")
    );
}

#[tokio::test]
async fn favicon_and_trailing_slashes() {
    let t = TestApp::new().await;
    let r = t.send(Req::get("/favicon.ico")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type").as_deref(), Some("image/svg+xml"));
    assert!(r.text().starts_with("<svg"));

    // A page address with a trailing slash goes to the one without, query kept.
    let r = t.send(Req::get("/orgs/?x=1")).await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.header("location").as_deref(), Some("/orgs?x=1"));
    // Never to another host: `//evil.example/` trimmed would be a protocol-relative URL.
    for hostile in ["//evil.example/", "/\\evil.example/"] {
        let r = t.send(Req::get(hostile)).await;
        assert_ne!(r.status, StatusCode::PERMANENT_REDIRECT, "{hostile}");
        assert!(r.header("location").is_none(), "{hostile}");
    }
    // Not for API paths, and not for changes.
    let r = t.send(Req::get("/api/v1/me/")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = t.send(Req::post("/orgs/")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// GET /logout asks (a page with the button); only the POST signs out. Signed out, it goes to
/// the sign-in page.
#[tokio::test]
async fn a_link_to_logout_asks_and_only_the_button_signs_out() {
    let t = TestApp::new().await;
    let r = t.send(Req::get("/logout")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location").as_deref(), Some("/login"));
    t.verified_user("lou@example.com", "Lou").await;
    let c = t.login("lou@example.com").await;
    let r = t.send(Req::get("/logout").cookie(&c)).await;
    assert_eq!(r.status, StatusCode::OK);
    let page = r.text();
    assert!(
        page.contains(r#"<form method="post" action="/logout">"#),
        "{page}"
    );
    assert!(page.contains(r#"id="confirm-sign-out""#), "{page}");
    assert_eq!(
        t.me(&c).await.status,
        StatusCode::OK,
        "a GET signs nobody out"
    );
    let r = t.send(Req::post("/logout").cookie(&c)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(t.me(&c).await.status, StatusCode::UNAUTHORIZED);
}
