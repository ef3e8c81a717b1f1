//! The organization and work pages: everything done through forms (no JavaScript), user data
//! escaped, no inline script or style, and 404 for anyone who may not see the page.

use axum::http::StatusCode;

use crate::support::{Req, TestApp, TestResponse};

pub(crate) async fn user(t: &TestApp, email: &str, name: &str) -> String {
    t.verified_user(email, name).await;
    t.login(email).await
}

/// Scripts only as files from this site; no inline script, handlers or styles.
pub(crate) fn assert_clean(what: &str, html: &str) {
    for tag in html.split("<script").skip(1) {
        let head = tag.split("</script>").next().unwrap_or_default();
        let head = head.strip_prefix(" type=\"module\"").unwrap_or(head);
        assert!(
            head.starts_with(" src=\"/static/")
                && head.ends_with('>')
                && head.matches('>').count() == 1,
            "{what}: inline script"
        );
    }
    assert!(
        !html.contains("style=") && !html.contains(" onclick") && !html.contains(" onload"),
        "{what}: inline code"
    );
}

/// A page that renders (200) cleanly; its HTML.
pub(crate) async fn page(t: &TestApp, cookie: &str, path: &str) -> String {
    let r = t.send(Req::get(path).cookie(cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    let html = r.text();
    assert_clean(path, &html);
    html
}

pub(crate) async fn submit(
    t: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> TestResponse {
    t.send(Req::post(path).cookie(cookie).form(form)).await
}

/// A form post that worked: the redirect's target.
pub(crate) async fn submit_ok(
    t: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> String {
    let r = submit(t, cookie, path, form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}: {}", r.text());
    r.header("location").expect("location")
}

/// A form post that failed: shown on the page with the error, and the page's HTML.
async fn submit_err(
    t: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
    status: StatusCode,
) -> String {
    let r = submit(t, cookie, path, form).await;
    assert_eq!(r.status, status, "{path}: {}", r.text());
    let html = r.text();
    assert!(html.contains("role=\"alert\""), "{path}: no error shown");
    assert_clean(path, &html);
    html
}

/// The id right after `prefix` in a redirect target.
pub(crate) fn id_in(location: &str, prefix: &str) -> String {
    let rest = location
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{location} does not start with {prefix}"));
    rest.split(['?', '/', '#']).next().expect("id").to_string()
}

/// The HTML of the board column for `status`.
fn column<'a>(html: &'a str, status: &str) -> &'a str {
    let start = html
        .find(&format!(
            "<section class=\"column\" data-status=\"{status}\""
        ))
        .unwrap_or_else(|| panic!("no {status} column"));
    let rest = &html[start..];
    &rest[..rest.find("</section>").expect("column end")]
}

pub(crate) async fn user_id(t: &TestApp, cookie: &str) -> String {
    t.me(cookie).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string()
}

#[tokio::test]
async fn orgs_members_invitations_boards_items_and_comments_through_forms() {
    let t = TestApp::new().await;
    let owner = user(&t, "olga@example.com", "Olga").await;
    let mia = user(&t, "mia@example.com", "Mia").await;
    let outsider = user(&t, "oscar@example.com", "Oscar").await;
    let mia_id = user_id(&t, &mia).await;
    let owner_id = user_id(&t, &owner).await;

    // The org switcher, with the header link, and creating an org (a bad name stays on the page).
    let html = page(&t, &owner, "/orgs").await;
    assert!(html.contains("id=\"nav-orgs\"") && html.contains("action=\"/orgs\""));
    assert!(html.contains("id=\"no-orgs\""));
    let html = submit_err(
        &t,
        &owner,
        "/orgs",
        &[("name", "   ")],
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(html.contains("1 to 100 characters"));
    let org_name = "Acme <b>\"&'</b>";
    let loc = submit_ok(&t, &owner, "/orgs", &[("name", org_name)]).await;
    let org = id_in(&loc, "/orgs/");
    let org_path = format!("/orgs/{org}");
    let escaped_org = "Acme &lt;b&gt;&quot;&amp;&#x27;&lt;&#x2f;b&gt;";
    let html = page(&t, &owner, "/orgs").await;
    assert!(html.contains(&format!("href=\"/orgs/{org}\"")));
    assert!(
        html.contains(escaped_org) && !html.contains(org_name),
        "escaped"
    );
    assert!(html.contains(">owner<"));
    let html = page(&t, &owner, &loc).await;
    assert!(html.contains("The organization was created"));
    assert!(html.contains(&format!("<h1>{escaped_org}</h1>")));
    assert!(html.contains(&format!("action=\"/orgs/{org}/invitations\"")));
    assert!(html.contains(&format!("action=\"/orgs/{org}/workspaces\"")));

    // Invitations: a bad address keeps what was typed; a good one is pending until revoked.
    let html = submit_err(
        &t,
        &owner,
        &format!("{org_path}/invitations"),
        &[("email", "not-an-address"), ("role", "member")],
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(html.contains("value=\"not-an-address\""));
    let loc = submit_ok(
        &t,
        &owner,
        &format!("{org_path}/invitations"),
        &[("email", "mia@example.com"), ("role", "member")],
    )
    .await;
    assert_eq!(loc, format!("{org_path}?done=invited"));
    let token = t
        .mail_to("mia@example.com")
        .await
        .token("/invitations/accept");
    submit_ok(
        &t,
        &owner,
        &format!("{org_path}/invitations"),
        &[("email", "zed@example.com"), ("role", "admin")],
    )
    .await;
    let html = page(&t, &owner, &org_path).await;
    assert!(html.contains("mia@example.com") && html.contains("zed@example.com"));
    let invitations = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/invitations")).cookie(&owner))
        .await
        .json();
    let zed = invitations["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["email"] == "zed@example.com")
        .and_then(|i| i["id"].as_str())
        .expect("zed")
        .to_string();
    let revoke = format!("{org_path}/invitations/{zed}/revoke");
    assert!(html.contains(&format!("action=\"{revoke}\"")));
    assert_eq!(
        submit_ok(&t, &owner, &revoke, &[]).await,
        format!("{org_path}?done=revoked")
    );
    let html = page(&t, &owner, &format!("{org_path}?done=revoked")).await;
    assert!(html.contains("The invitation was revoked.") && !html.contains("zed@example.com"));
    // Revoking it again: the error on the org page.
    submit_err(&t, &owner, &revoke, &[], StatusCode::NOT_FOUND).await;

    // Accepting: the link only shows a button (nothing happens on GET); signed out, it says how.
    let accept = format!("/invitations/accept?token={token}");
    let r = t.send(Req::get(&accept)).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert_clean("accept (signed out)", &html);
    assert!(html.contains("href=\"/login\"") && html.contains("sign in"));
    assert!(
        !html.contains(&token)
            && !html.contains("<form method=\"post\" action=\"/invitations/accept\"")
    );
    // Who invited whom to what, as which role: in the email, and on the page signed out and in.
    let mail = t.mail_to("zed@example.com").await;
    assert!(
        mail.body.contains("\"Olga\"") && mail.body.contains("as admin"),
        "{}",
        mail.body
    );
    for html in [html.clone(), page(&t, &mia, &accept).await] {
        assert!(html.contains("id=\"invitation-inviter\">Olga<"), "{html}");
        assert!(
            html.contains(&format!("id=\"invitation-org\">{escaped_org}<")),
            "{html}"
        );
        assert!(html.contains("id=\"invitation-role\">member<"), "{html}");
    }
    // A revoked (Zed's) or unknown token shows none of it.
    let revoked = mail.token("/invitations/accept");
    for bad in ["nonsense".to_string(), revoked] {
        let html = t
            .send(Req::get(&format!("/invitations/accept?token={bad}")))
            .await
            .text();
        assert!(!html.contains("invitation-org") && html.contains("invalid-invitation"));
    }
    let html = page(&t, &mia, &accept).await;
    assert!(html.contains("action=\"/invitations/accept\"") && html.contains(&token));
    let r = t
        .send(Req::post("/invitations/accept").form(&[("token", &token)]))
        .await;
    assert_eq!(r.header("location").as_deref(), Some("/login"));
    // Another account cannot use it.
    submit_err(
        &t,
        &outsider,
        "/invitations/accept",
        &[("token", &token)],
        StatusCode::BAD_REQUEST,
    )
    .await;
    let loc = submit_ok(&t, &mia, "/invitations/accept", &[("token", &token)]).await;
    assert_eq!(loc, format!("{org_path}?done=joined"));
    let html = page(&t, &mia, &loc).await;
    assert!(html.contains("You joined the organization."));
    assert!(html.contains(escaped_org));
    // Members see masked emails and no admin forms.
    assert!(html.contains("o***@e***.com") && !html.contains("olga@example.com"));
    assert!(!html.contains("/invitations\"") && !html.contains("/role\""));
    assert!(!html.contains(&format!("action=\"{org_path}/workspaces\"")));
    // Used once.
    submit_err(
        &t,
        &mia,
        "/invitations/accept",
        &[("token", &token)],
        StatusCode::BAD_REQUEST,
    )
    .await;
    // Admins see full emails and can change roles.
    let html = page(&t, &owner, &org_path).await;
    assert!(html.contains("mia@example.com"));
    assert!(html.contains(&format!("action=\"{org_path}/members/{mia_id}/role\"")));

    // A board through the form; a bad kind stays on the org page.
    let html = submit_err(
        &t,
        &owner,
        &format!("{org_path}/workspaces"),
        &[
            ("name", "Nope"),
            ("kind", "spreadsheet"),
            ("description", ""),
        ],
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(html.contains("value=\"Nope\""));
    let loc = submit_ok(
        &t,
        &owner,
        &format!("{org_path}/workspaces"),
        &[
            ("name", "Launch <i>plan</i>"),
            ("kind", "board"),
            ("description", "Q3 & <beyond>"),
        ],
    )
    .await;
    let ws = id_in(&loc, &format!("{org_path}/workspaces/"));
    let ws_path = format!("{org_path}/workspaces/{ws}");
    let html = page(&t, &owner, &loc).await;
    assert!(html.contains("The workspace was created."));
    assert!(html.contains("<h1>Launch &lt;i&gt;plan&lt;&#x2f;i&gt;</h1>"));
    assert!(html.contains("Q3 &amp; &lt;beyond&gt;"));
    for st in ["todo", "doing", "done"] {
        assert!(!column(&html, st).contains("class=\"card\""), "{st} empty");
    }
    let html = page(&t, &owner, &org_path).await;
    assert!(html.contains(&format!("href=\"{ws_path}\"")));

    // Items: a bad status stays on the board with the title kept; a good one lands in its column.
    let html = submit_err(
        &t,
        &owner,
        &format!("{ws_path}/items"),
        &[("title", "Lost"), ("status", "someday"), ("due_on", "")],
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(html.contains("value=\"Lost\"") && html.contains("todo, doing, done"));
    let loc = submit_ok(
        &t,
        &owner,
        &format!("{ws_path}/items"),
        &[
            ("title", "Press <kit>"),
            ("status", "doing"),
            ("due_on", ""),
        ],
    )
    .await;
    assert_eq!(loc, format!("{ws_path}?done=item_created"));
    submit_ok(
        &t,
        &owner,
        &format!("{ws_path}/items"),
        &[("title", "Venue"), ("status", ""), ("due_on", "2026-10-01")],
    )
    .await;
    let items = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/workspaces/{ws}/items")).cookie(&owner))
        .await
        .json();
    let item = items["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["title"] == "Press <kit>")
        .and_then(|i| i["id"].as_str())
        .expect("item")
        .to_string();
    let item_path = format!("{ws_path}/items/{item}");
    let html = page(&t, &owner, &loc).await;
    let doing = column(&html, "doing");
    assert!(
        doing.contains("Press &lt;kit&gt;") && doing.contains(&format!("href=\"{item_path}\""))
    );
    let todo = column(&html, "todo");
    // Human dates: the test clock is in January 2027, so this one is overdue.
    assert!(
        todo.contains("Venue") && todo.contains("overdue, due 1 Oct 2026"),
        "{todo}"
    );
    assert!(!todo.contains("Press") && !column(&html, "done").contains("class=\"card\""));

    // The item page: facts, edit form, comments.
    let html = page(&t, &owner, &item_path).await;
    assert!(html.contains("<h1>Press &lt;kit&gt;</h1>"));
    assert!(html.contains("id=\"item-status-value\">Doing<"));
    assert!(html.contains(&format!("action=\"{item_path}\"")));
    assert!(html.contains(&format!("action=\"{item_path}/comments\"")));
    assert!(html.contains("id=\"no-comments\""));
    submit_err(
        &t,
        &owner,
        &format!("{item_path}/comments"),
        &[("body", "  ")],
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let loc = submit_ok(
        &t,
        &owner,
        &format!("{item_path}/comments"),
        &[("body", "Looks <good> & \"fine\"\nsecond line")],
    )
    .await;
    assert_eq!(loc, format!("{item_path}?done=commented"));
    let html = page(&t, &owner, &loc).await;
    assert!(html.contains("Your comment was added."));
    assert!(html.contains("Looks &lt;good&gt; &amp; &quot;fine&quot;\nsecond line"));
    assert!(html.contains("Olga ·"), "comment author by name");
    // Editing: a bad date keeps what was typed; then move it to done, assign it and date it.
    let html = submit_err(
        &t,
        &owner,
        &item_path,
        &[
            ("title", "Press kit v2"),
            ("status", "done"),
            ("assignee_id", ""),
            ("due_on", "31/12/2026"),
        ],
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        html.contains("value=\"Press kit v2\"") && html.contains("value=\"31&#x2f;12&#x2f;2026\"")
    );
    let loc = submit_ok(
        &t,
        &owner,
        &item_path,
        &[
            ("title", "Press <kit>"),
            ("status", "done"),
            ("assignee_id", &owner_id),
            ("due_on", "2026-12-31"),
        ],
    )
    .await;
    assert_eq!(loc, format!("{item_path}?done=saved"));
    let html = page(&t, &owner, &loc).await;
    assert!(html.contains("id=\"item-status-value\">Done<"));
    assert!(html.contains("id=\"item-assignee\">Olga<"));
    assert!(html.contains("id=\"item-due-value\"><strong class=\"overdue\">Overdue</strong>: 31 Dec 2026 (2026-12-31)<"));
    // Mia is in the org but holds no role in this workspace: not offered as an assignee, and
    // refused if sent anyway.
    assert!(
        !html.contains(&format!("<option value=\"{mia_id}\"")),
        "{html}"
    );
    let html = submit_err(
        &t,
        &owner,
        &item_path,
        &[("title", "Press <kit>"), ("assignee_id", &mia_id)],
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(html.contains("cannot see this workspace"), "{html}");
    let html = page(&t, &owner, &ws_path).await;
    assert!(
        column(&html, "done").contains("Press &lt;kit&gt;")
            && column(&html, "done").contains("Olga")
    );
    assert!(!column(&html, "doing").contains("Press"));

    // A member without a workspace role does not see the board; a viewer sees it read-only.
    for path in [&ws_path, &item_path] {
        let r = t.send(Req::get(path).cookie(&mia)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_clean(path, &r.text());
    }
    let html = page(&t, &mia, &org_path).await;
    assert!(html.contains("id=\"no-workspaces\"") && !html.contains(&ws_path));
    let loc = submit_ok(
        &t,
        &owner,
        &format!("{ws_path}/members"),
        &[("user_id", &mia_id), ("role", "viewer")],
    )
    .await;
    assert_eq!(loc, format!("{ws_path}?done=access"));
    let html = page(&t, &owner, &loc).await;
    assert!(html.contains(&format!("action=\"{ws_path}/members/{mia_id}/remove\"")));
    let html = page(&t, &mia, &ws_path).await;
    assert!(column(&html, "done").contains("Press &lt;kit&gt;"));
    assert!(!html.contains("id=\"create-item\"") && !html.contains("id=\"grant-access\""));
    let html = page(&t, &mia, &item_path).await;
    assert!(html.contains("Looks &lt;good&gt;"));
    assert!(!html.contains("id=\"add-comment\"") && !html.contains("id=\"save-item\""));
    let html = submit_err(
        &t,
        &mia,
        &format!("{item_path}/comments"),
        &[("body", "sneaky")],
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(html.contains("editor role"));
    let html = page(&t, &mia, &org_path).await;
    assert!(html.contains(&format!("href=\"{ws_path}\"")));
    let loc = submit_ok(
        &t,
        &owner,
        &format!("{ws_path}/members/{mia_id}/remove"),
        &[],
    )
    .await;
    assert_eq!(loc, format!("{ws_path}?done=access_removed"));
    let r = t.send(Req::get(&ws_path).cookie(&mia)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Somebody else: 404 for every page and every form of this org, and nothing in their list.
    let gets = [
        org_path.clone(),
        ws_path.clone(),
        item_path.clone(),
        format!("/orgs/{}", uuid::Uuid::now_v7()),
        "/orgs/not-an-id".to_string(),
        format!("{org_path}/workspaces/{}", uuid::Uuid::now_v7()),
        format!("{ws_path}/items/{}", uuid::Uuid::now_v7()),
    ];
    for path in &gets {
        let r = t.send(Req::get(path).cookie(&outsider)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        let html = r.text();
        assert_clean(path, &html);
        assert!(!html.contains("Acme") && !html.contains("Launch") && !html.contains("Press"));
    }
    let posts: [(String, &[(&str, &str)]); 9] = [
        (
            format!("{org_path}/invitations"),
            &[("email", "oscar2@example.com"), ("role", "member")],
        ),
        (format!("{org_path}/invitations/{zed}/revoke"), &[]),
        (
            format!("{org_path}/members/{mia_id}/role"),
            &[("role", "admin")],
        ),
        (format!("{org_path}/members/{mia_id}/remove"), &[]),
        (
            format!("{org_path}/workspaces"),
            &[("name", "X"), ("kind", "board")],
        ),
        (format!("{ws_path}/members"), &[("role", "owner")]),
        (format!("{ws_path}/items"), &[("title", "X")]),
        (item_path.clone(), &[("title", "X")]),
        (format!("{item_path}/comments"), &[("body", "X")]),
    ];
    for (path, form) in &posts {
        let r = submit(&t, &outsider, path, form).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    let html = page(&t, &outsider, "/orgs").await;
    assert!(!html.contains(&org) && html.contains("id=\"no-orgs\""));
    let html = page(&t, &owner, &item_path).await;
    assert!(html.contains("<h1>Press &lt;kit&gt;</h1>"), "unchanged");

    // Roles and removal from the org page; the last owner cannot leave.
    let loc = submit_ok(
        &t,
        &owner,
        &format!("{org_path}/members/{mia_id}/role"),
        &[("role", "admin")],
    )
    .await;
    assert_eq!(loc, format!("{org_path}?done=role"));
    let html = page(&t, &mia, &org_path).await;
    assert!(html.contains("id=\"send-invitation\"") && html.contains("olga@example.com"));
    // An admin may leave; the only owner gets no Leave button, a hint instead.
    assert!(html.contains("id=\"leave-org\" class=\"danger\""), "{html}");
    let html = page(&t, &owner, &org_path).await;
    assert!(
        !html.contains("id=\"leave-org\"") && html.contains("id=\"sole-owner\""),
        "{html}"
    );
    let owner_id = user_id(&t, &owner).await;
    let html = submit_err(
        &t,
        &owner,
        &format!("{org_path}/members/{owner_id}/remove"),
        &[],
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(html.contains("at least one owner") && html.contains("id=\"members\""));
    let loc = submit_ok(
        &t,
        &owner,
        &format!("{org_path}/members/{mia_id}/remove"),
        &[],
    )
    .await;
    assert_eq!(loc, format!("{org_path}?done=removed"));
    for path in [&org_path, &ws_path, &item_path] {
        let r = t.send(Req::get(path).cookie(&mia)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn deal_rooms_list_items_and_pages_need_a_full_session() {
    let t = TestApp::new().await;
    let owner = user(&t, "dee@example.com", "Dee").await;
    let loc = submit_ok(&t, &owner, "/orgs", &[("name", "Deals")]).await;
    let org = id_in(&loc, "/orgs/");
    let loc = submit_ok(
        &t,
        &owner,
        &format!("/orgs/{org}/workspaces"),
        &[("name", "Series A"), ("kind", "deal"), ("description", "")],
    )
    .await;
    let ws = id_in(&loc, &format!("/orgs/{org}/workspaces/"));
    let ws_path = format!("/orgs/{org}/workspaces/{ws}");
    submit_ok(
        &t,
        &owner,
        &format!("{ws_path}/items"),
        &[("title", "Term <sheet>"), ("status", "doing")],
    )
    .await;
    let html = page(&t, &owner, &ws_path).await;
    assert!(html.contains("id=\"items\"") && !html.contains("id=\"board\""));
    assert!(html.contains("data-status=\"doing\"") && html.contains("Term &lt;sheet&gt;"));

    // Signed out: every page and form sends to the sign-in page.
    let item_path = format!("{ws_path}/items/{}", uuid::Uuid::now_v7());
    for path in [
        "/orgs".to_string(),
        format!("/orgs/{org}"),
        ws_path.clone(),
        item_path.clone(),
    ] {
        let r = t.send(Req::get(&path)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.header("location").as_deref(), Some("/login"), "{path}");
    }
    for path in [
        "/orgs".to_string(),
        format!("/orgs/{org}/invitations"),
        format!("/orgs/{org}/workspaces"),
        format!("{ws_path}/items"),
        format!("{item_path}/comments"),
        "/invitations/accept".to_string(),
    ] {
        let r = t.send(Req::post(&path).form(&[("name", "x")])).await;
        assert_eq!(r.header("location").as_deref(), Some("/login"), "{path}");
    }
    // Forms from another site are refused before they reach a handler.
    let r = t
        .send(
            Req::post("/orgs")
                .cookie(&owner)
                .header("origin", "https://evil.example")
                .form(&[("name", "Evil")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // An invitation link without a token says so.
    let r = t.send(Req::get("/invitations/accept").cookie(&owner)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_clean("accept without token", &r.text());
}
