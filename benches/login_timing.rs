//! Can the timing of a wrong-password login tell what stands behind an address? Issue #10 point 2:
//! "a benchmark compares the medians of at least 15 samples per kind and reports the largest
//! difference (goal: under 10%)".
//!
//! `cargo bench --bench login_timing` (SQLite, a temp file) or
//! `STRONGROOM_BENCH_DATABASE=postgres cargo bench --bench login_timing` (a fresh database on
//! `STRONGROOM_BENCH_POSTGRES_URL`, default postgres://postgres@127.0.0.1:5432, dropped at the end).
//! `STRONGROOM_BENCH_SAMPLES` (default 25, at least 15) sets the samples per kind.
//!
//! The real app with the shipped Argon2 cost (OWASP: 19 MiB, 2 passes) serves on 127.0.0.1; the
//! rate limits are raised so that every attempt reaches the password check. Four kinds of address:
//! unknown, verified, unverified, verified with a pending signup. Each round sends one wrong
//! password per kind in a shuffled order (so drift and warm-up hit every kind alike), after
//! three rounds of warm-up. A bare axum hello-world, timed by the same client in the same run, is
//! the baseline. Prints p10/median/p90 per kind, the ratio of each median to the baseline, and the
//! largest difference between medians, PASS when under 10%.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use rand::seq::SliceRandom;
use serde_json::json;
use sqlx::Connection;
use strongroom::clock::ManualClock;
use strongroom::config::{Config, Limit};
use strongroom::state::{App, AppState};

const GOAL: f64 = 0.10;
const WARMUP_ROUNDS: usize = 3;
const PASSWORD: &str = "correct horse battery staple orbit";
const OTHER_PASSWORD: &str = "a different passphrase for the signup";
const WRONG: &str = "certainly not the right password";
const KINDS: [(&str, &str); 4] = [
    ("unknown", "nobody@example.com"),
    ("verified", "verified@example.com"),
    ("unverified", "unverified@example.com"),
    ("verified + pending signup", "pending@example.com"),
];

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(main_async()) {
        eprintln!("login_timing benchmark failed: {e:#}");
        std::process::exit(1);
    }
}

async fn main_async() -> Result<()> {
    let samples: usize = std::env::var("STRONGROOM_BENCH_SAMPLES")
        .unwrap_or_else(|_| "25".into())
        .parse()
        .context("STRONGROOM_BENCH_SAMPLES")?;
    ensure!(
        samples >= 15,
        "STRONGROOM_BENCH_SAMPLES must be at least 15"
    );
    let dir = tempfile::Builder::new().prefix("sr_bench_").tempdir()?;
    let (url, pg) = match std::env::var("STRONGROOM_BENCH_DATABASE").as_deref() {
        Ok("postgres") => {
            let base = std::env::var("STRONGROOM_BENCH_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
            let name = format!("sr_bench_{}", uuid::Uuid::new_v4().simple());
            let mut c = sqlx::PgConnection::connect(&format!("{base}/postgres")).await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut c)
                .await?;
            (format!("{base}/{name}"), Some((base, name)))
        }
        Ok("sqlite") | Ok("") | Err(_) => (
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            ),
            None,
        ),
        Ok(other) => bail!("STRONGROOM_BENCH_DATABASE must be sqlite or postgres, not {other}"),
    };
    let result = run(&url, dir.path(), samples).await;
    if let Some((base, name)) = pg {
        if let Ok(mut c) = sqlx::PgConnection::connect(&format!("{base}/postgres")).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut c)
                .await;
        }
    }
    result
}

async fn run(url: &str, dir: &std::path::Path, samples: usize) -> Result<()> {
    let mut cfg = Config {
        data_dir: dir.join("data"),
        database_url: Some(url.to_string()),
        public_url: Some("http://strongroom.test".into()),
        ..Config::default()
    };
    let many = Limit::new(1_000_000, 60);
    let rl = &mut cfg.rate_limits;
    (rl.login_per_account, rl.login_per_ip, rl.auth_per_ip) = (many, many, many);
    (rl.signup_per_ip, rl.recovery_per_ip, rl.recovery_per_email) = (many, many, many);
    (rl.api_per_session, rl.api_per_ip) = (many, many);
    let argon = (
        cfg.password.argon2_memory_kib,
        cfg.password.argon2_iterations,
    );
    let app = App::build(cfg, Arc::new(ManualClock::new(1_800_000_000_000))).await?;
    let app_addr = serve(strongroom::http::router(app.clone())).await?;
    let hello_addr =
        serve(axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" })))
            .await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()?;
    let base = format!("http://{app_addr}");
    setup(&app, &client, &base).await?;
    println!(
        "login_timing: {}, Argon2id m={} KiB t={}, {samples} samples per kind after {WARMUP_ROUNDS} warm-up rounds",
        if url.starts_with("sqlite") { "SQLite" } else { "PostgreSQL" },
        argon.0,
        argon.1
    );

    let mut times: Vec<Vec<f64>> = vec![Vec::new(); KINDS.len()];
    let mut hello = Vec::new();
    let mut order: Vec<usize> = (0..KINDS.len()).collect();
    for round in 0..WARMUP_ROUNDS + samples {
        order.shuffle(&mut rand::thread_rng());
        for &k in &order {
            let started = Instant::now();
            let r = client
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"email": KINDS[k].1, "password": WRONG}))
                .send()
                .await?;
            let status = r.status();
            r.bytes().await?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            ensure!(status == 401, "{}: expected 401, got {status}", KINDS[k].0);
            let started = Instant::now();
            client
                .get(format!("http://{hello_addr}/"))
                .send()
                .await?
                .bytes()
                .await?;
            let hello_ms = started.elapsed().as_secs_f64() * 1000.0;
            if round >= WARMUP_ROUNDS {
                times[k].push(ms);
                hello.push(hello_ms);
            }
        }
    }
    let hello_median = stats(&mut hello).1;
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>12}",
        "kind", "p10 ms", "median", "p90 ms", "median/hello"
    );
    println!(
        "{:<28} {:>9} {:>9.3} {:>9} {:>12}",
        "baseline: axum hello-world", "", hello_median, "", "1"
    );
    let mut medians = Vec::new();
    for (k, t) in times.iter_mut().enumerate() {
        let (p10, median, p90) = stats(t);
        medians.push(median);
        println!(
            "{:<28} {p10:>9.2} {median:>9.2} {p90:>9.2} {:>12.0}",
            KINDS[k].0,
            median / hello_median
        );
    }
    let lo = medians.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = medians.iter().copied().fold(0.0, f64::max);
    let diff = (hi - lo) / lo;
    println!(
        "largest difference between medians: {:.1}% ({hi:.2} ms vs {lo:.2} ms): {}",
        diff * 100.0,
        if diff < GOAL {
            "PASS (goal: under 10%)"
        } else {
            "FAIL (goal: under 10%)"
        }
    );
    ensure!(diff < GOAL, "medians differ by {:.1}%", diff * 100.0);
    Ok(())
}

/// (p10, median, p90) of `v`, sorted in place.
fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (at(0.1), at(0.5), at(0.9))
}

/// Verified, unverified and verified-with-a-pending-signup accounts, through the real routes.
async fn setup(app: &AppState, client: &reqwest::Client, base: &str) -> Result<()> {
    let signup = |email: &str, password: &str| {
        client
            .post(format!("{base}/api/v1/auth/signup"))
            .json(&json!({"email": email, "password": password, "display_name": "Bench"}))
            .send()
    };
    for email in ["verified@example.com", "pending@example.com"] {
        ensure!(signup(email, PASSWORD).await?.status() == 202);
        app.background.idle().await;
        let token = last_token(app, "/verify-email").await?;
        let r = client
            .post(format!("{base}/api/v1/auth/verify-email"))
            .json(&json!({ "token": token }))
            .send()
            .await?;
        ensure!(r.status() == 200, "verify: {}", r.status());
    }
    ensure!(signup("unverified@example.com", PASSWORD).await?.status() == 202);
    ensure!(
        signup("pending@example.com", OTHER_PASSWORD)
            .await?
            .status()
            == 202
    );
    app.background.idle().await;
    Ok(())
}

/// The token of the newest outbox email's link to `path`.
async fn last_token(app: &AppState, path: &str) -> Result<String> {
    app.mailer.deliver_pending().await?;
    let dir = app.config.data_dir.join("outbox");
    let mut newest: Option<(std::time::SystemTime, std::path::PathBuf)> = None;
    for e in std::fs::read_dir(&dir)? {
        let e = e?;
        let t = e.metadata()?.modified()?;
        if newest.as_ref().is_none_or(|(n, _)| t > *n) {
            newest = Some((t, e.path()));
        }
    }
    let (_, file) = newest.context("no email in the outbox")?;
    let body = std::fs::read_to_string(file)?;
    let re = regex::Regex::new(&format!(
        r"{}\?token=([A-Za-z0-9_\-]+)",
        regex::escape(path)
    ))?;
    Ok(re.captures(&body).context("no link in the email")?[1].to_string())
}

async fn serve(router: axum::Router) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Ok(addr)
}
