//! The product in a real browser (headless Chromium through chromedriver): the dashboard, a board
//! whose cards are dragged and stay where they were dropped after a reload, search, the bell and
//! notifications, org settings, and an invitee carried through sign-up straight to acceptance.
//! Every page visited is checked with axe-core (from the npm registry, injected into the page):
//! no serious or critical violation. Screenshots at 1280 and 390 px wide land in
//! `target/e2e-screenshots/product-*-{1280,390}.png`.

use std::path::Path;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{json, Value};

use crate::browser::{click, expect_heading, fill, find, goto, path, screenshot, sign_out, text};
use crate::browser_mfa::{
    password_login, scroll_to, sign_up_and_in, wait_for, wait_for_text, with_browser, Ctx,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_dashboard_board_search_notifications_settings_and_invitation() {
    with_browser("product", product_flow).await;
}

/// axe-core's script: `AXE_CORE_JS`, else `target/axe/node_modules/axe-core/axe.min.js`,
/// installed there from the npm registry on first use.
fn axe_source() -> String {
    if let Ok(p) = std::env::var("AXE_CORE_JS") {
        return std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("AXE_CORE_JS={p}: {e}"));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/axe");
    let file = root.join("node_modules/axe-core/axe.min.js");
    if !file.exists() {
        let status = std::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&root)
            .arg("axe-core@4.10")
            .status()
            .expect("run npm (install the Debian package npm) to fetch axe-core");
        assert!(status.success(), "npm install axe-core failed");
    }
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Runs axe-core on the current page; fails on any serious or critical violation.
async fn axe(b: &Client, what: &str) {
    let src = axe_source();
    b.execute(&format!("{src}\nreturn true;"), vec![])
        .await
        .unwrap_or_else(|e| panic!("inject axe-core on {what}: {e}"));
    let script = "const done = arguments[arguments.length - 1];\
        axe.run(document, { resultTypes: ['violations'] }).then(\
          (r) => done(r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,\
            nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }))),\
          (e) => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));";
    let got = b
        .execute_async(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("axe on {what}: {e}"));
    let bad: Vec<&Value> = got
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|x| matches!(x["impact"].as_str(), Some("serious" | "critical")))
                .collect()
        })
        .unwrap_or_default();
    assert!(bad.is_empty(), "axe-core on {what}: {bad:#?}");
}

/// A screenshot at 1280 and at 390 px wide, after checking the page with axe-core at each.
pub(crate) async fn shots(b: &Client, name: &str) {
    for (w, h) in [(1280, 900), (390, 844)] {
        b.set_window_size(w, h).await.expect("window size");
        tokio::time::sleep(Duration::from_millis(150)).await;
        // Nothing may overflow the page sideways (wide tables and boards scroll in themselves).
        let overflow = b
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth + 1;",
                vec![],
            )
            .await
            .expect("measure");
        assert_eq!(overflow, json!(false), "{name} overflows at {w} px");
        axe(b, &format!("{name} at {w} px")).await;
        screenshot(b, &format!("product-{name}-{w}")).await;
    }
    b.set_window_size(1280, 900).await.expect("window size");
}

/// The newest link to `{base}{prefix}…` in an email to `to` in the outbox (quoted-printable
/// bodies decoded).
async fn link_in_outbox(data_dir: &Path, base: &str, prefix: &str, to: &str) -> String {
    let re = regex::Regex::new(&format!(
        r"{}{}[A-Za-z0-9_\-=%.]+",
        regex::escape(base),
        regex::escape(prefix)
    ))
    .expect("regex");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut mails: Vec<(std::time::SystemTime, String)> =
            std::fs::read_dir(data_dir.join("outbox"))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|f| f.path().extension().is_some_and(|e| e == "eml"))
                .map(|f| {
                    let at = f
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    let raw = std::fs::read(f.path()).unwrap_or_default();
                    let qp = String::from_utf8_lossy(&raw)
                        .contains("Content-Transfer-Encoding: quoted-printable");
                    // Only a quoted-printable body is decoded: "=D0" in a 7bit URL is text.
                    let body = if qp {
                        quoted_printable::decode(&raw, quoted_printable::ParseMode::Robust)
                            .unwrap_or(raw)
                    } else {
                        raw
                    };
                    (at, String::from_utf8_lossy(&body).into_owned())
                })
                .filter(|(_, m)| m.contains(&format!("To: {to}")))
                .collect();
        mails.sort();
        if let Some(m) = mails.iter().rev().find_map(|(_, m)| re.find(m)) {
            return m.as_str().to_string();
        }
        if Instant::now() > deadline {
            let all: Vec<String> = std::fs::read_dir(data_dir.join("outbox"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
                .collect();
            panic!("no {prefix} link to {to} within 10 s; outbox: {all:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The item titles of a board column, top to bottom.
async fn column_titles(b: &Client, status: &str) -> Vec<String> {
    let got = b
        .execute(
            "return Array.from(document.querySelectorAll(`.column[data-status='${arguments[0]}'] .card > a`)).map((a) => a.textContent.trim());",
            vec![json!(status)],
        )
        .await
        .expect("column titles");
    serde_json::from_value(got).unwrap_or_default()
}

/// Drags the card titled `title` onto the upper half of the card titled `onto` (it lands before
/// it), or onto the column `status` when `onto` is None (it lands last), with the DragEvents a
/// user's drag makes (WebDriver's pointer actions do not start an HTML5 drag in Chromium).
async fn drag(b: &Client, title: &str, onto: Option<&str>, status: &str) {
    let script = "const [title, onto, status] = arguments;\
        const card = (t) => Array.from(document.querySelectorAll('.card')).find((c) => c.querySelector('a').textContent.trim() === t);\
        const from = card(title);\
        const target = onto ? card(onto) : document.querySelector(`.column[data-status='${status}'] .cards`);\
        const dt = new DataTransfer();\
        const fire = (el, type, y) => el.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt, clientY: y }));\
        const r = target.getBoundingClientRect();\
        const y = onto ? r.top + 2 : r.bottom + 50;\
        fire(from, 'dragstart', 0); fire(target, 'dragover', y); fire(target, 'drop', y); fire(from, 'dragend', 0);\
        return true;";
    b.execute(script, vec![json!(title), json!(onto), json!(status)])
        .await
        .expect("drag");
    wait_for_text(b, "#board-status", &format!("Moved “{title}”")).await;
}

/// Emulates the dark colour scheme (on) or the system's (off) through chromedriver's DevTools
/// bridge.
async fn dark(cx: &Ctx, on: bool) {
    let url = format!(
        "{}/session/{}/goog/cdp/execute",
        cx.driver_url, cx.session_id
    );
    let features = if on {
        json!([{ "name": "prefers-color-scheme", "value": "dark" }])
    } else {
        json!([])
    };
    let res = reqwest::Client::new()
        .post(&url)
        .json(&json!({ "cmd": "Emulation.setEmulatedMedia", "params": { "features": features } }))
        .send()
        .await
        .expect("POST goog/cdp/execute");
    assert!(
        res.status().is_success(),
        "emulate the colour scheme: {}",
        res.status()
    );
}

async fn new_item(b: &Client, title: &str) {
    fill(b, "#item-title", title).await;
    click(b, "#create-item").await;
    // The new page (the notice alone could be the previous page's).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !column_titles(b, "todo").await.iter().any(|t| t == title) {
        assert!(Instant::now() < deadline, "{title} not on the board");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_text(b, "#notice", "The item was added.").await;
}

async fn new_deal_item(b: &Client, title: &str) {
    fill(b, "#item-title", title).await;
    click(b, "#create-item").await;
    wait_for(b, "#items tbody tr[data-item-id]").await;
    wait_for_text(b, "#notice", "The item was added.").await;
}

async fn product_flow(cx: Ctx) {
    let (b, base) = (&cx.b, cx.base.clone());
    sign_up_and_in(&cx, "olga@example.com", "Olga Owner").await;

    // The dashboard, empty.
    goto(b, &format!("{base}/")).await;
    expect_heading(b, "Home").await;
    find(b, "#nothing-assigned").await;
    shots(b, "dashboard-empty").await;

    // An org and a board, through the pages.
    goto(b, &format!("{base}/orgs")).await;
    fill(b, "#org-name", "Acme").await;
    click(b, "#create-org").await;
    expect_heading(b, "Acme").await;
    let org_path = path(b).await;
    fill(b, "#ws-name", "Launch").await;
    click(b, "#create-workspace").await;
    expect_heading(b, "Launch").await;
    let board = path(b).await;
    for t in ["Alpha", "Bravo", "Charlie"] {
        new_item(b, t).await;
    }
    assert_eq!(
        column_titles(b, "todo").await,
        ["Alpha", "Bravo", "Charlie"]
    );

    // Drag and drop: Charlie to the top of its column, Alpha to "Doing"; kept after a reload.
    drag(b, "Charlie", Some("Alpha"), "todo").await;
    drag(b, "Alpha", None, "doing").await;
    assert_eq!(text(b, ".column[data-status='doing'] .count").await, "1");
    b.refresh().await.expect("reload");
    expect_heading(b, "Launch").await;
    assert_eq!(column_titles(b, "todo").await, ["Charlie", "Bravo"]);
    assert_eq!(column_titles(b, "doing").await, ["Alpha"]);
    // And with the keyboard: Bravo up above Charlie.
    b.execute(
        "const a = Array.from(document.querySelectorAll('.card > a')).find((x) => x.textContent.trim() === 'Bravo'); a.focus();\
         a.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowUp', altKey: true, bubbles: true, cancelable: true })); return true;",
        vec![],
    )
    .await
    .expect("keyboard move");
    wait_for_text(b, "#board-status", "Moved “Bravo”").await;
    b.refresh().await.expect("reload");
    expect_heading(b, "Launch").await;
    assert_eq!(column_titles(b, "todo").await, ["Bravo", "Charlie"]);
    shots(b, "board").await;

    // An item with a Markdown description and labels.
    click(b, ".column[data-status='doing'] .card > a").await;
    expect_heading(b, "Alpha").await;
    fill(b, "#edit-labels", "legal, urgent").await;
    fill(
        b,
        "#edit-description",
        "## Plan\n\n* **sign** the NDA\n* [portal](https://example.com)",
    )
    .await;
    click(b, "#save-item").await;
    wait_for_text(b, "#notice", "The item was saved.").await;
    assert_eq!(text(b, "#item-description h2").await, "Plan");
    shots(b, "item").await;

    // Search from the org page.
    goto(b, &format!("{base}{org_path}")).await;
    fill(b, "#org-search-q", "charlie").await;
    click(b, "#org-search button").await;
    expect_heading(b, "Search").await;
    assert_eq!(text(b, "#results li a").await, "Charlie");
    shots(b, "search").await;

    // Invite Nina, who has no account yet; and Bob, who will be notified.
    goto(b, &format!("{base}{org_path}")).await;
    fill(b, "#invite-email", "nina@example.com").await;
    click(b, "#send-invitation").await;
    wait_for_text(b, "#notice", "The invitation was sent.").await;
    let invitation = link_in_outbox(
        &cx.data_dir,
        &base,
        "/invitations/accept?token=",
        "nina@example.com",
    )
    .await;
    sign_out(b).await;

    // Nina opens the link signed out, signs up, confirms, signs in: straight to the invitation.
    goto(b, &invitation).await;
    expect_heading(b, "Join an organization").await;
    assert_eq!(text(b, "#invitation-org").await, "Acme");
    shots(b, "invitation-signed-out").await;
    click(b, "#signup-link").await;
    expect_heading(b, "Create your account").await;
    fill(b, "#display_name", "Nina").await;
    fill(b, "#email", "nina@example.com").await;
    fill(b, "#password", crate::support::PASSWORD).await;
    click(b, "#submit").await;
    expect_heading(b, "Check your email").await;
    let verify = link_in_outbox(
        &cx.data_dir,
        &base,
        "/verify-email?token=",
        "nina@example.com",
    )
    .await;
    goto(b, &verify).await;
    click(b, "#confirm").await;
    expect_heading(b, "Email confirmed").await;
    password_login(b, &base, "nina@example.com").await;
    expect_heading(b, "Join an organization").await;
    click(b, "#accept-invitation").await;
    expect_heading(b, "Acme").await;
    assert_eq!(path(b).await, org_path);
    sign_out(b).await;

    // Olga gives Nina the board and assigns her Bravo: Nina's bell shows it.
    password_login(b, &base, "olga@example.com").await;
    expect_heading(b, "Home").await;
    goto(b, &format!("{base}{board}")).await;
    let nina_option = b
        .execute(
            "return Array.from(document.querySelectorAll('#access-user option')).find((o) => o.textContent.startsWith('Nina')).value;",
            vec![],
        )
        .await
        .expect("Nina's option");
    let nina_id = nina_option.as_str().expect("id").to_string();
    find(b, "#access-user")
        .await
        .select_by_value(&nina_id)
        .await
        .expect("select Nina");
    find(b, "#access-role")
        .await
        .select_by_value("editor")
        .await
        .expect("select editor");
    click(b, "#grant-access").await;
    wait_for_text(b, "#notice", "Access to the workspace was updated.").await;
    b.execute(
        "const a = Array.from(document.querySelectorAll('.card > a')).find((x) => x.textContent.trim() === 'Bravo'); a.click(); return true;",
        vec![],
    )
    .await
    .expect("open Bravo");
    expect_heading(b, "Bravo").await;
    find(b, "#edit-assignee")
        .await
        .select_by_value(&nina_id)
        .await
        .expect("assign");
    click(b, "#save-item").await;
    wait_for_text(b, "#notice", "The item was saved.").await;
    shots(b, "dashboard-owner").await;
    sign_out(b).await;
    password_login(b, &base, "nina@example.com").await;
    expect_heading(b, "Home").await;
    assert_eq!(text(b, "#assigned li a").await, "Bravo");
    assert!(
        text(b, "#unread-count").await.starts_with('2'),
        "access and assignment"
    );
    shots(b, "dashboard").await;
    click(b, "#bell").await;
    expect_heading(b, "Notifications").await;
    shots(b, "notifications").await;
    click(b, "#notifications li a").await;
    expect_heading(b, "Bravo").await;
    goto(b, &format!("{base}/")).await;
    assert!(text(b, "#unread-count").await.starts_with('1'));
    goto(b, &format!("{base}/account/notifications")).await;
    expect_heading(b, "Notification settings").await;
    shots(b, "notification-settings").await;
    goto(b, &format!("{base}/account")).await;
    expect_heading(b, "Account security").await;
    // Your data: an export, built and offered for download; a deletion scheduled, then
    // cancelled.
    scroll_to(b, "#export-data").await;
    click(b, "#export-data").await;
    wait_for_text(b, "#notice", "Your export is being prepared").await;
    strongroom::exports::run_once(&cx.app)
        .await
        .expect("export");
    goto(b, &format!("{base}/account")).await;
    wait_for(b, "#exports a.button").await;
    scroll_to(b, "#your-data").await;
    shots(b, "account").await;
    scroll_to(b, "#delete-account").await;
    click(b, "#delete-account").await;
    wait_for_text(b, "#notice", "Your account will be deleted on").await;
    scroll_to(b, "#deletion-status").await;
    shots(b, "account-deletion-scheduled").await;
    scroll_to(b, "#cancel-deletion").await;
    click(b, "#cancel-deletion").await;
    wait_for_text(b, "#notice", "The deletion of your account is cancelled.").await;
    sign_out(b).await;

    // The other pages pass axe-core too: signed out, then as the owner.
    for (page, heading) in [
        ("/login", "Sign in"),
        ("/signup", "Create your account"),
        ("/forgot-password", "Reset your password"),
    ] {
        goto(b, &format!("{base}{page}")).await;
        expect_heading(b, heading).await;
        shots(b, &page[1..]).await;
    }
    password_login(b, &base, "olga@example.com").await;
    expect_heading(b, "Home").await;
    goto(b, &format!("{base}{org_path}")).await;
    fill(b, "#ws-name", "Deal").await;
    find(b, "#ws-kind")
        .await
        .select_by_value("deal")
        .await
        .expect("deal room");
    click(b, "#create-workspace").await;
    expect_heading(b, "Deal").await;
    new_deal_item(b, "Term sheet").await;
    shots(b, "deal-room").await;
    for (page, heading, name) in [
        ("/orgs".to_string(), "Organizations", "orgs"),
        (org_path.clone(), "Acme", "org"),
        (format!("{org_path}/audit"), "Audit log", "audit"),
        ("/no-such-page".to_string(), "Page not found", "not-found"),
        ("/logout".to_string(), "Sign out", "logout"),
    ] {
        goto(b, &format!("{base}{page}")).await;
        expect_heading(b, heading).await;
        shots(b, name).await;
    }
    // The dark theme passes too (colour contrast above all).
    dark(&cx, true).await;
    let is_dark = b
        .execute(
            "return matchMedia('(prefers-color-scheme: dark)').matches;",
            vec![],
        )
        .await
        .expect("media query");
    assert_eq!(is_dark, json!(true));
    for (page, heading, name) in [
        ("/".to_string(), "Home", "dark-dashboard"),
        (board.clone(), "Launch", "dark-board"),
        (org_path.clone(), "Acme", "dark-org"),
    ] {
        goto(b, &format!("{base}{page}")).await;
        expect_heading(b, heading).await;
        shots(b, name).await;
    }
    dark(&cx, false).await;
    goto(b, &format!("{base}/")).await;
    expect_heading(b, "Home").await;

    // Org settings: rename, then delete with the typed name (the sign-in was recent).
    goto(b, &format!("{base}{org_path}/settings")).await;
    expect_heading(b, "Organization settings").await;
    fill(b, "#org-new-name", "Acme Ltd").await;
    click(b, "#rename-org").await;
    wait_for_text(b, "#notice", "The organization was renamed.").await;
    shots(b, "org-settings").await;
    fill(b, "#confirm-name", "Acme").await;
    click(b, "#delete-org").await;
    wait_for(b, "#confirm-name[aria-invalid='true']").await;
    let focused = b
        .execute(
            "return document.activeElement && document.activeElement.id;",
            vec![],
        )
        .await
        .expect("focus");
    assert_eq!(
        focused,
        json!("confirm-name"),
        "focus on the field in error"
    );
    fill(b, "#confirm-name", "Acme Ltd").await;
    click(b, "#delete-org").await;
    wait_for(b, "#notice, #reauth").await;
    if b.find(Locator::Css("#reauth")).await.is_ok() {
        fill(b, "#password", crate::support::PASSWORD).await;
        click(b, "#reauth").await;
        expect_heading(b, "Organization settings").await;
        fill(b, "#confirm-name", "Acme Ltd").await;
        click(b, "#delete-org").await;
    }
    wait_for_text(b, "#notice", "The organization was deleted").await;
    assert_eq!(path(b).await, "/orgs");
}
