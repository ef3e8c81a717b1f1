//! The product pages without a browser: the dashboard, the header, notifications and their
//! settings, boards (statuses, moves, filters, deletion), the deal-room table, Markdown, search,
//! org settings and the signed-out invitee carried through sign-in. Every form answers with a
//! redirect (Post/Redirect/Get) and a failed one shows its error tied to its field.

use axum::http::StatusCode;
use serde_json::json;

use crate::org_pages::{assert_clean, page, submit, submit_ok, user, user_id};
use crate::support::{Req, TestApp};

async fn org_with_board(t: &TestApp, c: &str, kind: &str) -> (String, String) {
    let org = submit_ok(t, c, "/orgs", &[("name", "Acme")]).await;
    let org = crate::org_pages::id_in(&org, "/orgs/");
    let ws = submit_ok(
        t,
        c,
        &format!("/orgs/{org}/workspaces"),
        &[("name", "Launch"), ("kind", kind), ("description", "")],
    )
    .await;
    let ws = crate::org_pages::id_in(&ws, &format!("/orgs/{org}/workspaces/"));
    (org, ws)
}

async fn api_item(t: &TestApp, c: &str, org: &str, ws: &str, body: serde_json::Value) -> String {
    let r = t
        .send(
            Req::post(&format!("/api/v1/orgs/{org}/workspaces/{ws}/items"))
                .cookie(c)
                .json(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn the_home_is_a_dashboard_with_empty_states_then_my_work() {
    let t = TestApp::new().await;
    // Signed out: the sign-in page.
    let r = t.send(Req::get("/")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location").as_deref(), Some("/login"));
    let c = user(&t, "olga@example.com", "Olga").await;
    // Signing in lands on the dashboard.
    let r = t
        .send(Req::post("/login").form(&[
            ("email", "olga@example.com"),
            ("password", crate::support::PASSWORD),
        ]))
        .await;
    assert_eq!(r.header("location").as_deref(), Some("/"));
    let html = page(&t, &c, "/").await;
    assert!(html.contains("<h1>Home</h1>"));
    for id in [
        "nothing-assigned",
        "no-orgs",
        "account-menu",
        "bell",
        "org-switcher",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(html.contains("class=\"skip-link\" href=\"#main\""));
    let (org, ws) = org_with_board(&t, &c, "board").await;
    let me = user_id(&t, &c).await;
    api_item(
        &t,
        &c,
        &org,
        &ws,
        json!({"title": "Late report", "assignee_id": me, "due_on": "2026-01-01"}),
    )
    .await;
    api_item(
        &t,
        &c,
        &org,
        &ws,
        json!({"title": "Future plan", "assignee_id": me, "due_on": "2099-05-01"}),
    )
    .await;
    let html = page(&t, &c, "/").await;
    let assigned = html
        .split("id=\"assigned\"")
        .nth(1)
        .expect("the assigned list");
    let late = assigned.find("Late report").expect("late");
    let future = assigned.find("Future plan").expect("future");
    assert!(late < future, "overdue first");
    assert!(
        assigned.contains("class=\"overdue\"") && assigned.contains("<strong>Overdue</strong>")
    );
    assert!(html.contains("id=\"my-orgs\"") && html.contains("Acme"));
    // The org switcher lists the org.
    let switcher = html.split("id=\"org-switcher\"").nth(1).expect("switcher");
    assert!(switcher.contains(&format!("href=\"/orgs/{org}\"")));
}

#[tokio::test]
async fn the_bell_counts_and_the_notifications_page_opens_marks_and_sets() {
    let t = TestApp::new().await;
    let olga = user(&t, "olga@example.com", "Olga").await;
    let bob = user(&t, "bob@example.com", "Bob").await;
    let (org, ws) = org_with_board(&t, &olga, "board").await;
    t.join(&olga, &org, "bob@example.com", "member", &bob).await;
    let bob_id = user_id(&t, &bob).await;
    submit_ok(
        &t,
        &olga,
        &format!("/orgs/{org}/workspaces/{ws}/members"),
        &[("user_id", &bob_id), ("role", "editor")],
    )
    .await;
    let item = api_item(
        &t,
        &olga,
        &org,
        &ws,
        json!({"title": "Sign <NDA>", "assignee_id": bob_id}),
    )
    .await;
    let html = page(&t, &bob, "/").await;
    assert!(
        html.contains("id=\"unread-count\">3<"),
        "invited, added, assigned"
    );
    assert!(html.contains("Olga assigned you “Sign &lt;NDA&gt;”"));
    let html = page(&t, &bob, "/notifications").await;
    assert_eq!(html.matches("class=\"unread\"").count(), 3);
    // Opening one marks it read and goes to the item.
    let list = t
        .send(Req::get("/api/v1/me/notifications").cookie(&bob))
        .await
        .json();
    let assigned = list["items"][0]["id"].as_str().expect("id").to_string();
    let r = t
        .send(Req::get(&format!("/notifications/{assigned}/open")).cookie(&bob))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.header("location"),
        Some(format!("/orgs/{org}/workspaces/{ws}/items/{item}"))
    );
    assert!(page(&t, &bob, "/").await.contains("id=\"unread-count\">2<"));
    // Someone else's notification is not found, and stays unread.
    let r = t
        .send(Req::get(&format!("/notifications/{assigned}/open")).cookie(&olga))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Mark all read (a form, then a redirect).
    let loc = submit_ok(&t, &bob, "/notifications/read", &[]).await;
    assert_eq!(loc, "/notifications?done=read");
    let html = page(&t, &bob, &loc).await;
    assert!(!html.contains("class=\"unread\"") && !html.contains("id=\"unread-count\""));
    // Settings: every box on by default; an unchecked box turns that channel off.
    let html = page(&t, &bob, "/account/notifications").await;
    assert_eq!(html.matches(" checked").count(), 8);
    let loc = submit_ok(
        &t,
        &bob,
        "/account/notifications",
        &[
            ("assigned.in_app", "on"),
            ("mentioned.in_app", "on"),
            ("mentioned.email", "on"),
        ],
    )
    .await;
    assert_eq!(loc, "/account/notifications?done=saved");
    let got = t
        .send(Req::get("/api/v1/me/notification-settings").cookie(&bob))
        .await
        .json();
    assert_eq!(got["assigned"], json!({"in_app": true, "email": false}));
    assert_eq!(got["invited"], json!({"in_app": false, "email": false}));
    assert_eq!(
        page(&t, &bob, "/account/notifications")
            .await
            .matches(" checked")
            .count(),
        3
    );
}

#[tokio::test]
async fn boards_manage_statuses_move_filter_and_delete_with_confirmation() {
    let t = TestApp::new().await;
    let c = user(&t, "olga@example.com", "Olga").await;
    let (org, ws) = org_with_board(&t, &c, "board").await;
    let base = format!("/orgs/{org}/workspaces/{ws}");
    let me = user_id(&t, &c).await;
    let a = api_item(
        &t,
        &c,
        &org,
        &ws,
        json!({"title": "Alpha", "labels": ["legal"], "assignee_id": me}),
    )
    .await;
    let b = api_item(
        &t,
        &c,
        &org,
        &ws,
        json!({"title": "Beta", "description": "about the venue"}),
    )
    .await;
    let html = page(&t, &c, &base).await;
    assert!(html.contains("<h2 id=\"col-1\">To do</h2>"));
    assert!(html.contains(&format!(
        "data-move-api=\"/api/v1/orgs/{org}/workspaces/{ws}/items/\""
    )));
    assert!(html.contains("<script type=\"module\" src=\"/static/board.js\"></script>"));
    // The statuses form: rename "doing", put "done" first, add "Review".
    let form = [
        ("key", "todo"),
        ("name", "Backlog"),
        ("order", "2"),
        ("key", "doing"),
        ("name", "In progress"),
        ("order", "3"),
        ("key", "done"),
        ("name", "Shipped"),
        ("order", "1"),
        ("new_name", "Review"),
    ];
    assert_eq!(
        submit_ok(&t, &c, &format!("{base}/statuses"), &form).await,
        format!("{base}?done=statuses")
    );
    let ws_json = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/workspaces/{ws}")).cookie(&c))
        .await
        .json();
    let names: Vec<&str> = ws_json["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, vec!["Shipped", "Backlog", "In progress", "Review"]);
    // Removing a status that holds items: 409, said on the page, nothing changed.
    let r = submit(
        &t,
        &c,
        &format!("{base}/statuses"),
        &[
            ("key", "done"),
            ("name", "Shipped"),
            ("order", "1"),
            ("key", "todo"),
            ("name", "Backlog"),
            ("order", "2"),
            ("remove", "todo"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text().contains("role=\"alert\"") && r.text().contains("still holds items"));
    // The move form without JavaScript.
    let loc = submit_ok(
        &t,
        &c,
        &format!("{base}/items/{a}/move"),
        &[("status", "done")],
    )
    .await;
    assert_eq!(loc, format!("{base}?done=moved"));
    let html = page(&t, &c, &loc).await;
    let done = html
        .split("data-status=\"done\"")
        .nth(1)
        .expect("done column")
        .split("</section>")
        .next()
        .unwrap_or("");
    assert!(done.contains("Alpha"));
    // Filters: by label, assignee and text.
    let only = |html: &str| -> (bool, bool) { (html.contains(">Alpha<"), html.contains(">Beta<")) };
    assert_eq!(
        only(&page(&t, &c, &format!("{base}?label=legal")).await),
        (true, false)
    );
    assert_eq!(
        only(&page(&t, &c, &format!("{base}?assignee=none")).await),
        (false, true)
    );
    assert_eq!(
        only(&page(&t, &c, &format!("{base}?q=VENUE")).await),
        (false, true)
    );
    assert!(page(&t, &c, &format!("{base}?q=venue"))
        .await
        .contains("Showing 1 of 2 items."));
    // Deleting: the link opens a confirmation; only its form deletes.
    let html = page(&t, &c, &format!("{base}/items/{b}")).await;
    assert!(html.contains(&format!("href=\"{base}/items/{b}/delete\"")));
    let html = page(&t, &c, &format!("{base}/items/{b}/delete")).await;
    assert!(html.contains("id=\"confirm-delete-item\"") && html.contains("Beta"));
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}/workspaces/{ws}/items/{b}")).cookie(&c))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        submit_ok(&t, &c, &format!("{base}/items/{b}/delete"), &[]).await,
        format!("{base}?done=item_deleted")
    );
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}/workspaces/{ws}/items/{b}")).cookie(&c))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // A viewer sees no move form, no statuses form, no delete; their posts are refused.
    let vic = user(&t, "vic@example.com", "Vic").await;
    t.join(&c, &org, "vic@example.com", "member", &vic).await;
    let vic_id = user_id(&t, &vic).await;
    submit_ok(
        &t,
        &c,
        &format!("{base}/members"),
        &[("user_id", &vic_id), ("role", "viewer")],
    )
    .await;
    let html = page(&t, &vic, &base).await;
    assert!(
        !html.contains("class=\"move\"")
            && !html.contains("statuses-form")
            && !html.contains("draggable")
            && !html.contains("data-move-api")
    );
    assert_eq!(
        submit(
            &t,
            &vic,
            &format!("{base}/items/{a}/move"),
            &[("status", "todo")]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.send(Req::get(&format!("{base}/items/{a}/delete")).cookie(&vic))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        submit(&t, &vic, &format!("{base}/items/{a}/delete"), &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_deal_room_is_a_sortable_table_and_descriptions_render_safely() {
    let t = TestApp::new().await;
    let c = user(&t, "olga@example.com", "Olga").await;
    let (org, ws) = org_with_board(&t, &c, "deal").await;
    let base = format!("/orgs/{org}/workspaces/{ws}");
    api_item(
        &t,
        &c,
        &org,
        &ws,
        json!({"title": "Bravo", "due_on": "2099-01-02"}),
    )
    .await;
    let it = api_item(&t, &c, &org, &ws, json!({"title": "Alpha", "due_on": "2099-03-01",
        "description": "# Terms\n\n**Net 30** [site](https://example.com) [x](javascript:alert(1))\n\n<script>alert(1)</script><img src=x onerror=alert(1)>"})).await;
    let html = page(&t, &c, &base).await;
    assert!(
        html.find(">Alpha<").expect("a") < html.find(">Bravo<").expect("b"),
        "by title"
    );
    assert!(html.contains("<th scope=\"col\" aria-sort=\"ascending\"><a href="));
    let html = page(&t, &c, &format!("{base}?sort=due&dir=desc")).await;
    assert!(
        html.find(">Alpha<").expect("a") < html.find(">Bravo<").expect("b"),
        "latest due first"
    );
    assert!(html.contains("aria-sort=\"descending\""));
    let html = page(&t, &c, &format!("{base}?sort=due&dir=asc")).await;
    assert!(html.find(">Bravo<").expect("b") < html.find(">Alpha<").expect("a"));
    // The item page renders the Markdown, and nothing that runs.
    let html = page(&t, &c, &format!("{base}/items/{it}")).await;
    let desc = html
        .split("id=\"item-description\">")
        .nth(1)
        .expect("description")
        .split("</div>")
        .next()
        .unwrap_or("");
    assert!(
        desc.contains("<h1>Terms</h1>") && desc.contains("<strong>Net 30</strong>"),
        "{desc}"
    );
    assert!(
        desc.contains(
            "<a href=\"https://example.com\" rel=\"noopener noreferrer nofollow\">site</a>"
        ),
        "{desc}"
    );
    assert!(
        !desc.contains("javascript:") && !desc.contains("<script") && !desc.contains("<img"),
        "{desc}"
    );
}

#[tokio::test]
async fn the_search_page_finds_what_the_caller_may_see() {
    let t = TestApp::new().await;
    let c = user(&t, "olga@example.com", "Olga").await;
    let (org, ws) = org_with_board(&t, &c, "board").await;
    api_item(&t, &c, &org, &ws, json!({"title": "Quarterly <revenue>"})).await;
    let html = page(&t, &c, &format!("/orgs/{org}/search?q=revenue")).await;
    assert!(html.contains("id=\"results\"") && html.contains("Quarterly &lt;revenue&gt;"));
    assert!(page(&t, &c, &format!("/orgs/{org}/search?q=nothing"))
        .await
        .contains("id=\"no-results\""));
    let mia = user(&t, "mia@example.com", "Mia").await;
    t.join(&c, &org, "mia@example.com", "member", &mia).await;
    assert!(page(&t, &mia, &format!("/orgs/{org}/search?q=revenue"))
        .await
        .contains("id=\"no-results\""));
    let r = t
        .send(
            Req::get(&format!(
                "/orgs/{org}/search?q={}",
                "aa%20bb%20cc%20dd%20ee%20ff%20gg%20hh%20ii%20jj%20kk"
            ))
            .cookie(&c),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let oscar = user(&t, "oscar@example.com", "Oscar").await;
    assert_eq!(
        t.send(Req::get(&format!("/orgs/{org}/search?q=revenue")).cookie(&oscar))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn org_settings_rename_require_mfa_and_delete_after_step_up_and_typed_name() {
    let t = TestApp::new().await;
    let c = user(&t, "olga@example.com", "Olga").await;
    let (org, _) = org_with_board(&t, &c, "board").await;
    let settings = format!("/orgs/{org}/settings");
    assert_eq!(
        submit_ok(&t, &c, &format!("{settings}/name"), &[("name", "Acme Ltd")]).await,
        format!("{settings}?done=renamed")
    );
    let r = submit(&t, &c, &format!("{settings}/name"), &[("name", "")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .contains("aria-invalid=\"true\" aria-describedby=\"error\" autofocus"),
        "the field is tied to its error"
    );
    // Turning on require-MFA from a session without a second factor would lock the owner out:
    // refused, and said on the page.
    let r = submit(&t, &c, &format!("{settings}/mfa"), &[("require_mfa", "on")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("requires two-factor sign-in"));
    let got = t
        .send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&c))
        .await
        .json();
    assert_eq!(
        (got["name"].as_str(), got["require_mfa"].as_bool()),
        (Some("Acme Ltd"), Some(false))
    );
    // A member cannot open the settings.
    let mia = user(&t, "mia@example.com", "Mia").await;
    t.join(&c, &org, "mia@example.com", "member", &mia).await;
    assert_eq!(
        t.send(Req::get(&settings).cookie(&mia)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        submit(
            &t,
            &mia,
            &format!("/orgs/{org}/delete"),
            &[("confirm_name", "Acme Ltd")]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    // The wrong name: refused, tied to the field.
    let r = submit(
        &t,
        &c,
        &format!("/orgs/{org}/delete"),
        &[("confirm_name", "Acme")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("id=\"confirm-name\" name=\"confirm_name\" autocomplete=\"off\" required aria-invalid=\"true\""));
    // The right name without a recent step-up: the prompt, remembering where to come back.
    t.clock.advance_secs(11 * 60);
    let r = submit(
        &t,
        &c,
        &format!("/orgs/{org}/delete"),
        &[("confirm_name", "Acme Ltd")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("id=\"reauth\""));
    let next = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("strongroom_next="))
        .expect("next cookie")
        .to_string();
    assert!(
        next.contains(&format!("strongroom_next=%2Forgs%2F{org}%2Fsettings;"))
            && next.contains("HttpOnly"),
        "{next}"
    );
    let next_pair = next.split(';').next().unwrap_or_default().to_string();
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&c))
            .await
            .status,
        StatusCode::OK,
        "not deleted"
    );
    let r = t
        .send(
            Req::post("/account/reauthenticate")
                .cookie(&c)
                .header("cookie", &next_pair)
                .form(&[("password", crate::support::PASSWORD)]),
        )
        .await;
    assert_eq!(r.header("location").as_deref(), Some("/"));
    let r = t
        .send(Req::get("/").cookie(&c).header("cookie", &next_pair))
        .await;
    assert_eq!(
        r.header("location"),
        Some(settings.clone()),
        "back to the settings"
    );
    assert_eq!(
        submit_ok(
            &t,
            &c,
            &format!("/orgs/{org}/delete"),
            &[("confirm_name", "Acme Ltd")]
        )
        .await,
        "/orgs?done=org_deleted"
    );
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&c))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_signed_out_invitee_comes_back_to_the_invitation_after_signing_in() {
    let t = TestApp::new().await;
    let c = user(&t, "olga@example.com", "Olga").await;
    let (org, _) = org_with_board(&t, &c, "board").await;
    t.verified_user("nina@example.com", "Nina").await;
    t.send(
        Req::post(&format!("/api/v1/orgs/{org}/invitations"))
            .cookie(&c)
            .json(json!({"email": "nina@example.com", "role": "admin"})),
    )
    .await;
    let link = t
        .mail_to("nina@example.com")
        .await
        .token("/invitations/accept");
    let accept = format!("/invitations/accept?token={link}");
    let r = t.send(Req::get(&accept)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_clean(&accept, &r.text());
    assert!(
        r.text().contains("id=\"invitation-org\">Acme<") && r.text().contains("id=\"signup-link\"")
    );
    let next = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("strongroom_next="))
        .expect("next cookie")
        .to_string();
    let next_pair = next.split(';').next().unwrap_or_default().to_string();
    // Sign in through the page: to /, which forwards to the invitation once.
    let r = t
        .send(Req::post("/login").header("cookie", &next_pair).form(&[
            ("email", "nina@example.com"),
            ("password", crate::support::PASSWORD),
        ]))
        .await;
    assert_eq!(r.header("location").as_deref(), Some("/"));
    let nina = r.session_cookie().expect("session");
    let r = t
        .send(Req::get("/").cookie(&nina).header("cookie", &next_pair))
        .await;
    assert_eq!(r.header("location"), Some(accept.clone()));
    let cleared = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.starts_with("strongroom_next=;")
                || (v.starts_with("strongroom_next=") && v.contains("Max-Age=0"))
        });
    assert!(cleared, "followed once");
    let html = page(&t, &nina, &accept).await;
    assert!(html.contains("id=\"accept-invitation\""));
    // A next cookie pointing elsewhere is ignored.
    for evil in [
        "strongroom_next=https://evil.example/",
        "strongroom_next=//evil.example",
    ] {
        let r = t
            .send(Req::get("/").cookie(&nina).header("cookie", evil))
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{evil}: the dashboard, not a redirect"
        );
    }
    // Signing out forgets any page remembered for after sign-in (a shared browser).
    let r = t
        .send(
            Req::post("/logout")
                .cookie(&nina)
                .header("cookie", &next_pair),
        )
        .await;
    assert!(r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("strongroom_next=") && v.contains("Max-Age=0")));
    // A used or unknown token sets nothing.
    let r = t.send(Req::get("/invitations/accept?token=nope")).await;
    assert!(r
        .headers
        .get_all("set-cookie")
        .iter()
        .all(|v| !v.to_str().unwrap_or("").starts_with("strongroom_next=")));
}

#[tokio::test]
async fn sign_up_errors_are_tied_to_their_field_and_focus_it() {
    let t = TestApp::new().await;
    for (form, field) in [
        (
            [
                ("display_name", "Ann"),
                ("email", "not-an-address"),
                ("password", crate::support::PASSWORD),
            ],
            "email",
        ),
        (
            [
                ("display_name", "Ann"),
                ("email", "ann@example.com"),
                ("password", "short"),
            ],
            "password",
        ),
    ] {
        let r = t.send(Req::post("/signup").form(&form)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let html = r.text();
        let input = html
            .split(&format!("<input id=\"{field}\""))
            .nth(1)
            .and_then(|rest| rest.split('>').next())
            .unwrap_or_else(|| panic!("no {field} input"))
            .to_string();
        assert!(
            input.contains("aria-invalid=\"true\"") && input.contains("autofocus"),
            "{field}: {input}"
        );
        assert!(
            input.contains("error"),
            "{field}: described by the message: {input}"
        );
        assert!(html.contains("id=\"error\""));
    }
}

#[tokio::test]
async fn account_form_errors_are_tied_to_their_field() {
    let t = TestApp::new().await;
    let c = user(&t, "olga@example.com", "Olga").await;
    for (form, field) in [
        (
            [
                ("current_password", "wrong password here"),
                ("new_password", "another long passphrase here"),
            ],
            "current_password",
        ),
        (
            [
                ("current_password", crate::support::PASSWORD),
                ("new_password", "short"),
            ],
            "new_password",
        ),
    ] {
        let r = submit(&t, &c, "/account/password", &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        let html = r.text();
        let input = html
            .split(&format!("<input id=\"{field}\""))
            .nth(1)
            .and_then(|rest| rest.split('>').next())
            .unwrap_or_else(|| panic!("no {field} input"))
            .to_string();
        assert!(
            input.contains("aria-invalid=\"true\"") && input.contains("autofocus"),
            "{field}: {input}"
        );
    }
}
