//! Issue #5 point 1: "p99 under 50 ms for a page of 50 on an org with 1 million events".
//!
//! `cargo bench --bench audit_query` (SQLite, a temp file) or
//! `STRONGROOM_BENCH_DATABASE=postgres cargo bench --bench audit_query` (a fresh database
//! `sr_bench_<random>` on `STRONGROOM_BENCH_POSTGRES_URL`, default postgres://postgres@127.0.0.1:5432,
//! dropped at the end). `STRONGROOM_BENCH_EVENTS` (default 1000000) sets the size of the big org's
//! chain, `STRONGROOM_BENCH_ITERS` (default 400) the measured iterations per case,
//! `STRONGROOM_BENCH_KEEP=1` keeps the database for inspection.
//!
//! 1. Migrates a fresh database, builds the real app on it, signs an owner up over HTTP, creates two
//!    orgs, then bulk-loads N chained events into one org (and a few thousand into the other).
//! 2. Times one page of 50 through `audit::query::page` + `Viewer` in a `TenantTx` (the path
//!    of `GET …/audit-events`), for the newest page, a deep cursor and every filter.
//! 3. Times the same cases end to end over HTTP on 127.0.0.1 through the real router.
//! 4. Baselines from the same run: a bare axum hello-world (same client, same count) and `SELECT 1`
//!    through the same pool. Prints p50/p95/p99, p99 ratios to both, PASS/FAIL against 50 ms p99.
//! 5. Prints the query plans of each case (EXPLAIN QUERY PLAN / EXPLAIN ANALYZE) with a verdict.

mod common;
use common::insert_sql;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sqlx::{Connection, Row};
use strongroom::audit::query::{self, Filter};
use strongroom::audit::{canonical, StoredEvent, GENESIS};
use strongroom::clock::ManualClock;
use strongroom::config::Config;
use strongroom::state::{App, AppState};
use strongroom::store::tenant::{Mode, TenantTx};
use strongroom::store::{Db, Dialect};

/// The budget of issue #5 for a page of 50.
const BUDGET_P99_MS: f64 = 50.0;
const PAGE: i64 = 50;
const WARMUP: usize = 40;
const SECOND_ORG_EVENTS: u64 = 5_000;
/// The clock of the app (and the start of the trail): 2023-11-14.
const T0: i64 = 1_700_000_000_000;
/// The trail spans about two years.
const SPAN_MS: i64 = 2 * 365 * 86_400_000;
const DAY_MS: i64 = 86_400_000;
const ACTORS: usize = 200;
const TARGETS: usize = 50_000;
/// Rows per INSERT statement (12 binds each: below SQLite's 32766 and PostgreSQL's 65535).
const ROWS_PER_INSERT: usize = 1_000;
/// Rows per transaction while loading.
const ROWS_PER_TX: u64 = 100_000;
const PASSWORD: &str = "correct horse battery staple orbit";
const OWNER_EMAIL: &str = "owner@bench.example";

fn env_u64(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .replace('_', "")
            .parse()
            .with_context(|| format!("{name} must be a number")),
        _ => Ok(default),
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(main_async());
    drop(rt);
    if let Err(e) = result {
        eprintln!("audit_query benchmark failed: {e:#}");
        std::process::exit(1);
    }
}

async fn main_async() -> Result<()> {
    let postgres = match std::env::var("STRONGROOM_BENCH_DATABASE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => bail!("STRONGROOM_BENCH_DATABASE must be sqlite or postgres, not {other}"),
    };
    let events = env_u64("STRONGROOM_BENCH_EVENTS", 1_000_000)?;
    let iters = usize::try_from(env_u64("STRONGROOM_BENCH_ITERS", 400)?)?;
    ensure!(
        events >= 1_000,
        "STRONGROOM_BENCH_EVENTS must be at least 1000"
    );
    ensure!(iters >= 20, "STRONGROOM_BENCH_ITERS must be at least 20");
    let keep = std::env::var("STRONGROOM_BENCH_KEEP").is_ok_and(|v| v == "1");
    let dir = tempfile::Builder::new().prefix("sr_bench_").tempdir()?;
    let (url, guard) = if postgres {
        let base = std::env::var("STRONGROOM_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let name = format!("sr_bench_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(&format!("{base}/postgres"))
            .await
            .context("connect to PostgreSQL")?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await?;
        c.close().await?;
        let guard = PgDatabase {
            base: base.clone(),
            name: name.clone(),
            keep,
        };
        (format!("{base}/{name}"), Some(guard))
    } else {
        (
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            ),
            None,
        )
    };
    let result = run(&url, dir.path(), events, iters).await;
    if keep {
        let dir = dir.keep();
        eprintln!("kept {url} (data dir {})", dir.display());
    }
    // Dropped here on success and failure (and by unwinding on a panic).
    drop(guard);
    result
}

/// A PostgreSQL database made for this run, dropped when this is.
struct PgDatabase {
    base: String,
    name: String,
    keep: bool,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let url = format!("{}/postgres", self.base);
        let name = self.name.clone();
        // A thread of its own: Drop cannot await, and may run on a runtime thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                match sqlx::PgConnection::connect(&url).await {
                    Ok(mut c) => {
                        if let Err(e) =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await
                        {
                            eprintln!("could not drop database {name}: {e}");
                        }
                    }
                    Err(e) => eprintln!("could not drop database {name}: {e}"),
                }
            });
        })
        .join();
    }
}

/// What the big org's trail holds, for picking parameters.
struct World {
    org: String,
    user: String,
    first_seq: i64,
    last_seq: i64,
    t_first: i64,
    t_last: i64,
    mix: Arc<Mix>,
}

async fn run(url: &str, dir: &Path, events: u64, iters: usize) -> Result<()> {
    // 1. The database, with the real migrations.
    let db = Db::connect(url, 8).await?;
    db.migrate().await?;
    let backend = match db.dialect {
        Dialect::Sqlite => "SQLite",
        Dialect::Postgres => "PostgreSQL",
    };
    println!("audit_query benchmark: {backend}, {events} events in one org, {iters} iterations per case after {WARMUP} warm-up");

    // The real app on the same database, served on 127.0.0.1.
    let mut cfg = Config {
        data_dir: dir.join("data"),
        database_url: Some(url.to_string()),
        public_url: Some("http://strongroom.test".into()),
        ..Config::default()
    };
    cfg.password.insecure_fast_hashing_for_tests = true;
    cfg.password.argon2_memory_kib = 64;
    cfg.password.argon2_iterations = 1;
    // The clock stands still: the general API limits would stop the timed loops.
    let many = strongroom::config::Limit::new(u32::MAX, 60);
    (cfg.rate_limits.api_per_session, cfg.rate_limits.api_per_ip) = (many, many);
    let clock = Arc::new(ManualClock::new(T0));
    let app = App::build(cfg, clock).await?;
    let (app_addr, app_server) = serve(strongroom::http::router(app.clone())).await?;
    let (hello_addr, hello_server) =
        serve(axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" })))
            .await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()?;
    let base = format!("http://{app_addr}");
    let (cookie, user) = owner_session(&app, &client, &base).await?;
    let org = create_org(&client, &base, &cookie, "Bench Org").await?;
    let other_org = create_org(&client, &base, &cookie, "Other Org").await?;

    // The bulk load, straight into audit_events over a connection of its own (on PostgreSQL the
    // superuser login, not the pool's app role).
    let mix = Arc::new(Mix::new(&user, &org));
    let started = Instant::now();
    let mut loader = sqlx::AnyConnection::connect(url).await?;
    if db.dialect == Dialect::Sqlite {
        for p in [
            "PRAGMA synchronous = OFF",
            "PRAGMA cache_size = -262144",
            "PRAGMA busy_timeout = 5000",
        ] {
            sqlx::query(p).execute(&mut loader).await?;
        }
    }
    let big = load_chain(&mut loader, &org, events, mix.clone(), 1).await?;
    let big_secs = started.elapsed().as_secs_f64();
    let other_mix = Arc::new(Mix::new(&user, &other_org));
    let small_started = Instant::now();
    load_chain(&mut loader, &other_org, SECOND_ORG_EVENTS, other_mix, 2).await?;
    let small_secs = small_started.elapsed().as_secs_f64();
    let analyze_started = Instant::now();
    match db.dialect {
        Dialect::Postgres => {
            // Without arguments: the simple protocol (VACUUM cannot run in a transaction block).
            use sqlx::Executor;
            loader.execute("VACUUM (ANALYZE) audit_events").await?;
            loader.execute("ANALYZE audit_chains").await?;
        }
        Dialect::Sqlite => {
            // No ANALYZE: the server never runs it, so production SQLite plans without statistics.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut loader)
                .await?;
        }
    }
    let analyze_secs = analyze_started.elapsed().as_secs_f64();
    loader.close().await?;
    println!(
        "load: {events} events into {org} in {big_secs:.1} s ({:.0} events/s), {SECOND_ORG_EVENTS} into a second org in {small_secs:.1} s, {} {analyze_secs:.1} s",
        events as f64 / big_secs,
        if db.dialect == Dialect::Postgres { "VACUUM ANALYZE" } else { "WAL checkpoint" },
    );
    let world = Arc::new(World {
        org: org.clone(),
        user: user.clone(),
        first_seq: big.first_seq,
        last_seq: big.last_seq,
        t_first: big.t_first,
        t_last: big.t_last,
        mix,
    });
    check_chain_head(&db, &world).await?;

    // 2–4. Measurements, each on a runtime worker thread as a request handler runs (not on the
    // thread blocked in `block_on`).
    let ctx = Arc::new(Ctx {
        db: db.clone(),
        app: app.clone(),
        world: world.clone(),
        client: client.clone(),
        base: base.clone(),
        cookie: cookie.clone(),
        hello_url: format!("http://{hello_addr}/"),
    });
    let n = iters + WARMUP;
    let mut rows = Vec::new();
    for (name, p) in [
        ("baseline: axum hello-world (HTTP)", Probe::Hello),
        ("baseline: SELECT 1 (pool)", Probe::Select1),
        (
            "ref: tenant transaction (BEGIN, context, 1 query, COMMIT)",
            Probe::ScopedSelect1,
        ),
    ] {
        rows.push(measure(&ctx, name, false, vec![p; n]).await?);
    }
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for (case, label) in [(Case::Newest, "newest"), (Case::Deep, "deep")] {
        let probes = (0..n)
            .map(|_| Probe::QueryOnly(case.params(&world, &mut rng)))
            .collect();
        let name = format!("ref: {label} page, query only (no views)");
        rows.push(measure(&ctx, &name, false, probes).await?);
    }
    for case in Case::ALL {
        let params: Vec<Params> = (0..n).map(|_| case.params(&world, &mut rng)).collect();
        check_case(&db, &app, &world, *case, &params[..3]).await?;
        let probes = params.into_iter().map(Probe::Lib).collect();
        rows.push(measure(&ctx, &format!("lib:  {}", case.name()), true, probes).await?);
    }
    for case in Case::ALL {
        let probes = (0..n)
            .map(|_| Probe::Http(case.params(&world, &mut rng)))
            .collect();
        rows.push(measure(&ctx, &format!("http: {}", case.name()), true, probes).await?);
    }
    // The hello-world again at the end: the baseline should not have drifted.
    rows.push(
        measure(
            &ctx,
            "baseline: axum hello-world (again)",
            false,
            vec![Probe::Hello; n],
        )
        .await?,
    );
    print_table(backend, events, &rows);

    // 5. Plans.
    println!();
    println!("query plans ({backend}; the SQL below mirrors src/audit/query.rs `seq_bounds` + `clause` + `page`):");
    let mut plan_rng = StdRng::seed_from_u64(0x91a7);
    for case in Case::ALL {
        let p = case.params(&world, &mut plan_rng);
        explain_case(&db, &world, *case, &p).await?;
    }

    app_server.abort();
    hello_server.abort();
    db.close().await;
    app.db.close().await;
    Ok(())
}

async fn serve(router: axum::Router) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Ok((addr, handle))
}

// ---------------------------------------------------------------------------------------------
// The owner and the orgs, through the API flows the tests use.

async fn post_json(
    client: &reqwest::Client,
    url: &str,
    cookie: Option<&str>,
    body: Value,
) -> Result<reqwest::Response> {
    let mut r = client.post(url).json(&body);
    if let Some(c) = cookie {
        r = r.header(reqwest::header::COOKIE, c);
    }
    Ok(r.send().await?)
}

/// Signs the owner up, verifies the address from the outbox, logs in: the `Cookie` header value
/// and the user id.
async fn owner_session(
    app: &AppState,
    client: &reqwest::Client,
    base: &str,
) -> Result<(String, String)> {
    let r = post_json(
        client,
        &format!("{base}/api/v1/auth/signup"),
        None,
        json!({"email": OWNER_EMAIL, "password": PASSWORD, "display_name": "Bench Owner"}),
    )
    .await?;
    ensure!(r.status() == 202, "signup: {}", r.status());
    app.background.idle().await;
    app.mailer.deliver_pending().await?;
    let outbox = app.config.data_dir.join("outbox");
    let re = regex::Regex::new(r"/verify-email\?token=([A-Za-z0-9_\-]+)")?;
    let mut token = None;
    for entry in std::fs::read_dir(&outbox).with_context(|| format!("{}", outbox.display()))? {
        let text = std::fs::read_to_string(entry?.path())?.replace("=\r\n", "");
        if let Some(c) = re.captures(&text) {
            token = Some(c[1].to_string());
        }
    }
    let token = token.context("no verification link in the outbox")?;
    let r = post_json(
        client,
        &format!("{base}/api/v1/auth/verify-email"),
        None,
        json!({ "token": token }),
    )
    .await?;
    ensure!(r.status() == 200, "verify: {}", r.status());
    let r = post_json(
        client,
        &format!("{base}/api/v1/auth/login"),
        None,
        json!({"email": OWNER_EMAIL, "password": PASSWORD}),
    )
    .await?;
    ensure!(r.status() == 200, "login: {}", r.status());
    let cookie = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (name, value) = pair.split_once('=')?;
            (name.ends_with("strongroom_session") && !value.is_empty()).then(|| pair.to_string())
        })
        .context("no session cookie")?;
    let me: Value = client
        .get(format!("{base}/api/v1/me"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await?
        .json()
        .await?;
    let user = me["id"].as_str().context("me.id")?.to_string();
    Ok((cookie, user))
}

async fn create_org(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    name: &str,
) -> Result<String> {
    let r = post_json(
        client,
        &format!("{base}/api/v1/orgs"),
        Some(cookie),
        json!({ "name": name }),
    )
    .await?;
    ensure!(r.status() == 201, "create org: {}", r.status());
    let v: Value = r.json().await?;
    Ok(v["id"].as_str().context("org id")?.to_string())
}

// ---------------------------------------------------------------------------------------------
// The data: a realistic mix, generated on a blocking thread while the previous batch is inserted.

/// (action, target type, weight): frequent logins and item edits, rare administration.
const ACTIONS: &[(&str, &str, u32)] = &[
    ("auth.login_succeeded", "user", 200),
    ("auth.login_failed", "user", 40),
    ("auth.logout", "session", 60),
    ("session.revoked", "session", 10),
    ("auth.mfa_succeeded", "user", 50),
    ("auth.reauthenticated", "user", 15),
    ("item.created", "item", 150),
    ("item.updated", "item", 250),
    ("item.deleted", "item", 30),
    ("comment.created", "item", 120),
    ("workspace.created", "workspace", 3),
    ("workspace.updated", "workspace", 5),
    ("workspace.member_set", "workspace", 8),
    ("workspace.member_removed", "workspace", 2),
    ("member.role_changed", "user", 2),
    ("member.removed", "user", 1),
    ("invitation.created", "invitation", 4),
    ("invitation.accepted", "invitation", 3),
    ("invitation.revoked", "invitation", 1),
    ("audit.exported", "org", 1),
    ("org.updated", "org", 1),
];

struct Mix {
    org: String,
    /// Actor ids; the first is the real owner (so some views decrypt a user).
    actors: Vec<String>,
    /// Cumulative Zipf-like weights over `actors` (a few people do most things).
    actor_cum: Vec<f64>,
    targets: Vec<String>,
    action_cum: Vec<u32>,
}

impl Mix {
    fn new(owner: &str, org: &str) -> Self {
        let mut rng = StdRng::seed_from_u64(7);
        let mut actors = vec![owner.to_string()];
        actors
            .extend((1..ACTORS).map(|_| uuid::Uuid::from_u128(rng.gen::<u128>() | 1).to_string()));
        let mut acc = 0.0;
        let actor_cum = (0..ACTORS)
            .map(|i| {
                acc += 1.0 / (i as f64 + 1.0);
                acc
            })
            .collect();
        let targets = (0..TARGETS)
            .map(|_| uuid::Uuid::from_u128(rng.gen::<u128>()).to_string())
            .collect();
        let mut acc = 0;
        let action_cum = ACTIONS
            .iter()
            .map(|a| {
                acc += a.2;
                acc
            })
            .collect();
        Self {
            org: org.to_string(),
            actors,
            actor_cum,
            targets,
            action_cum,
        }
    }

    fn action(&self, rng: &mut StdRng) -> usize {
        let total = *self.action_cum.last().expect("actions");
        let x = rng.gen_range(0..total);
        self.action_cum.partition_point(|c| *c <= x)
    }

    fn actor(&self, rng: &mut StdRng) -> &str {
        let total = *self.actor_cum.last().expect("actors");
        let x = rng.gen_range(0.0..total);
        let i = self.actor_cum.partition_point(|c| *c <= x).min(ACTORS - 1);
        &self.actors[i]
    }

    /// One event (without hashes) at `seq` and `at`.
    fn event(&self, chain: &str, seq: i64, at: i64, rng: &mut StdRng) -> StoredEvent {
        let (action, target_type, _) = ACTIONS[self.action(rng)];
        let actor = self.actor(rng).to_string();
        let target_id = match target_type {
            "user" => actor.clone(),
            "org" => self.org.clone(),
            _ => self.targets[rng.gen_range(0..TARGETS)].clone(),
        };
        let ip = if rng.gen_bool(0.9) {
            std::net::IpAddr::from([198, 51, rng.gen_range(0..=255u8), rng.gen::<u8>()])
        } else {
            std::net::IpAddr::from([0x2001, 0xdb8, rng.gen::<u16>(), 0, 0, 0, 0, rng.gen()])
        };
        let metadata = match action {
            "auth.login_succeeded" | "auth.mfa_succeeded" => {
                json!({"method": if rng.gen_bool(0.8) { "password" } else { "passkey" }})
            }
            "auth.login_failed" => json!({"reason": "bad_credentials"}),
            "item.updated" => json!({"fields": ["title", "body"], "version": rng.gen_range(1..50)}),
            "member.role_changed" => json!({"from": "member", "to": "admin"}),
            "workspace.member_set" => json!({"role": "editor"}),
            "audit.exported" => json!({"format": "jsonl", "filters": {}}),
            _ => json!({}),
        };
        let secs = at.div_euclid(1000);
        let nanos = u32::try_from(at.rem_euclid(1000) * 1_000_000).expect("nanos");
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            u64::try_from(secs).expect("positive time"),
            nanos,
        );
        StoredEvent {
            id: uuid::Uuid::new_v7(ts).to_string(),
            chain: chain.to_string(),
            seq,
            at,
            // Failed logins of unknown accounts have no actor.
            actor_id: (action != "auth.login_failed" || rng.gen_bool(0.5)).then_some(actor),
            action: action.to_string(),
            target_type: Some(target_type.to_string()),
            target_id: Some(target_id),
            ip: Some(strongroom::mask::ip(ip)),
            metadata,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }
}

struct Loaded {
    first_seq: i64,
    last_seq: i64,
    t_first: i64,
    t_last: i64,
}

/// Appends `n` valid events to `chain` after its current head, in multi-row INSERTs and large
/// transactions, then moves the head.
async fn load_chain(
    c: &mut sqlx::AnyConnection,
    chain: &str,
    n: u64,
    mix: Arc<Mix>,
    seed: u64,
) -> Result<Loaded> {
    let head =
        sqlx::query("SELECT last_seq, last_hash, last_at FROM audit_chains WHERE chain = $1")
            .bind(chain)
            .fetch_optional(&mut *c)
            .await?;
    let (head_seq, head_hash, head_at) = match head {
        Some(r) => (
            r.try_get::<i64, _>("last_seq")?,
            r.try_get::<String, _>("last_hash")?,
            r.try_get::<i64, _>("last_at")?,
        ),
        None => (0, GENESIS.to_string(), 0),
    };
    let start_at = head_at.max(T0);
    let n_i64 = i64::try_from(n)?;
    let mean_gap = SPAN_MS / n_i64;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<(StoredEvent, String)>>(4);
    let chain_owned = chain.to_string();
    let generator = tokio::task::spawn_blocking(move || -> (String, i64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut prev = head_hash;
        let mut at = start_at;
        let mut seq = head_seq;
        let mut left = n;
        while left > 0 {
            let take = left.min(ROWS_PER_INSERT as u64);
            let mut batch = Vec::with_capacity(usize::try_from(take).expect("small"));
            for _ in 0..take {
                seq += 1;
                at += rng.gen_range(0..=2 * mean_gap);
                let mut e = mix.event(&chain_owned, seq, at, &mut rng);
                e.prev_hash = std::mem::take(&mut prev);
                e.hash = e.compute_hash();
                prev = e.hash.clone();
                let meta = canonical(&e.metadata);
                batch.push((e, meta));
            }
            left -= take;
            if tx.blocking_send(batch).is_err() {
                break;
            }
        }
        (prev, at)
    });
    let numbered = c.backend_name() != "SQLite";
    let mut sql_cache: Option<(usize, String)> = None;
    let mut in_tx = 0u64;
    let mut done = 0u64;
    let mut t = c.begin().await?;
    let started = Instant::now();
    while let Some(batch) = rx.recv().await {
        let sql = match &sql_cache {
            Some((len, sql)) if *len == batch.len() => sql.clone(),
            _ => {
                let sql = insert_sql(batch.len(), numbered);
                sql_cache = Some((batch.len(), sql.clone()));
                sql
            }
        };
        let mut q = sqlx::query(&sql);
        for (e, meta) in &batch {
            q = q
                .bind(&e.id)
                .bind(&e.chain)
                .bind(e.seq)
                .bind(e.at)
                .bind(&e.actor_id)
                .bind(&e.action)
                .bind(&e.target_type)
                .bind(&e.target_id)
                .bind(&e.ip)
                .bind(meta)
                .bind(&e.prev_hash)
                .bind(&e.hash);
        }
        q.execute(&mut *t).await?;
        in_tx += batch.len() as u64;
        done += batch.len() as u64;
        if in_tx >= ROWS_PER_TX {
            t.commit().await?;
            t = c.begin().await?;
            in_tx = 0;
            if done % 200_000 == 0 {
                eprintln!(
                    "  loaded {done}/{n} in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
    let (last_hash, last_at) = generator.await?;
    let last_seq = head_seq + n_i64;
    ensure!(
        done == n,
        "the generator stopped early ({done} of {n} events)"
    );
    sqlx::query(
        "UPDATE audit_chains SET last_seq = $2, last_hash = $3, last_at = $4 WHERE chain = $1",
    )
    .bind(chain)
    .bind(last_seq)
    .bind(&last_hash)
    .bind(last_at)
    .execute(&mut *t)
    .await?;
    t.commit().await?;
    Ok(Loaded {
        first_seq: head_seq + 1,
        last_seq,
        t_first: start_at,
        t_last: last_at,
    })
}

/// The head the app sees (through the pool, in the org's scope) is the one loaded, and the last
/// events link up.
async fn check_chain_head(db: &Db, w: &World) -> Result<()> {
    let mut tx = enter(db, w).await?;
    let head = strongroom::audit::head(&mut tx).await?.context("no head")?;
    ensure!(head.0 == w.last_seq, "head {} != {}", head.0, w.last_seq);
    let tail = strongroom::audit::load_batch(&mut tx, w.last_seq - 1000, 1000).await?;
    tx.commit().await?;
    ensure!(tail.len() == 1000, "tail has {} events", tail.len());
    ensure!(tail.last().map(|e| &e.hash) == Some(&head.1), "head hash");
    for pair in tail.windows(2) {
        ensure!(
            pair[1].prev_hash == pair[0].hash,
            "broken link at {}",
            pair[1].seq
        );
    }
    for e in &tail {
        ensure!(e.compute_hash() == e.hash, "bad hash at {}", e.seq);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The cases.

#[derive(Debug, Clone, Copy)]
enum Case {
    Newest,
    Deep,
    Action,
    ActionDeep,
    Actor,
    Target,
    TimeRange,
    ActionTime,
    Weeks,
    YearRange,
    ActionYear,
}

#[derive(Debug, Clone)]
struct Params {
    filter: Filter,
    before: Option<i64>,
}

impl Case {
    const ALL: &'static [Case] = &[
        Case::Newest,
        Case::Deep,
        Case::Action,
        Case::ActionDeep,
        Case::Actor,
        Case::Target,
        Case::TimeRange,
        Case::ActionTime,
        Case::Weeks,
        Case::YearRange,
        Case::ActionYear,
    ];

    fn name(self) -> &'static str {
        match self {
            Case::Newest => "newest page, no filter",
            Case::Deep => "deep page (cursor mid-chain)",
            Case::Action => "action",
            Case::ActionDeep => "action + deep cursor",
            Case::Actor => "actor",
            Case::Target => "target",
            Case::TimeRange => "time range (one day)",
            Case::ActionTime => "action + time range",
            Case::Weeks => "time range (2-3 weeks)",
            Case::YearRange => "time range (one year)",
            Case::ActionYear => "action + time range (one year)",
        }
    }

    fn params(self, w: &World, rng: &mut StdRng) -> Params {
        let span = w.last_seq - w.first_seq;
        let deep = || w.first_seq + span / 4;
        let mut f = Filter::default();
        let mut before = None;
        let action = |rng: &mut StdRng| ACTIONS[rng.gen_range(0..ACTIONS.len())].0.to_string();
        let day = |rng: &mut StdRng| {
            let tspan = w.t_last - w.t_first;
            let from = w.t_first + tspan / 4;
            let to = w.t_first + 3 * tspan / 4;
            let start = rng.gen_range(from..to);
            start - start.rem_euclid(DAY_MS)
        };
        // A year starting somewhere in the first half of the trail.
        let year = |rng: &mut StdRng| {
            let start = rng.gen_range(w.t_first..w.t_first + (w.t_last - w.t_first) / 2);
            let start = start - start.rem_euclid(DAY_MS);
            (Some(start), Some(start + 365 * DAY_MS))
        };
        match self {
            Case::Newest => {}
            Case::Deep => before = Some(rng.gen_range(deep()..=deep() + span / 2)),
            Case::Action => f.action = Some(action(rng)),
            Case::ActionDeep => {
                f.action = Some(action(rng));
                before = Some(rng.gen_range(deep()..=deep() + span / 2));
            }
            Case::Actor => f.actor_id = Some(w.mix.actors[rng.gen_range(0..ACTORS)].clone()),
            Case::Target => {
                // Mostly items (a handful of events each), sometimes a user (thousands).
                f.target_id = Some(if rng.gen_bool(0.8) {
                    w.mix.targets[rng.gen_range(0..TARGETS)].clone()
                } else {
                    w.mix.actors[rng.gen_range(0..ACTORS)].clone()
                });
            }
            Case::TimeRange => {
                let d = day(rng);
                f.since = Some(d);
                f.until = Some(d + DAY_MS);
            }
            Case::ActionTime => {
                let d = day(rng);
                f.action = Some(action(rng));
                f.since = Some(d);
                f.until = Some(d + DAY_MS);
            }
            Case::Weeks => {
                // The widths for which PostgreSQL's custom plan still picks the time index.
                let d = day(rng);
                f.since = Some(d);
                f.until = Some(d + rng.gen_range(14..=19) * DAY_MS);
            }
            Case::YearRange => (f.since, f.until) = year(rng),
            Case::ActionYear => {
                f.action = Some(action(rng));
                (f.since, f.until) = year(rng);
            }
        }
        Params { filter: f, before }
    }
}

/// One page as `tenancy::audit_trail::list` reads it: `limit + 1` rows, 50 views, in the org's
/// scope.
async fn lib_page(db: &Db, app: &AppState, w: &World, p: &Params) -> Result<usize> {
    let mut tx = enter(db, w).await?;
    let events = query::page(&mut tx, &p.filter, p.before, PAGE + 1).await?;
    let mut viewer = strongroom::tenancy::audit_trail::viewer();
    let mut n = 0;
    for e in events.into_iter().take(PAGE as usize) {
        let v = viewer.view(&mut tx, &app.keyring, e).await?;
        std::hint::black_box(&v);
        n += 1;
    }
    tx.commit().await?;
    Ok(n)
}

async fn http_page(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    org: &str,
    p: &Params,
) -> Result<usize> {
    let mut q: Vec<(&str, String)> = vec![("limit", PAGE.to_string())];
    let f = &p.filter;
    if let Some(a) = &f.action {
        q.push(("action", a.clone()));
    }
    if let Some(a) = &f.actor_id {
        q.push(("actor_id", a.clone()));
    }
    if let Some(t) = &f.target_id {
        q.push(("target_id", t.clone()));
    }
    if let Some(s) = f.since {
        q.push(("since", query::format_time(s)));
    }
    if let Some(u) = f.until {
        q.push(("until", query::format_time(u)));
    }
    if let Some(b) = p.before {
        q.push(("cursor", query::encode_cursor(b)));
    }
    let r = client
        .get(format!("{base}/api/v1/orgs/{org}/audit-events"))
        .header(reqwest::header::COOKIE, cookie)
        .query(&q)
        .send()
        .await?;
    let status = r.status();
    let body = r.bytes().await?;
    ensure!(
        status == 200,
        "audit-events: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    // Counting items without a full parse would flatter nothing: the client is the same for
    // every case, and the hello-world reads its body too.
    Ok(memchr_count(&body, b"\"seq\":"))
}

fn memchr_count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// The first few pages of a case hold what the filter asks for, newest first.
async fn check_case(db: &Db, app: &AppState, w: &World, case: Case, ps: &[Params]) -> Result<()> {
    for p in ps {
        let mut tx = enter(db, w).await?;
        let events = query::page(&mut tx, &p.filter, p.before, PAGE + 1).await?;
        let mut viewer = strongroom::tenancy::audit_trail::viewer();
        if let Some(e) = events.first().cloned() {
            viewer.view(&mut tx, &app.keyring, e).await?;
        }
        tx.commit().await?;
        let f = &p.filter;
        for pair in events.windows(2) {
            ensure!(pair[0].seq > pair[1].seq, "{case:?}: not newest first");
        }
        for e in &events {
            ensure!(e.chain == w.org, "{case:?}: another chain");
            ensure!(p.before.is_none_or(|b| e.seq < b), "{case:?}: cursor");
            ensure!(
                f.action.as_ref().is_none_or(|a| *a == e.action),
                "{case:?}: action"
            );
            ensure!(
                f.actor_id.is_none() || f.actor_id == e.actor_id,
                "{case:?}: actor"
            );
            ensure!(
                f.target_id.is_none() || f.target_id == e.target_id,
                "{case:?}: target"
            );
            ensure!(f.since.is_none_or(|s| e.at >= s), "{case:?}: since");
            ensure!(f.until.is_none_or(|u| e.at < u), "{case:?}: until");
        }
        if matches!(
            case,
            Case::Newest | Case::Deep | Case::Weeks | Case::YearRange
        ) {
            ensure!(
                events.len() as i64 == PAGE + 1,
                "{case:?}: only {} events",
                events.len()
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Measuring and reporting.

struct Stats {
    name: String,
    page: bool,
    rows: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What one timed iteration does.
#[derive(Clone)]
enum Probe {
    Hello,
    Select1,
    ScopedSelect1,
    Lib(Params),
    /// The query alone, no views (how much of a page the actor look-ups cost).
    QueryOnly(Params),
    Http(Params),
}

struct Ctx {
    db: Db,
    app: AppState,
    world: Arc<World>,
    client: reqwest::Client,
    base: String,
    cookie: String,
    hello_url: String,
}

/// Runs one probe; the number of events it returned.
async fn probe(ctx: &Ctx, p: &Probe) -> Result<usize> {
    match p {
        Probe::Hello => {
            let r = ctx.client.get(&ctx.hello_url).send().await?;
            ensure!(r.status().is_success(), "hello: {}", r.status());
            r.bytes().await?;
            Ok(0)
        }
        Probe::Select1 => {
            sqlx::query("SELECT 1")
                .fetch_one(&mut *ctx.db.acquire().await?)
                .await?;
            Ok(0)
        }
        Probe::ScopedSelect1 => {
            let mut tx = TenantTx::for_operator_read(&ctx.db, &ctx.world.org).await?;
            std::hint::black_box(tx.database_role().await?);
            tx.commit().await?;
            Ok(0)
        }
        Probe::Lib(params) => lib_page(&ctx.db, &ctx.app, &ctx.world, params).await,
        Probe::QueryOnly(p) => {
            let w = &ctx.world;
            let mut tx = enter(&ctx.db, w).await?;
            let events = query::page(&mut tx, &p.filter, p.before, PAGE + 1).await?;
            tx.commit().await?;
            Ok(events.len().min(PAGE as usize))
        }
        Probe::Http(params) => {
            http_page(&ctx.client, &ctx.base, &ctx.cookie, &ctx.world.org, params).await
        }
    }
}

/// Runs the probes on a runtime worker: the first `WARMUP` warm up, the rest are timed one by one.
async fn measure(ctx: &Arc<Ctx>, name: &str, page: bool, probes: Vec<Probe>) -> Result<Stats> {
    let ctx = ctx.clone();
    let task_name = name.to_string();
    let samples = tokio::spawn(async move {
        let (warm, timed) = probes.split_at(WARMUP.min(probes.len()));
        for p in warm {
            probe(&ctx, p)
                .await
                .with_context(|| format!("{task_name} (warm-up)"))?;
        }
        let mut samples = Vec::with_capacity(timed.len());
        let mut rows = 0usize;
        for p in timed {
            let t = Instant::now();
            let n = probe(&ctx, p).await.with_context(|| task_name.clone())?;
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
            rows += n;
        }
        anyhow::Ok((samples, rows))
    })
    .await;
    let (mut samples, rows) = samples.context("benchmark task")??;
    samples.sort_by(f64::total_cmp);
    Ok(Stats {
        name: name.to_string(),
        page,
        rows: rows as f64 / samples.len() as f64,
        p50: percentile(&samples, 50.0),
        p95: percentile(&samples, 95.0),
        p99: percentile(&samples, 99.0),
        max: *samples.last().expect("samples"),
    })
}

fn print_table(backend: &str, events: u64, rows: &[Stats]) {
    let hello = rows
        .iter()
        .find(|r| r.name.starts_with("baseline: axum hello-world"))
        .map_or(f64::NAN, |r| r.p99);
    let select1 = rows
        .iter()
        .find(|r| r.name.starts_with("baseline: SELECT 1"))
        .map_or(f64::NAN, |r| r.p99);
    println!();
    println!("{backend}, {events} events; latency in ms; ratios are p99 / baseline p99");
    println!(
        "{:<48} {:>6} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
        "case", "rows", "p50", "p95", "p99", "max", "x hello", "x SELECT1"
    );
    println!("{}", "-".repeat(112));
    for r in rows {
        println!(
            "{:<48} {:>6.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>10.1} {:>10.1}",
            r.name,
            r.rows,
            r.p50,
            r.p95,
            r.p99,
            r.max,
            r.p99 / hello,
            r.p99 / select1
        );
    }
    let pages: Vec<&Stats> = rows.iter().filter(|r| r.page).collect();
    let worst = pages
        .iter()
        .max_by(|a, b| a.p99.total_cmp(&b.p99))
        .expect("page cases");
    let failed: Vec<&str> = pages
        .iter()
        .filter(|r| r.p99 >= BUDGET_P99_MS)
        .map(|r| r.name.as_str())
        .collect();
    println!("{}", "-".repeat(112));
    if failed.is_empty() {
        println!(
            "PASS: every page-of-50 case has p99 < {BUDGET_P99_MS} ms ({backend}, {events} events; worst {} at {:.3} ms)",
            worst.name.trim(),
            worst.p99
        );
    } else {
        println!(
            "FAIL: p99 >= {BUDGET_P99_MS} ms ({backend}, {events} events) for: {}",
            failed.join("; ")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Plans.

/// A bind value for the plan queries.
#[derive(Clone)]
enum Val {
    I(i64),
    S(String),
}

impl Val {
    fn literal(&self) -> String {
        match self {
            Val::I(i) => i.to_string(),
            Val::S(s) => format!("'{}'", s.replace('\'', "''")),
        }
    }
}

fn bind_all<'q>(
    sql: &'q str,
    vals: &'q [Val],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut q = sqlx::query(sql);
    for v in vals {
        q = match v {
            Val::I(i) => q.bind(*i),
            Val::S(s) => q.bind(s.as_str()),
        };
    }
    q
}

const SINCE_SQL: &str =
    "SELECT seq FROM audit_events WHERE chain = $1 AND at >= $2 ORDER BY at, seq LIMIT 1";
const UNTIL_SQL: &str =
    "SELECT seq FROM audit_events WHERE chain = $1 AND at < $2 ORDER BY at DESC, seq DESC LIMIT 1";
const COLUMNS: &str =
    "id, chain, seq, at, actor_id, action, target_type, target_id, ip, metadata, prev_hash, hash";

/// The statements `query::page` runs for `p`, with their values (a mirror of its private code).
async fn page_statements(
    db: &Db,
    w: &World,
    p: &Params,
) -> Result<Vec<(&'static str, String, Vec<Val>)>> {
    let f = &p.filter;
    let mut out = Vec::new();
    let (mut lo, mut hi) = (1, i64::MAX);
    let mut tx = scoped_raw(db, &w.org, &w.user).await?;
    if let Some(s) = f.since {
        let vals = vec![Val::S(w.org.clone()), Val::I(s)];
        let r = bind_all(SINCE_SQL, &vals).fetch_one(&mut *tx).await?;
        lo = r.try_get("seq")?;
        out.push(("seq_bounds since", SINCE_SQL.to_string(), vals));
    }
    if let Some(u) = f.until {
        let vals = vec![Val::S(w.org.clone()), Val::I(u)];
        let r = bind_all(UNTIL_SQL, &vals).fetch_one(&mut *tx).await?;
        hi = r.try_get("seq")?;
        out.push(("seq_bounds until", UNTIL_SQL.to_string(), vals));
    }
    tx.commit().await?;
    if let Some(b) = p.before {
        hi = hi.min(b - 1);
    }
    let mut sql = String::from("chain = $1");
    let mut vals = vec![Val::S(w.org.clone())];
    let mut and = |cond: &str, v: Val| {
        vals.push(v);
        sql.push_str(&format!(" AND {cond} ${}", vals.len()));
    };
    if lo > 1 {
        and("seq >=", Val::I(lo));
    }
    if hi < i64::MAX {
        and("seq <=", Val::I(hi));
    }
    if let Some(a) = &f.action {
        and("action =", Val::S(a.clone()));
    }
    if let Some(a) = &f.actor_id {
        and("actor_id =", Val::S(a.clone()));
    }
    if let Some(t) = &f.target_id {
        and("target_id =", Val::S(t.clone()));
    }
    if let Some(s) = f.since {
        and("at + 0 >=", Val::I(s));
    }
    if let Some(u) = f.until {
        and("at + 0 <", Val::I(u));
    }
    vals.push(Val::I(PAGE + 1));
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events WHERE {sql} ORDER BY seq DESC LIMIT ${}",
        vals.len()
    );
    out.push(("page", sql, vals));
    Ok(out)
}

/// The plan lines of `sql` with `vals`: SQLite's EXPLAIN QUERY PLAN; on PostgreSQL EXPLAIN ANALYZE
/// as the app role under row-level security, with the values known (a custom plan) or not (the
/// generic plan, which a prepared statement may switch to after five executions; sqlx keeps
/// prepared statements per connection).
async fn plan(db: &Db, w: &World, sql: &str, vals: &[Val], generic: bool) -> Result<Vec<String>> {
    if db.dialect == Dialect::Sqlite {
        let plan_sql = format!("EXPLAIN QUERY PLAN {sql}");
        let mut c = db.acquire().await?;
        let rows = bind_all(&plan_sql, vals).fetch_all(&mut *c).await?;
        return Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>("detail"))
            .collect::<Result<_, _>>()?);
    }
    // Statements without arguments go over the simple protocol.
    use sqlx::Executor;
    let mut tx = scoped_raw(db, &w.org, &w.user).await?;
    let rows = if generic {
        tx.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            .await?;
        tx.execute(format!("PREPARE bench_q AS {sql}").as_str())
            .await?;
        let args: Vec<String> = vals.iter().map(Val::literal).collect();
        let explain = format!(
            "EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_q({})",
            args.join(", ")
        );
        let rows = tx.fetch_all(explain.as_str()).await?;
        tx.execute("DEALLOCATE bench_q").await?;
        rows
    } else {
        let plan_sql = format!("EXPLAIN (ANALYZE, BUFFERS) {sql}");
        bind_all(&plan_sql, vals).fetch_all(&mut *tx).await?
    };
    tx.rollback().await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?)
}

/// Prints each statement of a case with its plan verdicts (and the whole plan when it is BAD).
/// The time predicates of a page are `at + 0 …`, as in src/audit/query.rs `clause()`: no index
/// matches them, so the planner cannot trade the seq-ordered walk for a time-index scan and a sort.
async fn explain_case(db: &Db, w: &World, case: Case, p: &Params) -> Result<()> {
    println!();
    println!("== {} ==", case.name());
    for (what, sql, vals) in page_statements(db, w, p).await? {
        let shown: Vec<String> = vals
            .iter()
            .map(|v| match v {
                Val::S(s) if s.len() > 12 => format!("'{}…'", &s[..8]),
                v => v.literal(),
            })
            .collect();
        println!("-- {what}: {sql}");
        println!("   values: {}", shown.join(", "));
        let kinds: &[(bool, &str)] = match db.dialect {
            Dialect::Sqlite => &[(false, "plan")],
            Dialect::Postgres => &[(false, "custom plan"), (true, "generic plan")],
        };
        for (generic, label) in kinds {
            let lines = plan(db, w, &sql, &vals, *generic).await?;
            let verdict = match db.dialect {
                Dialect::Sqlite => sqlite_verdict(&lines),
                Dialect::Postgres => pg_verdict(&lines),
            };
            println!("   {label}: {verdict}");
            if verdict.starts_with("BAD") {
                for l in &lines {
                    println!("       {l}");
                }
            }
        }
    }
    Ok(())
}

/// OK when the plan walks an index and needs no sort (so it stops after the LIMIT); BAD on a full
/// scan or a sort (every row of the range is read before the first is returned).
fn sqlite_verdict(details: &[String]) -> String {
    let mut bad = Vec::new();
    let mut used = Vec::new();
    for d in details {
        if d.starts_with("SCAN ") && !d.contains(" USING ") {
            bad.push(format!("full table scan ({d})"));
        } else if d.contains("TEMP B-TREE") {
            bad.push(format!("sorts ({d})"));
        } else if let Some(i) = d.find("USING ") {
            used.push(d[i + 6..].to_string());
        }
    }
    if bad.is_empty() {
        format!("OK: {}; no sort, no full scan", used.join("; "))
    } else {
        format!("BAD: {}; {}", bad.join("; "), used.join("; "))
    }
}

/// The last `rows=N` on a plan line (the actual count when the line has costs too).
fn actual_rows(line: &str) -> Option<u64> {
    let i = line.rfind("rows=")?;
    line[i + 5..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// OK when the plan walks an index and reads about a page; BAD on a sequential scan, a sort, or
/// many rows read.
fn pg_verdict(lines: &[String]) -> String {
    let (mut seq_scan, mut sort) = (false, false);
    let (mut read, mut removed) = (0u64, 0u64);
    let mut used = Vec::new();
    let mut exec = String::new();
    for l in lines {
        let t = l.trim().trim_start_matches("->").trim();
        if t.starts_with("Seq Scan") {
            seq_scan = true;
        }
        if t.starts_with("Sort  (") || t.starts_with("Sort (") {
            sort = true;
        }
        if t.contains("Scan") && t.contains(" using ") {
            used.push(t.split("  (").next().unwrap_or(t).to_string());
            read += actual_rows(t).unwrap_or(0);
        }
        if let Some(n) = t.strip_prefix("Rows Removed by Filter: ") {
            removed += n.trim().parse::<u64>().unwrap_or(0);
        }
        if let Some(x) = t.strip_prefix("Execution Time: ") {
            exec = x.to_string();
        }
    }
    let examined = read + removed;
    let bad = seq_scan || sort || examined > 10_000;
    format!(
        "{}: {}{}{}; {examined} rows examined; execution {exec}",
        if bad { "BAD" } else { "OK" },
        used.join(", "),
        if seq_scan { "; SEQ SCAN" } else { "" },
        if sort {
            "; SORTS the whole index range before the LIMIT"
        } else {
            ""
        },
    )
}

/// The member's way into the org, as a request takes it (membership checked).
async fn enter(db: &Db, w: &World) -> Result<TenantTx> {
    Ok(TenantTx::enter(db, &w.org, &w.user, None, Mode::Read)
        .await?
        .context("the bench user is a member")?
        .0)
}

/// A transaction on a connection of the bench's own, as the app role in the org's context (the
/// app's pool and raw transactions are private to its store): for statements the library does
/// not offer (plans, the raw statements of a page).
async fn scoped_raw(
    db: &Db,
    org: &str,
    user: &str,
) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
    let pg = db.dialect == Dialect::Postgres;
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(move |c, _| {
            Box::pin(async move {
                if pg {
                    sqlx::query("SET ROLE strongroom_app")
                        .execute(&mut *c)
                        .await?;
                }
                Ok(())
            })
        })
        .connect(db.url())
        .await?;
    let mut tx = pool.begin().await?;
    if pg {
        sqlx::query(
            "SELECT set_config('strongroom.org_id', $1, true), set_config('strongroom.user_id', $2, true)",
        )
        .bind(org)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    }
    Ok(tx)
}
