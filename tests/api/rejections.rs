//! Every rejection is a problem document: malformed query strings, form and JSON bodies, missing
//! or wrong content types, oversized bodies (announced or streamed) and path ids that do not parse
//! answer `application/problem+json` in the words of the API, never the framework's `text/plain`
//! or a Rust type name. The last test walks the whole route table with hostile requests.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use strongroom::config::Limit;

use crate::support::{Req, TestApp, TestResponse, DEFAULT_IP, PASSWORD};

const PROBLEM: &str = "application/problem+json";

/// Words of the implementation that must never reach a caller.
const IMPLEMENTATION_WORDS: [&str; 14] = [
    "struct ",
    "enum ",
    "serde",
    "axum",
    "::",
    "Failed to",
    "u32",
    "u64",
    "i64",
    "usize",
    "Body",
    "Form<",
    "Query",
    "rejection",
];

/// The answer is a problem document with `status` and `code`; its detail (returned) uses the
/// words of the API only.
fn assert_problem(r: &TestResponse, status: StatusCode, code: &str) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some(PROBLEM),
        "{}",
        r.text()
    );
    let body = r.json();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(
        body["type"].is_string() && body["title"].is_string(),
        "{body}"
    );
    let detail = body["detail"].as_str().unwrap_or_default().to_string();
    assert_api_words(&r.text());
    detail
}

fn assert_api_words(text: &str) {
    for word in IMPLEMENTATION_WORDS {
        assert!(!text.contains(word), "{word:?} in {text}");
    }
}

/// A verified user signed in, with an org, a workspace and an item.
struct World {
    cookie: String,
    org: String,
    ws: String,
    item: String,
    user_id: String,
}

async fn world(t: &TestApp, email: &str) -> World {
    t.verified_user(email, "Rejecting Owner").await;
    let cookie = t.login(email).await;
    let user_id = t.me(&cookie).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let created = |r: TestResponse| {
        assert!(r.status.is_success(), "{}", r.text());
        r.json()["id"].as_str().expect("id").to_string()
    };
    let org = created(
        t.send(
            Req::post("/api/v1/orgs")
                .cookie(&cookie)
                .json(json!({"name": "Rejections"})),
        )
        .await,
    );
    let ws = created(
        t.send(
            Req::post(&format!("/api/v1/orgs/{org}/workspaces"))
                .cookie(&cookie)
                .json(json!({"name": "Room", "kind": "board"})),
        )
        .await,
    );
    let item = created(
        t.send(
            Req::post(&format!("/api/v1/orgs/{org}/workspaces/{ws}/items"))
                .cookie(&cookie)
                .json(json!({"title": "Item"})),
        )
        .await,
    );
    World {
        cookie,
        org,
        ws,
        item,
        user_id,
    }
}

/// Sends a body in chunks of unknown total length (as `Transfer-Encoding: chunked` would), so no
/// `Content-Length` announces its size.
async fn send_streamed(
    t: &TestApp,
    method: Method,
    path: &str,
    content_type: &str,
    cookie: Option<&str>,
    total: usize,
) -> TestResponse {
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = (0..total / 256)
        .map(|_| Ok(bytes::Bytes::from(vec![b'a'; 256])))
        .collect();
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .header("transfer-encoding", "chunked");
    if let Some(c) = cookie {
        b = b.header("cookie", format!("{}={c}", t.cookie_name()));
    }
    let req = b
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .expect("request");
    t.send_request(req, DEFAULT_IP.parse().expect("ip")).await
}

/// A body of `n` bytes announced with its `Content-Length`.
fn announced(r: Req, content_type: &str, n: usize) -> Req {
    r.raw(content_type, vec![b'a'; n])
        .header("content-length", &n.to_string())
}

#[tokio::test]
async fn a_query_value_of_the_wrong_type_is_a_problem_naming_the_parameter() {
    let t = TestApp::new().await;
    let w = world(&t, "query@example.com").await;
    for path in [
        "/api/v1/orgs?limit=abc".to_string(),
        format!("/api/v1/orgs/{}/members?limit=abc", w.org),
        format!("/api/v1/orgs/{}/audit-events?limit=abc", w.org),
        format!("/api/v1/orgs/{}/workspaces/{}/items?limit=1.5", w.org, w.ws),
    ] {
        let r = t.send(Req::get(&path).cookie(&w.cookie)).await;
        let detail = assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_query");
        assert!(
            detail.contains("limit") && detail.contains("whole number"),
            "{path}: {detail}"
        );
    }
}

#[tokio::test]
async fn repeated_query_parameters_are_refused() {
    let t = TestApp::new().await;
    let w = world(&t, "repeat@example.com").await;
    let events = format!("/api/v1/orgs/{}/audit-events", w.org);
    // Which of two `since` values would a filter use? Neither: the query is refused.
    for q in [
        "since=2020-01-01T00:00:00Z&since=2030-01-01T00:00:00Z",
        "action=org.created&action=workspace.created",
    ] {
        let r = t
            .send(Req::get(&format!("{events}?{q}")).cookie(&w.cookie))
            .await;
        let detail = assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_query");
        let key = q.split('=').next().expect("key");
        assert!(
            detail.contains(&format!("`{key}`")) && detail.contains("more than once"),
            "{detail}"
        );
    }
    let r = t
        .send(Req::get(&format!("{events}/export?since=a&since=b")).cookie(&w.cookie))
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_query");
    for path in [
        "/api/v1/orgs?limit=5&limit=6".to_string(),
        format!("/api/v1/orgs/{}/workspaces?cursor=a&cursor=b", w.org),
    ] {
        let r = t.send(Req::get(&path).cookie(&w.cookie)).await;
        let detail = assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_query");
        assert!(detail.contains("more than once"), "{path}: {detail}");
    }
    // An unknown audit filter is named, not ignored.
    let r = t
        .send(Req::get(&format!("{events}?actor=someone")).cookie(&w.cookie))
        .await;
    let detail = assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_query");
    assert!(detail.contains("`actor`"), "{detail}");
}

#[tokio::test]
async fn duplicate_and_missing_fields_of_the_sign_in_form_are_problems() {
    let t = TestApp::new().await;
    t.verified_user("form@example.com", "Form").await;
    let r = t
        .send(
            Req::post("/login").raw(
                "application/x-www-form-urlencoded",
                format!("email=form%40example.com&email=other%40example.com&password={PASSWORD}")
                    .into_bytes(),
            ),
        )
        .await;
    let detail = assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert!(
        detail.contains("`email`") && detail.contains("more than once"),
        "{detail}"
    );
    assert!(r.session_cookie().is_none());

    let r = t
        .send(Req::post("/login").form(&[("email", "form@example.com")]))
        .await;
    let detail = assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert!(detail.contains("`password`"), "{detail}");
    let r = t
        .send(Req::post("/login").form(&[("password", PASSWORD)]))
        .await;
    let detail = assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert!(detail.contains("`email`"), "{detail}");

    // Another page form with a repeated field.
    let r = t
        .send(Req::post("/signup").raw(
            "application/x-www-form-urlencoded",
            b"email=a%40example.com&display_name=A&display_name=B&password=x".to_vec(),
        ))
        .await;
    let detail = assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert!(detail.contains("`display_name`"), "{detail}");
    // The well-formed form still signs in.
    let r = t
        .send(Req::post("/login").form(&[("email", "form@example.com"), ("password", PASSWORD)]))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
}

#[tokio::test]
async fn a_form_post_without_the_form_content_type_is_415() {
    let t = TestApp::new().await;
    let body = format!("email=a%40example.com&password={PASSWORD}").into_bytes();
    let mut no_type = Req::post("/login");
    no_type.body = body.clone();
    let r = t.send(no_type).await;
    let detail = assert_problem(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    assert!(
        detail.contains("application/x-www-form-urlencoded"),
        "{detail}"
    );
    for ct in [
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
    ] {
        let r = t.send(Req::post("/login").raw(ct, body.clone())).await;
        assert_problem(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    // A signed-in page form too.
    t.verified_user("media@example.com", "Media").await;
    let s = t.login("media@example.com").await;
    let r = t.send(Req::post("/orgs").cookie(&s)).await;
    assert_problem(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
}

#[tokio::test]
async fn a_body_over_the_limit_announced_by_content_length_is_a_413_problem() {
    let t = TestApp::with(|c| c.max_body_bytes = 1024).await;
    for (path, ct) in [
        ("/api/v1/auth/signup", "application/json"),
        ("/api/v1/auth/login", "application/json"),
        ("/login", "application/x-www-form-urlencoded"),
        ("/api/v1/nowhere", "application/json"),
    ] {
        let r = t.send(announced(Req::post(path), ct, 4096)).await;
        assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }
    // Under the limit, the same route reads the body.
    let r = t
        .send(
            Req::post("/api/v1/auth/login")
                .json(json!({"email": "x@example.com", "password": "y"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(t.count("users").await, 0);
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_a_413_problem() {
    let t = TestApp::with(|c| c.max_body_bytes = 1024).await;
    let w = world(&t, "stream@example.com").await;
    let items = format!("/api/v1/orgs/{}/workspaces/{}/items", w.org, w.ws);
    for (method, path, ct, cookie) in [
        (
            Method::POST,
            "/login",
            "application/x-www-form-urlencoded",
            None,
        ),
        (
            Method::POST,
            "/signup",
            "application/x-www-form-urlencoded",
            None,
        ),
        (
            Method::POST,
            "/orgs",
            "application/x-www-form-urlencoded",
            Some(w.cookie.as_str()),
        ),
        (
            Method::POST,
            "/api/v1/auth/signup",
            "application/json",
            None,
        ),
        (
            Method::POST,
            items.as_str(),
            "application/json",
            Some(w.cookie.as_str()),
        ),
        (
            Method::DELETE,
            "/api/v1/me/mfa/totp",
            "application/json",
            Some(w.cookie.as_str()),
        ),
    ] {
        let r = send_streamed(&t, method.clone(), path, ct, cookie, 8192).await;
        assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }
}

#[tokio::test]
async fn json_of_the_wrong_shape_names_the_field_never_a_rust_type() {
    let t = TestApp::new().await;
    let w = world(&t, "shape@example.com").await;
    let items = format!("/api/v1/orgs/{}/workspaces/{}/items", w.org, w.ws);
    let item = format!("{items}/{}", w.item);
    let member = format!("/api/v1/orgs/{}/members/{}", w.org, w.user_id);
    let cases: Vec<(Method, String, Value, &[&str])> = vec![
        (
            Method::POST,
            items.clone(),
            json!({"title": 7}),
            &["title", "a string"],
        ),
        (Method::PATCH, member.clone(), json!([]), &["an object"]),
        (Method::POST, items.clone(), json!("title"), &["an object"]),
        (
            Method::PATCH,
            item.clone(),
            json!({"title": "x", "colour": "red"}),
            &["`colour`"],
        ),
        (
            Method::PATCH,
            item.clone(),
            json!({"due_on": 20300101}),
            &["due_on"],
        ),
        (
            Method::PATCH,
            member.clone(),
            json!({"role": "boss"}),
            &["role", "`boss`", "`admin`"],
        ),
        (
            Method::PATCH,
            member.clone(),
            json!({"role": []}),
            &["role"],
        ),
        (
            Method::PATCH,
            format!("/api/v1/orgs/{}", w.org),
            json!({"require_mfa": "yes"}),
            &["require_mfa", "a boolean"],
        ),
        (
            Method::PATCH,
            "/api/v1/me".into(),
            json!({"display_name": "A", "is_admin": true}),
            &["`is_admin`"],
        ),
        (
            Method::DELETE,
            "/api/v1/me/mfa/totp".into(),
            json!("x"),
            &["an object"],
        ),
    ];
    for (method, path, body, words) in cases {
        let r = t
            .send(
                Req::new(method.clone(), &path)
                    .cookie(&w.cookie)
                    .json(body.clone()),
            )
            .await;
        let detail = assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
        for word in words {
            assert!(
                detail.contains(word),
                "{method} {path} {body}: {word:?} not in {detail}"
            );
        }
    }
    // Not JSON at all: said so, with where it broke.
    let r = t
        .send(
            Req::post(&items)
                .cookie(&w.cookie)
                .raw("application/json", b"{\"title\": ".to_vec()),
        )
        .await;
    let detail = assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert!(detail.contains("not valid JSON"), "{detail}");
    // A JSON route sent a form: 415, in the API's words.
    let r = t
        .send(Req::post(&items).cookie(&w.cookie).form(&[("title", "x")]))
        .await;
    let detail = assert_problem(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    assert!(detail.contains("application/json"), "{detail}");
}

#[tokio::test]
async fn a_path_id_that_does_not_parse_is_a_resource_that_does_not_exist() {
    let t = TestApp::new().await;
    let w = world(&t, "path@example.com").await;
    let (org, ws) = (&w.org, &w.ws);
    for bad in ["%FF", "%C3%28", "not-a-uuid", "..%2F..%2Fetc"] {
        for (method, path) in [
            (Method::DELETE, format!("/api/v1/me/sessions/{bad}")),
            (Method::DELETE, format!("/api/v1/me/passkeys/{bad}")),
            (Method::GET, format!("/api/v1/orgs/{bad}")),
            (Method::GET, format!("/api/v1/orgs/{org}/workspaces/{bad}")),
            (
                Method::GET,
                format!("/api/v1/orgs/{org}/workspaces/{ws}/items/{bad}"),
            ),
            (Method::DELETE, format!("/api/v1/orgs/{org}/members/{bad}")),
            (
                Method::DELETE,
                format!("/api/v1/orgs/{org}/invitations/{bad}"),
            ),
            (Method::POST, format!("/account/sessions/{bad}/revoke")),
            (Method::POST, format!("/account/passkeys/{bad}/delete")),
        ] {
            let r = t
                .send(Req::new(method.clone(), &path).cookie(&w.cookie))
                .await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                r.text()
            );
            let ct = r.header("content-type").unwrap_or_default();
            if path.starts_with("/api/") || ct == PROBLEM {
                assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
            } else {
                // A page's own 404 (the id parsed and named nothing).
                assert!(ct.starts_with("text/html"), "{method} {path}: {ct}");
            }
        }
    }
    // The page route for an undecodable id answers like an unknown one, and the session stands.
    let r = t
        .send(Req::post("/account/sessions/%FF/revoke").cookie(&w.cookie))
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(t.me(&w.cookie).await.status, StatusCode::OK);
}

/// Every route the application serves, as `(path template, is a page)`: the `/api/v1` routes from
/// the OpenAPI document the router is built with, the others from the `.route(...)` registrations
/// in `src/http` (so a route added later is walked too).
fn route_table(t: &TestApp) -> Vec<(String, bool)> {
    let (_, doc) = strongroom::http::api(&t.app);
    let doc = serde_json::to_value(&doc).expect("doc");
    let mut paths: BTreeSet<(String, bool)> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(|p| (p.clone(), false))
        .collect();
    let api_count = paths.len();
    let re = regex::Regex::new(r#"\.route\(\s*(?:"([^"]+)"|(ws)\s*,|&format!\("\{ws\}([^"]*)"\))"#)
        .expect("regex");
    let ws_re = regex::Regex::new(r#"let ws = "([^"]+)";"#).expect("regex");
    let mut stack = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/http") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let src = std::fs::read_to_string(&p).expect("source");
            let ws = ws_re.captures(&src).map(|c| c[1].to_string());
            for c in re.captures_iter(&src) {
                let path = match (c.get(1), c.get(2), c.get(3)) {
                    (Some(lit), _, _) => lit.as_str().to_string(),
                    (_, Some(_), _) => ws.clone().expect("ws prefix"),
                    (_, _, Some(rest)) => format!(
                        "{}{}",
                        ws.clone().expect("ws prefix"),
                        rest.as_str().replace("{{", "{").replace("}}", "}")
                    ),
                    _ => continue,
                };
                let page = !path.starts_with("/api/")
                    && !matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics")
                    && !path.starts_with("/.well-known/");
                paths.insert((path, page));
            }
        }
    }
    let table: Vec<(String, bool)> = paths.into_iter().collect();
    assert!(api_count >= 40, "{api_count} API routes");
    assert!(
        table.len() >= api_count + 35,
        "the page routes were found: {table:?}"
    );
    table
}

/// The hostile requests for one route: bad query strings, garbage and mistyped JSON, forms with
/// repeated fields, wrong or missing content types, oversized bodies.
fn hostile(method: &Method, path: &str) -> Vec<Req> {
    let new = || Req::new(method.clone(), path);
    let q = |query: &str| Req::new(method.clone(), &format!("{path}?{query}"));
    let shapes = json!({
        "name": 7, "title": [], "role": {}, "email": false, "token": 1, "code": 2,
        "password": 3, "display_name": 4, "reason": 5, "kind": 6, "status": 7, "body": 8,
        "require_mfa": "yes", "statuses": "x", "unknown_field": 1
    });
    // NUL bytes, which PostgreSQL text refuses: must not surface as a 500.
    let nul_bytes = json!({
        "name": "a\0b", "title": "\0", "email": "a\0@example.com", "token": "\0", "code": "\0",
        "password": "\0", "reason": "\0".repeat(12), "body": "\0", "display_name": "\0"
    });
    vec![
        q("limit=abc"),
        q("limit=1&limit=2&since=a&since=b"),
        q("cursor=%FF%FE&token=a&token=b&done=x&done=y&confirmed=1&confirmed=2"),
        q("action=a&action=b&format=x&format=y"),
        q("%=&&=&=%00"),
        new().raw("application/json", b"{\"x\": ".to_vec()),
        new().json(json!([])),
        new().json(shapes),
        new().raw("text/plain", b"hello".to_vec()),
        new().json(nul_bytes),
        new().raw(
            "application/x-www-form-urlencoded",
            b"email=%00&password=%00&name=%00&title=%00&body=%00&token=%00&code=%00".to_vec(),
        ),
        new().raw(
            "application/x-www-form-urlencoded",
            b"email=a&email=b&password=x&password=y&code=1&code=2&name=n&name=m&token=t&token=u\
&title=t&title=u&role=a&role=b&body=b&body=c&display_name=d&display_name=e"
                .to_vec(),
        ),
        new().raw(
            "application/x-www-form-urlencoded",
            vec![0xff, 0xfe, b'=', 0xfd],
        ),
        {
            let mut r = new();
            r.body = b"email=a".to_vec();
            r
        },
        announced(new(), "application/json", 4096),
        announced(new(), "application/x-www-form-urlencoded", 4096),
        new()
            .header("accept", "text/html")
            .raw("text/plain", b"x".to_vec()),
    ]
}

/// One answer to a hostile request: never a 5xx; every 4xx a problem document in the API's words,
/// or (on a page route) an HTML page.
fn check(what: &str, page: bool, r: &TestResponse) {
    assert!(
        !r.status.is_server_error(),
        "{what}: {} {}",
        r.status,
        r.text()
    );
    if !r.status.is_client_error() {
        return;
    }
    let ct = r.header("content-type").unwrap_or_default();
    if page && ct.starts_with("text/html") {
        return;
    }
    assert_eq!(ct, PROBLEM, "{what}: {} {}", r.status, r.text());
    let body = r.json();
    assert_eq!(body["status"], r.status.as_u16(), "{what}: {body}");
    assert!(
        body["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{what}: {body}"
    );
    for word in IMPLEMENTATION_WORDS {
        assert!(!r.text().contains(word), "{what}: {word:?} in {}", r.text());
    }
}

#[tokio::test]
async fn every_route_answers_hostile_requests_with_problems_and_never_a_5xx() {
    let t = TestApp::with(|c| {
        c.max_body_bytes = 1024;
        c.rate_limits.signup_per_ip = Limit::new(100_000, 60);
        c.rate_limits.auth_per_ip = Limit::new(100_000, 60);
        c.rate_limits.login_per_ip = Limit::new(100_000, 60);
        c.rate_limits.login_per_account = Limit::new(100_000, 60);
        c.rate_limits.recovery_per_ip = Limit::new(100_000, 60);
        c.rate_limits.recovery_per_email = Limit::new(100_000, 60);
        c.rate_limits.mfa_per_account = Limit::new(100_000, 60);
        c.rate_limits.mfa_per_account_total = Limit::new(100_000, 60);
        c.rate_limits.audit_scans_per_org = Limit::new(100_000, 60);
        c.rate_limits.invitations_per_org = Limit::new(100_000, 60);
    })
    .await;
    let w = world(&t, "sweep@example.com").await;
    let routes = route_table(&t);
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let mut pairs: Vec<(Method, String, bool)> = Vec::new();
    for (template, page) in &routes {
        for m in &methods {
            pairs.push((m.clone(), template.clone(), *page));
        }
    }
    // Deletions last, deepest first, so the org and its workspace outlive the other routes.
    pairs.sort_by_key(|(m, p, _)| (*m == Method::DELETE, std::cmp::Reverse(p.len())));
    let fill = |template: &str, id: &str| {
        template
            .replace("{org_id}", &w.org)
            .replace("{ws_id}", &w.ws)
            .replace("{item_id}", &w.item)
            .replace("{user_id}", &w.user_id)
            .replace("{id}", id)
    };
    let mut served = 0;
    let mut sent = 0;
    for (method, template, page) in &pairs {
        let path = fill(template, &uuid::Uuid::now_v7().to_string());
        // A method the route does not serve: a 405 problem, and nothing more to try.
        let probe = t.send(Req::new(method.clone(), &path)).await;
        check(&format!("{method} {template} (probe)"), *page, &probe);
        if probe.status == StatusCode::METHOD_NOT_ALLOWED {
            continue;
        }
        served += 1;
        // A fresh full session for each route: some of them sign it out.
        let cookie = t.login("sweep@example.com").await;
        for (n, req) in hostile(method, &path).into_iter().enumerate() {
            for signed_in in [false, true] {
                let mut r = Req::new(req.method.clone(), &req.path);
                r.body = req.body.clone();
                r.headers = req.headers.clone();
                if signed_in {
                    r = r.cookie(&cookie);
                }
                let res = t.send(r).await;
                check(
                    &format!("{method} {template} hostile #{n} signed in: {signed_in}"),
                    *page,
                    &res,
                );
                sent += 1;
            }
        }
        // Ids that do not parse, in every position.
        let params: Vec<&str> = template.split('/').filter(|s| s.starts_with('{')).collect();
        for param in params {
            for bad in ["%FF", "not-a-uuid", "%00"] {
                let bad_path = fill(&template.replace(param, bad), "x");
                for signed_in in [false, true] {
                    let mut r = Req::new(method.clone(), &bad_path).json(json!({}));
                    if signed_in {
                        r = r.cookie(&cookie);
                    }
                    let res = t.send(r).await;
                    check(
                        &format!("{method} {bad_path} signed in: {signed_in}"),
                        *page,
                        &res,
                    );
                    sent += 1;
                }
            }
        }
        // Chunked, over the limit.
        for ct in ["application/json", "application/x-www-form-urlencoded"] {
            let res = send_streamed(&t, method.clone(), &path, ct, Some(&cookie), 4096).await;
            check(&format!("{method} {template} streamed {ct}"), *page, &res);
            sent += 1;
        }
    }
    assert!(served >= 90, "only {served} route methods were walked");
    assert!(sent >= 2000, "{sent}");
    // Unknown routes and methods: problems on the API; for a browser on a page address, an error
    // page (issue 12), never a 5xx.
    for (method, path) in [
        (Method::GET, "/api/v1/nowhere?limit=abc"),
        (Method::POST, "/nowhere"),
        (Method::PUT, "/api/v1/auth/login"),
        (Method::DELETE, "/login"),
    ] {
        let r = t
            .send(Req::new(method, path).header("accept", "text/html"))
            .await;
        assert!(r.status.is_client_error());
        let page = !path.starts_with("/api/");
        check(path, page, &r);
        if page {
            assert!(
                r.header("content-type")
                    .is_some_and(|c| c.starts_with("text/html")),
                "{path}"
            );
        }
    }
}
