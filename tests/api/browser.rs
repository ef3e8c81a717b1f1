//! End to end in a real browser: headless Chromium driven through chromedriver (WebDriver) signs
//! up, confirms the email from the outbox, signs in, revokes a second session made over the JSON
//! API, and signs out. Screenshots land in `target/e2e-screenshots/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::header::SET_COOKIE;
use reqwest::StatusCode;
use serde_json::json;
use strongroom::clock::SystemClock;
use strongroom::state::App;
use tokio::net::TcpListener;

use crate::support::{self, PASSWORD};

pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const CHROMIUM_ARGS: &str =
    "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --disable-quic --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --window-size=1280,900";
const EMAIL: &str = "browser.user@example.com";
const API_AGENT: &str = "strongroom-e2e-api-client";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signup_verify_signin_revoke_signout() {
    let started = Instant::now();
    for (path, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: install the Debian package {package}"
        );
    }

    // The server, on a real port, with a public URL matching what the browser sends as Origin.
    let dir = tempfile::tempdir().expect("tempdir");
    let (db_url, pg_db) = support::fresh_database(dir.path()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let addr = listener.local_addr().expect("server address");
    let mut cfg = support::test_config(dir.path(), db_url);
    cfg.public_url = Some(format!("http://{addr}"));
    let app = App::build(cfg, Arc::new(SystemClock)).await;
    let app = app.expect("app builds");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let server = tokio::spawn(strongroom::server::run(app, listener, shutdown));

    // chromedriver on a free port, and a browser session with a throw-away profile.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
    let port = port.expect("a free port for chromedriver").port();
    let mut driver = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let driver_url = format!("http://127.0.0.1:{port}");
    wait_until_answers(&format!("{driver_url}/status")).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let mut args: Vec<String> = CHROMIUM_ARGS.split_whitespace().map(String::from).collect();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    let caps = json!({ "goog:chromeOptions": { "binary": CHROMIUM, "args": args } });
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps.as_object().cloned().expect("capabilities object"))
        .connect(&driver_url)
        .await
        .expect("open a WebDriver session in headless Chromium");

    // The flow runs in its own task so that a failed assertion still closes the browser below.
    let outcome = tokio::spawn(flow(client.clone(), addr, dir.path().to_path_buf())).await;

    let _ = client.close().await;
    let _ = driver.kill().await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    if let Some(name) = pg_db {
        support::drop_database(name);
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    eprintln!("browser flow passed in {:.1?}", started.elapsed());
}

async fn flow(b: Client, addr: SocketAddr, data_dir: PathBuf) {
    let base = format!("http://{addr}");

    // Sign up.
    goto(&b, &format!("{base}/signup")).await;
    expect_heading(&b, "Create your account").await;
    fill(&b, "#display_name", "Browser User").await;
    fill(&b, "#email", EMAIL).await;
    fill(&b, "#password", PASSWORD).await;
    click(&b, "#submit").await;
    expect_heading(&b, "Check your email").await;
    assert!(text(&b, "#message").await.contains("We sent a link"));
    screenshot(&b, "01-signed-up").await;

    // Confirm the address from the link in the delivered email.
    goto(&b, &verification_link(&data_dir, &base).await).await;
    expect_heading(&b, "Confirm your email").await;
    click(&b, "#confirm").await;
    expect_heading(&b, "Email confirmed").await;
    assert_eq!(text(&b, "#next").await, "Sign in");
    screenshot(&b, "02-email-confirmed").await;

    // Sign in.
    goto(&b, &format!("{base}/login")).await;
    expect_heading(&b, "Sign in").await;
    fill(&b, "#email", EMAIL).await;
    fill(&b, "#password", PASSWORD).await;
    click(&b, "#submit").await;
    expect_heading(&b, "Home").await;
    assert_eq!(path(&b).await, "/");
    goto(&b, &format!("{base}/account")).await;
    expect_heading(&b, "Account security").await;
    assert_eq!(text(&b, "#me-email").await, EMAIL);
    assert_eq!(text(&b, "#me-name").await, "Browser User");
    assert_eq!(rows(&b).await.len(), 1, "one session after signing in");

    // A second session for the same account, made over the JSON API.
    let http = reqwest::Client::builder().user_agent(API_AGENT).build();
    let http = http.expect("reqwest client");
    let res = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .expect("API login request");
    assert_eq!(res.status(), StatusCode::OK, "API login");
    let set_cookies = res.headers().get_all(SET_COOKIE).iter();
    let api_cookie = set_cookies
        .filter_map(|v| v.to_str().ok()?.strip_prefix("strongroom_session="))
        .filter_map(|v| v.split(';').next())
        .find(|v| !v.is_empty())
        .expect("API login sets strongroom_session")
        .to_string();
    let me = || async {
        let req = http.get(format!("{base}/api/v1/me"));
        let req = req.header("cookie", format!("strongroom_session={api_cookie}"));
        req.send().await.expect("GET /api/v1/me").status()
    };
    assert_eq!(me().await, StatusCode::OK, "the API session works");

    // The account page lists both; sign the API one out from the browser.
    b.refresh().await.expect("reload /account");
    expect_heading(&b, "Account security").await;
    let listed = rows(&b).await;
    assert_eq!(listed.len(), 2, "two sessions listed: {listed:?}");
    let (current, other): (Vec<_>, Vec<_>) =
        listed.iter().partition(|r| r.contains("This session"));
    assert_eq!((current.len(), other.len()), (1, 1), "{listed:?}");
    let agent = find(&b, "#sessions tbody tr:not(:has(strong)) td span[title]").await;
    let agent = agent.attr("title").await.expect("title attribute");
    assert_eq!(
        agent.as_deref(),
        Some(API_AGENT),
        "the raw user agent on hover"
    );
    screenshot(&b, "03-account-two-sessions").await;
    click(&b, "#sessions tbody tr .revoke").await;
    // The heading is the same before and after: wait for the answer's notice itself.
    crate::browser_mfa::wait_for_text(&b, "#notice", "That session was signed out.").await;
    expect_heading(&b, "Account security").await;
    assert_eq!(text(&b, "#notice").await, "That session was signed out.");
    let listed = rows(&b).await;
    assert_eq!(listed.len(), 1, "one session left: {listed:?}");
    assert!(listed[0].contains("This session"), "{listed:?}");
    assert!(absent(&b, ".revoke").await, "no revoke button left");
    assert_eq!(me().await, StatusCode::UNAUTHORIZED, "revoked session");
    screenshot(&b, "04-session-revoked").await;

    // Sign out; the account page is then out of reach.
    sign_out(&b).await;
    expect_heading(&b, "Sign in").await;
    assert_eq!(path(&b).await, "/login");
    assert!(absent(&b, "#sign-out").await, "no sign-out button");
    screenshot(&b, "05-signed-out").await;
    goto(&b, &format!("{base}/account")).await;
    expect_heading(&b, "Sign in").await;
    assert_eq!(path(&b).await, "/login", "/account redirects to /login");
}

/// Signs out from the account menu, and waits for the sign-in page (navigating away before the
/// sign-out's answer could cancel it).
pub(crate) async fn sign_out(b: &Client) {
    click(b, "#account-menu summary").await;
    click(b, "#sign-out").await;
    expect_heading(b, "Sign in").await;
}

/// Polls `url` until it answers 200 (chromedriver takes a moment to listen).
pub(crate) async fn wait_until_answers(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(r) = reqwest::get(url).await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "no answer from {url} in 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the outbox worker to deliver the verification email; returns its link.
pub(crate) async fn verification_link(data_dir: &Path, base: &str) -> String {
    let re = regex::Regex::new(&format!(
        r"{}/verify-email\?token=[A-Za-z0-9_\-]+",
        regex::escape(base)
    ))
    .expect("regex");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let files = std::fs::read_dir(data_dir.join("outbox"));
        let mails: Vec<String> = (files.into_iter().flatten().flatten())
            .filter(|f| f.path().extension().is_some_and(|e| e == "eml"))
            .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
            .collect();
        if let Some(m) = mails.iter().find_map(|m| re.find(m)) {
            return m.as_str().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no email with a whole {base}/verify-email?token= link within 10 s; outbox: {mails:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits up to 10 s for the page's `<h1>` to read `want` (navigation after a click may lag).
pub(crate) async fn expect_heading(b: &Client, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = match b.find(Locator::Css("h1")).await {
            Ok(h) => h.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            let url = b.current_url().await.map(String::from);
            let url = url.unwrap_or_default();
            let src = b.source().await.unwrap_or_default();
            panic!("expected heading {want:?} but found {got:?} at {url}\n{src}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn find(b: &Client, css: &str) -> Element {
    let found = b.find(Locator::Css(css)).await;
    found.unwrap_or_else(|e| panic!("no element {css}: {e}"))
}

pub(crate) async fn goto(b: &Client, url: &str) {
    let done = b.goto(url).await;
    done.unwrap_or_else(|e| panic!("open {url}: {e}"));
}

pub(crate) async fn absent(b: &Client, css: &str) -> bool {
    b.find(Locator::Css(css)).await.is_err()
}

pub(crate) async fn fill(b: &Client, css: &str, value: &str) {
    let field = find(b, css).await;
    let cleared = field.clear().await;
    cleared.unwrap_or_else(|e| panic!("clear {css}: {e}"));
    let typed = field.send_keys(value).await;
    typed.unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

pub(crate) async fn click(b: &Client, css: &str) {
    let clicked = find(b, css).await.click().await;
    clicked.unwrap_or_else(|e| panic!("click {css}: {e}"));
}

pub(crate) async fn text(b: &Client, css: &str) -> String {
    let t = find(b, css).await.text().await;
    let t = t.unwrap_or_else(|e| panic!("text of {css}: {e}"));
    t.trim().to_string()
}

pub(crate) async fn path(b: &Client) -> String {
    let url = b.current_url().await.expect("current URL");
    url.path().to_string()
}

/// The visible text of each row of the sessions table.
async fn rows(b: &Client) -> Vec<String> {
    let rows = b.find_all(Locator::Css("#sessions tbody tr")).await;
    let mut out = Vec::new();
    for r in rows.expect("sessions table rows") {
        out.push(r.text().await.expect("row text"));
    }
    out
}

pub(crate) async fn screenshot(b: &Client, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e-screenshots");
    std::fs::create_dir_all(&dir).expect("create target/e2e-screenshots");
    let png = b.screenshot().await;
    let png = png.unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
    std::fs::write(dir.join(format!("{name}.png")), png)
        .unwrap_or_else(|e| panic!("write screenshot {name}: {e}"));
}
