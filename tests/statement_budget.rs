//! Statement budgets (issue #11, point 2): an authenticated request costs a fixed, small number
//! of PostgreSQL statements, and a tenant read or write runs in one transaction after the session
//! lookup. Counted on the wire: the app's pool talks to PostgreSQL through a proxy inside this
//! process (`common/pgwire_counter.rs`) that records every statement the server is sent (simple
//! queries and extended-protocol executions, BEGIN and COMMIT included) on every connection, so a
//! failure lists exactly what ran.
//!
//! Each measurement is checked against sqlx's own statement log (its `sqlx::query` events, from
//! this test's thread only: the tests of this binary run side by side): the same statements,
//! transaction control aside (sqlx logs COMMIT but not BEGIN, nor the ROLLBACK of a transaction
//! dropped unfinished). The proxy adds what sqlx does not log: BEGIN, and its connection checks
//! (a lone Sync on every pool acquire and release, counted as round trips, not statements).
//!
//! What else could touch the database during a request, and why it does not here: `TestApp` runs
//! no mail worker and no retention job (only `serve` starts those); the session's last-seen time
//! is refreshed after the answer at most once a minute, and the test clock stands still, so after
//! login it never is (an idle window checks the wire stays silent). A request's own work left for
//! after its answer is awaited by `TestApp::send`, and the proxy waits for the wire to go quiet
//! before and after each request, so the pool's release checks land in the window of the request
//! that caused them.
//!
//! The budgets need PostgreSQL (`STRONGROOM_TEST_DATABASE=postgres`); on SQLite, which has no
//! wire, each test says so and passes.

#[path = "api/support.rs"]
#[allow(dead_code)]
mod support;

#[path = "common/pgwire_counter.rs"]
mod pgwire_counter;

use std::sync::{Mutex, Once};
use std::thread::ThreadId;

use axum::http::StatusCode;
use pgwire_counter::{begins_transaction, PgWireCounter, Window};
use serde_json::{json, Value};
use support::{Req, TestApp, TestResponse};
use tracing_subscriber::layer::SubscriberExt;

/// An item read: the session lookup, BEGIN, the tenant context with the authorization (org
/// membership and workspace role in one statement), the read, COMMIT.
const ITEM_READ_BUDGET: usize = 5;
/// An item list page: as a read, the page in place of the item.
const ITEM_LIST_BUDGET: usize = 5;
/// An item creation: the session lookup, BEGIN, the tenant context with the authorization, the
/// insert (returning the row, so no read after it), the audit append (the chain head read and
/// advanced in one `UPDATE … RETURNING`, the event inserted, the head's hash set), the item's
/// search terms (keyed hashes, one multi-row insert), COMMIT.
const ITEM_CREATE_BUDGET: usize = 9;
/// `/api/v1/me`: the session lookup and the account read (its second factors with it), no
/// transaction.
const ME_BUDGET: usize = 2;

/// Connections opened before measuring (the pool allows 16).
const WARM_CONNECTIONS: usize = 6;

/// sqlx's statement log: (the thread that ran it, its SQL), process-wide.
static SQLX_LOG: Mutex<Vec<(ThreadId, String)>> = Mutex::new(Vec::new());

struct SqlxLog;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SqlxLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut v = QueryFields::default();
        event.record(&mut v);
        // sqlx puts the full text in `db.statement` when it differs from the summary.
        let sql = if v.statement.trim().is_empty() {
            v.summary
        } else {
            v.statement
        };
        SQLX_LOG
            .lock()
            .expect("the sqlx log lock is not poisoned")
            .push((std::thread::current().id(), sql));
    }
}

#[derive(Default)]
struct QueryFields {
    summary: String,
    statement: String,
}

impl tracing::field::Visit for QueryFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_string(),
            "db.statement" => self.statement = value.to_string(),
            _ => {}
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

fn sqlx_log_len() -> usize {
    SQLX_LOG.lock().expect("the sqlx log lock").len()
}

/// What sqlx logged on this thread since `from`.
fn sqlx_log_since(from: usize) -> Vec<String> {
    let me = std::thread::current().id();
    SQLX_LOG.lock().expect("the sqlx log lock")[from..]
        .iter()
        .filter(|(thread, _)| *thread == me)
        .map(|(_, sql)| sql.clone())
        .collect()
}

/// The app on a fresh PostgreSQL database reached through a counting proxy; `None` (with a note)
/// on SQLite.
async fn counted_app(test: &str) -> Option<(TestApp, PgWireCounter)> {
    if !support::backend_is_postgres() {
        eprintln!(
            "{test}: statement budgets are counted on PostgreSQL's wire; skipped on SQLite \
             (run with STRONGROOM_TEST_DATABASE=postgres)"
        );
        return None;
    }
    static TRACING: Once = Once::new();
    TRACING.call_once(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(SqlxLog))
            .expect("the only tracing subscriber of this binary");
    });
    let proxy = PgWireCounter::start().await;
    let t = TestApp::with(|cfg| {
        let url = cfg.database_url();
        cfg.database_url = Some(proxy.route(&url));
    })
    .await;
    // A warm pool, as a busy server has: enough idle connections that a measured request never
    // waits for one to be opened (a connection is back in the pool only after its release check,
    // so a request can touch three at once; whether it then finds one idle is a race).
    let mut held = Vec::new();
    for _ in 0..WARM_CONNECTIONS {
        held.push(t.app.db.acquire().await.expect("a pooled connection"));
    }
    drop(held);
    Some((t, proxy))
}

/// One request as the database saw it.
struct Measured {
    response: TestResponse,
    wire: Window,
    sqlx: Vec<String>,
}

async fn measure(t: &TestApp, proxy: &PgWireCounter, req: Req) -> Measured {
    let mark = proxy.mark().await;
    let logged = sqlx_log_len();
    let response = t.send(req).await;
    let wire = proxy.window(mark).await;
    Measured {
        response,
        wire,
        sqlx: sqlx_log_since(logged),
    }
}

/// Sends the request until the pool has the connections it needs and they have prepared its
/// statements: at least twice, then until a run neither opens a connection nor prepares a
/// statement (sqlx prepares per connection, and the pool hands its connections out in turn).
async fn warm_up(t: &TestApp, proxy: &PgWireCounter, req: impl Fn() -> Req) {
    for round in 1..=3 * WARM_CONNECTIONS {
        let m = measure(t, proxy, req()).await;
        if round >= 2 && m.wire.connections_opened() == 0 && m.wire.parses() == 0 {
            return;
        }
    }
}

/// Transaction control: counted by the proxy, logged by sqlx only in part.
fn is_transaction_control(sql: &str) -> bool {
    let first = sql
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_end_matches(';')
        .to_ascii_uppercase();
    begins_transaction(sql)
        || matches!(
            first.as_str(),
            "COMMIT" | "ROLLBACK" | "END" | "SAVEPOINT" | "RELEASE"
        )
}

fn normalized(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The counter itself is sound: it parsed every frame, the pool was warm, and the statements it
/// saw are the ones sqlx ran (transaction control aside).
fn assert_counted_soundly(what: &str, m: &Measured) {
    let w = &m.wire;
    assert!(
        w.errors.is_empty(),
        "{what}: the proxy misread the wire\n{w}"
    );
    assert_eq!(
        w.connections_opened(),
        0,
        "{what}: a connection was opened during the measured request (warm-up too short)\n{w}"
    );
    let mut on_wire: Vec<String> = w
        .statements()
        .into_iter()
        .map(|(_, _, sql)| normalized(sql))
        .filter(|sql| !is_transaction_control(sql))
        .collect();
    let mut logged: Vec<String> = m
        .sqlx
        .iter()
        .map(|sql| normalized(sql))
        .filter(|sql| !is_transaction_control(sql))
        .collect();
    on_wire.sort();
    logged.sort();
    assert_eq!(
        on_wire, logged,
        "{what}: the proxy and sqlx's log disagree\n{w}"
    );
}

/// The request fits `budget` statements and begins `transactions` transactions.
fn assert_budget(what: &str, m: &Measured, budget: usize, transactions: usize) {
    let w = &m.wire;
    assert!(
        w.statement_count() <= budget && w.transactions() == transactions,
        "{what}: {} statements in {} transactions; the budget is at most {budget} statements in \
         {transactions} transaction(s)\n{w}",
        w.statement_count(),
        w.transactions(),
    );
    println!("{what}: within its budget of {budget} statements\n{w}");
}

async fn created(t: &TestApp, cookie: &str, path: &str, body: Value) -> String {
    let r = t.send(Req::post(path).cookie(cookie).json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.text());
    r.json()["id"].as_str().expect("an id").to_string()
}

/// A verified user signed in, an org, a board and one item on it.
struct Board {
    cookie: String,
    org: String,
    /// `/api/v1/orgs/{org}/workspaces/{ws}`
    base: String,
    item: String,
}

async fn board_with_item(t: &TestApp) -> Board {
    t.verified_user("reader@example.com", "Reader").await;
    let cookie = t.login("reader@example.com").await;
    let org = created(t, &cookie, "/api/v1/orgs", json!({ "name": "Counted" })).await;
    let ws = created(
        t,
        &cookie,
        &format!("/api/v1/orgs/{org}/workspaces"),
        json!({ "name": "Board", "kind": "board" }),
    )
    .await;
    let base = format!("/api/v1/orgs/{org}/workspaces/{ws}");
    let item = created(
        t,
        &cookie,
        &format!("{base}/items"),
        json!({ "title": "Counted item" }),
    )
    .await;
    Board {
        cookie,
        org,
        base,
        item,
    }
}

#[tokio::test]
async fn an_item_read_on_postgres_runs_at_most_five_statements_in_one_transaction() {
    let Some((t, proxy)) =
        counted_app("an_item_read_on_postgres_runs_at_most_five_statements_in_one_transaction")
            .await
    else {
        return;
    };
    let b = board_with_item(&t).await;
    let path = format!("{}/items/{}", b.base, b.item);
    let read = || Req::get(&path).cookie(&b.cookie);
    warm_up(&t, &proxy, read).await;

    // Between requests the wire is silent: no background loop writes meanwhile.
    let idle = proxy.window(proxy.mark().await).await;
    assert!(
        idle.is_empty(),
        "the database was used between requests\n{idle}"
    );

    let m = measure(&t, &proxy, read()).await;
    assert_eq!(m.response.status, StatusCode::OK, "{}", m.response.text());
    assert_eq!(m.response.json()["id"], b.item.as_str());
    assert_counted_soundly("GET item", &m);
    assert_budget("GET item", &m, ITEM_READ_BUDGET, 1);
}

#[tokio::test]
async fn an_item_read_by_api_key_costs_what_it_costs_by_session() {
    let Some((t, proxy)) =
        counted_app("an_item_read_by_api_key_costs_what_it_costs_by_session").await
    else {
        return;
    };
    let b = board_with_item(&t).await;
    let key = t
        .send(
            Req::post(&format!("/api/v1/orgs/{}/api-keys", b.org))
                .cookie(&b.cookie)
                .json(json!({ "name": "counted", "scopes": ["items:read"] })),
        )
        .await
        .json()["key"]
        .as_str()
        .expect("a key")
        .to_string();
    let path = format!("{}/items/{}", b.base, b.item);
    let read = || Req::get(&path).header("authorization", &format!("Bearer {key}"));
    warm_up(&t, &proxy, read).await;
    let m = measure(&t, &proxy, read()).await;
    assert_eq!(m.response.status, StatusCode::OK, "{}", m.response.text());
    assert_eq!(m.response.json()["id"], b.item.as_str());
    assert_counted_soundly("GET item by key", &m);
    // The key's lookup takes the session lookup's place: the same budget.
    assert_budget("GET item by key", &m, ITEM_READ_BUDGET, 1);
}

#[tokio::test]
async fn an_item_create_runs_its_change_and_audit_event_in_one_transaction() {
    let Some((t, proxy)) =
        counted_app("an_item_create_runs_its_change_and_audit_event_in_one_transaction").await
    else {
        return;
    };
    let b = board_with_item(&t).await;
    let path = format!("{}/items", b.base);
    let create = || {
        Req::post(&path)
            .cookie(&b.cookie)
            .json(json!({ "title": "Another" }))
    };
    warm_up(&t, &proxy, create).await;
    let events = t.chain(&b.org).await.len();

    let m = measure(&t, &proxy, create()).await;
    assert_eq!(
        m.response.status,
        StatusCode::CREATED,
        "{}",
        m.response.text()
    );
    assert_eq!(
        t.chain(&b.org).await.len(),
        events + 1,
        "the creation is audited"
    );
    assert_counted_soundly("POST item", &m);
    assert_budget("POST item", &m, ITEM_CREATE_BUDGET, 1);
}

#[tokio::test]
async fn an_item_list_page_on_postgres_runs_at_most_five_statements_in_one_transaction() {
    let Some((t, proxy)) = counted_app(
        "an_item_list_page_on_postgres_runs_at_most_five_statements_in_one_transaction",
    )
    .await
    else {
        return;
    };
    let b = board_with_item(&t).await;
    let path = format!("{}/items?limit=20", b.base);
    let list = || Req::get(&path).cookie(&b.cookie);
    warm_up(&t, &proxy, list).await;

    let m = measure(&t, &proxy, list()).await;
    assert_eq!(m.response.status, StatusCode::OK, "{}", m.response.text());
    assert_eq!(m.response.json()["items"][0]["id"], b.item.as_str());
    assert_counted_soundly("GET items", &m);
    assert_budget("GET items", &m, ITEM_LIST_BUDGET, 1);
}

#[tokio::test]
async fn me_on_postgres_is_the_session_lookup_and_the_account_read() {
    let Some((t, proxy)) =
        counted_app("me_on_postgres_is_the_session_lookup_and_the_account_read").await
    else {
        return;
    };
    t.verified_user("me@example.com", "Me").await;
    let cookie = t.login("me@example.com").await;
    let me = || Req::get("/api/v1/me").cookie(&cookie);
    warm_up(&t, &proxy, me).await;

    let m = measure(&t, &proxy, me()).await;
    assert_eq!(m.response.status, StatusCode::OK, "{}", m.response.text());
    assert_counted_soundly("GET me", &m);
    assert_budget("GET me", &m, ME_BUDGET, 0);
}
