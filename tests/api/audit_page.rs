//! The audit trail page for org owners and admins, driven through its forms and links as a browser
//! would: filters narrow the table, "Older events" pages through the whole trail, "Verify chain"
//! reports an intact chain and then the sequence number of a row edited in the database, the export
//! links carry the filters, and nobody else learns the page exists.

use axum::http::StatusCode;
use strongroom::clock::{rfc3339, Clock};

use crate::support::{backend_is_postgres, Req, TestApp, PASSWORD};

use crate::org_pages::{assert_clean, id_in, page, submit, submit_ok, user, user_id};

/// The URL a browser opens when the filter form is submitted: every field, empty ones too.
fn filter_url(org: &str, action: &str, since: &str, until: &str) -> String {
    let q = serde_urlencoded::to_string([
        ("action", action),
        ("actor_id", ""),
        ("target_id", ""),
        ("since", since),
        ("until", until),
    ])
    .expect("query");
    format!("/orgs/{org}/audit?{q}")
}

/// The table's rows as (seq, action), top to bottom.
fn rows(html: &str) -> Vec<(i64, String)> {
    let re = regex::Regex::new(r#"<tr class="event" data-seq="(\d+)" data-action="([a-z_.]+)">"#)
        .expect("regex");
    re.captures_iter(html)
        .map(|c| (c[1].parse().expect("seq"), c[2].to_string()))
        .collect()
}

/// An attribute value with the HTML escaping undone.
fn unescape(v: &str) -> String {
    v.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The target of the link with this id, if the page has it.
fn link(html: &str, id: &str) -> Option<String> {
    let re = regex::Regex::new(&format!(r#"<a href="([^"]*)" id="{id}""#)).expect("regex");
    re.captures(html).map(|c| unescape(&c[1]))
}

/// The words of the verification result.
fn verify_result(html: &str) -> String {
    let re = regex::Regex::new(r#"id="verify-result"[^>]*>([^<]*)<"#).expect("regex");
    re.captures(html)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("no verification result in {html}"))
}

/// Every row from `path` on, following "Older events" to the end: (seq, action) newest first, and
/// the number of pages.
async fn all_rows(t: &TestApp, cookie: &str, path: &str) -> (Vec<(i64, String)>, usize) {
    let (mut all, mut pages, mut next) = (Vec::new(), 0, Some(path.to_string()));
    while let Some(path) = next.take() {
        let html = page(t, cookie, &path).await;
        let r = rows(&html);
        assert!(r.len() <= 50, "{path}: pages hold 50 events");
        pages += 1;
        if pages > 1 {
            assert!(link(&html, "newest-events").is_some(), "back to the top");
        }
        next = link(&html, "older-events");
        if next.is_some() {
            assert_eq!(r.len(), 50, "{path}: only the last page is short");
        }
        all.extend(r);
    }
    (all, pages)
}

/// Edits the metadata of event `seq` of `org` behind the application's back (its own database
/// role may not, and a trigger refuses it to everyone).
async fn tamper(t: &TestApp, org: &str, seq: i64) {
    let sql = "UPDATE audit_events SET metadata = $1 WHERE chain = $2 AND seq = $3";
    let forged = r#"{"name":"Forged"}"#;
    let changed = if backend_is_postgres() {
        use sqlx::Connection;
        let url = t.app.config.database_url.clone().expect("database url");
        let mut c = sqlx::PgConnection::connect(&url).await.expect("superuser");
        sqlx::query("SET session_replication_role = replica")
            .execute(&mut c)
            .await
            .expect("skip triggers");
        let n = sqlx::query(sql)
            .bind(forged)
            .bind(org)
            .bind(seq)
            .execute(&mut c)
            .await
            .expect("update")
            .rows_affected();
        c.close().await.expect("close");
        n
    } else {
        sqlx::query("DROP TRIGGER audit_events_no_update")
            .execute(&mut *t.app.db.acquire().await.expect("writer"))
            .await
            .expect("drop trigger");
        sqlx::query(sql)
            .bind(forged)
            .bind(org)
            .bind(seq)
            .execute(&mut *t.app.db.acquire().await.expect("writer"))
            .await
            .expect("update")
            .rows_affected()
    };
    assert_eq!(changed, 1);
}

#[tokio::test]
async fn admins_filter_page_export_and_verify_the_trail() {
    let t = TestApp::new().await;
    let owner = user(&t, "olga@example.com", "Olga").await;
    let owner_id = user_id(&t, &owner).await;
    let start = t.clock.now_ms();
    let loc = submit_ok(&t, &owner, "/orgs", &[("name", "Acme")]).await;
    let org = id_in(&loc, "/orgs/");
    let audit = format!("/orgs/{org}/audit");
    t.clock.advance_secs(20 * 60);
    let loc = submit_ok(
        &t,
        &owner,
        &format!("/orgs/{org}/workspaces"),
        &[("name", "Launch"), ("kind", "board"), ("description", "")],
    )
    .await;
    let ws = id_in(&loc, &format!("/orgs/{org}/workspaces/"));

    // The org page links to the trail; it shows the org's events, newest first.
    let html = page(&t, &owner, &format!("/orgs/{org}")).await;
    assert!(html.contains(&format!("href=\"/orgs/{org}/audit\" id=\"audit-link\"")));
    let html = page(&t, &owner, &audit).await;
    let first = rows(&html);
    assert_eq!(
        first.first().map(|r| r.1.as_str()),
        Some("workspace.created")
    );
    assert_eq!(first.last(), Some(&(1, "org.created".to_string())));
    assert!(first.windows(2).all(|w| w[0].0 == w[1].0 + 1), "{first:?}");
    assert!(html.contains("O***") && html.contains(&owner_id), "actor");
    assert!(html.contains(&ws), "target");
    assert!(
        html.contains("203.0.113.0") && !html.contains("203.0.113.10"),
        "ip"
    );
    assert!(link(&html, "older-events").is_none() && link(&html, "newest-events").is_none());
    for a in [
        "any",
        "org.created",
        "member.role_changed",
        "audit.exported",
    ] {
        assert!(html.contains(&format!(">{a}</option>")), "{a}");
    }
    let ws_events = first.len() as i64 - 1;

    // 60 items 20 minutes later: more than a page.
    t.clock.advance_secs(20 * 60);
    for i in 0..60 {
        submit_ok(
            &t,
            &owner,
            &format!("/orgs/{org}/workspaces/{ws}/items"),
            &[
                ("title", &format!("Task {i}")),
                ("status", ""),
                ("due_on", ""),
            ],
        )
        .await;
    }
    let total = 1 + ws_events + 60;

    // The action filter.
    let html = page(&t, &owner, &filter_url(&org, "workspace.created", "", "")).await;
    assert_eq!(rows(&html), vec![(2, "workspace.created".to_string())]);
    assert!(html.contains("<option value=\"workspace.created\" selected>"));
    // Times: a browser's datetime-local value (UTC) and RFC 3339 both work.
    let local = |ms: i64| rfc3339(ms)[..16].to_string();
    let ten_min = 10 * 60 * 1000;
    let html = page(
        &t,
        &owner,
        &filter_url(
            &org,
            "",
            &local(start + ten_min),
            &rfc3339(start + 3 * ten_min),
        ),
    )
    .await;
    let r = rows(&html);
    assert!(
        !r.is_empty()
            && r.iter()
                .all(|(s, a)| *s >= 2 && a.starts_with("workspace."))
    );
    assert!(html.contains(&format!("value=\"{}:00\"", local(start + ten_min))));
    let html = page(
        &t,
        &owner,
        &filter_url(&org, "any", "", &local(start + ten_min)),
    )
    .await;
    assert_eq!(rows(&html), vec![(1, "org.created".to_string())]);
    let html = page(
        &t,
        &owner,
        &filter_url(&org, "org.created", &local(start + ten_min), ""),
    )
    .await;
    assert!(rows(&html).is_empty() && html.contains("id=\"no-events\""));

    // Paging through everything: 50, then the rest, each event once, in order.
    let (all, pages) = all_rows(&t, &owner, &audit).await;
    assert_eq!(pages, 2);
    let seqs: Vec<i64> = all.iter().map(|r| r.0).collect();
    assert_eq!(seqs, (1..=total).rev().collect::<Vec<_>>());
    // The Older link keeps the filters.
    let items = filter_url(&org, "item.created", &local(start + 3 * ten_min), "");
    let (all, pages) = all_rows(&t, &owner, &items).await;
    assert_eq!((all.len(), pages), (60, 2));
    assert!(all.iter().all(|r| r.1 == "item.created"));
    let mut seqs: Vec<i64> = all.iter().map(|r| r.0).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), 60);

    // Export links carry the filters, times as RFC 3339, and work.
    let html = page(&t, &owner, &items).await;
    let since =
        serde_urlencoded::to_string([("since", rfc3339(start + 3 * ten_min))]).expect("query");
    let jsonl = link(&html, "export-jsonl").expect("jsonl link");
    assert_eq!(
        jsonl,
        format!("/api/v1/orgs/{org}/audit-events/export?format=jsonl&action=item.created&{since}")
    );
    let r = t.send(Req::get(&jsonl).cookie(&owner)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let lines: Vec<serde_json::Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 60);
    assert!(lines.iter().all(|l| l["action"] == "item.created"));
    let csv = link(&html, "export-csv").expect("csv link");
    assert!(csv.contains("format=csv&action=item.created&since="));
    let r = t.send(Req::get(&csv).cookie(&owner)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text().lines().count(), 61, "a header and 60 rows");

    // Verify: intact, with the filters kept for the table below the result.
    let verify = format!("/orgs/{org}/audit/verify");
    assert!(html.contains(&format!("action=\"{verify}\"")));
    assert!(html.contains("name=\"action\" value=\"item.created\""));
    let r = submit(&t, &owner, &verify, &[("action", "item.created")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    assert_clean("verify", &html);
    let head = page(&t, &owner, &audit).await;
    let head = rows(&head)[0].0;
    assert_eq!(head, total + 2, "the two exports are recorded");
    assert_eq!(
        verify_result(&html),
        format!("Chain intact: {head} events. Every event recomputes to its recorded hash, in order, up to the chain's head.")
    );
    // The head to hold an export to, as `strongroom audit verify --head` takes it.
    let shown = regex::Regex::new(r#"id="verify-head">(\d+):([0-9a-f]{64})<"#)
        .expect("regex")
        .captures(&html)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .expect("the chain head is shown");
    let chain = t.chain(&org).await;
    let newest = chain.last().expect("events");
    assert_eq!(shown, (newest.seq.to_string(), newest.hash.clone()));
    assert!(rows(&html).iter().all(|r| r.1 == "item.created") && rows(&html).len() == 50);

    // Someone edits the workspace's event in the database: verification names it.
    tamper(&t, &org, 2).await;
    let r = submit(&t, &owner, &verify, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert_clean("verify (broken)", &html);
    assert!(verify_result(&html).starts_with("Chain BROKEN at seq 2."));
    assert!(html.contains("role=\"alert\" id=\"verify-result\""));
    assert_eq!(rows(&html).len(), 50);
}

#[tokio::test]
async fn only_owners_and_admins_open_the_trail_and_bad_filters_are_explained() {
    let t = TestApp::new().await;
    let owner = user(&t, "olga@example.com", "Olga").await;
    let ada = user(&t, "ada@example.com", "Ada").await;
    let mia = user(&t, "mia@example.com", "Mia").await;
    let oscar = user(&t, "oscar@example.com", "Oscar").await;
    let bob = user(&t, "bob@example.com", "Bob").await;
    let loc = submit_ok(&t, &owner, "/orgs", &[("name", "Acme")]).await;
    let org = id_in(&loc, "/orgs/");
    let audit = format!("/orgs/{org}/audit");
    let verify = format!("{audit}/verify");
    for (email, role, cookie) in [
        ("ada@example.com", "admin", &ada),
        ("mia@example.com", "member", &mia),
    ] {
        submit_ok(
            &t,
            &owner,
            &format!("/orgs/{org}/invitations"),
            &[("email", email), ("role", role)],
        )
        .await;
        let token = t.mail_to(email).await.token("/invitations/accept");
        submit_ok(&t, cookie, "/invitations/accept", &[("token", &token)]).await;
    }
    let loc = submit_ok(&t, &bob, "/orgs", &[("name", "Bobco")]).await;
    let bobs = id_in(&loc, "/orgs/");

    // Owners and admins see the link and the page; members do not see the link.
    for c in [&owner, &ada] {
        let html = page(&t, c, &format!("/orgs/{org}")).await;
        assert!(html.contains(&format!("href=\"{audit}\"")));
        let html = page(&t, c, &audit).await;
        assert!(html.contains("Acme") && html.contains("invitation.accepted"));
        assert!(html.contains("id=\"verify-chain\"") && html.contains("id=\"export-jsonl\""));
    }
    let html = page(&t, &mia, &format!("/orgs/{org}")).await;
    assert!(!html.contains("/audit") && !html.contains("Audit log"));
    let r = submit(&t, &ada, &verify, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(verify_result(&r.text()).starts_with("Chain intact: "));

    // A member, an outsider and another org's owner: the 404 page, whatever they send.
    let bad_since = filter_url(&org, "", "yesterday", "");
    for c in [&mia, &oscar, &bob] {
        for path in [&audit, &bad_since, &format!("{audit}?cursor=nope")] {
            let r = t.send(Req::get(path).cookie(c)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
            let html = r.text();
            assert_clean(path, &html);
            // The page's content (a member's header lists their own orgs, Acme among them).
            let main = html.split("<main").nth(1).unwrap_or_default();
            assert!(
                !main.contains("Acme") && !html.contains("org.created"),
                "{path}"
            );
        }
        let r = submit(&t, c, &verify, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(!r.text().contains("Chain"));
    }
    // Bob's own trail holds only Bob's org.
    let html = page(&t, &bob, &format!("/orgs/{bobs}/audit")).await;
    assert_eq!(rows(&html), vec![(1, "org.created".to_string())]);
    assert!(!html.contains(&org));
    for path in [
        format!("/orgs/{}/audit", uuid::Uuid::now_v7()),
        "/orgs/not-an-id/audit".to_string(),
    ] {
        let r = t.send(Req::get(&path).cookie(&owner)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }

    // Signed out, or still owing the second factor: the sign-in page. (A minute later: sign-ups
    // from one address are limited.)
    t.clock.advance_secs(61);
    let (tia, _, _) = crate::mfa::user_with_totp(&t, "tia@example.com").await;
    let loc = submit_ok(&t, &tia, "/orgs", &[("name", "Tiaco")]).await;
    let tias = id_in(&loc, "/orgs/");
    page(&t, &tia, &format!("/orgs/{tias}/audit")).await;
    let pending = t
        .login_as("tia@example.com", PASSWORD, "198.51.100.1")
        .await
        .session_cookie()
        .expect("pending session");
    for (who, path) in [
        (None, &audit),
        (Some(&pending), &format!("/orgs/{tias}/audit")),
    ] {
        let get = Req::get(path);
        let post = Req::post(&format!("{path}/verify")).form(&[]);
        let (get, post) = match who {
            Some(c) => (get.cookie(c), post.cookie(c)),
            None => (get, post),
        };
        for r in [t.send(get).await, t.send(post).await] {
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
            assert_eq!(r.header("location").as_deref(), Some("/login"), "{path}");
        }
    }
    // A verify form posted from another site is refused before the handler.
    let r = t
        .send(
            Req::post(&verify)
                .cookie(&owner)
                .header("origin", "https://evil.example")
                .form(&[]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Filters that do not parse: a message on the page (422), the form kept, no table.
    let owner_id = user_id(&t, &owner).await;
    let cases = [
        (bad_since.clone(), "since must be an RFC 3339 time"),
        (
            filter_url(&org, "", "2027-01-16T10:00", "2027-01-16T09:00"),
            "since must be earlier than until",
        ),
        (filter_url(&org, "org.exploded", "", ""), "action is not"),
        (format!("{audit}?actor_id=robert%27%3B"), "actor_id must be"),
        (
            format!("{audit}?target_id=%3Cscript%3E"),
            "target_id is not",
        ),
        (format!("{audit}?cursor=nope"), "cursor is not"),
    ];
    for (path, msg) in &cases {
        let r = t.send(Req::get(path).cookie(&owner)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        let html = r.text();
        assert_clean(path, &html);
        assert!(
            html.contains("role=\"alert\"") && html.contains(msg),
            "{path}: {html}"
        );
        assert!(!html.contains("id=\"audit-events\""), "{path}");
        assert!(!html.contains("<script"), "{path}");
    }
    let html = t.send(Req::get(&bad_since).cookie(&owner)).await.text();
    assert!(
        html.contains("value=\"yesterday\""),
        "the form keeps what was typed"
    );
    let html = t
        .send(Req::get(&format!("{audit}?target_id=%3Cscript%3E")).cookie(&owner))
        .await
        .text();
    assert!(html.contains("value=\"&lt;script&gt;\""));
    // A good actor id narrows the table to that user.
    let html = page(&t, &owner, &format!("{audit}?actor_id={owner_id}")).await;
    let r = rows(&html);
    assert!(!r.is_empty() && !r.iter().any(|(_, a)| a == "invitation.accepted"));
}

#[tokio::test]
async fn a_verification_over_the_orgs_scan_budget_is_explained_on_the_page() {
    let t = TestApp::with(|c| {
        c.rate_limits.audit_scans_per_org = strongroom::config::Limit::new(1, 3600);
    })
    .await;
    let owner = user(&t, "olga@example.com", "Olga").await;
    let loc = submit_ok(&t, &owner, "/orgs", &[("name", "Acme")]).await;
    let org = id_in(&loc, "/orgs/");
    let verify = format!("/orgs/{org}/audit/verify");
    let r = submit(&t, &owner, &verify, &[("action", "org.created")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(verify_result(&r.text()).starts_with("Chain intact: 1 events."));
    // The second one waits: said on the page, with Retry-After, and the table still there.
    let r = submit(&t, &owner, &verify, &[("action", "org.created")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    let html = r.text();
    assert_clean("verify (limited)", &html);
    assert!(html.contains("role=\"alert\" id=\"error\"") && !html.contains("id=\"verify-result\""));
    assert_eq!(rows(&html), vec![(1, "org.created".to_string())]);
}
