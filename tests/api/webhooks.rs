//! Outbound webhooks against a receiver on 127.0.0.1: events arrive signed per the Standard
//! Webhooks scheme (checked here by a verifier written from the specification, not the server's
//! signer), only the events asked for, retried after 5xx on schedule, logged, testable and
//! redeliverable, signed with both secrets during a rotation, timed out after 10 s, and an
//! endpoint that keeps failing is disabled and its admins emailed. URLs that are not public
//! HTTP(S) are refused at registration (the SSRF guard's full list is in `net_guard`'s tests).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use serde_json::{json, Value};

use crate::support::{Req, TestApp};

/// What the receiver saw, and what it answers next (200 once the queue is empty).
#[derive(Default)]
struct Seen {
    requests: Vec<(HeaderMap, String)>,
    answers: VecDeque<u16>,
    delay: Option<Duration>,
    /// Requests being answered now, by the URL's query (tests tell endpoints apart by it).
    live: std::collections::HashMap<String, usize>,
    /// The most requests answered at once, in all and for one query.
    most: usize,
    most_per_query: usize,
    /// When each request came, and its query.
    arrivals: Vec<(Instant, String)>,
}

pub(crate) struct Receiver {
    pub(crate) url: String,
    seen: Arc<Mutex<Seen>>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let state = seen.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |uri: Uri, headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let query = uri.query().unwrap_or("").to_string();
                    let (status, delay) = {
                        let mut s = state.lock().expect("lock");
                        s.requests.push((headers, body));
                        s.arrivals.push((Instant::now(), query.clone()));
                        let live = s.live.entry(query.clone()).or_default();
                        *live += 1;
                        let live = *live;
                        s.most_per_query = s.most_per_query.max(live);
                        let all = s.live.values().sum();
                        s.most = s.most.max(all);
                        (s.answers.pop_front().unwrap_or(200), s.delay)
                    };
                    if let Some(d) = delay {
                        tokio::time::sleep(d).await;
                    }
                    if let Some(n) = state.lock().expect("lock").live.get_mut(&query) {
                        *n -= 1;
                    }
                    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Stops with the test's runtime.
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            seen,
        }
    }

    pub(crate) fn requests(&self) -> Vec<(HeaderMap, String)> {
        self.seen.lock().expect("lock").requests.clone()
    }

    pub(crate) fn answer(&self, codes: &[u16]) {
        self.seen.lock().expect("lock").answers.extend(codes);
    }
}

/// The Standard Webhooks verification, from the specification: the signed content is
/// `{webhook-id}.{webhook-timestamp}.{body}`, HMAC-SHA256 keyed by the base64-decoded part of the
/// `whsec_` secret, base64; the header holds space-separated `v1,<signature>` entries.
pub(crate) fn verifies(secret: &str, headers: &HeaderMap, body: &str) -> bool {
    use hmac::{Hmac, Mac};
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let Some(raw) = secret.strip_prefix("whsec_") else {
        return false;
    };
    let Ok(key) = base64::engine::general_purpose::STANDARD.decode(raw) else {
        return false;
    };
    let signed = format!("{}.{}.{}", h("webhook-id"), h("webhook-timestamp"), body);
    h("webhook-signature").split(' ').any(|entry| {
        let Some(sig) = entry.strip_prefix("v1,") else {
            return false;
        };
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig) else {
            return false;
        };
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(signed.as_bytes());
        mac.verify_slice(&sig).is_ok()
    })
}

use crate::documents::Room as Org;

pub(crate) async fn app(tweak: impl FnOnce(&mut strongroom::config::Config)) -> TestApp {
    TestApp::with(|c| {
        c.webhooks.allow_networks = vec!["127.0.0.1/32".into()];
        c.webhooks.allow_http = true;
        tweak(c);
    })
    .await
}

async fn org(t: &TestApp) -> Org {
    crate::documents::room(t, "owner@example.com").await
}

async fn hook(t: &TestApp, o: &Org, url: &str, events: Value) -> Value {
    let r = t
        .send(
            Req::post(&format!("/api/v1/orgs/{}/webhooks", o.org))
                .cookie(&o.owner)
                .json(json!({ "url": url, "events": events })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

async fn item(t: &TestApp, o: &Org, title: &str) -> String {
    let r = t
        .send(
            Req::post(&format!("{}/items", o.base))
                .cookie(&o.owner)
                .json(json!({ "title": title })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_str().expect("id").to_string()
}

pub(crate) async fn run(t: &TestApp) -> (usize, usize) {
    strongroom::tenancy::webhooks::run_once(&t.app)
        .await
        .expect("delivery loop")
}

async fn log(t: &TestApp, o: &Org, hook: &str) -> Vec<Value> {
    t.send(
        Req::get(&format!(
            "/api/v1/orgs/{}/webhooks/{hook}/deliveries",
            o.org
        ))
        .cookie(&o.owner),
    )
    .await
    .json()["items"]
        .as_array()
        .expect("items")
        .clone()
}

#[tokio::test]
async fn events_arrive_signed_only_as_asked_and_5xx_is_retried_on_schedule() {
    let t = app(|_| {}).await;
    let o = org(&t).await;
    let rx = Receiver::start().await;
    let h = hook(&t, &o, &rx.url, json!(["item.created", "comment.created"])).await;
    let secret = h["secret"].as_str().expect("secret").to_string();
    assert!(secret.starts_with("whsec_"));
    let hook_id = h["id"].as_str().expect("id").to_string();
    // The secret is shown once: the list does not have it.
    let list = t
        .send(Req::get(&format!("/api/v1/orgs/{}/webhooks", o.org)).cookie(&o.owner))
        .await;
    assert!(!list.text().contains(&secret));
    assert_eq!(list.json()["items"][0]["url"], json!(rx.url));

    let id = item(&t, &o, "Signed").await;
    // Not asked for: an update.
    t.send(
        Req::new(axum::http::Method::PATCH, &format!("{}/items/{id}", o.base))
            .cookie(&o.owner)
            .json(json!({"title": "Renamed"})),
    )
    .await;
    assert_eq!(run(&t).await, (1, 1));
    let got = rx.requests();
    assert_eq!(got.len(), 1);
    let (headers, body) = &got[0];
    assert!(verifies(&secret, headers, body), "{headers:?}");
    assert!(!verifies(
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        headers,
        body
    ));
    let event: Value = serde_json::from_str(body).expect("json");
    assert_eq!(event["type"], "item.created");
    assert_eq!(event["data"]["id"], json!(id));
    assert_eq!(event["data"]["object"], "item");
    assert!(!body.contains("Signed"), "thin payloads carry no content");
    let ts: i64 = headers["webhook-timestamp"]
        .to_str()
        .expect("ts")
        .parse()
        .expect("int");
    assert_eq!(ts, i64::try_from(t.clock_secs()).expect("secs"));
    // Nothing new: nothing sent.
    assert_eq!(run(&t).await, (0, 0));

    // A 500, then a 503: retried after 5 s, then after 5 min; then delivered.
    rx.answer(&[500, 503]);
    item(&t, &o, "Retried").await;
    assert_eq!(run(&t).await, (1, 1));
    assert_eq!(run(&t).await, (0, 0), "not due yet");
    t.clock.advance_secs(5);
    assert_eq!(run(&t).await, (0, 1));
    t.clock.advance_secs(299);
    assert_eq!(run(&t).await, (0, 0), "the second wait is longer");
    t.clock.advance_secs(1);
    assert_eq!(run(&t).await, (0, 1));
    let got = rx.requests();
    assert_eq!(got.len(), 4);
    // Every attempt of one message carries the same id.
    assert_eq!(got[1].0["webhook-id"], got[3].0["webhook-id"]);
    assert!(got.iter().all(|(h, b)| verifies(&secret, h, b)));
    let entries = log(&t, &o, &hook_id).await;
    let codes: Vec<(i64, i64)> = entries
        .iter()
        .map(|d| {
            (
                d["attempt"].as_i64().expect("n"),
                d["status_code"].as_i64().expect("code"),
            )
        })
        .collect();
    assert_eq!(codes, [(3, 200), (2, 503), (1, 500), (1, 200)]);

    // A test event, and a manual redelivery of the first delivery.
    let r = t
        .send(
            Req::post(&format!("/api/v1/orgs/{}/webhooks/{hook_id}/test", o.org)).cookie(&o.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(run(&t).await, (0, 1));
    let first = entries.last().expect("first")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = t
        .send(
            Req::post(&format!(
                "/api/v1/orgs/{}/webhooks/{hook_id}/deliveries/{first}/redeliver",
                o.org
            ))
            .cookie(&o.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(run(&t).await, (0, 1));
    let got = rx.requests();
    assert_eq!(got.len(), 6);
    let test_event: Value = serde_json::from_str(&got[4].1).expect("json");
    assert_eq!(test_event["type"], "webhook.test");
    assert_eq!(
        got[5].0["webhook-id"], got[0].0["webhook-id"],
        "the same message again"
    );
}

#[tokio::test]
async fn a_rotated_secret_overlaps_and_a_failing_endpoint_is_disabled_and_admins_told() {
    let t = app(|c| c.webhooks.disable_after_failures = 3).await;
    let o = org(&t).await;
    let rx = Receiver::start().await;
    let h = hook(&t, &o, &rx.url, json!(["*"])).await;
    let old = h["secret"].as_str().expect("secret").to_string();
    let hook_id = h["id"].as_str().expect("id").to_string();
    let r = t
        .send(
            Req::post(&format!(
                "/api/v1/orgs/{}/webhooks/{hook_id}/rotate-secret",
                o.org
            ))
            .cookie(&o.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let new = r.json()["secret"].as_str().expect("secret").to_string();
    assert_ne!(old, new);
    item(&t, &o, "During the overlap").await;
    run(&t).await;
    let (headers, body) = rx.requests().pop().expect("delivered");
    assert!(verifies(&old, &headers, &body) && verifies(&new, &headers, &body));
    // After the overlap, only the new secret signs.
    t.clock.advance_secs(24 * 3600 + 1);
    let owner = t.login("owner@example.com").await;
    let o = Org { owner, ..o };
    item(&t, &o, "After the overlap").await;
    run(&t).await;
    let (headers, body) = rx.requests().pop().expect("delivered");
    assert!(verifies(&new, &headers, &body) && !verifies(&old, &headers, &body));

    // Three failures in a row: disabled, admins emailed, nothing more is sent.
    rx.answer(&[500, 500, 500, 500]);
    item(&t, &o, "Failing").await;
    run(&t).await;
    t.clock.advance_secs(5);
    run(&t).await;
    t.clock.advance_secs(300);
    run(&t).await;
    let list = t
        .send(Req::get(&format!("/api/v1/orgs/{}/webhooks", o.org)).cookie(&o.owner))
        .await
        .json();
    assert_eq!(list["items"][0]["status"], "disabled", "{list}");
    let mail = t.mail_to("owner@example.com").await;
    assert!(mail.subject.contains("webhook"), "{}", mail.subject);
    let sent = rx.requests().len();
    item(&t, &o, "While disabled").await;
    t.clock.advance_secs(3600);
    run(&t).await;
    assert_eq!(
        rx.requests().len(),
        sent,
        "a disabled endpoint hears nothing"
    );
    assert!(t
        .chain(&o.org)
        .await
        .iter()
        .any(|e| e.action == "webhook.disabled"));
    // Turned on again (by the owner, signed in again after the hour): what happens next arrives.
    let owner = t.login("owner@example.com").await;
    let o = Org { owner, ..o };
    let r = t
        .send(
            Req::post(&format!("/api/v1/orgs/{}/webhooks/{hook_id}/enable", o.org))
                .cookie(&o.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["status"], "active");
    item(&t, &o, "Back").await;
    run(&t).await;
    assert_eq!(rx.requests().len(), sent + 1);
}

#[tokio::test]
async fn a_receiver_slower_than_ten_seconds_times_out() {
    let t = app(|_| {}).await;
    let o = org(&t).await;
    let rx = Receiver::start().await;
    rx.seen.lock().expect("lock").delay = Some(Duration::from_secs(11));
    let h = hook(&t, &o, &rx.url, json!(["item.created"])).await;
    item(&t, &o, "Slow").await;
    let started = std::time::Instant::now();
    run(&t).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(11),
        "{took:?}"
    );
    let entries = log(&t, &o, h["id"].as_str().expect("id")).await;
    assert_eq!(entries[0]["error"], "timed out", "{entries:?}");
    assert!(entries[0]["status_code"].is_null());
}

#[tokio::test]
async fn deliveries_run_side_by_side_one_per_endpoint_and_a_slow_org_holds_two_slots() {
    let t = app(|_| {}).await;
    // A slow org: three endpoints on a receiver that takes 1.5 s to answer, two events each.
    let slow_org = org(&t).await;
    let slow = Receiver::start().await;
    let pause = Duration::from_millis(1500);
    slow.seen.lock().expect("lock").delay = Some(pause);
    for e in 1..=3 {
        hook(
            &t,
            &slow_org,
            &format!("{}?e={e}", slow.url),
            json!(["item.created"]),
        )
        .await;
    }
    let mut ids = Vec::new();
    for n in 1..=2 {
        ids.push(item(&t, &slow_org, &format!("Slow {n}")).await);
    }
    // Another org, whose endpoint answers at once.
    let quick_org = crate::documents::room(&t, "quick@example.com").await;
    let quick = Receiver::start().await;
    hook(&t, &quick_org, &quick.url, json!(["item.created"])).await;
    for n in 1..=3 {
        item(&t, &quick_org, &format!("Quick {n}")).await;
    }

    let started = Instant::now();
    assert_eq!(run(&t).await, (9, 9));
    let took = started.elapsed();
    let seen = slow.seen.lock().expect("lock");
    // Two at a time for the slow org (never more), one at a time per endpoint: six answers of
    // 1.5 s take three rounds, not six (one at a time) nor two (three at a time).
    assert_eq!(seen.most, 2, "at once for the slow org");
    assert_eq!(seen.most_per_query, 1, "at once for one endpoint");
    assert!(
        took >= pause * 3 && took < pause * 5,
        "six slow deliveries, two at a time, took {took:?}"
    );
    // Each endpoint got its events in order.
    for e in 1..=3 {
        let q = format!("e={e}");
        let got: Vec<String> = seen
            .arrivals
            .iter()
            .zip(&seen.requests)
            .filter(|((_, query), _)| *query == q)
            .map(|(_, (_, body))| {
                let v: Value = serde_json::from_str(body).expect("json");
                v["data"]["id"].as_str().expect("id").to_string()
            })
            .collect();
        assert_eq!(got, ids, "{q}: its events, in order");
    }
    // The quick org's events all arrived before the slow org's first answer was back.
    let quick_seen = quick.seen.lock().expect("lock");
    assert_eq!(quick_seen.arrivals.len(), 3);
    let first_slow = seen.arrivals.first().expect("slow").0;
    for (at, _) in &quick_seen.arrivals {
        assert!(
            at.saturating_duration_since(first_slow) < pause,
            "a quick delivery waited for the slow endpoint"
        );
    }
}

#[tokio::test]
async fn urls_that_are_not_public_https_are_refused_at_registration() {
    // The production guard: no allowlist, https only.
    let t = TestApp::new().await;
    let o = org(&t).await;
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/",
        "https://2130706433/",
        "https://0177.0.0.1/",
        "https://0x7f.1/",
        "https://127.1/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:7f00:1]/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://169.254.169.254/latest/meta-data/",
        "https://metadata.google.internal/",
        "https://user:pw@example.com/",
        "https://localhost/",
        "https://10.0.0.1/",
        "https://[fd00::1]/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "not a url",
    ] {
        let r = t
            .send(
                Req::post(&format!("/api/v1/orgs/{}/webhooks", o.org))
                    .cookie(&o.owner)
                    .json(json!({ "url": url, "events": ["*"] })),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            r.text()
        );
        assert_eq!(r.json()["code"], "unsafe_url", "{url}");
    }
    let r = t
        .send(
            Req::post(&format!("/api/v1/orgs/{}/webhooks", o.org))
                .cookie(&o.owner)
                .json(json!({ "url": "https://hooks.example.com/x", "events": ["nope"] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        crate::documents::tenant_count(&t, &o.org, "webhooks").await,
        0
    );
}

#[tokio::test]
async fn an_admin_who_is_demoted_takes_their_webhooks_along() {
    let t = app(|_| {}).await;
    let o = org(&t).await;
    let rx = Receiver::start().await;
    t.verified_user("admin@example.com", "Admin").await;
    let admin = t.login("admin@example.com").await;
    t.join(&o.owner, &o.org, "admin@example.com", "admin", &admin)
        .await;
    let admin_id = t.me(&admin).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = t
        .send(
            Req::post(&format!("/api/v1/orgs/{}/webhooks", o.org))
                .cookie(&admin)
                .json(json!({ "url": rx.url, "events": ["*"] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = t
        .send(
            Req::new(
                axum::http::Method::PATCH,
                &format!("/api/v1/orgs/{}/members/{admin_id}", o.org),
            )
            .cookie(&o.owner)
            .json(json!({"role": "member"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    item(&t, &o, "After the demotion").await;
    run(&t).await;
    assert!(
        rx.requests().is_empty(),
        "nothing is sent to a demoted admin's endpoint"
    );
    let list = t
        .send(Req::get(&format!("/api/v1/orgs/{}/webhooks", o.org)).cookie(&o.owner))
        .await
        .json();
    assert_eq!(list["items"][0]["status"], "disabled", "{list}");
}
