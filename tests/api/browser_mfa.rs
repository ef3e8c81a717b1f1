//! Second factors in a real browser: headless Chromium (through chromedriver) enrols an
//! authenticator app from the QR page and signs in with a code, and registers a passkey on a
//! virtual WebAuthn authenticator, renames it, signs in with it passwordless and as a second
//! factor, and removes it. The server's public URL is `http://localhost:PORT`: WebAuthn refuses an
//! IP address as relying party ID. Screenshots land in `target/e2e-screenshots/mfa-*.png`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use strongroom::clock::SystemClock;
use strongroom::state::{App, AppState};
use tokio::net::TcpListener;

use crate::browser::{
    absent, click, expect_heading, fill, find, goto, path, screenshot, sign_out, text,
    verification_link, wait_until_answers, CHROMEDRIVER, CHROMIUM, CHROMIUM_ARGS,
};
use crate::support::{self, PASSWORD};

/// What a flow gets: the browser, the server's address and data, and the WebDriver session.
pub(crate) struct Ctx {
    pub(crate) b: Client,
    pub(crate) base: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) app: AppState,
    pub(crate) driver_url: String,
    pub(crate) session_id: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_enrols_totp_and_signs_in_with_a_code() {
    with_browser("TOTP", totp_flow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_registers_a_passkey_and_signs_in_with_it() {
    with_browser("passkey", passkey_flow).await;
}

async fn totp_flow(cx: Ctx) {
    let (b, base) = (&cx.b, cx.base.as_str());
    let email = "totp.browser@example.com";
    sign_up_and_in(&cx, email, "Totp Browser").await;

    // Set up the authenticator app from the QR page.
    click(b, "#setup-totp").await;
    expect_heading(b, "Set up an authenticator app").await;
    let qr = find(b, "#totp-qr").await;
    assert_eq!(qr.tag_name().await.expect("tag of #totp-qr"), "img");
    let src = qr.attr("src").await.expect("src of #totp-qr");
    let src = src.expect("#totp-qr has a src");
    assert!(
        src.starts_with("data:image/svg+xml"),
        "QR src: {}",
        &src[..src.len().min(80)]
    );
    let secret: String = text(b, "#totp-secret").await;
    let secret: String = secret.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(secret.len() >= 16, "base32 secret: {secret:?}");
    screenshot(b, "mfa-01-totp-qr").await;
    fill(b, "#code", &totp_code(&secret, 0)).await;
    click(b, "#confirm-totp").await;

    // Recovery codes, shown once.
    expect_heading(b, "Authenticator app is on").await;
    let codes = b.find_all(Locator::Css("#recovery-codes li")).await;
    let codes = codes.expect("recovery code items");
    assert_eq!(codes.len(), 10, "ten recovery codes");
    for c in &codes {
        let t = c.text().await.expect("recovery code text");
        assert!(!t.trim().is_empty(), "an empty recovery code");
    }
    assert!(!absent(b, "#download-codes").await, "a download link");
    screenshot(b, "mfa-02-recovery-codes").await;
    click(b, "#done").await;
    expect_heading(b, "Account security").await;
    let status = text(b, "#totp-status").await;
    assert!(status.contains("on") && !status.contains("off"), "{status}");

    // Sign out; the password alone now leads to the second step.
    sign_out(b).await;
    expect_heading(b, "Sign in").await;
    password_login(b, base, email).await;
    wait_for_path(b, "/login/mfa").await;
    expect_heading(b, "Two-step sign-in").await;
    assert!(
        absent(b, "#passkey-second-factor").await,
        "no passkey button without passkeys"
    );
    screenshot(b, "mfa-03-mfa-step").await;

    // A wrong code is refused, and burns nothing.
    let valid: Vec<String> = (-1..=2).map(|k| totp_code(&secret, k * 30)).collect();
    let candidates = ["000000", "999999", "123456", "654321", "111111"];
    let wrong = candidates
        .into_iter()
        .find(|c| !valid.iter().any(|v| v == c));
    fill(b, "#code", wrong.expect("a wrong code")).await;
    click(b, "#submit-code").await;
    wait_for(b, "#error").await;
    expect_heading(b, "Two-step sign-in").await;
    assert!(!text(b, "#error").await.is_empty(), "an error message");
    screenshot(b, "mfa-04-wrong-code").await;

    // The next step's code (the enrolment used this step's, and each step works once).
    fill(b, "#code", &totp_code(&secret, 30)).await;
    click(b, "#submit-code").await;
    expect_heading(b, "Home").await;
    assert_eq!(path(b).await, "/");
    goto(b, &format!("{base}/account")).await;
    expect_heading(b, "Account security").await;
    assert_eq!(text(b, "#me-email").await, email);
}

async fn passkey_flow(cx: Ctx) {
    let (b, base) = (&cx.b, cx.base.as_str());
    let email = "passkey.browser@example.com";
    sign_up_and_in(&cx, email, "Passkey Browser").await;
    add_virtual_authenticator(&cx).await;

    // Register a passkey from the account page.
    assert_eq!(passkey_names(b).await, Vec::<String>::new());
    fill(b, "#passkey-name", "Work laptop").await;
    click(b, "#add-passkey").await;
    wait_for_passkeys(b, &["Work laptop"]).await;
    scroll_to(b, "#passkeys").await;
    screenshot(b, "mfa-05-passkey-listed").await;

    // Rename it through its form.
    fill(b, "#passkeys li input[name=name]", "Home laptop").await;
    click(b, "#passkeys li form[action$='/rename'] button").await;
    wait_for_text(b, "#notice", "The passkey was renamed.").await;
    expect_heading(b, "Account security").await;
    assert_eq!(passkey_names(b).await, ["Home laptop"]);
    scroll_to(b, "#passkeys").await;
    screenshot(b, "mfa-06-passkey-renamed").await;

    // Sign out, then back in with the passkey alone.
    sign_out(b).await;
    expect_heading(b, "Sign in").await;
    click(b, "#passkey-login").await;
    wait_for_path(b, "/").await;
    expect_heading(b, "Home").await;
    goto(b, &format!("{base}/account")).await;
    expect_heading(b, "Account security").await;
    assert_eq!(text(b, "#me-email").await, email);
    screenshot(b, "mfa-07-passwordless").await;
    let actions = audit_actions(&cx.app).await;
    for a in ["mfa.passkey_added", "mfa.passkey_renamed"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }

    // The passkey as the second factor after the password.
    sign_out(b).await;
    expect_heading(b, "Sign in").await;
    password_login(b, base, email).await;
    wait_for_path(b, "/login/mfa").await;
    expect_heading(b, "Two-step sign-in").await;
    screenshot(b, "mfa-08-mfa-step-passkey").await;
    click(b, "#passkey-second-factor").await;
    wait_for_path(b, "/").await;
    expect_heading(b, "Home").await;
    goto(b, &format!("{base}/account")).await;
    expect_heading(b, "Account security").await;
    assert_eq!(text(b, "#me-email").await, email);

    // Remove it (the sign-in just now is recent enough; confirm the password if asked anyway).
    let removed = "The passkey was removed and your other sessions were signed out.";
    click(b, ".remove-passkey").await;
    wait_for(b, "#notice, #reauth").await;
    if !absent(b, "#reauth").await {
        eprintln!("removing the passkey asked to confirm the password");
        fill(b, "#password", PASSWORD).await;
        click(b, "#reauth").await;
        wait_for_text(b, "#notice", "Confirmed.").await;
        click(b, ".remove-passkey").await;
    }
    wait_for_text(b, "#notice", removed).await;
    expect_heading(b, "Account security").await;
    assert_eq!(passkey_names(b).await, Vec::<String>::new());
    assert_eq!(text(b, "#passkeys").await, "No passkeys yet.");
    let actions = audit_actions(&cx.app).await;
    assert!(
        actions.iter().any(|x| x == "mfa.passkey_removed"),
        "mfa.passkey_removed in {actions:?}"
    );
}

/// Starts the server (public URL on `localhost`), chromedriver and a browser, runs `flow` in its
/// own task, and tears everything down whether or not it panicked.
pub(crate) async fn with_browser<F, Fut>(label: &str, flow: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_browser_config(label, |_| {}, flow).await;
}

/// `with_browser` with the server's configuration changed by `tweak` first.
pub(crate) async fn with_browser_config<F, Fut>(
    label: &str,
    tweak: impl FnOnce(&mut strongroom::config::Config),
    flow: F,
) where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    for (path, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: install the Debian package {package}"
        );
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let (db_url, pg_db) = support::fresh_database(dir.path()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let port = listener.local_addr().expect("server address").port();
    let base = format!("http://localhost:{port}");
    let mut cfg = support::test_config(dir.path(), db_url);
    cfg.public_url = Some(base.clone());
    tweak(&mut cfg);
    let app = App::build(cfg, Arc::new(SystemClock)).await;
    let app = app.expect("app builds");
    assert!(app.webauthn.is_some(), "passkeys available on {base}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let server = tokio::spawn(strongroom::server::run(app.clone(), listener, shutdown));

    let dport = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
    let dport = dport.expect("a free port for chromedriver").port();
    let mut driver = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={dport}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let driver_url = format!("http://127.0.0.1:{dport}");
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
    let session_id = client.session_id().await.expect("session id");
    let session_id = session_id.expect("a WebDriver session id");

    let cx = Ctx {
        b: client.clone(),
        base,
        data_dir: dir.path().to_path_buf(),
        app,
        driver_url,
        session_id,
    };
    let outcome = tokio::spawn(flow(cx)).await;

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
    eprintln!("browser {label} flow passed in {:.1?}", started.elapsed());
}

/// Signs up, confirms the address from the outbox and signs in with the password.
pub(crate) async fn sign_up_and_in(cx: &Ctx, email: &str, name: &str) {
    let (b, base) = (&cx.b, cx.base.as_str());
    goto(b, &format!("{base}/signup")).await;
    expect_heading(b, "Create your account").await;
    fill(b, "#display_name", name).await;
    fill(b, "#email", email).await;
    fill(b, "#password", PASSWORD).await;
    click(b, "#submit").await;
    expect_heading(b, "Check your email").await;
    goto(b, &verification_link(&cx.data_dir, base).await).await;
    expect_heading(b, "Confirm your email").await;
    click(b, "#confirm").await;
    expect_heading(b, "Email confirmed").await;
    password_login(b, base, email).await;
    expect_heading(b, "Home").await;
    assert_eq!(path(b).await, "/");
    goto(b, &format!("{base}/account")).await;
    expect_heading(b, "Account security").await;
    assert_eq!(text(b, "#me-email").await, email);
}

pub(crate) async fn password_login(b: &Client, base: &str, email: &str) {
    goto(b, &format!("{base}/login")).await;
    expect_heading(b, "Sign in").await;
    fill(b, "#email", email).await;
    fill(b, "#password", PASSWORD).await;
    click(b, "#submit").await;
}

/// The TOTP code for the system time plus `offset_secs` (the server runs on the system clock).
fn totp_code(secret: &str, offset_secs: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).expect("base32 secret");
    let totp = totp_rs::Builder::new()
        .with_secret(secret.as_bytes().to_vec())
        .build()
        .expect("totp");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("time");
    let at = i64::try_from(now.as_secs()).expect("seconds") + offset_secs;
    totp.generate(u64::try_from(at).expect("positive time"))
        .to_string()
}

/// A CTAP2 platform authenticator with resident keys and user verification, through the WebDriver
/// WebAuthn extension; it answers every ceremony without a prompt.
async fn add_virtual_authenticator(cx: &Ctx) {
    let url = format!(
        "{}/session/{}/webauthn/authenticator",
        cx.driver_url, cx.session_id
    );
    let res = reqwest::Client::new()
        .post(&url)
        .json(&json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        }))
        .send()
        .await
        .expect("POST webauthn/authenticator");
    let status = res.status();
    let body: serde_json::Value = res.json().await.expect("JSON answer");
    assert!(status.is_success(), "add authenticator: {status} {body}");
    assert!(body["value"].is_string(), "authenticator id: {body}");
}

/// Waits up to 10 s for the browser to be at `want` (a script may navigate a moment later).
pub(crate) async fn wait_for_path(b: &Client, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = path(b).await;
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            let status = passkey_status(b).await;
            let src = b.source().await.unwrap_or_default();
            panic!("expected to be at {want} but at {got}; passkey status {status:?}\n{src}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits up to 10 s for an element matching `css`.
pub(crate) async fn wait_for(b: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while absent(b, css).await {
        if Instant::now() > deadline {
            let url = b.current_url().await.map(String::from).unwrap_or_default();
            let src = b.source().await.unwrap_or_default();
            panic!("no {css} within 10 s at {url}\n{src}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits up to 10 s for the text of `css` to start with `want`.
pub(crate) async fn wait_for_text(b: &Client, css: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = match b.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if got.trim().starts_with(want) {
            return;
        }
        if Instant::now() > deadline {
            let url = b.current_url().await.map(String::from).unwrap_or_default();
            let src = b.source().await.unwrap_or_default();
            panic!("expected {css} to read {want:?} but found {got:?} at {url}\n{src}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits up to 15 s for the account page to list exactly these passkeys.
async fn wait_for_passkeys(b: &Client, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if path(b).await == "/account" && passkey_names(b).await == want {
            return;
        }
        if Instant::now() > deadline {
            let names = passkey_names(b).await;
            let status = passkey_status(b).await;
            panic!("expected passkeys {want:?}, found {names:?}; passkey status {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The names in the account page's passkey list.
async fn passkey_names(b: &Client) -> Vec<String> {
    let found = b.find_all(Locator::Css("#passkeys .passkey-name")).await;
    let mut out = Vec::new();
    for e in found.unwrap_or_default() {
        out.push(e.text().await.unwrap_or_default().trim().to_string());
    }
    out
}

/// What passkeys.js last said, if the page has its status line.
async fn passkey_status(b: &Client) -> String {
    match b.find(Locator::Css("#passkey-status")).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Scrolls the element `css` into view (for a screenshot).
pub(crate) async fn scroll_to(b: &Client, css: &str) {
    let script = "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})";
    let done = b.execute(script, vec![json!(css)]).await;
    done.unwrap_or_else(|e| panic!("scroll to {css}: {e}"));
}

/// Audit actions of the platform chain, in order.
async fn audit_actions(app: &AppState) -> Vec<String> {
    let mut c = app.db.acquire().await.expect("a database connection");
    let chain = strongroom::audit::load_platform_chain(&mut c).await;
    let chain = chain.expect("the platform audit chain");
    chain.into_iter().map(|e| e.action).collect()
}
