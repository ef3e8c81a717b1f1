//! A wrong-password login costs the same work whatever the account behind the address: unknown,
//! verified, unverified, or verified with a pending signup for its address. Counted, not timed:
//! the password hashes the app computed, and every SQL statement sqlx ran (its `sqlx::query`
//! events, seen by a process-wide tracing layer; this binary holds this one test, so nothing else
//! runs statements meanwhile). Runs on SQLite, and on PostgreSQL with
//! `STRONGROOM_TEST_DATABASE=postgres`. The timing side is `cargo bench --bench login_timing`.

#[path = "api/support.rs"]
#[allow(dead_code)]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use support::{Req, TestApp, PASSWORD};
use tracing_subscriber::layer::SubscriberExt;

/// Counts the statements sqlx runs, from any thread (SQLite runs them on a worker thread).
struct StatementCounter(Arc<AtomicU64>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatementCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

const OTHER_PASSWORD: &str = "a different passphrase for the signup";

#[derive(Debug, PartialEq, Eq)]
struct Work {
    statements: u64,
    hashes: u64,
    status: StatusCode,
    body: Vec<u8>,
}

async fn measure(
    t: &TestApp,
    statements: &AtomicU64,
    email: &str,
    password: &str,
    ip: &str,
) -> Work {
    let (q0, h0) = (statements.load(Ordering::SeqCst), t.app.hasher.computed());
    let r = t.login_as(email, password, ip).await;
    Work {
        statements: statements.load(Ordering::SeqCst) - q0,
        hashes: t.app.hasher.computed() - h0,
        status: r.status,
        body: r.body,
    }
}

#[tokio::test]
async fn every_kind_of_wrong_password_login_does_the_same_work() {
    let statements = Arc::new(AtomicU64::new(0));
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(StatementCounter(statements.clone())),
    )
    .expect("the only subscriber of this binary");

    // One SQLite reader: the warm-up below opens it. (With several, a reader first opened during a
    // measured login counts its connection set-up statements against that login: seen once in CI.)
    let t = TestApp::with(|c| c.sqlite_read_connections = 1).await;
    t.verified_user("verified@example.com", "Vera").await;
    let r = t
        .send(Req::post("/api/v1/auth/signup").json(json!({
            "email": "unverified@example.com", "password": PASSWORD, "display_name": "Una"
        })))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    t.verified_user("pending@example.com", "Pat").await;
    // Someone signs up again with a taken address: a pending signup with its own password.
    let r = t
        .send(Req::post("/api/v1/auth/signup").json(json!({
            "email": "pending@example.com", "password": OTHER_PASSWORD, "display_name": "Pat"
        })))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    t.new_mail().await;

    let kinds = [
        ("unknown", "nobody@example.com"),
        ("verified", "verified@example.com"),
        ("unverified", "unverified@example.com"),
        ("verified with a pending signup", "pending@example.com"),
    ];
    let wrong = "certainly not the right password";
    // Warm up every path once (statement caches, pool connections), then measure each kind three
    // times, interleaved, each from its own address (the per-account limit allows five).
    for (i, (_, email)) in kinds.iter().enumerate() {
        measure(
            &t,
            &statements,
            email,
            wrong,
            &format!("198.51.100.{}", 10 + i),
        )
        .await;
    }
    let mut seen: Vec<(&str, Work)> = Vec::new();
    for round in 0..3 {
        for (i, (kind, email)) in kinds.iter().enumerate() {
            let ip = format!("198.51.100.{}", 20 + round * 4 + i);
            seen.push((kind, measure(&t, &statements, email, wrong, &ip).await));
        }
    }
    let first = &seen[0].1;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    assert_eq!(first.hashes, 2, "two password hashes per login");
    assert!(first.statements > 0, "the counter sees statements");
    for (kind, w) in &seen {
        assert_eq!(
            (w.statements, w.hashes, w.status, &w.body),
            (first.statements, first.hashes, first.status, &first.body),
            "{kind} differs from unknown"
        );
    }

    // The two "not verified" answers (the right password of an unverified account, and the
    // password of a pending signup for a taken address) cost the same as each other and as a
    // wrong password.
    let unverified = measure(
        &t,
        &statements,
        "unverified@example.com",
        PASSWORD,
        "192.0.2.1",
    )
    .await;
    let pending = measure(
        &t,
        &statements,
        "pending@example.com",
        OTHER_PASSWORD,
        "192.0.2.2",
    )
    .await;
    assert_eq!(unverified.status, StatusCode::FORBIDDEN);
    assert_eq!(unverified, pending);
    assert_eq!(
        (unverified.statements, unverified.hashes),
        (first.statements, first.hashes)
    );

    // The right password of a verified account stops after the first hash (the caller gets a
    // session: the timing tells it nothing more), which doubles the login rate.
    let ok = measure(
        &t,
        &statements,
        "verified@example.com",
        PASSWORD,
        "192.0.2.3",
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.hashes, 1, "one password hash for a successful login");
}
