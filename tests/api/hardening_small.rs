//! The smaller findings of the hardening review, each from the attacker's side: metrics off the
//! public port, cross-site Referers, hidden characters in names, the item edit form's empty due
//! date, account notices driven by the query string, signing out of a pending MFA session, status
//! names at rest, file modes in the data dir, and duplicate session cookies.

use axum::http::StatusCode;
use serde_json::Value;

use crate::support::{Req, ServerProcess, TestApp};

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
