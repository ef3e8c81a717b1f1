//! The logs of a full signup → verify → login → reset run hold no password, token, cookie value or
//! full email address.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Req, TestApp, PASSWORD};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn logs_of_a_full_run_hold_no_secrets() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(strongroom::logging::subscriber("trace", capture.clone()));
    let t = TestApp::new().await;
    let email = "victoria.secretname@example.com";
    t.signup(email, "Victoria").await;
    let verify = t.mail_to(email).await.token("/verify-email");
    t.send(Req::post("/api/v1/auth/verify-email").json(json!({ "token": verify })))
        .await;
    let wrong = "a wrong password attempt here";
    t.login_as(email, wrong, "198.51.100.1").await;
    let cookie = t.login(email).await;
    assert_eq!(t.me(&cookie).await.status, StatusCode::OK);
    t.send(Req::post("/api/v1/auth/password-reset").json(json!({ "email": email })))
        .await;
    let reset = t.mail_to(email).await.token("/reset-password");
    let new_pw = "the replacement passphrase value";
    let r = t
        .send(
            Req::post("/api/v1/auth/password-reset/confirm")
                .json(json!({"token": reset, "new_password": new_pw})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // A page flow too: the reset page carries the token in its URL.
    t.send(Req::get(&format!("/reset-password?token={reset}")))
        .await;
    t.new_mail().await;

    let logs = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
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
        email,
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
}
