//! What `/metrics` says: request counts and latency histograms per route template (never a raw
//! path), database pools and the time to begin a transaction, the password-hash queue, the email
//! and webhook queues, failed logins by reason, rate-limit refusals, and the backup age (in
//! `backup.rs`).

use axum::http::StatusCode;
use serde_json::json;
use strongroom::config::Limit;

use crate::support::Req;

const TOKEN: &str = "metrics-token-for-the-metrics-test";

#[tokio::test]
async fn metrics_name_routes_pools_queues_hashes_failed_logins_and_rate_limits() {
    let t = crate::webhooks::app(|c| {
        c.metrics_token = Some(TOKEN.into());
        c.rate_limits.login_per_account = Limit::new(2, 900);
    })
    .await;
    t.verified_user("ann@example.com", "Ann").await;
    let cookie = t.login("ann@example.com").await;
    let org = t
        .send(
            Req::post("/api/v1/orgs")
                .cookie(&cookie)
                .json(json!({"name": "Metered"})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("org")
        .to_string();
    let r = t
        .send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&cookie))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Wrong passwords until the account's limit answers 429.
    let mut limited = false;
    for _ in 0..5 {
        let r = t
            .login_as("ann@example.com", "not the password at all", "198.51.100.9")
            .await;
        limited |= r.status == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(limited, "the login limit answered 429");

    // A webhook delivery and a scheduled backup, so that their series exist too.
    let rx = crate::webhooks::Receiver::start().await;
    let hook = t
        .send(
            Req::post(&format!("/api/v1/orgs/{org}/webhooks"))
                .cookie(&cookie)
                .json(json!({ "url": rx.url, "events": ["*"] })),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.text());
    let test = t
        .send(
            Req::post(&format!(
                "/api/v1/orgs/{org}/webhooks/{}/test",
                hook.json()["id"].as_str().expect("id")
            ))
            .cookie(&cookie),
        )
        .await;
    assert_eq!(test.status, StatusCode::ACCEPTED);
    crate::webhooks::run(&t).await;
    assert_eq!(rx.requests().len(), 1);
    strongroom::backup::run_scheduled(&t.app)
        .await
        .expect("backup")
        .expect("made");

    let m = t
        .send(Req::get("/metrics").header("authorization", &format!("Bearer {TOKEN}")))
        .await;
    assert_eq!(m.status, StatusCode::OK);
    let m = m.text();
    let has = |metric: &str, labels: &[&str]| {
        m.lines()
            .any(|l| l.starts_with(metric) && labels.iter().all(|want| l.contains(want)))
    };
    let route = "route=\"/api/v1/orgs/{org_id}\"";
    for (metric, labels) in [
        (
            "http_requests_total",
            vec![route, "status=\"200\"", "method=\"GET\""],
        ),
        (
            "http_request_duration_seconds_bucket",
            vec![route, "le=\"0.005\""],
        ),
        (
            "strongroom_login_failures_total",
            vec!["reason=\"invalid_credentials\""],
        ),
        (
            "strongroom_rate_limited_total",
            vec!["route=\"/api/v1/auth/login\""],
        ),
        ("strongroom_db_pool_connections", vec!["state=\"open\""]),
        ("strongroom_db_begin_seconds_bucket", vec!["mode=\"read\""]),
        ("strongroom_email_queue", vec!["state=\"pending\""]),
        ("strongroom_webhook_queue_due", vec![]),
        ("strongroom_password_hash_waiting", vec![]),
        ("strongroom_password_hash_running", vec![]),
        ("strongroom_emails_total", vec![]),
    ] {
        assert!(has(metric, &labels), "no {metric} with {labels:?} in:\n{m}");
    }
    // Every metric the alert rules and the dashboard use is one this server exports.
    let names = regex::Regex::new(r"\b(?:strongroom|http)_[a-z_]+\b").expect("regex");
    for (file, text) in [
        (
            "deploy/prometheus/strongroom-alerts.yml",
            include_str!("../../deploy/prometheus/strongroom-alerts.yml"),
        ),
        (
            "deploy/grafana/strongroom-dashboard.json",
            include_str!("../../deploy/grafana/strongroom-dashboard.json"),
        ),
    ] {
        for name in names.find_iter(text).map(|n| n.as_str()) {
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(
                m.contains(&format!("# TYPE {base} ")),
                "{file} uses {name}, which /metrics does not export"
            );
        }
    }
    // Templates only: no id of any org, no raw path.
    assert!(!m.contains(&org), "an id in a label");
    assert!(
        !m.contains("route=\"/api/v1/orgs/0"),
        "a raw path in a label"
    );
}
