//! The server-rendered pages: they work without JavaScript, carry no inline script or style, and
//! show clear errors.

use axum::http::StatusCode;

use crate::support::{Req, TestApp, PASSWORD};

#[tokio::test]
async fn pages_render_without_inline_script_or_style() {
    let t = TestApp::new().await;
    for path in [
        "/signup",
        "/login",
        "/forgot-password",
        "/reset-password?token=x",
        "/verify-email?token=x",
    ] {
        let r = t.send(Req::get(path)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let html = r.text();
        assert!(
            html.contains("<form") && (html.contains("<label") || path.starts_with("/verify")),
            "{path}"
        );
        // Scripts only as files from this site; no inline script, handlers or styles.
        for tag in html.split("<script").skip(1) {
            let head = tag.split("</script>").next().unwrap_or_default();
            assert!(
                head.starts_with(" src=\"/static/")
                    && head.ends_with('>')
                    && head.matches('>').count() == 1,
                "{path}: inline script"
            );
        }
        assert!(
            !html.contains("style=") && !html.contains(" onclick") && !html.contains(" onload"),
            "{path}: inline code"
        );
    }
    let r = t.send(Req::get("/account")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location").as_deref(), Some("/login"));
}

#[tokio::test]
async fn form_flow_signup_verify_login_account_logout() {
    let t = TestApp::new().await;
    let r = t
        .send(Req::post("/signup").form(&[
            ("display_name", "Nia"),
            ("email", "nia@example.com"),
            ("password", "short"),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("role=\"alert\"") && r.text().contains("at least 15"));
    assert!(
        r.text().contains("value=\"nia@example.com\""),
        "the form keeps what was typed"
    );
    let r = t
        .send(Req::post("/signup").form(&[
            ("display_name", "Nia <b>"),
            ("email", "nia@example.com"),
            ("password", PASSWORD),
        ]))
        .await;
    assert!(r.text().contains("Check your email"));
    let token = t.mail_to("nia@example.com").await.token("/verify-email");
    // Opening the link changes nothing until the button is pressed (mail scanners prefetch links).
    assert!(t
        .send(Req::get(&format!("/verify-email?token={token}")))
        .await
        .text()
        .contains(&token));
    let r = t
        .send(Req::post("/verify-email").form(&[("token", &token)]))
        .await;
    assert!(r.text().contains("Email confirmed"));
    let r = t
        .send(Req::post("/login").form(&[
            ("email", "nia@example.com"),
            ("password", "wrong wrong wrong wrong"),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("not correct"));
    let r = t
        .send(Req::post("/login").form(&[("email", "nia@example.com"), ("password", PASSWORD)]))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let cookie = r.session_cookie().expect("cookie");
    let page = t.send(Req::get("/account").cookie(&cookie)).await.text();
    assert!(page.contains("Nia &lt;b&gt;"), "names are escaped");
    assert!(page.contains("This session"));
    // Revoke another session from the page, then change the password there.
    let other = t.login("nia@example.com").await;
    let other_id = t
        .send(Req::get("/api/v1/me/sessions").cookie(&other))
        .await
        .json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|s| s["current"] == true)
        .and_then(|s| s["id"].as_str().map(str::to_string))
        .expect("id");
    let page = t.send(Req::get("/account").cookie(&cookie)).await.text();
    assert!(page.contains(&format!("/account/sessions/{other_id}/revoke")));
    let r = t
        .send(Req::post(&format!("/account/sessions/{other_id}/revoke")).cookie(&cookie))
        .await;
    assert!(r.text().contains("That session was signed out."));
    assert_eq!(t.me(&other).await.status, StatusCode::UNAUTHORIZED);
    let r = t
        .send(Req::post("/account/password").cookie(&cookie).form(&[
            ("current_password", "nope nope nope"),
            ("new_password", "x"),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("current password is not correct"));
    let r = t.send(Req::post("/logout").cookie(&cookie)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(t.me(&cookie).await.status, StatusCode::UNAUTHORIZED);
}
