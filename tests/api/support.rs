//! `TestApp`: the whole application in-process on its own fresh database (SQLite file, or a new
//! PostgreSQL database when `STRONGROOM_TEST_DATABASE=postgres`), a manual clock, cheap Argon2
//! parameters, and helpers to send requests and read the outbox.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use strongroom::clock::ManualClock;
use strongroom::config::Config;
use strongroom::state::{App, AppState};
use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse battery staple orbit";
pub const DEFAULT_IP: &str = "203.0.113.10";

pub fn backend_is_postgres() -> bool {
    std::env::var("STRONGROOM_TEST_DATABASE")
        .map(|v| v == "postgres")
        .unwrap_or(false)
}

fn pg_base() -> String {
    std::env::var("STRONGROOM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A fresh database URL for one test, and the PostgreSQL database name to drop afterwards.
pub async fn fresh_database(dir: &std::path::Path) -> (String, Option<String>) {
    fresh_database_of(dir, backend_is_postgres()).await
}

/// `fresh_database` on PostgreSQL (`postgres`) or SQLite, whatever the suite runs on.
pub async fn fresh_database_of(dir: &std::path::Path, postgres: bool) -> (String, Option<String>) {
    if postgres {
        use sqlx::Connection;
        let name = format!("sr_test_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(&format!("{}/postgres", pg_base()))
            .await
            .expect("connect to postgres");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .expect("create database");
        (format!("{}/{name}", pg_base()), Some(name))
    } else {
        (
            format!("sqlite://{}?mode=rwc", dir.join("test.db").display()),
            None,
        )
    }
}

/// Drops a per-test PostgreSQL database (from a plain thread: Drop cannot await).
pub fn drop_database(name: String) {
    let url = format!("{}/postgres", pg_base());
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async move {
            use sqlx::Connection;
            if let Ok(mut c) = sqlx::PgConnection::connect(&url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await;
            }
        });
    })
    .join();
}

/// Configuration for tests: fast hashing, the given data dir and database.
pub fn test_config(dir: &std::path::Path, db_url: String) -> Config {
    let mut cfg = Config {
        data_dir: dir.to_path_buf(),
        database_url: Some(db_url),
        public_url: Some("http://strongroom.test".into()),
        ..Config::default()
    };
    cfg.password.insecure_fast_hashing_for_tests = true;
    cfg.password.argon2_memory_kib = 64;
    cfg.password.argon2_iterations = 1;
    // The clock stands still in tests, and sweeps send thousands of requests from one address:
    // the general API limits are tested on their own (`abuse::api_*`).
    let many = strongroom::config::Limit::new(1_000_000, 60);
    cfg.rate_limits.api_per_session = many;
    cfg.rate_limits.api_per_ip = many;
    cfg
}

pub struct TestApp {
    pub app: AppState,
    pub router: Router,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    pg_db: Option<String>,
    seen_mail: Mutex<HashSet<PathBuf>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(name) = self.pg_db.take() {
            drop_database(name);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// The header block as written to the outbox.
    pub head: String,
}

impl Mail {
    /// The token of the first link to `path` in the body.
    pub fn token(&self, path: &str) -> String {
        let re = regex::Regex::new(&format!(
            r"{}\?token=([A-Za-z0-9_\-]+)",
            regex::escape(path)
        ))
        .expect("regex");
        re.captures(&self.body)
            .map(|c| c[1].to_string())
            .unwrap_or_else(|| panic!("no {path} link in: {}", self.body))
    }
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    /// The value of the session cookie this response sets.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                let (pair, _) = c.split_once(';').unwrap_or((c, ""));
                let (name, value) = pair.split_once('=')?;
                (name.ends_with("strongroom_session") && !value.is_empty())
                    .then(|| value.to_string())
            })
    }
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }
}

/// A `multipart/form-data` body with one file part: (its content type, its bytes).
pub fn multipart(field: &str, filename: &str, claimed: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "strongroom-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::with_capacity(data.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n\
             Content-Type: {claimed}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A request being built.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub ip: IpAddr,
    pub cookie: Option<String>,
}

impl Req {
    pub fn new(method: Method, path: &str) -> Self {
        Self {
            method,
            path: path.into(),
            body: Vec::new(),
            headers: Vec::new(),
            ip: DEFAULT_IP.parse().expect("ip"),
            cookie: None,
        }
    }
    pub fn get(path: &str) -> Self {
        Self::new(Method::GET, path)
    }
    pub fn post(path: &str) -> Self {
        Self::new(Method::POST, path)
    }
    pub fn delete(path: &str) -> Self {
        Self::new(Method::DELETE, path)
    }
    pub fn put(path: &str) -> Self {
        Self::new(Method::PUT, path)
    }
    pub fn json(mut self, v: Value) -> Self {
        self.body = serde_json::to_vec(&v).expect("json");
        self.headers
            .push(("content-type".into(), "application/json".into()));
        self
    }
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        self.body = serde_urlencoded::to_string(pairs)
            .expect("form")
            .into_bytes();
        self.headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        self
    }
    pub fn raw(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.body = body;
        self.headers
            .push(("content-type".into(), content_type.into()));
        self
    }
    /// A `multipart/form-data` body with one part named `file`.
    pub fn file(self, filename: &str, data: &[u8]) -> Self {
        self.file_claiming(filename, "application/octet-stream", data)
    }
    /// `file`, with the part claiming to be of type `claimed`.
    pub fn file_claiming(self, filename: &str, claimed: &str, data: &[u8]) -> Self {
        let (ct, body) = multipart("file", filename, claimed, data);
        self.raw(&ct, body)
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn ip(mut self, ip: &str) -> Self {
        self.ip = ip.parse().expect("ip");
        self
    }
    pub fn cookie(mut self, token: &str) -> Self {
        self.cookie = Some(token.to_string());
        self
    }
}

impl TestApp {
    /// Invites `email` into `org` with `role` (as `admin`) and accepts as `invitee` (already
    /// signed in).
    pub async fn join(&self, admin: &str, org: &str, email: &str, role: &str, invitee: &str) {
        let r = self
            .send(
                Req::post(&format!("/api/v1/orgs/{org}/invitations"))
                    .cookie(admin)
                    .json(serde_json::json!({"email": email, "role": role})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let token = self.mail_to(email).await.token("/invitations/accept");
        let r = self
            .send(
                Req::post("/api/v1/invitations/accept")
                    .cookie(invitee)
                    .json(serde_json::json!({ "token": token })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["role"], role);
    }

    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// A test app whose configuration `tweak` may change first.
    pub async fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (url, pg_db) = fresh_database(dir.path()).await;
        let mut cfg = test_config(dir.path(), url);
        tweak(&mut cfg);
        let mut t = Self::on(cfg).await;
        t.dir = dir;
        t.pg_db = pg_db;
        t
    }

    /// A test app on a configuration made elsewhere (its database and data dir are the caller's
    /// to remove).
    pub async fn on(cfg: Config) -> Self {
        let clock = Arc::new(ManualClock::new(1_800_000_000_000));
        let app = App::build(cfg, clock.clone()).await.expect("app builds");
        let router = strongroom::http::router(app.clone());
        Self {
            app,
            router,
            clock,
            dir: tempfile::tempdir().expect("tempdir"),
            pg_db: None,
            seen_mail: Mutex::new(HashSet::new()),
        }
    }

    pub async fn send(&self, r: Req) -> TestResponse {
        let mut b = Request::builder().method(r.method).uri(&r.path);
        for (k, v) in &r.headers {
            b = b.header(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        if let Some(c) = &r.cookie {
            b = b.header("cookie", format!("{}={c}", self.cookie_name()));
        }
        let req = b.body(Body::from(r.body)).expect("request");
        self.send_request(req, r.ip).await
    }

    /// Sends a request built by hand (say, with a streamed body) from `ip`.
    pub async fn send_request(&self, mut req: Request<Body>, ip: IpAddr) -> TestResponse {
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 40000)));
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        // Work a handler left for after its answer (signup, reset, resend) is part of the request
        // as far as a test is concerned.
        self.app.background.idle().await;
        let status = res.status();
        let headers = res.headers().clone();
        let body = res
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// The app's clock in whole seconds.
    pub fn clock_secs(&self) -> u64 {
        use strongroom::clock::Clock;
        u64::try_from(self.clock.now_ms() / 1000).expect("positive")
    }

    pub fn cookie_name(&self) -> &'static str {
        if self.app.config.is_https() {
            "__Host-strongroom_session"
        } else {
            "strongroom_session"
        }
    }

    /// Delivers queued mail and returns the messages not seen before, oldest first.
    pub async fn new_mail(&self) -> Vec<Mail> {
        self.app.mailer.deliver_pending().await.expect("deliver");
        let dir = self.dir.path().join("outbox");
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&dir)
            .expect("outbox")
            .filter_map(|e| e.ok())
            .map(|e| {
                (
                    e.metadata().and_then(|m| m.modified()).expect("mtime"),
                    e.path(),
                )
            })
            .collect();
        files.sort();
        let mut seen = self.seen_mail.lock().expect("lock");
        files
            .into_iter()
            .filter(|(_, p)| seen.insert(p.clone()))
            .map(|(_, p)| parse_eml(&std::fs::read_to_string(&p).expect("eml")))
            .collect()
    }

    /// The single new message to `to`.
    pub async fn mail_to(&self, to: &str) -> Mail {
        let mut m: Vec<Mail> = self
            .new_mail()
            .await
            .into_iter()
            .filter(|m| m.to == to)
            .collect();
        assert_eq!(m.len(), 1, "expected one new email to {to}, got {m:?}");
        m.remove(0)
    }

    pub async fn signup(&self, email: &str, name: &str) -> TestResponse {
        self.send(
            Req::post("/api/v1/auth/signup").json(
                serde_json::json!({"email": email, "password": PASSWORD, "display_name": name}),
            ),
        )
        .await
    }

    /// Signs up and verifies an account.
    pub async fn verified_user(&self, email: &str, name: &str) {
        assert_eq!(self.signup(email, name).await.status, StatusCode::ACCEPTED);
        let token = self.mail_to(email).await.token("/verify-email");
        let r = self
            .send(
                Req::post("/api/v1/auth/verify-email").json(serde_json::json!({ "token": token })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }

    pub async fn login_as(&self, email: &str, password: &str, ip: &str) -> TestResponse {
        self.send(
            Req::post("/api/v1/auth/login")
                .ip(ip)
                .json(serde_json::json!({"email": email, "password": password})),
        )
        .await
    }

    /// Logs in and returns the session cookie value.
    pub async fn login(&self, email: &str) -> String {
        let r = self.login_as(email, PASSWORD, DEFAULT_IP).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.session_cookie().expect("session cookie")
    }

    pub async fn me(&self, cookie: &str) -> TestResponse {
        self.send(Req::get("/api/v1/me").cookie(cookie)).await
    }

    /// Number of rows in a table.
    pub async fn count(&self, table: &str) -> i64 {
        use sqlx::Row;
        sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(&mut *self.app.db.acquire().await.expect("conn"))
            .await
            .expect("count")
            .try_get::<i64, _>("n")
            .expect("n")
    }

    /// Audit actions of the platform chain, in order.
    /// Every event of an audit chain (an org id or "platform"), read in that org's context.
    pub async fn chain(&self, chain: &str) -> Vec<strongroom::audit::StoredEvent> {
        let org = if chain == "platform" { "" } else { chain };
        let mut tx = strongroom::store::tenant::TenantTx::for_operator_read(&self.app.db, org)
            .await
            .expect("begin");
        let events = strongroom::audit::load_chain(&mut tx).await.expect("chain");
        tx.commit().await.expect("commit");
        events
    }

    pub async fn audit_actions(&self) -> Vec<String> {
        let mut c = self.app.db.acquire().await.expect("conn");
        strongroom::audit::load_platform_chain(&mut c)
            .await
            .expect("chain")
            .into_iter()
            .map(|e| e.action)
            .collect()
    }
}

/// The actions of an org's audit chain, in order (for tests that hold only the app).
pub async fn chain_of(app: &App, org: &str) -> Vec<String> {
    let mut tx = strongroom::store::tenant::TenantTx::for_operator_read(&app.db, org)
        .await
        .expect("begin");
    let events = strongroom::audit::load_chain(&mut tx).await.expect("chain");
    tx.commit().await.expect("commit");
    events.into_iter().map(|e| e.action).collect()
}

/// A transaction as the app opens one for `org` (and `user`), on a connection of the test's own:
/// on PostgreSQL as the app role with the tenant context set, so row-level security holds exactly
/// as it does for the app (whose pool and raw transactions are private to its store).
pub async fn scoped_tx(app: &App, org: &str, user: &str) -> sqlx::Transaction<'static, sqlx::Any> {
    let pg = backend_is_postgres();
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
        .connect(&app.config.database_url())
        .await
        .expect("a connection of the test's own");
    let mut tx = pool.begin().await.expect("begin");
    if pg {
        sqlx::query(
            "SELECT set_config('strongroom.org_id', $1, true), set_config('strongroom.user_id', $2, true)",
        )
        .bind(org)
        .bind(user)
        .execute(&mut *tx)
        .await
        .expect("tenant context");
    }
    tx
}

pub(crate) fn parse_eml(raw: &str) -> Mail {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let get = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
            .unwrap_or_default()
    };
    // A body with any non-ASCII character (a display name, say) is sent quoted-printable.
    let body = if get("Content-Transfer-Encoding").eq_ignore_ascii_case("quoted-printable") {
        let bytes = quoted_printable::decode(body, quoted_printable::ParseMode::Robust)
            .expect("quoted-printable body");
        String::from_utf8(bytes).expect("utf-8 body")
    } else {
        body.to_string()
    };
    Mail {
        to: get("To"),
        subject: get("Subject"),
        body,
        head: head.to_string(),
    }
}

/// Headers that legitimately differ between two identical answers.
pub fn comparable_headers(h: &HeaderMap) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = h
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    v.sort();
    v
}

/// The real `strongroom` binary serving from a temp dir on a free port, with its stdout (the JSON
/// log) collected line by line.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub addr: String,
    pub lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
    pg_db: Option<String>,
}

pub fn strongroom_bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_strongroom"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

impl ServerProcess {
    /// Starts `strongroom serve --listen 127.0.0.1:0` in `dir` (on a fresh PostgreSQL database when
    /// that is the backend under test) and waits for its `listening` line.
    pub async fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let mut cmd = strongroom_bin();
        cmd.current_dir(dir)
            .args(["serve", "--listen", "127.0.0.1:0"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut pg_db = None;
        if backend_is_postgres() {
            let (url, name) = fresh_database(dir).await;
            pg_db = name;
            let m = strongroom_bin()
                .current_dir(dir)
                .args(["migrate", "--database-url", &url])
                .output()
                .expect("migrate");
            assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
            cmd.args(["--database-url", &url]);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut seen = Vec::new();
        let addr = loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                .expect("a listening line in time");
            let v: Value = serde_json::from_str(&line).expect("JSON log line");
            seen.push(line);
            if v["fields"]["message"] == "listening" {
                break v["fields"]["listen_addr"]
                    .as_str()
                    .expect("listen_addr")
                    .to_string();
            }
        };
        Self {
            child,
            addr,
            lines,
            seen,
            pg_db,
        }
    }

    /// Sends SIGTERM, waits for a clean exit, and returns every log line.
    pub async fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success());
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(15),
                "did not stop after SIGTERM"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        // The reader thread ends with the pipe; give it a moment to hand over the last lines.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        self.seen.extend(self.lines.try_iter());
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(name) = self.pg_db.take() {
            drop_database(name);
        }
    }
}
