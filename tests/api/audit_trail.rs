//! The org audit trail from its admins' side and from an attacker's: filtered pages with stable
//! cursors, streamed exports, verification from the API, the command line and an export file,
//! tampering of every kind on a copy of the database, the database refusing edits, 32 concurrent
//! writers, and retention behind a signed checkpoint.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{json, Value};
use sqlx::{Connection, Row};
use strongroom::audit::StoredEvent;

use crate::support::{backend_is_postgres, strongroom_bin, Req, TestApp};

const DAY: i64 = 24 * 3600;

/// An app whose sessions outlive the years these tests skip over.
async fn long_sessions() -> TestApp {
    TestApp::with(|c| {
        c.session.idle_timeout_secs = 5000 * DAY;
        c.session.absolute_timeout_secs = 5000 * DAY;
    })
    .await
}

async fn ok(t: &TestApp, r: Req) -> Value {
    let r = t.send(r).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.text());
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

/// A verified, signed-in user: (cookie, user id).
async fn user(t: &TestApp, email: &str, name: &str) -> (String, String) {
    t.verified_user(email, name).await;
    let c = t.login(email).await;
    let id = t.me(&c).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    (c, id)
}

async fn new_org(t: &TestApp, owner: &str, name: &str) -> String {
    ok(
        t,
        Req::post("/api/v1/orgs")
            .cookie(owner)
            .json(json!({ "name": name })),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// Invites `email` as `role` and accepts: (cookie, user id).
async fn member(t: &TestApp, owner: &str, org: &str, email: &str, role: &str) -> (String, String) {
    ok(
        t,
        Req::post(&format!("/api/v1/orgs/{org}/invitations"))
            .cookie(owner)
            .json(json!({"email": email, "role": role})),
    )
    .await;
    let token = t.mail_to(email).await.token("/invitations/accept");
    let (c, id) = user(t, email, "Member Person").await;
    ok(
        t,
        Req::post("/api/v1/invitations/accept")
            .cookie(&c)
            .json(json!({ "token": token })),
    )
    .await;
    (c, id)
}

async fn new_ws(t: &TestApp, owner: &str, org: &str) -> String {
    ok(
        t,
        Req::post(&format!("/api/v1/orgs/{org}/workspaces"))
            .cookie(owner)
            .json(json!({"name": "Room", "kind": "board"})),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn new_item(t: &TestApp, c: &str, org: &str, ws: &str, title: &str) -> String {
    ok(
        t,
        Req::post(&format!("/api/v1/orgs/{org}/workspaces/{ws}/items"))
            .cookie(c)
            .json(json!({ "title": title })),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string()
}

fn events_url(org: &str, query: &str) -> String {
    format!("/api/v1/orgs/{org}/audit-events?{query}")
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().expect("items").clone()
}

fn seqs(v: &[Value]) -> Vec<i64> {
    v.iter().map(|e| e["seq"].as_i64().expect("seq")).collect()
}

fn rfc3339(secs: i64) -> String {
    strongroom::audit::query::format_time(secs * 1000)
}

#[tokio::test]
async fn admins_query_the_trail_with_filters_newest_first_and_stable_cursors() {
    let t = long_sessions().await;
    let (owner, owner_id) = user(&t, "olga.owner@example.com", "Olga Owner").await;
    let org = new_org(&t, &owner, "Acme").await;
    let (admin, admin_id) = member(&t, &owner, &org, "adam@example.com", "admin").await;
    let (plain, _) = member(&t, &owner, &org, "mia@example.com", "member").await;
    let ws = new_ws(&t, &owner, &org).await;

    // Three batches an hour apart: the owner's items, then the admin's, then the owner's again.
    let t0 = t.clock_secs() as i64;
    let mut first = Vec::new();
    for i in 0..4 {
        first.push(new_item(&t, &owner, &org, &ws, &format!("early {i}")).await);
    }
    t.clock.advance_secs(3600);
    let mut middle = Vec::new();
    for i in 0..3 {
        middle.push(new_item(&t, &admin, &org, &ws, &format!("middle {i}")).await);
    }
    t.clock.advance_secs(3600);
    let last = new_item(&t, &owner, &org, &ws, "late").await;
    ok(
        &t,
        Req::new(
            axum::http::Method::PATCH,
            &format!("/api/v1/orgs/{org}/workspaces/{ws}/items/{last}"),
        )
        .cookie(&owner)
        .json(json!({"title": "late, renamed"})),
    )
    .await;

    // Newest first, with every field of the contract; personal data masked.
    let page = ok(&t, Req::get(&events_url(&org, "")).cookie(&admin)).await;
    let all = items(&page);
    let s = seqs(&all);
    assert!(
        s.windows(2).all(|w| w[0] == w[1] + 1),
        "newest first, no gaps: {s:?}"
    );
    let newest = &all[0];
    assert_eq!(newest["action"], "item.updated");
    assert_eq!(newest["actor"]["id"], owner_id.as_str());
    assert_eq!(newest["actor"]["display"], "O*** <o***@e***.com>");
    assert_eq!(newest["target"]["type"], "item");
    assert_eq!(newest["target"]["id"], last.as_str());
    assert_eq!(newest["ip"], "203.0.113.0");
    assert_eq!(newest["chain"], org.as_str());
    assert_eq!(newest["prev_hash"], all[1]["hash"]);
    assert_eq!(newest["hash"].as_str().map(str::len), Some(64));
    assert!(newest["at"].as_str().expect("at").ends_with('Z'));
    assert!(
        !page.to_string().contains("olga.owner@example.com") && !page.to_string().contains("Olga"),
        "no raw email or name in the trail"
    );

    // Filters: action, actor, target, and a time window that holds exactly the middle batch.
    let created = items(
        &ok(
            &t,
            Req::get(&events_url(&org, "action=item.created")).cookie(&admin),
        )
        .await,
    );
    assert_eq!(created.len(), 8);
    assert!(created.iter().all(|e| e["action"] == "item.created"));
    let by_admin = items(
        &ok(
            &t,
            Req::get(&events_url(&org, &format!("actor_id={admin_id}"))).cookie(&owner),
        )
        .await,
    );
    assert!(!by_admin.is_empty());
    assert!(by_admin
        .iter()
        .all(|e| e["actor"]["id"] == admin_id.as_str()));
    assert!(by_admin
        .iter()
        .any(|e| e["action"] == "invitation.accepted"));
    let on_last = items(
        &ok(
            &t,
            Req::get(&events_url(&org, &format!("target_id={last}"))).cookie(&admin),
        )
        .await,
    );
    let actions: Vec<&str> = on_last
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(actions, ["item.updated", "item.created"]);
    let window = format!(
        "since={}&until={}",
        urlencoding::encode(&rfc3339(t0 + 1800)),
        urlencoding::encode(&rfc3339(t0 + 5400))
    );
    let mid = items(&ok(&t, Req::get(&events_url(&org, &window)).cookie(&admin)).await);
    let mid_targets: BTreeSet<String> = mid
        .iter()
        .map(|e| e["target"]["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(mid_targets, middle.iter().cloned().collect::<BTreeSet<_>>());
    let combined = format!("{window}&action=item.created&actor_id={owner_id}");
    assert!(items(&ok(&t, Req::get(&events_url(&org, &combined)).cookie(&admin)).await).is_empty());
    let since_only = format!("since={}", urlencoding::encode(&rfc3339(t0 + 5400)));
    assert_eq!(
        items(&ok(&t, Req::get(&events_url(&org, &since_only)).cookie(&admin)).await).len(),
        2
    );

    // Pages of 3 while new events keep arriving: every event that existed at the first page shows
    // up exactly once, in order, and none of the new ones slips in.
    let before: Vec<i64> = seqs(&all);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut n = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=3&cursor={c}"),
            None => "limit=3".to_string(),
        };
        let p = ok(&t, Req::get(&events_url(&org, &q)).cookie(&admin)).await;
        seen.extend(seqs(&items(&p)));
        new_item(&t, &owner, &org, &ws, &format!("concurrent {n}")).await;
        n += 1;
        match p["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, before, "stable pages under concurrent appends");

    // Bad input: a clear 422, never a 500.
    for q in [
        "action=item.exploded",
        "actor_id=not-a-user",
        "target_id=%27%20OR%201%3D1",
        "since=yesterday",
        "until=2026-13-40T00:00:00Z",
        &format!("since={0}&until={0}", urlencoding::encode(&rfc3339(t0))),
        "cursor=bm90IGEgY3Vyc29y",
        "cursor=c2VxOi01",
        "limit=0",
        "limit=100000",
    ] {
        let r = t.send(Req::get(&events_url(&org, q)).cookie(&admin)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{q}: {}",
            r.text()
        );
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/problem+json"),
            "{q}"
        );
    }
    let r = t
        .send(Req::get(&events_url(&org, "limit=ten")).cookie(&admin))
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);

    // A member's malformed filter meets the same 404 as a well-formed one.
    let r = t
        .send(Req::get(&events_url(&org, "action=bogus")).cookie(&plain))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Another site cannot spend the scan budget (or record an export) through an admin's browser.
    for path in ["export", "verify"] {
        let r = t
            .send(
                Req::get(&format!("/api/v1/orgs/{org}/audit-events/{path}"))
                    .cookie(&admin)
                    .header("sec-fetch-site", "cross-site"),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    // Members of the org and strangers: the trail does not exist for them.
    let (stranger, _) = user(&t, "sam@example.com", "Sam").await;
    let other = new_org(&t, &stranger, "Elsewhere").await;
    for path in ["", "/export", "/verify"] {
        for c in [&plain, &stranger] {
            let r = t
                .send(Req::get(&format!("/api/v1/orgs/{org}/audit-events{path}")).cookie(c))
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        }
        let r = t
            .send(Req::get(&format!("/api/v1/orgs/{org}/audit-events{path}")))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        // The owner of another org reading this org through theirs sees only theirs.
        let r = t
            .send(Req::get(&format!("/api/v1/orgs/{other}/audit-events{path}")).cookie(&stranger))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(!r.text().contains(&org), "no event of the other org leaks");
    }
}

/// Runs `strongroom audit verify` with `args`: (exit code, stdout, stderr).
pub(crate) fn cli_verify(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = strongroom_bin()
        .current_dir(dir)
        .args(["audit", "verify"])
        .args(args)
        .output()
        .expect("run strongroom");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn exports_stream_json_lines_and_csv_that_verify_offline() {
    let t = TestApp::new().await;
    let (owner, _) = user(&t, "owner@example.com", "=HYPERLINK(\"http://evil\")").await;
    let org = new_org(&t, &owner, "Acme").await;
    let ws = new_ws(&t, &owner, &org).await;
    for i in 0..1200 {
        // More than two export batches.
        if i % 400 == 0 {
            t.clock.advance_secs(60);
        }
        ok(
            &t,
            Req::new(
                axum::http::Method::PATCH,
                &format!("/api/v1/orgs/{org}/workspaces/{ws}"),
            )
            .cookie(&owner)
            .json(json!({ "name": format!("Room {i}") })),
        )
        .await;
    }
    // The chain head before the export, to hold the file to.
    let before = ok(
        &t,
        Req::get(&format!("/api/v1/orgs/{org}/audit-events/verify")).cookie(&owner),
    )
    .await;
    assert_eq!(before["last_seq"], 1202, "{before}");
    let head = format!(
        "{}:{}",
        before["last_seq"],
        before["last_hash"].as_str().expect("last_hash")
    );
    let r = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/audit-events/export")).cookie(&owner))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/x-ndjson")
    );
    assert!(r
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment;") && d.ends_with(".jsonl\"")));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let body = r.text();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    // The chain as it stood when the export began: org created, workspace created, 1200 updates.
    assert_eq!(
        seqs(&lines),
        (1..=1202).collect::<Vec<_>>(),
        "oldest first, whole chain"
    );
    let file = t.dir.path().join("export.jsonl");
    std::fs::write(&file, &body).expect("write");
    let dir = t.dir.path().to_str().expect("dir");
    let f = file.to_str().expect("file");
    let (code, out, err) = cli_verify(t.dir.path(), &["--file", f, "--data-dir", dir]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("\"valid\":true") && out.contains("intact, 1202 events"),
        "{out}"
    );

    let empty = t.dir.path().join("empty.jsonl");
    std::fs::write(&empty, "\n").expect("write");
    let (code, _, err) = cli_verify(
        t.dir.path(),
        &["--file", empty.to_str().expect("f"), "--data-dir", dir],
    );
    assert_eq!(code, 1, "an empty file proves nothing: {err}");
    // The report names the last hash, to compare with the chain head the API reports.
    let report: Value = serde_json::from_str(out.lines().next().expect("line")).expect("json");
    assert_eq!(report["last_hash"], lines[1201]["hash"]);

    // Held to the head taken before the export: the whole file passes; cut at the end, it still
    // chains (nothing in it is wrong) but does not reach the head, so it fails there.
    let (code, out, err) = cli_verify(
        t.dir.path(),
        &["--file", f, "--head", &head, "--data-dir", dir],
    );
    assert_eq!(code, 0, "{out}{err}");
    let cut = t.dir.path().join("cut.jsonl");
    std::fs::write(&cut, body.lines().take(1190).collect::<Vec<_>>().join("\n")).expect("write");
    let c = cut.to_str().expect("file");
    let (code, out, err) = cli_verify(t.dir.path(), &["--file", c, "--data-dir", dir]);
    assert_eq!(code, 0, "without a head a tail cut goes unseen: {out}{err}");
    let (code, _, err) = cli_verify(
        t.dir.path(),
        &["--file", c, "--head", &head, "--data-dir", dir],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("BROKEN at seq 1191"), "{err}");
    // A head from another history (right seq, other hash) fails at that seq.
    let other = format!("1202:{}", "0".repeat(64));
    let (code, _, err) = cli_verify(
        t.dir.path(),
        &["--file", f, "--head", &other, "--data-dir", dir],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("BROKEN at seq 1202"), "{err}");
    // A head the file has already passed (events appended since) is fine; a malformed one is an
    // error, not a verdict.
    let older = format!("2:{}", lines[1]["hash"].as_str().expect("hash"));
    let (code, out, err) = cli_verify(
        t.dir.path(),
        &["--file", f, "--head", &older, "--data-dir", dir],
    );
    assert_eq!(code, 0, "{out}{err}");
    for bad in ["1202", "x:y", "0:abc", "-1:00"] {
        let (code, _, err) = cli_verify(
            t.dir.path(),
            &["--file", f, "--head", bad, "--data-dir", dir],
        );
        assert_eq!(code, 2, "{bad}: {err}");
    }

    // The export was itself audited, with its filters.
    let exported = items(
        &ok(
            &t,
            Req::get(&events_url(&org, "action=audit.exported")).cookie(&owner),
        )
        .await,
    );
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0]["metadata"]["format"], "jsonl");
    assert_eq!(exported[0]["metadata"]["through_seq"], 1202);

    // Every kind of edit to the file is caught at the right seq.
    let edit = |name: &str, change: &dyn Fn(&mut Vec<String>)| {
        let mut l: Vec<String> = body.lines().map(str::to_string).collect();
        change(&mut l);
        let p = t.dir.path().join(name);
        std::fs::write(&p, l.join("\n")).expect("write");
        p
    };
    let cases: Vec<(std::path::PathBuf, i64)> = vec![
        (
            edit("edited.jsonl", &|l| {
                let mut v: Value = serde_json::from_str(&l[9]).expect("json");
                v["ip"] = json!("198.51.100.0");
                l[9] = v.to_string();
            }),
            10,
        ),
        (
            edit("deleted.jsonl", &|l| {
                l.remove(20);
            }),
            21,
        ),
        (edit("swapped.jsonl", &|l| l.swap(30, 31)), 31),
        (
            edit("inserted.jsonl", &|l| {
                let mut forged: Value = serde_json::from_str(&l[40]).expect("json");
                forged["id"] = json!(uuid::Uuid::now_v7().to_string());
                forged["action"] = json!("member.removed");
                let mut e: StoredEvent =
                    serde_json::from_value::<strongroom::audit::query::EventView>(forged.clone())
                        .expect("view")
                        .to_stored()
                        .expect("stored");
                e.prev_hash = "ab".repeat(32);
                forged["hash"] = json!(e.compute_hash());
                forged["prev_hash"] = json!(e.prev_hash);
                l.insert(40, forged.to_string());
            }),
            41,
        ),
        (edit("garbage.jsonl", &|l| l[50] = "{not json".into()), 51),
    ];
    for (p, seq) in cases {
        let (code, out, err) = cli_verify(
            t.dir.path(),
            &["--file", p.to_str().expect("p"), "--data-dir", dir],
        );
        assert_eq!(code, 1, "{}: {out}{err}", p.display());
        assert!(
            err.contains(&format!("BROKEN at seq {seq}"))
                && out.contains(&format!("\"first_bad_seq\":{seq}")),
            "{}: {out}{err}",
            p.display()
        );
    }

    // Filters apply to exports; CSV has a header, quotes and no cell a spreadsheet would run.
    let r = t
        .send(
            Req::get(&format!(
                "/api/v1/orgs/{org}/audit-events/export?format=csv&action=workspace.created"
            ))
            .cookie(&owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    let csv = r.text();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[0].starts_with("seq,id,at,actor_id,actor_display,action"));
    assert!(
        rows[1].contains(",'=***"),
        "a formula-like name is defused: {}",
        rows[1]
    );
    assert!(rows[1].contains(",workspace.created,"));
    let r = t
        .send(
            Req::get(&format!(
                "/api/v1/orgs/{org}/audit-events/export?format=xlsx"
            ))
            .cookie(&owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// A copy of the test's database (taken when the app is done with it): its URL and, on
/// PostgreSQL, its name to drop.
async fn copy_database(t: &TestApp, n: usize) -> (String, Option<String>) {
    let url = t.app.config.database_url();
    if backend_is_postgres() {
        let (base, name) = url.rsplit_once('/').expect("db url");
        let copy = format!("{name}_copy{n}");
        let mut c = sqlx::PgConnection::connect(&format!("{base}/postgres"))
            .await
            .expect("connect");
        // A template must have no session: the app's pool is closed, but a connection it was
        // still handing back (or a background task's) may linger for a moment.
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .execute(&mut c)
        .await
        .expect("end lingering sessions");
        sqlx::query(&format!("CREATE DATABASE {copy} TEMPLATE {name}"))
            .execute(&mut c)
            .await
            .expect("copy database");
        (format!("{base}/{copy}"), Some(copy))
    } else {
        let path = t.dir.path().join(format!("copy{n}.db"));
        sqlx::query(&format!("VACUUM INTO '{}'", path.display()))
            .execute(&mut *t.app.db.acquire().await.expect("writer"))
            .await
            .expect("vacuum into");
        (format!("sqlite://{}", path.display()), None)
    }
}

/// A connection to `url` that can edit the audit table: as a superuser with triggers off
/// (PostgreSQL), or with the triggers dropped (SQLite).
async fn tamper_connection(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await.expect("connect");
    if backend_is_postgres() {
        sqlx::query("SET session_replication_role = replica")
            .execute(&mut c)
            .await
            .expect("replica");
    } else {
        for trig in ["audit_events_no_update", "audit_events_no_delete"] {
            sqlx::query(&format!("DROP TRIGGER {trig}"))
                .execute(&mut c)
                .await
                .expect("drop trigger");
        }
    }
    c
}

async fn exec(c: &mut sqlx::AnyConnection, sql: &str, chain: &str) {
    sqlx::query(sql)
        .bind(chain)
        .execute(&mut *c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// One stored event, read as the tamperer reads it (the app reads a chain in its org's context).
async fn row(c: &mut sqlx::AnyConnection, chain: &str, seq: i64) -> StoredEvent {
    let r = sqlx::query(
        "SELECT id, chain, seq, at, actor_id, action, target_type, target_id, ip, metadata, prev_hash, hash \
         FROM audit_events WHERE chain = $1 AND seq = $2",
    )
    .bind(chain)
    .bind(seq)
    .fetch_one(&mut *c)
    .await
    .expect("row");
    StoredEvent {
        id: r.get("id"),
        chain: r.get("chain"),
        seq: r.get("seq"),
        at: r.get("at"),
        actor_id: r.get("actor_id"),
        action: r.get("action"),
        target_type: r.get("target_type"),
        target_id: r.get("target_id"),
        ip: r.get("ip"),
        metadata: serde_json::from_str(&r.get::<String, _>("metadata")).expect("metadata"),
        prev_hash: r.get("prev_hash"),
        hash: r.get("hash"),
    }
}

async fn insert_event(c: &mut sqlx::AnyConnection, e: &StoredEvent) {
    sqlx::query(
        "INSERT INTO audit_events (id, chain, seq, at, actor_id, action, target_type, target_id, ip, metadata, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&e.id)
    .bind(&e.chain)
    .bind(e.seq)
    .bind(e.at)
    .bind(&e.actor_id)
    .bind(&e.action)
    .bind(&e.target_type)
    .bind(&e.target_id)
    .bind(&e.ip)
    .bind(strongroom::audit::canonical(&e.metadata))
    .bind(&e.prev_hash)
    .bind(&e.hash)
    .execute(&mut *c)
    .await
    .expect("insert forged row");
}

#[tokio::test]
async fn tampering_of_every_kind_on_a_copy_is_caught_at_the_right_seq() {
    let t = TestApp::new().await;
    let (owner, _) = user(&t, "owner@example.com", "Owner").await;
    let org = new_org(&t, &owner, "Acme").await;
    let ws = new_ws(&t, &owner, &org).await;
    for i in 0..12 {
        new_item(&t, &owner, &org, &ws, &format!("item {i}")).await;
    }
    // 1 org.created, 2 workspace.created, 3..=14 item.created.
    let report = ok(
        &t,
        Req::get(&format!("/api/v1/orgs/{org}/audit-events/verify")).cookie(&owner),
    )
    .await;
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["events"], 14);
    assert!(report.get("first_bad_seq").is_none());
    let last = 14;

    if backend_is_postgres() {
        // A database with open connections cannot be a template.
        t.app.db.close().await;
    }
    let dir = t.dir.path().to_str().expect("dir").to_string();
    let mut copies = Vec::new();
    type Edit = (&'static str, i64);
    let kinds: [Edit; 10] = [
        ("untouched", 0),
        ("update a field", 3),
        ("delete a row", 4),
        ("swap two rows", 5),
        ("insert a forged row", 7),
        ("remove a prefix without a checkpoint", 4),
        ("remove a prefix behind a forged checkpoint", 4),
        ("rewind the head and drop the tail", 11),
        ("remove the head row", 1),
        ("reformat stored metadata", 8),
    ];
    for (n, (kind, bad)) in kinds.iter().enumerate() {
        let (url, name) = copy_database(&t, n).await;
        copies.extend(name);
        let mut c = tamper_connection(&url).await;
        let mut unapplied = None;
        match *kind {
            "untouched" => {
                // Verification reads the database as it is: it must not migrate it. Forget the
                // newest migration; a verifier that migrated would apply it again (or fail).
                let newest: i64 = sqlx::query("SELECT MAX(version) AS v FROM _sqlx_migrations")
                    .fetch_one(&mut c)
                    .await
                    .expect("migrations")
                    .get("v");
                sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
                    .bind(newest)
                    .execute(&mut c)
                    .await
                    .expect("forget migration");
                unapplied = Some(newest);
            }
            "update a field" => {
                exec(&mut c, "UPDATE audit_events SET metadata = '{\"title\":\"x\"}' WHERE chain = $1 AND seq = 3", &org).await
            }
            "delete a row" => exec(&mut c, "DELETE FROM audit_events WHERE chain = $1 AND seq = 4", &org).await,
            "swap two rows" => {
                exec(&mut c, "UPDATE audit_events SET seq = -5 WHERE chain = $1 AND seq = 5", &org).await;
                exec(&mut c, "UPDATE audit_events SET seq = 5 WHERE chain = $1 AND seq = 6", &org).await;
                exec(&mut c, "UPDATE audit_events SET seq = 6 WHERE chain = $1 AND seq = -5", &org).await;
            }
            "insert a forged row" => {
                // Make room at 7 and put a well-formed event there whose hash recomputes but
                // whose prev is not the hash of 6.
                exec(&mut c, "UPDATE audit_events SET seq = -(seq + 1) WHERE chain = $1 AND seq >= 7", &org).await;
                exec(&mut c, "UPDATE audit_events SET seq = -seq WHERE chain = $1 AND seq < 0", &org).await;
                let mut forged = row(&mut c, &org, 8).await;
                forged.id = uuid::Uuid::now_v7().to_string();
                forged.seq = 7;
                forged.action = "member.removed".into();
                forged.prev_hash = row(&mut c, &org, 5).await.hash;
                forged.hash = forged.compute_hash();
                insert_event(&mut c, &forged).await;
                exec(&mut c, "UPDATE audit_chains SET last_seq = last_seq + 1 WHERE chain = $1", &org).await;
            }
            "remove a prefix without a checkpoint" => {
                exec(&mut c, "DELETE FROM audit_events WHERE chain = $1 AND seq <= 3", &org).await
            }
            "remove a prefix behind a forged checkpoint" => {
                let through = row(&mut c, &org, 3).await;
                let head = row(&mut c, &org, last).await;
                exec(&mut c, "DELETE FROM audit_events WHERE chain = $1 AND seq <= 3", &org).await;
                let mut cp = head.clone();
                cp.id = uuid::Uuid::now_v7().to_string();
                cp.seq = last + 1;
                cp.actor_id = None;
                cp.action = "audit.retention_checkpoint".into();
                cp.target_type = Some("audit_chain".into());
                cp.target_id = Some(org.clone());
                cp.ip = None;
                cp.metadata = json!({
                    "through_seq": 3, "through_hash": through.hash, "removed": 3,
                    "cutoff": through.at + 1, "signature": "00".repeat(32),
                });
                cp.prev_hash = head.hash.clone();
                cp.hash = cp.compute_hash();
                insert_event(&mut c, &cp).await;
                sqlx::query("UPDATE audit_chains SET last_seq = $2, last_hash = $3 WHERE chain = $1")
                    .bind(&org)
                    .bind(cp.seq)
                    .bind(&cp.hash)
                    .execute(&mut c)
                    .await
                    .expect("head");
            }
            "rewind the head and drop the tail" => {
                let ten = row(&mut c, &org, 10).await;
                sqlx::query("UPDATE audit_chains SET last_seq = 10, last_hash = $2 WHERE chain = $1")
                    .bind(&org)
                    .bind(&ten.hash)
                    .execute(&mut c)
                    .await
                    .expect("head");
            }
            "remove the head row" => {
                exec(&mut c, "DELETE FROM audit_chains WHERE chain = $1", &org).await
            }
            "reformat stored metadata" => {
                exec(&mut c, "UPDATE audit_events SET metadata = metadata || ' ' WHERE chain = $1 AND seq = 8", &org).await
            }
            other => unreachable!("{other}"),
        }
        c.close().await.expect("close");
        let (code, out, err) = cli_verify(
            t.dir.path(),
            &["--org", &org, "--database-url", &url, "--data-dir", &dir],
        );
        if *bad == 0 {
            assert_eq!(code, 0, "{kind}: {out}{err}");
            assert!(
                out.contains(&format!("intact, {last} events")),
                "{kind}: {out}"
            );
            if let Some(version) = unapplied {
                let mut c = sqlx::AnyConnection::connect(&url).await.expect("connect");
                let n: i64 =
                    sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE version = $1")
                        .bind(version)
                        .fetch_one(&mut c)
                        .await
                        .expect("count")
                        .get("n");
                assert_eq!(n, 0, "verification migrated the database");
                c.close().await.expect("close");
            }
        } else {
            assert_eq!(code, 1, "{kind}: {out}{err}");
            assert!(
                err.contains(&format!("BROKEN at seq {bad}")),
                "{kind}: expected seq {bad}: {out}{err}"
            );
        }
    }
    for name in copies {
        crate::support::drop_database(name);
    }

    // No database there: an error (exit 2), and none is created (nor a key).
    let empty = tempfile::tempdir().expect("tempdir");
    let (code, out, err) = cli_verify(
        empty.path(),
        &[
            "--org",
            &org,
            "--data-dir",
            empty.path().to_str().expect("dir"),
        ],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no database"), "{err}");
    assert_eq!(
        std::fs::read_dir(empty.path()).expect("dir").count(),
        0,
        "verification wrote into an empty data dir"
    );
}

#[tokio::test]
async fn the_database_refuses_to_edit_or_delete_audit_events() {
    let t = TestApp::new().await;
    let (owner, _) = user(&t, "owner@example.com", "Owner").await;
    let org = new_org(&t, &owner, "Acme").await;
    let before = t.chain(&org).await;
    // Through the application's own connections (PostgreSQL: the app role has no UPDATE/DELETE;
    // SQLite: the triggers), inside the org's own context.
    for sql in [
        "UPDATE audit_events SET action = 'nothing' WHERE chain = $1",
        "DELETE FROM audit_events WHERE chain = $1",
    ] {
        let mut tx = crate::support::scoped_tx(&t.app, &org, "").await;
        let r = sqlx::query(sql).bind(&org).execute(&mut *tx).await;
        assert!(r.is_err(), "{sql} must be refused");
        let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("append-only") || msg.contains("permission denied"),
            "{msg}"
        );
    }
    // Opening the retention gate by hand is not the app's to do either (PostgreSQL).
    if backend_is_postgres() {
        let mut tx = crate::support::scoped_tx(&t.app, &org, "").await;
        let r =
            sqlx::query("INSERT INTO audit_retention_gate (chain, through_seq) VALUES ($1, 100)")
                .bind(&org)
                .execute(&mut *tx)
                .await;
        assert!(r.is_err(), "the app role cannot write the gate");
        // Even a superuser meets the triggers (and TRUNCATE is refused too).
        let url = t.app.config.database_url();
        let mut c = sqlx::PgConnection::connect(&url).await.expect("superuser");
        for sql in [
            format!("UPDATE audit_events SET action = 'x' WHERE chain = '{org}'"),
            format!("DELETE FROM audit_events WHERE chain = '{org}'"),
            "TRUNCATE audit_events".to_string(),
        ] {
            let r = sqlx::query(&sql).execute(&mut c).await;
            let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(msg.contains("append-only"), "{sql}: {msg}");
        }
    }
    assert_eq!(t.chain(&org).await.len(), before.len());
    assert_eq!(strongroom::audit::first_bad_seq(&t.chain(&org).await), None);

    // The retention function (PostgreSQL) holds itself to retention: not another tenant's chain,
    // never the newest event, never a prefix no checkpoint names. And an org's transactions do not
    // see the platform chain of every account's sign-ins.
    if backend_is_postgres() {
        let ws = new_ws(&t, &owner, &org).await;
        new_item(&t, &owner, &org, &ws, "one").await;
        let (stranger, _) = user(&t, "sam@example.com", "Sam").await;
        let other = new_org(&t, &stranger, "Elsewhere").await;
        for (scope, chain, through, why) in [
            (org.as_str(), org.as_str(), 1, "no checkpoint"),
            (org.as_str(), org.as_str(), 3, "newest event"),
            (org.as_str(), other.as_str(), 1, "not the current tenant"),
            (org.as_str(), "platform", 1, "not the current tenant"),
        ] {
            let mut tx = crate::support::scoped_tx(&t.app, scope, "").await;
            let r = sqlx::query("SELECT audit_remove_prefix($1, $2)")
                .bind(chain)
                .bind(through)
                .execute(&mut *tx)
                .await;
            let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(msg.contains(why), "{chain} {through}: {msg}");
        }
        let mut tx = crate::support::scoped_tx(&t.app, &org, "").await;
        let events_sql = "SELECT id FROM audit_events WHERE chain = $1";
        let platform = sqlx::query(events_sql)
            .bind("platform")
            .fetch_all(&mut *tx)
            .await
            .expect("q");
        assert!(
            platform.is_empty(),
            "an org's transaction sees no platform event"
        );
        let foreign = sqlx::query(events_sql)
            .bind(&other)
            .fetch_all(&mut *tx)
            .await
            .expect("q");
        assert!(foreign.is_empty(), "nor another org's");
        // Nor can it see or move another chain's head (which would fake a break over there).
        for chain in [other.as_str(), "platform"] {
            let seen = sqlx::query("SELECT last_seq FROM audit_chains WHERE chain = $1")
                .bind(chain)
                .fetch_optional(&mut *tx)
                .await
                .expect("select");
            assert!(seen.is_none(), "{chain}'s head is hidden from {org}");
            let moved = sqlx::query(
                "UPDATE audit_chains SET last_seq = last_seq + 7, last_hash = 'x' WHERE chain = $1",
            )
            .bind(chain)
            .execute(&mut *tx)
            .await
            .expect("update")
            .rows_affected();
            assert_eq!(moved, 0, "{org} moved {chain}'s head");
        }
        let planted = sqlx::query(
            "INSERT INTO audit_chains (chain, last_seq, last_hash) VALUES ('org_planted', 0, '')",
        )
        .execute(&mut *tx)
        .await;
        assert!(planted.is_err(), "a head for another tenant was planted");
        drop(tx);
        let r = ok(
            &t,
            Req::get(&format!("/api/v1/orgs/{org}/audit-events/verify")).cookie(&owner),
        )
        .await;
        assert_eq!(r["valid"], true);
        let r = ok(
            &t,
            Req::get(&format!("/api/v1/orgs/{other}/audit-events/verify")).cookie(&stranger),
        )
        .await;
        assert_eq!(r["valid"], true, "{r}");
        assert_eq!(
            strongroom::audit::first_bad_seq(&t.chain("platform").await),
            None
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_writers_keep_the_chain_gapless_and_valid() {
    let t = TestApp::new().await;
    let (owner, _) = user(&t, "owner@example.com", "Owner").await;
    let org = new_org(&t, &owner, "Acme").await;
    let ws = new_ws(&t, &owner, &org).await;
    let base = t.chain(&org).await.len();
    let writes = (0..32).map(|i| {
        let (t, owner, org, ws) = (&t, &owner, &org, &ws);
        async move {
            let r = t
                .send(
                    Req::post(&format!("/api/v1/orgs/{org}/workspaces/{ws}/items"))
                        .cookie(owner)
                        .json(json!({ "title": format!("parallel {i}") })),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        }
    });
    // Platform-chain writers at the same time (sign-ins append to another chain).
    let logins = (0..4).map(|_| t.login("owner@example.com"));
    let (_, _) = tokio::join!(
        futures_util::future::join_all(writes),
        futures_util::future::join_all(logins)
    );
    let chain = t.chain(&org).await;
    assert_eq!(chain.len(), base + 32);
    assert_eq!(
        chain.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=(base as i64 + 32)).collect::<Vec<_>>(),
        "gapless"
    );
    assert_eq!(strongroom::audit::first_bad_seq(&chain), None);
    assert_eq!(
        strongroom::audit::first_bad_seq(&t.chain("platform").await),
        None
    );
    let r = ok(
        &t,
        Req::get(&format!("/api/v1/orgs/{org}/audit-events/verify")).cookie(&owner),
    )
    .await;
    assert_eq!(r["valid"], true);

    // And 32 appends raced straight at the store, one tenant transaction each.
    let owner_id = t.me(&owner).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let appends = (0..32).map(|i| {
        let app = t.app.clone();
        let org = org.clone();
        let owner_id = owner_id.clone();
        tokio::spawn(async move {
            use strongroom::store::tenant::{Mode, TenantTx};
            let (mut tx, _) = TenantTx::enter(&app.db, &org, &owner_id, None, Mode::Write)
                .await
                .expect("enter")
                .expect("a member");
            strongroom::audit::append_org(
                &mut tx,
                1_800_000_000_000,
                strongroom::audit::Event {
                    actor_id: None,
                    action: strongroom::audit::Action::OrgUpdated,
                    target_type: Some("org"),
                    target_id: Some(&org),
                    ip: None,
                    metadata: json!({ "n": i }),
                },
            )
            .await
            .expect("append");
            tx.commit().await.expect("commit");
        })
    });
    for r in futures_util::future::join_all(appends).await {
        r.expect("task");
    }
    let chain = t.chain(&org).await;
    assert_eq!(chain.len(), base + 64);
    assert_eq!(strongroom::audit::first_bad_seq(&chain), None);
}

#[tokio::test]
async fn retention_removes_an_old_prefix_behind_a_signed_checkpoint_and_the_rest_verifies() {
    let t = long_sessions().await;
    let (owner, _) = user(&t, "owner@example.com", "Owner").await;
    let org = new_org(&t, &owner, "Acme").await;
    let ws = new_ws(&t, &owner, &org).await;
    for i in 0..5 {
        new_item(&t, &owner, &org, &ws, &format!("old {i}")).await;
    }
    // 1..=7 are old; a year later 8..=10 are written; then another 400 days pass.
    t.clock.advance_secs(365 * DAY);
    let mut recent = Vec::new();
    for i in 0..3 {
        recent.push(new_item(&t, &owner, &org, &ws, &format!("recent {i}")).await);
    }
    t.clock.advance_secs(400 * DAY);
    let removed = strongroom::audit::retention::run_once(&t.app.retention_job())
        .await
        .expect("retention");
    assert!(removed.contains(&(org.clone(), 7)), "{removed:?}");
    let chain = t.chain(&org).await;
    assert_eq!(
        chain.first().map(|e| e.seq),
        Some(8),
        "the old prefix is gone"
    );
    let cp = chain.last().expect("checkpoint");
    assert_eq!(cp.action, "audit.retention_checkpoint");
    assert_eq!(cp.seq, 11);
    assert_eq!(cp.metadata["through_seq"], 7);
    assert_eq!(cp.metadata["removed"], 7);
    assert_eq!(cp.metadata["through_hash"], chain[0].prev_hash.as_str());
    let r = ok(
        &t,
        Req::get(&format!("/api/v1/orgs/{org}/audit-events/verify")).cookie(&owner),
    )
    .await;
    assert_eq!(r["valid"], true, "{r}");
    assert_eq!(r["first_seq"], 8);
    assert_eq!(r["events"], 4);
    assert_eq!(r["checkpoint_signatures_checked"], true);
    // Nothing left to do on a second run; the platform chain was trimmed too.
    assert!(
        strongroom::audit::retention::run_once(&t.app.retention_job())
            .await
            .expect("again")
            .is_empty()
    );
    assert_eq!(
        strongroom::audit::first_bad_seq(&t.chain("platform").await),
        None
    );

    // An export after retention verifies offline (checkpoint signature checked with the key).
    let export = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/audit-events/export")).cookie(&owner))
        .await
        .text();
    let file = t.dir.path().join("after-retention.jsonl");
    std::fs::write(&file, &export).expect("write");
    let dir = t.dir.path().to_str().expect("dir");
    // Checkpoint signatures are keyed from the platform data key: checked when the configuration
    // names the installation's master key and its database, and said to be unchecked otherwise.
    let url = t.app.config.database_url();
    let (code, out, err) = cli_verify(
        t.dir.path(),
        &[
            "--file",
            file.to_str().expect("f"),
            "--data-dir",
            dir,
            "--database-url",
            &url,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("not checked"), "{out}");
    let elsewhere = tempfile::tempdir().expect("dir");
    let (code, out, err) = cli_verify(
        t.dir.path(),
        &[
            "--file",
            file.to_str().expect("f"),
            "--data-dir",
            elsewhere.path().to_str().expect("dir"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("not checked"), "{out}");
    // One more event cut off the start by hand is not retention: caught at the new start.
    let cut: Vec<&str> = export.lines().skip(1).collect();
    std::fs::write(&file, cut.join("\n")).expect("write");
    let (code, _, err) = cli_verify(
        t.dir.path(),
        &["--file", file.to_str().expect("f"), "--data-dir", dir],
    );
    assert_eq!(code, 1);
    assert!(err.contains("BROKEN at seq 9"), "{err}");

    // A second retention later removes the first checkpoint with its prefix; still valid.
    t.clock.advance_secs(731 * DAY);
    let removed = strongroom::audit::retention::run_once(&t.app.retention_job())
        .await
        .expect("retention");
    assert!(removed.iter().any(|(c, _)| c == &org), "{removed:?}");
    let r = ok(
        &t,
        Req::get(&format!("/api/v1/orgs/{org}/audit-events/verify")).cookie(&owner),
    )
    .await;
    assert_eq!(r["valid"], true, "{r}");
    let chain = t.chain(&org).await;
    assert_eq!(
        chain
            .iter()
            .filter(|e| e.action == "audit.retention_checkpoint")
            .count(),
        1,
        "the older checkpoint went with its prefix"
    );
}

#[tokio::test]
async fn retention_runs_as_a_background_job_and_can_be_turned_off() {
    let t = TestApp::with(|c| c.audit.retention_interval_secs = 60).await;
    let (owner, _) = user(&t, "owner@example.com", "Owner").await;
    let org = new_org(&t, &owner, "Acme").await;
    t.clock.advance_secs(731 * DAY);
    let (trigger, stop) = strongroom::shutdown::channel();
    let job = strongroom::audit::retention::spawn_job(t.app.retention_job(), stop);
    let mut found = false;
    for _ in 0..100 {
        if t.chain(&org)
            .await
            .iter()
            .any(|e| e.action == "audit.retention_checkpoint")
        {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    trigger.fire();
    job.await.expect("job stops");
    assert!(found, "the job applied retention");
    assert_eq!(strongroom::audit::first_bad_seq(&t.chain(&org).await), None);

    // 0 keeps every event.
    let keep = TestApp::with(|c| c.audit.retention_days = 0).await;
    let (owner, _) = user(&keep, "owner@example.com", "Owner").await;
    let org = new_org(&keep, &owner, "Acme").await;
    keep.clock.advance_secs(3650 * DAY);
    assert!(
        strongroom::audit::retention::run_once(&keep.app.retention_job())
            .await
            .expect("run")
            .is_empty()
    );
    assert_eq!(keep.chain(&org).await.first().map(|e| e.seq), Some(1));
    // Values out of range are refused when the configuration is checked.
    let mut cfg = strongroom::config::Config::default();
    cfg.audit.retention_days = 7;
    assert!(cfg
        .validate()
        .iter()
        .any(|p| p.contains("audit.retention_days")));
}

#[tokio::test]
async fn whole_trail_scans_are_rate_limited_per_org() {
    let t = TestApp::with(|c| {
        c.rate_limits.audit_scans_per_org = strongroom::config::Limit::new(3, 3600);
        c.session.idle_timeout_secs = 2 * 3600;
    })
    .await;
    let (owner, _) = user(&t, "owner@example.com", "Owner").await;
    let org = new_org(&t, &owner, "Acme").await;
    let (admin, _) = member(&t, &owner, &org, "adam@example.com", "admin").await;
    for (c, path) in [(&owner, "verify"), (&admin, "export"), (&owner, "verify")] {
        let r = t
            .send(Req::get(&format!("/api/v1/orgs/{org}/audit-events/{path}")).cookie(c))
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    // The budget is the org's, whoever asks.
    let before = t.chain(&org).await.len();
    for (c, path) in [(&admin, "verify"), (&owner, "export")] {
        let r = t
            .send(Req::get(&format!("/api/v1/orgs/{org}/audit-events/{path}")).cookie(c))
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert!(r.header("retry-after").is_some());
    }
    assert_eq!(
        t.chain(&org).await.len(),
        before,
        "a refused export is not recorded as one"
    );
    // Pages of the trail are not scans.
    let r = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/audit-events")).cookie(&admin))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    t.clock.advance_secs(3601);
    let r = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/audit-events/verify")).cookie(&admin))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}
