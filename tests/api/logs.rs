//! The logs of a full signup → verify → login → reset run of the real binary hold no password,
//! token, cookie value or full email address.

use serde_json::json;

use crate::support::{ServerProcess, PASSWORD};

fn outbox_token(dir: &std::path::Path, path: &str, seen: &mut Vec<std::path::PathBuf>) -> String {
    let re = regex::Regex::new(&format!(r"{path}\?token=([A-Za-z0-9_\-]+)")).expect("regex");
    for _ in 0..200 {
        if let Ok(rd) = std::fs::read_dir(dir.join("strongroom-data/outbox")) {
            for e in rd.filter_map(Result::ok) {
                if seen.contains(&e.path()) {
                    continue;
                }
                let body = std::fs::read_to_string(e.path()).unwrap_or_default();
                if let Some(c) = re.captures(&body) {
                    seen.push(e.path());
                    return c[1].to_string();
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("no {path} email arrived");
}

#[tokio::test]
async fn logs_of_a_full_run_hold_no_secrets() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = ServerProcess::start(dir.path(), &[("STRONGROOM_LOG_LEVEL", "debug")]).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let post =
        |path: &str, body: serde_json::Value| http.post(format!("{base}{path}")).json(&body).send();
    let email = "victoria.secretname@example.com";
    let mut seen = Vec::new();

    let r = post(
        "/api/v1/auth/signup",
        json!({"email": email, "password": PASSWORD, "display_name": "Victoria"}),
    )
    .await
    .expect("signup");
    assert_eq!(r.status(), 202);
    let verify = outbox_token(dir.path(), "/verify-email", &mut seen);
    assert_eq!(
        post("/api/v1/auth/verify-email", json!({ "token": verify }))
            .await
            .expect("verify")
            .status(),
        200
    );
    let wrong = "a wrong password attempt here";
    assert_eq!(
        post(
            "/api/v1/auth/login",
            json!({"email": email, "password": wrong})
        )
        .await
        .expect("login")
        .status(),
        401
    );
    let r = post(
        "/api/v1/auth/login",
        json!({"email": email, "password": PASSWORD}),
    )
    .await
    .expect("login");
    assert_eq!(r.status(), 200);
    // A login sets the session and the device cookie, in no fixed order.
    let cookie_value = |name: &str| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|c| c.split(';').next()?.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| panic!("no {name} cookie"))
    };
    let cookie = cookie_value("strongroom_session");
    let device = cookie_value("strongroom_device");
    let me = http
        .get(format!("{base}/api/v1/me"))
        .header("cookie", format!("strongroom_session={cookie}"))
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), 200);
    assert_eq!(
        post("/api/v1/auth/password-reset", json!({ "email": email }))
            .await
            .expect("reset")
            .status(),
        202
    );
    let reset = outbox_token(dir.path(), "/reset-password", &mut seen);
    // The reset page carries the token in its URL.
    http.get(format!("{base}/reset-password?token={reset}"))
        .send()
        .await
        .expect("page");
    let new_pw = "the replacement passphrase value";
    let r = post(
        "/api/v1/auth/password-reset/confirm",
        json!({"token": reset, "new_password": new_pw}),
    )
    .await
    .expect("confirm");
    assert_eq!(r.status(), 204);

    let (status, lines) = server.stop().await;
    assert!(status.success());
    let logs = lines.join("\n");
    assert!(
        logs.contains("\"route\":\"/api/v1/auth/login\""),
        "request lines are logged: {logs}"
    );
    assert!(logs.contains("email delivered"));
    for secret in [
        PASSWORD,
        wrong,
        new_pw,
        verify.as_str(),
        reset.as_str(),
        cookie.as_str(),
        device.as_str(),
        email,
        "Victoria",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
}
