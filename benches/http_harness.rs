//! The driver of `bench/run` (see bench/README.md): starts the bare axum baseline and the real
//! `strongroom serve` binary (SQLite and/or PostgreSQL) on 127.0.0.1, seeds them over HTTP (plus
//! a bulk load of audit events straight into the database), drives them with `wrk` and prints one
//! table where every figure is a ratio to a baseline measured in the same run. Results go to
//! `<results-dir>/<timestamp>-<backend>.json` and `<results-dir>/<timestamp>.md`.

mod common;
use common::insert_sql;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use futures_util::{stream, StreamExt, TryStreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sqlx::{Connection, Row};
use strongroom::audit::{canonical, StoredEvent};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const PASSWORD: &str = "correct horse battery staple orbit";
const WORKSPACES_PER_ORG: usize = 5;
const SEED_CONCURRENCY: usize = 16;
const ROWS_PER_INSERT: usize = 1_000;
const ROWS_PER_TX: usize = 50_000;

#[derive(Parser, Debug, Clone)]
#[command(about = "Strongroom HTTP benchmark driver (run it through bench/run)")]
struct Args {
    /// The `strongroom` binary under test.
    #[arg(long)]
    strongroom: PathBuf,
    /// The bare axum baseline binary (benches/baseline_server.rs).
    #[arg(long)]
    baseline: PathBuf,
    /// Comma-separated: sqlite, postgres.
    #[arg(long, default_value = "sqlite,postgres")]
    backends: String,
    /// Multiplies every seeded count (100 orgs, 2,000 users, 100,000 items, 1,000,000 events).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// wrk connections for the request/response cases.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// wrk connections for the login cases.
    #[arg(long, default_value_t = 16)]
    login_connections: u32,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres_url: String,
    #[arg(long, default_value = "bench/results")]
    results_dir: PathBuf,
    /// A label stored with the results (e.g. smoke, full).
    #[arg(long, default_value = "full")]
    label: String,
    /// Fail when any wrk run got a non-2xx answer or a socket error (CI smoke).
    #[arg(long)]
    strict: bool,
    /// The wrk binary.
    #[arg(long, default_value = "wrk")]
    wrk: String,
    /// Where to note the pid of every server started (`<pid>`) and every database created
    /// (`db-<name>`), so the calling script can clean up even if this process is killed.
    #[arg(long)]
    pid_dir: Option<PathBuf>,
}

/// Notes a started process or a created database for the calling script's trap.
fn note(pid_dir: Option<&Path>, name: &str) -> Result<()> {
    if let Some(d) = pid_dir {
        std::fs::write(d.join(name), "")?;
    }
    Ok(())
}

fn unnote(pid_dir: Option<&Path>, name: &str) {
    if let Some(d) = pid_dir {
        let _ = std::fs::remove_file(d.join(name));
    }
}

/// Seeded counts.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Counts {
    orgs: usize,
    users: usize,
    items: usize,
    audit_events: usize,
}

impl Counts {
    fn scaled(s: f64) -> Self {
        let n = |base: f64, min: usize| ((base * s).round() as usize).max(min);
        let orgs = n(100.0, 1);
        Counts {
            orgs,
            users: n(2_000.0, orgs.max(2)),
            items: n(100_000.0, orgs * WORKSPACES_PER_ORG),
            audit_events: n(1_000_000.0, 1_000),
        }
    }
}

/// One wrk run.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct WrkResult {
    name: String,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    non_2xx: u64,
    socket_errors: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    sqlx::any::install_default_drivers();
    ensure!(args.scale > 0.0, "--scale must be positive");
    let counts = Counts::scaled(args.scale);
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .context("timestamp")?;
    std::fs::create_dir_all(&args.results_dir)
        .with_context(|| format!("{}", args.results_dir.display()))?;
    let machine = machine();
    println!(
        "strongroom bench ({}): {} orgs, {} users, {} items, {} audit events; wrk -t{} -c{} -d{}s; {}",
        args.label,
        counts.orgs,
        counts.users,
        counts.items,
        counts.audit_events,
        args.threads,
        args.connections,
        args.duration,
        machine["description"].as_str().unwrap_or("?"),
    );

    let argon = raw_argon2_rate(args.duration.clamp(1, 5)).await?;
    println!(
        "raw Argon2id (m=19456 KiB, t=2, p=1, verify), {} threads: {:.1} hashes/s",
        argon.1, argon.0
    );

    let mut tables = Vec::new();
    for backend in args.backends.split(',').map(str::trim) {
        ensure!(
            backend == "sqlite" || backend == "postgres",
            "unknown backend {backend}"
        );
        let work = tempfile::Builder::new().prefix("sr_bench_").tempdir()?;
        let pg = if backend == "postgres" {
            let db = PgDb::create(&args.postgres_url).await?;
            note(args.pid_dir.as_deref(), &format!("db-{}", db.name))?;
            Some(db)
        } else {
            None
        };
        let url = match &pg {
            Some(p) => p.url(),
            None => format!(
                "sqlite://{}?mode=rwc",
                work.path().join("strongroom.db").display()
            ),
        };
        let result = run_backend(&args, backend, &url, work.path(), counts, argon).await;
        if let Some(p) = pg {
            let name = format!("db-{}", p.name);
            p.drop_db().await;
            unnote(args.pid_dir.as_deref(), &name);
        }
        let (table, report) = result.with_context(|| format!("backend {backend}"))?;
        let path = args.results_dir.join(format!("{stamp}-{backend}.json"));
        let mut report = report;
        report["machine"] = machine.clone();
        report["label"] = json!(args.label);
        report["timestamp"] = json!(stamp);
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
        println!("{table}");
        println!("results: {}", path.display());
        tables.push(table);
    }
    let md = format!(
        "# Strongroom bench {stamp} ({})\n\nMachine: {}\n\nSeed: {} orgs, {} users, {} items, {} audit events (scale {}); wrk -t{} -c{} (logins -c{}) -d{}s. Raw Argon2id (m=19456 KiB, t=2, p=1): {:.1} hashes/s on {} threads.\n\n{}\n",
        args.label,
        machine["description"].as_str().unwrap_or("?"),
        counts.orgs,
        counts.users,
        counts.items,
        counts.audit_events,
        args.scale,
        args.threads,
        args.connections,
        args.login_connections,
        args.duration,
        argon.0,
        argon.1,
        tables.join("\n"),
    );
    std::fs::write(args.results_dir.join(format!("{stamp}.md")), md)?;
    Ok(())
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(0.0, |k| k / 1024.0 / 1024.0);
    json!({
        "cpu": cpu,
        "nproc": cores,
        "mem_gib": (mem_gib * 10.0).round() / 10.0,
        "description": format!("{cores} cores ({cpu}), {mem_gib:.0} GiB RAM"),
    })
}

// ---------------------------------------------------------------------------------------------
// Raw Argon2id: verifications of a PHC string with the server's default parameters, on one
// thread per core, for `secs` seconds.

async fn raw_argon2_rate(secs: u64) -> Result<(f64, usize)> {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(19_456, 2, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt =
        SaltString::encode_b64(b"strongroom-bench").map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let phc = argon
        .hash_password(PASSWORD.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hash: {e}"))?
        .to_string();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..threads {
        let (done, stop, phc, argon) = (done.clone(), stop.clone(), phc.clone(), argon.clone());
        handles.push(tokio::task::spawn_blocking(move || -> Result<()> {
            let parsed = argon2::PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("{e}"))?;
            while !stop.load(Ordering::Relaxed) {
                argon
                    .verify_password(PASSWORD.as_bytes(), &parsed)
                    .map_err(|e| anyhow::anyhow!("verify: {e}"))?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let counted = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await??;
    }
    Ok((counted as f64 / elapsed, threads))
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: one fresh database per run.

struct PgDb {
    base: String,
    name: String,
}

impl PgDb {
    async fn create(base: &str) -> Result<Self> {
        let name = format!("sr_bench_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(&format!("{base}/postgres"))
            .await
            .context("connect to PostgreSQL")?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await?;
        c.close().await?;
        Ok(Self {
            base: base.to_string(),
            name,
        })
    }

    fn url(&self) -> String {
        format!("{}/{}", self.base, self.name)
    }

    async fn drop_db(self) {
        let r = async {
            let mut c = sqlx::PgConnection::connect(&format!("{}/postgres", self.base)).await?;
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut c)
            .await?;
            c.close().await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = r {
            eprintln!("could not drop database {}: {e:#}", self.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Processes.

/// A child process killed when this is dropped.
struct Server {
    child: Child,
    addr: String,
    /// Its file in the pid dir, removed once it is killed.
    pid_file: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if let Some(f) = &self.pid_file {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn pid_file(pid_dir: Option<&Path>, child: &Child) -> Result<Option<PathBuf>> {
    match (pid_dir, child.id()) {
        (Some(d), Some(pid)) => {
            let f = d.join(pid.to_string());
            std::fs::write(&f, "")?;
            Ok(Some(f))
        }
        _ => Ok(None),
    }
}

async fn start_baseline(path: &Path, pid_dir: Option<&Path>) -> Result<Server> {
    let mut child = Command::new(path)
        .arg("127.0.0.1:0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {}", path.display()))?;
    let pid_file = pid_file(pid_dir, &child)?;
    let out = child.stdout.take().context("baseline stdout")?;
    let mut lines = BufReader::new(out).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("baseline did not start in 30 s")??
        .context("baseline exited")?;
    let addr = line
        .strip_prefix("listening on ")
        .context("baseline: unexpected first line")?
        .to_string();
    Ok(Server {
        child,
        addr,
        pid_file,
    })
}

/// Every rate limit raised out of the way: the bench measures the work, not the limiter.
const LIMIT_KEYS: &[&str] = &[
    "LOGIN_PER_ACCOUNT",
    "LOGIN_PER_IP",
    "SIGNUP_PER_IP",
    "RECOVERY_PER_IP",
    "RECOVERY_PER_EMAIL",
    "AUTH_PER_IP",
    "MFA_PER_ACCOUNT",
    "MFA_PER_ACCOUNT_TOTAL",
    "INVITATIONS_PER_ORG",
    "AUDIT_SCANS_PER_ORG",
    "LOGIN_PER_DEVICE",
    "INVITATIONS_PER_INVITER",
    "INVITATIONS_PER_RECIPIENT",
    "ORGS_PER_ACCOUNT",
    "WORKSPACES_PER_ACCOUNT",
    "ITEMS_PER_ACCOUNT",
    "COMMENTS_PER_ACCOUNT",
    "TOTP_ENROLMENTS_PER_ACCOUNT",
    "API_PER_SESSION",
    "API_PER_IP",
];

async fn start_strongroom(
    path: &Path,
    dir: &Path,
    url: &str,
    pid_dir: Option<&Path>,
) -> Result<Server> {
    let log = dir.join("server.log");
    let data = dir.join("data");
    let mut cmd = Command::new(path);
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(["--database-url", url])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(dir.join("server.err"))?)
        .kill_on_drop(true);
    for k in LIMIT_KEYS {
        cmd.env(
            format!("STRONGROOM_RATE_LIMITS__{k}"),
            "{ max = 1000000000, window_secs = 60 }",
        );
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("start {}", path.display()))?;
    let pid_file = pid_file(pid_dir, &child)?;
    let mut server = Server {
        child,
        addr: String::new(),
        pid_file,
    };
    let re = regex::Regex::new(r#""listen_addr":"([^"]+)""#)?;
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("\"listening\"")) {
            if let Some(c) = re.captures(line) {
                server.addr = c[1].to_string();
                return Ok(server);
            }
        }
        if let Some(status) = server.child.try_wait()? {
            let err = std::fs::read_to_string(dir.join("server.err")).unwrap_or_default();
            bail!("strongroom exited ({status}) before listening: {text}{err}");
        }
        ensure!(
            started.elapsed() < Duration::from_secs(120),
            "strongroom did not log `listening` within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Seeding over HTTP.

struct Seeded {
    /// Per org: (org id, owner cookie, workspace ids).
    orgs: Vec<(String, String, Vec<String>)>,
    /// Per org: an API key of its owner's with the `items:read` scope.
    keys: Vec<String>,
    /// (org index, workspace id, item id), a sample for the read cases.
    items: Vec<(usize, String, String)>,
    emails: Vec<String>,
    seconds: BTreeMap<&'static str, f64>,
}

fn email(i: usize) -> String {
    format!("user{i:05}@bench.example")
}

async fn expect(r: reqwest::Response, status: u16, what: &str) -> Result<Value> {
    let got = r.status().as_u16();
    let text = r.text().await?;
    ensure!(got == status, "{what}: {got} {text}");
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let pair = c.split(';').next()?;
            let (name, value) = pair.split_once('=')?;
            (name.ends_with("strongroom_session") && !value.is_empty()).then(|| pair.to_string())
        })
}

async fn login(client: &reqwest::Client, base: &str, email: &str) -> Result<String> {
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?;
    let cookie = session_cookie(&r);
    expect(r, 200, "login").await?;
    cookie.context("login set no session cookie")
}

async fn seed(
    client: &reqwest::Client,
    base: &str,
    data_dir: &Path,
    db_url: &str,
    counts: Counts,
) -> Result<Seeded> {
    let mut seconds = BTreeMap::new();
    let t = Instant::now();
    let emails: Vec<String> = (0..counts.users).map(email).collect();
    stream::iter(emails.iter().enumerate())
        .map(|(i, e)| async move {
            let r = client
                .post(format!("{base}/api/v1/auth/signup"))
                .json(&json!({"email": e, "password": PASSWORD, "display_name": format!("Bench User {i}")}))
                .send()
                .await?;
            expect(r, 202, "signup").await.map(|_| ())
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    // The verification links, from the outbox (written by the mail worker).
    let outbox = data_dir.join("outbox");
    let re = regex::Regex::new(r"/verify-email\?token=([A-Za-z0-9_\-]+)")?;
    let started = Instant::now();
    let tokens = loop {
        let mut tokens = Vec::new();
        if let Ok(dir) = std::fs::read_dir(&outbox) {
            for entry in dir {
                let path = entry?.path();
                if path.extension().is_some_and(|x| x == "eml") {
                    let text = std::fs::read_to_string(&path)?.replace("=\r\n", "");
                    if let Some(c) = re.captures(&text) {
                        tokens.push(c[1].to_string());
                    }
                }
            }
        }
        if tokens.len() >= counts.users {
            break tokens;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {} of {} verification emails in {}",
            tokens.len(),
            counts.users,
            outbox.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stream::iter(tokens)
        .map(|token| async move {
            let r = client
                .post(format!("{base}/api/v1/auth/verify-email"))
                .json(&json!({ "token": token }))
                .send()
                .await?;
            expect(r, 200, "verify-email").await.map(|_| ())
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    seconds.insert("users", t.elapsed().as_secs_f64());

    // One org per owner (the first `orgs` users), each with its workspaces.
    let t = Instant::now();
    let orgs: Vec<(String, String, Vec<String>)> = stream::iter(0..counts.orgs)
        .map(|i| async move {
            let cookie = login(client, base, &email(i)).await?;
            let r = client
                .post(format!("{base}/api/v1/orgs"))
                .header(reqwest::header::COOKIE, &cookie)
                .json(&json!({ "name": format!("Bench Org {i}") }))
                .send()
                .await?;
            let org = expect(r, 201, "create org").await?["id"]
                .as_str()
                .context("org id")?
                .to_string();
            let mut wss = Vec::new();
            for w in 0..WORKSPACES_PER_ORG {
                let r = client
                    .post(format!("{base}/api/v1/orgs/{org}/workspaces"))
                    .header(reqwest::header::COOKIE, &cookie)
                    .json(&json!({"name": format!("Board {w}"), "kind": "board", "description": "Seeded by bench/run"}))
                    .send()
                    .await?;
                wss.push(
                    expect(r, 201, "create workspace").await?["id"]
                        .as_str()
                        .context("workspace id")?
                        .to_string(),
                );
            }
            anyhow::Ok((org, cookie, wss))
        })
        .buffered(SEED_CONCURRENCY)
        .try_collect()
        .await?;
    seconds.insert("orgs_workspaces", t.elapsed().as_secs_f64());

    // The big org's trail, before the items so nothing else appends to it meanwhile.
    let t = Instant::now();
    bulk_load_audit(db_url, &orgs[0].0, counts.audit_events).await?;
    seconds.insert("audit_bulk_load", t.elapsed().as_secs_f64());

    // Items over HTTP, round-robin over every workspace.
    let t = Instant::now();
    let slots: Vec<(usize, String)> = orgs
        .iter()
        .enumerate()
        .flat_map(|(o, (_, _, wss))| wss.iter().map(move |w| (o, w.clone())))
        .collect();
    let orgs_ref = &orgs;
    let slots_ref = &slots;
    let sample_every = (counts.items / 2_000).max(1);
    let items: Vec<Option<(usize, String, String)>> = stream::iter(0..counts.items)
        .map(|n| async move {
            let (o, ws) = &slots_ref[n % slots_ref.len()];
            let (org, cookie, _) = &orgs_ref[*o];
            let status = ["todo", "doing", "done"][n % 3];
            let r = client
                .post(format!("{base}/api/v1/orgs/{org}/workspaces/{ws}/items"))
                .header(reqwest::header::COOKIE, cookie)
                .json(&json!({"title": format!("Seeded item {n}: review the quarterly numbers"), "status": status}))
                .send()
                .await?;
            let id = expect(r, 201, "create item").await?["id"]
                .as_str()
                .context("item id")?
                .to_string();
            anyhow::Ok((n % sample_every == 0).then(|| (*o, ws.clone(), id)))
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect()
        .await?;
    seconds.insert("items", t.elapsed().as_secs_f64());
    // An API key per org (items:read, the highest per-key rate), for the read-by-key case.
    let keys: Vec<String> = stream::iter(orgs.iter())
        .map(|(org, cookie, _)| async move {
            let r = client
                .post(format!("{base}/api/v1/orgs/{org}/api-keys"))
                .header(reqwest::header::COOKIE, cookie)
                .json(&json!({"name": "bench", "scopes": ["items:read"], "rate_limit_per_minute": 100_000}))
                .send()
                .await?;
            anyhow::Ok(
                expect(r, 201, "create API key").await?["key"]
                    .as_str()
                    .context("key")?
                    .to_string(),
            )
        })
        .buffered(SEED_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(Seeded {
        orgs,
        keys,
        items: items.into_iter().flatten().collect(),
        emails,
        seconds,
    })
}

const ACTIONS: &[(&str, &str)] = &[
    ("auth.login_succeeded", "user"),
    ("item.created", "item"),
    ("item.updated", "item"),
    ("item.updated", "item"),
    ("comment.created", "item"),
    ("item.deleted", "item"),
    ("workspace.updated", "workspace"),
];

/// Appends `n` valid, chained events to the org's chain after its head, in multi-row INSERTs
/// over a connection of its own (the server is idle meanwhile), then moves the head.
async fn bulk_load_audit(url: &str, org: &str, n: usize) -> Result<()> {
    let mut c = sqlx::AnyConnection::connect(url).await?;
    let sqlite = url.starts_with("sqlite:");
    if sqlite {
        sqlx::query("PRAGMA busy_timeout = 10000")
            .execute(&mut c)
            .await?;
    }
    let head =
        sqlx::query("SELECT last_seq, last_hash, last_at FROM audit_chains WHERE chain = $1")
            .bind(org)
            .fetch_one(&mut c)
            .await
            .context("the big org has no chain head")?;
    let mut seq: i64 = head.try_get("last_seq")?;
    let mut prev: String = head.try_get("last_hash")?;
    let last_at: i64 = head.try_get("last_at")?;
    let mut rng = StdRng::seed_from_u64(0xbe7c);
    let actors: Vec<String> = (0..200)
        .map(|_| uuid::Uuid::from_u128(rng.gen()).to_string())
        .collect();
    let targets: Vec<String> = (0..20_000)
        .map(|_| uuid::Uuid::from_u128(rng.gen()).to_string())
        .collect();
    let mut at = last_at;
    let mut left = n;
    let mut sql_cache: Option<(usize, String)> = None;
    let mut tx = c.begin().await?;
    let mut in_tx = 0;
    while left > 0 {
        let take = left.min(ROWS_PER_INSERT);
        let mut batch = Vec::with_capacity(take);
        for _ in 0..take {
            seq += 1;
            // About a thousand events per millisecond after the head: times never go backwards.
            if seq % 1000 == 0 {
                at += 1;
            }
            let (action, ttype) = ACTIONS[rng.gen_range(0..ACTIONS.len())];
            let actor = actors[rng.gen_range(0..actors.len())].clone();
            let ts = uuid::Timestamp::from_unix(
                uuid::NoContext,
                u64::try_from(at / 1000)?,
                u32::try_from((at % 1000) * 1_000_000)?,
            );
            let mut e = StoredEvent {
                id: uuid::Uuid::new_v7(ts).to_string(),
                chain: org.to_string(),
                seq,
                at,
                actor_id: Some(actor.clone()),
                action: action.to_string(),
                target_type: Some(ttype.to_string()),
                target_id: Some(if ttype == "user" {
                    actor
                } else {
                    targets[rng.gen_range(0..targets.len())].clone()
                }),
                ip: Some(strongroom::mask::ip(std::net::IpAddr::from([
                    198,
                    51,
                    rng.gen(),
                    rng.gen(),
                ]))),
                metadata: json!({"source": "bench", "version": rng.gen_range(1..50)}),
                prev_hash: std::mem::take(&mut prev),
                hash: String::new(),
            };
            e.hash = e.compute_hash();
            prev = e.hash.clone();
            let meta = canonical(&e.metadata);
            batch.push((e, meta));
        }
        let sql = match &sql_cache {
            Some((len, sql)) if *len == batch.len() => sql.clone(),
            _ => {
                let sql = insert_sql(batch.len(), !sqlite);
                sql_cache = Some((batch.len(), sql.clone()));
                sql
            }
        };
        let mut q = sqlx::query(&sql);
        for (e, meta) in &batch {
            q = q
                .bind(e.id.clone())
                .bind(e.chain.clone())
                .bind(e.seq)
                .bind(e.at)
                .bind(e.actor_id.clone())
                .bind(e.action.clone())
                .bind(e.target_type.clone())
                .bind(e.target_id.clone())
                .bind(e.ip.clone())
                .bind(meta.clone())
                .bind(e.prev_hash.clone())
                .bind(e.hash.clone());
        }
        q.execute(&mut *tx).await?;
        left -= take;
        in_tx += take;
        if in_tx >= ROWS_PER_TX {
            tx.commit().await?;
            tx = c.begin().await?;
            in_tx = 0;
        }
    }
    sqlx::query(
        "UPDATE audit_chains SET last_seq = $2, last_hash = $3, last_at = $4 WHERE chain = $1",
    )
    .bind(org)
    .bind(seq)
    .bind(prev)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if !sqlite {
        use sqlx::Executor;
        c.execute("ANALYZE audit_events").await?;
    }
    c.close().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// wrk.

fn lua_str(s: &str) -> String {
    format!("{s:?}")
}

/// A wrk script sending one of `reqs` (method, path, cookie, body) at random per request.
fn lua_script(reqs: &[(&str, String, Option<String>, Option<String>)]) -> String {
    let mut s = String::from("local reqs = {\n");
    for (method, path, cookie, body) in reqs {
        s.push_str(&format!(
            "  {{{}, {}, {}, {}}},\n",
            lua_str(method),
            lua_str(path),
            cookie.as_deref().map_or("nil".into(), lua_str),
            body.as_deref().map_or("nil".into(), lua_str),
        ));
    }
    s.push_str(
        r#"}
local n = 0
setup = function(thread) n = n + 1; thread:set("seed", n) end
init = function(args) math.randomseed(os.time() + (seed or 0) * 7919) end
request = function()
  local r = reqs[math.random(#reqs)]
  local h = {}
  if r[3] and r[3]:sub(1, 7) == "Bearer " then h["Authorization"] = r[3]
  elseif r[3] then h["Cookie"] = r[3] end
  if r[4] then h["Content-Type"] = "application/json" end
  return wrk.format(r[1], r[2], h, r[4])
end
"#,
    );
    s
}

struct Wrk<'a> {
    args: &'a Args,
    dir: &'a Path,
}

impl Wrk<'_> {
    async fn run(
        &self,
        name: &str,
        base: &str,
        connections: u32,
        reqs: &[(&str, String, Option<String>, Option<String>)],
    ) -> Result<WrkResult> {
        let script = self.dir.join(format!(
            "{}.lua",
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ));
        std::fs::write(&script, lua_script(reqs))?;
        let threads = self.args.threads.min(connections).max(1);
        let out = Command::new(&self.args.wrk)
            .arg(format!("-t{threads}"))
            .arg(format!("-c{connections}"))
            .arg(format!("-d{}s", self.args.duration))
            .arg("--timeout")
            .arg("30s")
            .arg("--latency")
            .arg("-s")
            .arg(&script)
            .arg(base)
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("run {}", self.args.wrk))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        ensure!(
            out.status.success(),
            "wrk failed for {name}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r =
            parse_wrk(name, &text).with_context(|| format!("wrk output for {name}:\n{text}"))?;
        // Requests wrk left in flight when it stopped still run to their end on the server (it
        // never abandons a transaction half-way): let them finish before the next case starts,
        // so no case pays for the one before (16 pending logins are 16 Argon2id hashes).
        tokio::time::sleep(std::time::Duration::from_secs(SETTLE_SECS)).await;
        if self.args.strict {
            ensure!(
                r.non_2xx == 0 && r.socket_errors == 0 && r.requests > 0,
                "{name}: {} non-2xx answers, {} socket errors, {} requests",
                r.non_2xx,
                r.socket_errors,
                r.requests
            );
        }
        Ok(r)
    }
}

/// Seconds between two cases (see `run`).
const SETTLE_SECS: u64 = 2;

fn wrk_ms(v: &str) -> Result<f64> {
    let i = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .context("latency unit")?;
    let (num, unit) = v.split_at(i);
    let x: f64 = num.parse()?;
    Ok(match unit {
        "us" => x / 1000.0,
        "ms" => x,
        "s" => x * 1000.0,
        "m" => x * 60_000.0,
        "h" => x * 3_600_000.0,
        other => bail!("unknown unit {other}"),
    })
}

fn parse_wrk(name: &str, text: &str) -> Result<WrkResult> {
    let mut r = WrkResult {
        name: name.to_string(),
        ..WrkResult::default()
    };
    let (mut p50, mut p99, mut rps) = (None, None, None);
    for line in text.lines() {
        let t = line.trim();
        let parts: Vec<&str> = t.split_whitespace().collect();
        match parts.as_slice() {
            ["50%", v] => p50 = Some(wrk_ms(v)?),
            ["99%", v] => p99 = Some(wrk_ms(v)?),
            ["Requests/sec:", v] => rps = Some(v.parse::<f64>()?),
            [n, "requests", "in", ..] => r.requests = n.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => r.non_2xx = n.parse()?,
            ["Socket", "errors:", rest @ ..] => {
                r.socket_errors = rest
                    .iter()
                    .filter_map(|x| x.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    r.p50_ms = p50.context("no 50% line")?;
    r.p99_ms = p99.context("no 99% line")?;
    r.rps = rps.context("no Requests/sec line")?;
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// One backend.

/// A table row: a case, its figures, and its ratios to the named baseline.
struct Ratio {
    case: String,
    baseline: String,
    rps: f64,
    rps_ratio: f64,
    p50: f64,
    p50_ratio: f64,
    p99: f64,
    p99_ratio: f64,
    errors: u64,
}

fn row(case: &str, baseline_name: &str, r: &WrkResult, b: &WrkResult) -> Ratio {
    Ratio {
        case: case.to_string(),
        baseline: baseline_name.to_string(),
        rps: r.rps,
        rps_ratio: r.rps / b.rps,
        p50: r.p50_ms,
        p50_ratio: r.p50_ms / b.p50_ms,
        p99: r.p99_ms,
        p99_ratio: r.p99_ms / b.p99_ms,
        errors: r.non_2xx + r.socket_errors,
    }
}

async fn run_backend(
    args: &Args,
    backend: &str,
    url: &str,
    dir: &Path,
    counts: Counts,
    argon: (f64, usize),
) -> Result<(String, Value)> {
    println!("== {backend}");
    let pid_dir = args.pid_dir.as_deref();
    let baseline = start_baseline(&args.baseline, pid_dir).await?;
    let server = start_strongroom(&args.strongroom, dir, url, pid_dir).await?;
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(64)
        .build()?;
    let t = Instant::now();
    let seeded = seed(&client, &base, &dir.join("data"), url, counts).await?;
    println!(
        "seeded in {:.1} s: {}",
        t.elapsed().as_secs_f64(),
        seeded
            .seconds
            .iter()
            .map(|(k, v)| format!("{k} {v:.1} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Sessions for the read cases: the owners of up to 50 orgs.
    let reads: Vec<_> = seeded
        .items
        .iter()
        .map(|(o, ws, id)| {
            let (org, cookie, _) = &seeded.orgs[*o];
            (
                "GET",
                format!("/api/v1/orgs/{org}/workspaces/{ws}/items/{id}"),
                Some(cookie.clone()),
                None,
            )
        })
        .collect();
    // The same reads, by the orgs' API keys instead of their owners' sessions.
    let key_reads: Vec<_> = seeded
        .items
        .iter()
        .map(|(o, ws, id)| {
            let org = &seeded.orgs[*o].0;
            (
                "GET",
                format!("/api/v1/orgs/{org}/workspaces/{ws}/items/{id}"),
                Some(format!("Bearer {}", seeded.keys[*o])),
                None,
            )
        })
        .collect();
    let lists: Vec<_> = seeded
        .orgs
        .iter()
        .flat_map(|(org, cookie, wss)| {
            wss.iter().map(move |ws| {
                (
                    "GET",
                    format!("/api/v1/orgs/{org}/workspaces/{ws}/items?limit=50"),
                    Some(cookie.clone()),
                    None,
                )
            })
        })
        .collect();
    let creates: Vec<_> = seeded
        .orgs
        .iter()
        .flat_map(|(org, cookie, wss)| {
            wss.iter().map(move |ws| {
                (
                    "POST",
                    format!("/api/v1/orgs/{org}/workspaces/{ws}/items"),
                    Some(cookie.clone()),
                    Some(r#"{"title":"Created under load","status":"todo"}"#.to_string()),
                )
            })
        })
        .collect();
    let me: Vec<_> = seeded
        .orgs
        .iter()
        .map(|(_, cookie, _)| ("GET", "/api/v1/me".to_string(), Some(cookie.clone()), None))
        .collect();
    let logins: Vec<_> = seeded
        .emails
        .iter()
        .map(|e| {
            (
                "POST",
                "/api/v1/auth/login".to_string(),
                None,
                Some(json!({"email": e, "password": PASSWORD}).to_string()),
            )
        })
        .collect();
    let health = vec![("GET", "/healthz".to_string(), None, None)];
    let hello = vec![("GET", "/json".to_string(), None, None)];

    let wrk = Wrk { args, dir };
    let c = args.connections;
    let lc = args.login_connections;
    let hello_base = format!("http://{}", baseline.addr);
    let b = wrk.run("bare axum JSON", &hello_base, c, &hello).await?;
    let healthz = wrk.run("GET /healthz", &base, c, &health).await?;
    let me_r = wrk.run("GET /api/v1/me", &base, c, &me).await?;
    let read = wrk.run("item read", &base, c, &reads).await?;
    let read_key = wrk
        .run("item read by API key", &base, c, &key_reads)
        .await?;
    let list = wrk.run("item list (50)", &base, c, &lists).await?;
    let create = wrk.run("item create", &base, c, &creates).await?;
    let login_r = wrk.run("login", &base, lc, &logins).await?;
    // Reads while a login flood runs.
    let (read_flood, login_flood) = tokio::try_join!(
        wrk.run("item read during login flood", &base, c, &reads),
        wrk.run("login flood", &base, lc, &logins),
    )?;
    // Reads, then logins, while exports of the big org run back to back.
    let big_org = seeded.orgs[0].0.clone();
    let owner = seeded.orgs[0].1.clone();
    let export_url = format!("{base}/api/v1/orgs/{big_org}/audit-events/export");
    let lone = export_once(&client, &export_url, &owner, &AtomicBool::new(false)).await?;
    let (read_export, export1) = with_exports(&client, &base, &big_org, &owner, || {
        wrk.run("item read during audit export", &base, c, &reads)
    })
    .await?;
    let (login_export, export2) = with_exports(&client, &base, &big_org, &owner, || {
        wrk.run("login during audit export", &base, lc, &logins)
    })
    .await?;
    drop(server);
    drop(baseline);

    let argon_rate = WrkResult {
        name: "raw Argon2id".into(),
        rps: argon.0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        ..WrkResult::default()
    };
    let rows = vec![
        row("bare axum JSON (baseline)", "itself", &b, &b),
        row("GET /healthz", "bare axum", &healthz, &b),
        row("GET /api/v1/me", "bare axum", &me_r, &b),
        row("item read", "bare axum", &read, &b),
        row(
            "item read by API key",
            "item read by session",
            &read_key,
            &read,
        ),
        row("item list page (50)", "bare axum", &list, &b),
        row("item create (+ audit event)", "bare axum", &create, &b),
        row(
            "login (right password)",
            &format!("raw Argon2id, {} threads", argon.1),
            &login_r,
            &argon_rate,
        ),
        row(
            "item read during login flood",
            "item read alone",
            &read_flood,
            &read,
        ),
        row(
            "item read during audit export",
            "item read alone",
            &read_export,
            &read,
        ),
        row(
            "login during audit export",
            "login alone",
            &login_export,
            &login_r,
        ),
        row(
            "audit export, lines/s, during item reads",
            "audit export alone",
            &export_rate("export during reads", &export1),
            &export_rate("export alone", std::slice::from_ref(&lone)),
        ),
        row(
            "audit export, lines/s, during logins",
            "audit export alone",
            &export_rate("export during logins", &export2),
            &export_rate("export alone", std::slice::from_ref(&lone)),
        ),
    ];
    let seeded_note = seeded
        .seconds
        .iter()
        .map(|(k, v)| format!("{k} {v:.1} s"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut table = format!(
        "### {backend}\n\nSeeding took: {seeded_note}.\n\n| case | vs (same run) | req/s | x req/s | p50 ms | x p50 | p99 ms | x p99 | errors |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let f = |x: f64, d: usize| {
        if x.is_finite() {
            format!("{x:.d$}")
        } else {
            "–".into()
        }
    };
    for r in &rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.case,
            r.baseline,
            f(r.rps, 0),
            f(r.rps_ratio, 3),
            f(r.p50, 2),
            f(r.p50_ratio, 2),
            f(r.p99, 2),
            f(r.p99_ratio, 2),
            r.errors
        ));
    }
    let exports: Vec<Value> = export1.iter().chain(export2.iter()).cloned().collect();
    let complete: Vec<&Value> = exports
        .iter()
        .filter(|e| e["complete"].as_bool() == Some(true))
        .collect();
    let export_note = format!(
        "one export alone streamed {} lines in {:.1} s; during the two export cases {} exports ran back to back ({} finished, the rest were cut off when their case ended)",
        lone["lines"],
        lone["seconds"].as_f64().unwrap_or(f64::NAN),
        exports.len(),
        complete.len(),
    );
    table.push_str(&format!(
        "\nLogin flood alongside the reads: {:.0} logins/s. Audit export of the big org ({} bulk-loaded events plus the seeding's own): {export_note}.\n",
        login_flood.rps,
        counts.audit_events,
    ));
    let report = json!({
        "backend": backend,
        "counts": counts,
        "seed_seconds": seeded.seconds,
        "wrk": {"threads": args.threads, "connections": c, "login_connections": lc, "duration_secs": args.duration},
        "raw_argon2": {"hashes_per_sec": argon.0, "threads": argon.1, "m_kib": 19456, "t": 2, "p": 1},
        "runs": [b, healthz, me_r, read, list, create, login_r, read_flood, login_flood, read_export, login_export],
        "exports": exports,
        "export_alone": lone,
        "ratios": rows.iter().map(|r| json!({
            "case": r.case, "vs": r.baseline, "rps": r.rps, "rps_ratio": r.rps_ratio,
            "p50_ms": r.p50, "p50_ratio": r.p50_ratio, "p99_ms": r.p99, "p99_ratio": r.p99_ratio,
            "errors": r.errors,
        })).collect::<Vec<_>>(),
    });
    Ok((table, report))
}

/// Runs `case` while exports of the org's audit trail run back to back; the case's result and
/// one record per export (lines, seconds, whether it finished before the case ended).
async fn with_exports<F, Fut>(
    client: &reqwest::Client,
    base: &str,
    org: &str,
    cookie: &str,
    case: F,
) -> Result<(WrkResult, Vec<Value>)>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<WrkResult>>,
{
    let stop = Arc::new(AtomicBool::new(false));
    let exporter = {
        let (client, stop) = (client.clone(), stop.clone());
        let url = format!("{base}/api/v1/orgs/{org}/audit-events/export");
        let cookie = cookie.to_string();
        tokio::spawn(async move {
            let mut done = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                done.push(export_once(&client, &url, &cookie, &stop).await?);
            }
            anyhow::Ok(done)
        })
    };
    // Let the first export get going.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let result = case().await;
    stop.store(true, Ordering::Relaxed);
    let exports = exporter.await??;
    Ok((result?, exports))
}

/// One JSON Lines export, read to its end or until `stop`: `{lines, seconds, complete}`.
async fn export_once(
    client: &reqwest::Client,
    url: &str,
    cookie: &str,
    stop: &AtomicBool,
) -> Result<Value> {
    let t = Instant::now();
    let mut r = client
        .get(url)
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await?;
    ensure!(r.status() == 200, "export: {}", r.status());
    let mut lines = 0u64;
    let mut complete = true;
    while let Some(chunk) = r.chunk().await? {
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        if stop.load(Ordering::Relaxed) {
            complete = false;
            break;
        }
    }
    Ok(json!({"lines": lines, "seconds": t.elapsed().as_secs_f64(), "complete": complete}))
}

/// Lines per second over a set of exports, as a pseudo wrk result (rate only).
fn export_rate(name: &str, exports: &[Value]) -> WrkResult {
    let (lines, secs) = exports.iter().fold((0.0, 0.0), |(l, t), e| {
        (
            l + e["lines"].as_f64().unwrap_or(0.0),
            t + e["seconds"].as_f64().unwrap_or(0.0),
        )
    });
    WrkResult {
        name: name.to_string(),
        rps: lines / secs,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        requests: exports.len() as u64,
        ..WrkResult::default()
    }
}
