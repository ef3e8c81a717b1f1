//! Boards people expect (custom statuses, moving cards, Markdown descriptions, labels), search
//! without plaintext at rest, notifications and the "assigned to me" list: each from the
//! attacker's side too (the wrong role, the wrong tenant, someone else's notifications).

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Req, TestApp};

struct Board {
    c: String,
    org: String,
    base: String,
}

async fn board(t: &TestApp, email: &str) -> Board {
    t.verified_user(email, "Owner Olga").await;
    let c = t.login(email).await;
    let r = t
        .send(
            Req::post("/api/v1/orgs")
                .cookie(&c)
                .json(json!({"name": "Acme"})),
        )
        .await;
    let org = r.json()["id"].as_str().expect("org").to_string();
    let r = t
        .send(
            Req::post(&format!("/api/v1/orgs/{org}/workspaces"))
                .cookie(&c)
                .json(json!({"name": "Launch", "kind": "board"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let ws = r.json()["id"].as_str().expect("ws").to_string();
    Board {
        base: format!("/api/v1/orgs/{org}/workspaces/{ws}"),
        c,
        org,
    }
}

async fn item(t: &TestApp, b: &Board, body: Value) -> Value {
    let r = t
        .send(
            Req::post(&format!("{}/items", b.base))
                .cookie(&b.c)
                .json(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// The ids of a status column in board order (the API lists by id; the board sorts by position).
async fn column(t: &TestApp, b: &Board, status: &str) -> Vec<String> {
    let r = t
        .send(Req::get(&format!("{}/items?limit=100", b.base)).cookie(&b.c))
        .await;
    let mut items: Vec<Value> = r.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["status"] == status)
        .cloned()
        .collect();
    items.sort_by_key(|i| i["position"].as_i64().expect("position"));
    items.iter().map(id).collect()
}

async fn mv(
    t: &TestApp,
    b: &Board,
    c: &str,
    item: &str,
    body: Value,
) -> crate::support::TestResponse {
    t.send(
        Req::post(&format!("{}/items/{item}/move", b.base))
            .cookie(c)
            .json(body),
    )
    .await
}

#[tokio::test]
async fn statuses_can_be_added_renamed_reordered_and_removed_only_when_empty() {
    let t = TestApp::new().await;
    let b = board(&t, "olga@example.com").await;
    let put = |body: Value| {
        Req::new(Method::PUT, &format!("{}/statuses", b.base))
            .cookie(&b.c)
            .json(body)
    };
    let ws = t.send(Req::get(&b.base).cookie(&b.c)).await.json();
    assert_eq!(ws["columns"][0], json!({"key": "todo", "name": "To do"}));
    let it = item(&t, &b, json!({"title": "Press kit", "status": "doing"})).await;
    // Rename "doing", add "review", reorder: done first.
    let r = t
        .send(put(json!({"statuses": [
            {"key": "done", "name": "Shipped"}, {"key": "todo", "name": "Backlog"},
            {"key": "doing", "name": "In progress"}, {"key": "review", "name": "Review"}]})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json()["statuses"],
        json!(["done", "todo", "doing", "review"])
    );
    assert_eq!(r.json()["columns"][2]["name"], "In progress");
    // The item keeps its key, so a rename moves nothing.
    let got = t
        .send(Req::get(&format!("{}/items/{}", b.base, id(&it))).cookie(&b.c))
        .await;
    assert_eq!(got.json()["status"], "doing");
    // "doing" holds an item: it cannot go (409), and nothing changed.
    let r = t
        .send(put(
            json!({"statuses": [{"key": "todo", "name": "Backlog"}]}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.code(), "status_in_use");
    let ws = t.send(Req::get(&b.base).cookie(&b.c)).await.json();
    assert_eq!(ws["statuses"], json!(["done", "todo", "doing", "review"]));
    // Once empty, it can.
    assert_eq!(
        mv(&t, &b, &b.c, &id(&it), json!({"status": "review"}))
            .await
            .status,
        StatusCode::OK
    );
    let r = t
        .send(put(json!({"statuses": [{"key": "todo", "name": "Backlog"}, {"key": "review", "name": "Review"}]})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Bad lists change nothing: empty, duplicate keys or names, hidden characters, extra fields.
    for bad in [
        json!({"statuses": []}),
        json!({"statuses": [{"key": "a", "name": "A"}, {"key": "a", "name": "B"}]}),
        json!({"statuses": [{"key": "a", "name": "Same"}, {"key": "b", "name": "same"}]}),
        json!({"statuses": [{"key": "a\u{202e}", "name": "A"}]}),
        json!({"statuses": [{"key": "", "name": "A"}]}),
        json!({"statuses": [{"key": "a", "name": "A", "color": "red"}]}),
    ] {
        let r = t.send(put(bad.clone())).await;
        assert!(r.status.is_client_error(), "{bad}: {}", r.status);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/problem+json")
        );
    }
    let ws = t.send(Req::get(&b.base).cookie(&b.c)).await.json();
    assert_eq!(ws["statuses"], json!(["todo", "review"]));
}

#[tokio::test]
async fn cards_move_between_and_within_columns_and_keep_their_place() {
    let t = TestApp::new().await;
    let b = board(&t, "olga@example.com").await;
    let a = id(&item(&t, &b, json!({"title": "A"})).await);
    let bb = id(&item(&t, &b, json!({"title": "B"})).await);
    let c = id(&item(&t, &b, json!({"title": "C"})).await);
    assert_eq!(
        column(&t, &b, "todo").await,
        vec![a.clone(), bb.clone(), c.clone()]
    );
    // C to the top of its column.
    let r = mv(&t, &b, &b.c, &c, json!({"status": "todo", "before_id": a})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        column(&t, &b, "todo").await,
        vec![c.clone(), a.clone(), bb.clone()]
    );
    // A to "doing" (empty), then B before A there.
    mv(&t, &b, &b.c, &a, json!({"status": "doing"})).await;
    mv(
        &t,
        &b,
        &b.c,
        &bb,
        json!({"status": "doing", "before_id": a}),
    )
    .await;
    assert_eq!(column(&t, &b, "doing").await, vec![bb.clone(), a.clone()]);
    assert_eq!(column(&t, &b, "todo").await, vec![c.clone()]);
    // Many moves into the same gap: the column renumbers and the order stays right.
    for _ in 0..40 {
        let r = mv(
            &t,
            &b,
            &b.c,
            &bb,
            json!({"status": "doing", "before_id": a}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = mv(
            &t,
            &b,
            &b.c,
            &a,
            json!({"status": "doing", "before_id": bb}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(column(&t, &b, "doing").await, vec![a.clone(), bb.clone()]);
    // Refused, and nothing moved: unknown status, before an item of another column or itself.
    for bad in [
        json!({"status": "shipped"}),
        json!({"status": "doing", "before_id": c}),
        json!({"status": "doing", "before_id": a}),
        json!({"status": "doing", "before_id": "not-an-id"}),
    ] {
        let r = mv(&t, &b, &b.c, &a, bad.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.text()
        );
    }
    assert_eq!(column(&t, &b, "doing").await, vec![a.clone(), bb.clone()]);
    // A viewer cannot move; someone of another org does not even find it.
    t.verified_user("vic@example.com", "Vic").await;
    let vic = t.login("vic@example.com").await;
    t.join(&b.c, &b.org, "vic@example.com", "member", &vic)
        .await;
    let me_vic = t.me(&vic).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = t
        .send(
            Req::new(Method::PUT, &format!("{}/members/{me_vic}", b.base))
                .cookie(&b.c)
                .json(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        mv(&t, &b, &vic, &a, json!({"status": "todo"})).await.status,
        StatusCode::FORBIDDEN
    );
    let other = board(&t, "mallory@example.com").await;
    assert_eq!(
        mv(&t, &b, &other.c, &a, json!({"status": "todo"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(column(&t, &b, "doing").await, vec![a, bb]);
}

#[tokio::test]
async fn items_carry_a_markdown_description_and_labels() {
    let t = TestApp::new().await;
    let b = board(&t, "olga@example.com").await;
    let it = item(
        &t,
        &b,
        json!({"title": "Spec", "description": "# Plan\n\n* one\n* two", "labels": ["Legal", "urgent", "legal"]}),
    )
    .await;
    assert_eq!(
        it["labels"],
        json!(["Legal", "urgent"]),
        "case-insensitive duplicates fold"
    );
    assert_eq!(it["description"], "# Plan\n\n* one\n* two");
    let path = format!("{}/items/{}", b.base, id(&it));
    let r = t
        .send(
            Req::new(Method::PATCH, &path)
                .cookie(&b.c)
                .json(json!({"labels": ["done"]})),
        )
        .await;
    assert_eq!(r.json()["labels"], json!(["done"]));
    assert_eq!(r.json()["description"], "# Plan\n\n* one\n* two", "kept");
    let long = "x".repeat(20_001);
    for bad in [
        json!({"labels": (0..11).map(|i| format!("l{i}")).collect::<Vec<_>>()}),
        json!({"labels": [""]}),
        json!({"labels": ["x".repeat(31)]}),
        json!({"description": long}),
        json!({"description": "a NUL \u{0} byte"}),
    ] {
        let r = t
            .send(Req::new(Method::PATCH, &path).cookie(&b.c).json(bad))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    }
    // Sealed at rest: neither the description nor a label is in the database in the clear.
    let (n, raw) = dump(&t, &b, "items").await;
    assert_eq!(n, 1);
    assert!(
        !raw.contains("Plan") && !raw.contains("done"),
        "plaintext at rest"
    );
}

/// Every column of every row of `table` in `b`'s org, as text (what someone who reads the
/// database sees), and the number of rows; read in the org's tenant context (row-level security
/// on PostgreSQL would show nothing otherwise).
async fn dump(t: &TestApp, b: &Board, table: &str) -> (usize, String) {
    use sqlx::Row;
    let user = t.me(&b.c).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let mut tx = crate::support::scoped_tx(&t.app, &b.org, &user).await;
    let rows = sqlx::query(&format!("SELECT * FROM {table} WHERE org_id = $1"))
        .bind(&b.org)
        .fetch_all(&mut *tx)
        .await
        .expect("rows");
    let mut out = String::new();
    for r in &rows {
        for i in 0..r.len() {
            if let Ok(s) = r.try_get::<String, _>(i) {
                out.push_str(&s);
            } else if let Ok(b) = r.try_get::<Vec<u8>, _>(i) {
                out.push_str(&String::from_utf8_lossy(&b));
            }
            out.push('|');
        }
    }
    tx.commit().await.expect("commit");
    (rows.len(), out)
}

#[tokio::test]
async fn search_finds_whole_words_only_where_the_caller_may_look() {
    let t = TestApp::new().await;
    let b = board(&t, "olga@example.com").await;
    let it = item(
        &t,
        &b,
        json!({"title": "Quarterly revenue report", "labels": ["Finance"]}),
    )
    .await;
    let r = t
        .send(
            Req::post(&format!("{}/items/{}/updates", b.base, id(&it)))
                .cookie(&b.c)
                .json(json!({"body": "Numbers from the Zurich office are late"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let search =
        |c: &str, q: &str| Req::get(&format!("/api/v1/orgs/{}/search?q={q}", b.org)).cookie(c);
    let hits = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|h| {
                format!(
                    "{}:{}",
                    h["kind"].as_str().unwrap_or(""),
                    h["title"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    assert_eq!(
        hits(t.send(search(&b.c, "revenue")).await.json()),
        vec!["item:Quarterly revenue report"]
    );
    assert_eq!(
        hits(t.send(search(&b.c, "QUARTERLY%20Revenue")).await.json()),
        vec!["item:Quarterly revenue report"]
    );
    assert_eq!(
        hits(t.send(search(&b.c, "finance")).await.json()),
        vec!["item:Quarterly revenue report"]
    );
    let r = t.send(search(&b.c, "zurich")).await.json();
    assert_eq!(hits(r.clone()), vec!["comment:Quarterly revenue report"]);
    assert!(r["items"][0]["snippet"]
        .as_str()
        .expect("snippet")
        .contains("Zurich"));
    assert!(
        hits(t.send(search(&b.c, "revenue%20zurich")).await.json()).is_empty(),
        "all words must match one text"
    );
    assert!(
        hits(t.send(search(&b.c, "venue")).await.json()).is_empty()
            && hits(t.send(search(&b.c, "quart")).await.json()).is_empty(),
        "the middle of a word is not a match"
    );
    // A member without a role in the workspace finds nothing; another org's member is refused.
    t.verified_user("mia@example.com", "Mia").await;
    let mia = t.login("mia@example.com").await;
    t.join(&b.c, &b.org, "mia@example.com", "member", &mia)
        .await;
    assert!(hits(t.send(search(&mia, "revenue")).await.json()).is_empty());
    let other = board(&t, "mallory@example.com").await;
    assert_eq!(
        t.send(search(&other.c, "revenue")).await.status,
        StatusCode::NOT_FOUND
    );
    let r = t
        .send(Req::get(&format!("/api/v1/orgs/{}/search?q=revenue", other.org)).cookie(&other.c))
        .await;
    assert!(
        hits(r.json()).is_empty(),
        "another org's index says nothing"
    );
    // Renamed: the old words no longer find it; deleted: nothing does.
    let path = format!("{}/items/{}", b.base, id(&it));
    t.send(
        Req::new(Method::PATCH, &path)
            .cookie(&b.c)
            .json(json!({"title": "Budget"})),
    )
    .await;
    assert!(hits(t.send(search(&b.c, "quarterly")).await.json()).is_empty());
    assert_eq!(hits(t.send(search(&b.c, "budget")).await.json()).len(), 1);
    // No word of any text is stored: the index holds keyed hashes only.
    let (n, raw) = dump(&t, &b, "search_terms").await;
    assert!(n >= 5, "{n} terms: one per distinct word");
    for w in ["budget", "zurich", "finance", "revenue", "quart"] {
        assert!(!raw.to_lowercase().contains(w), "{w} at rest");
    }
    assert_eq!(
        t.send(Req::new(Method::DELETE, &path).cookie(&b.c))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert!(hits(t.send(search(&b.c, "budget")).await.json()).is_empty());
    assert!(hits(t.send(search(&b.c, "zurich")).await.json()).is_empty());
    // Bad queries are 422, not 500.
    let r = t
        .send(search(
            &b.c,
            &"aa%20bb%20cc%20dd%20ee%20ff%20gg%20hh%20ii%20jj%20kk%20".repeat(2),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn assignment_mention_access_and_invitation_notify_the_right_person_only() {
    let t = TestApp::new().await;
    let b = board(&t, "olga@example.com").await;
    t.verified_user("bob@example.com", "Bob Builder").await;
    let bob = t.login("bob@example.com").await;
    t.join(&b.c, &b.org, "bob@example.com", "member", &bob)
        .await;
    let bob_id = t.me(&bob).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    t.new_mail().await;
    // Given access to the workspace: told in the app and by email.
    let r = t
        .send(
            Req::new(Method::PUT, &format!("{}/members/{bob_id}", b.base))
                .cookie(&b.c)
                .json(json!({"role": "editor"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let it = item(&t, &b, json!({"title": "Sign NDA", "assignee_id": bob_id})).await;
    let r = t
        .send(
            Req::post(&format!("{}/items/{}/updates", b.base, id(&it)))
                .cookie(&b.c)
                .json(json!({"body": "@bob please sign; cc olga@example.com"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let list = t
        .send(Req::get("/api/v1/me/notifications").cookie(&bob))
        .await
        .json();
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|n| n["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        vec!["mentioned", "assigned", "workspace_added", "invited"],
        "newest first"
    );
    assert_eq!(list["unread"], 4);
    assert_eq!(list["items"][1]["text"], "Sign NDA");
    assert_eq!(list["items"][1]["actor"]["display"], "Owner Olga");
    assert_eq!(list["items"][1]["target"]["item_id"], id(&it));
    assert_eq!(list["items"][1]["read"], false);
    // Emails: one per notification, naming no item, linking to it.
    let mails: Vec<_> = t
        .new_mail()
        .await
        .into_iter()
        .filter(|m| m.to == "bob@example.com")
        .collect();
    assert_eq!(mails.len(), 3, "{mails:?}");
    assert!(mails
        .iter()
        .all(|m| !m.body.contains("Sign NDA") && !m.body.contains("Launch")));
    assert!(mails
        .iter()
        .any(|m| m.body.contains(&format!("/items/{}", id(&it)))));
    // The actor is never told about their own actions.
    let own = t
        .send(Req::get("/api/v1/me/notifications").cookie(&b.c))
        .await
        .json();
    assert_eq!(own["items"], json!([]));
    // Someone else cannot mark Bob's notifications read.
    let first = list["items"][0]["id"].as_str().expect("id").to_string();
    let r = t
        .send(
            Req::post("/api/v1/me/notifications/read")
                .cookie(&b.c)
                .json(json!({"ids": [first]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let list = t
        .send(Req::get("/api/v1/me/notifications").cookie(&bob))
        .await
        .json();
    assert_eq!(list["unread"], 4, "another user's ids change nothing");
    let r = t
        .send(
            Req::post("/api/v1/me/notifications/read")
                .cookie(&bob)
                .json(json!({"ids": [first]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.send(Req::get("/api/v1/me/notifications").cookie(&bob))
            .await
            .json()["unread"],
        3
    );
    let r = t
        .send(
            Req::post("/api/v1/me/notifications/read")
                .cookie(&bob)
                .json(json!({"all": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.send(Req::get("/api/v1/me/notifications").cookie(&bob))
            .await
            .json()["unread"],
        0
    );
    for bad in [
        json!({}),
        json!({"ids": ["x"]}),
        json!({"all": true, "ids": []}),
    ] {
        let r = t
            .send(
                Req::post("/api/v1/me/notifications/read")
                    .cookie(&bob)
                    .json(bad),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Settings: assignments by email off, mentions in the app off.
    let r = t
        .send(
            Req::new(Method::PATCH, "/api/v1/me/notification-settings")
                .cookie(&bob)
                .json(json!({"assigned": {"in_app": true, "email": false}, "mentioned": {"in_app": false, "email": true}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json()["assigned"],
        json!({"in_app": true, "email": false})
    );
    assert_eq!(r.json()["invited"], json!({"in_app": true, "email": true}));
    let r = t
        .send(
            Req::new(Method::PATCH, "/api/v1/me/notification-settings")
                .cookie(&bob)
                .json(json!({"everything": {"in_app": false, "email": false}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    item(&t, &b, json!({"title": "Second", "assignee_id": bob_id})).await;
    t.send(
        Req::post(&format!("{}/items/{}/updates", b.base, id(&it)))
            .cookie(&b.c)
            .json(json!({"body": "@Bob again"})),
    )
    .await;
    let mails: Vec<_> = t
        .new_mail()
        .await
        .into_iter()
        .filter(|m| m.to == "bob@example.com")
        .collect();
    assert_eq!(mails.len(), 1, "the mention's email only: {mails:?}");
    let list = t
        .send(Req::get("/api/v1/me/notifications").cookie(&bob))
        .await
        .json();
    assert_eq!(list["unread"], 1, "the assignment in the app only");
    assert_eq!(list["items"][0]["kind"], "assigned");
    // A mention of someone who cannot see the workspace tells them nothing.
    t.verified_user("eve@example.com", "Eve").await;
    let eve = t.login("eve@example.com").await;
    t.join(&b.c, &b.org, "eve@example.com", "member", &eve)
        .await;
    t.send(
        Req::post(&format!("{}/items/{}/updates", b.base, id(&it)))
            .cookie(&b.c)
            .json(json!({"body": "@eve look"})),
    )
    .await;
    let list = t
        .send(Req::get("/api/v1/me/notifications").cookie(&eve))
        .await
        .json();
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|n| n["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, vec!["invited"], "her invitation, no mention");
    // An invitation to an existing account shows in its bell.
    let other = board(&t, "mallory@example.com").await;
    let r = t
        .send(
            Req::post(&format!("/api/v1/orgs/{}/invitations", other.org))
                .cookie(&other.c)
                .json(json!({"email": "eve@example.com", "role": "member"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let list = t
        .send(Req::get("/api/v1/me/notifications").cookie(&eve))
        .await
        .json();
    assert_eq!(list["items"][0]["kind"], "invited");
    assert_eq!(list["items"][0]["org_id"], other.org.as_str());
    assert_eq!(list["items"][0]["text"], "Acme");
}

#[tokio::test]
async fn assigned_to_me_lists_overdue_first_and_only_what_i_can_see() {
    let t = TestApp::new().await;
    let b = board(&t, "olga@example.com").await;
    let me = t.me(&b.c).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    item(
        &t,
        &b,
        json!({"title": "Later", "assignee_id": me, "due_on": "2099-01-01"}),
    )
    .await;
    item(&t, &b, json!({"title": "No date", "assignee_id": me})).await;
    item(
        &t,
        &b,
        json!({"title": "Late", "assignee_id": me, "due_on": "2001-01-01"}),
    )
    .await;
    item(&t, &b, json!({"title": "Not mine"})).await;
    let r = t.send(Req::get("/api/v1/me/assigned").cookie(&b.c)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    let titles: Vec<String> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["title"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(titles, vec!["Late", "Later", "No date"]);
    assert_eq!(v["items"][0]["overdue"], true);
    assert_eq!(v["items"][1]["overdue"], false);
    assert_eq!(v["items"][0]["workspace_name"], "Launch");
    assert_eq!(v["items"][0]["org_name"], "Acme");
    assert_eq!(v["items"][0]["status_name"], "To do");
    // Someone else's list does not show them.
    let other = board(&t, "mallory@example.com").await;
    let r = t
        .send(Req::get("/api/v1/me/assigned").cookie(&other.c))
        .await;
    assert_eq!(r.json()["items"], json!([]));
    assert_eq!(
        t.send(Req::get("/api/v1/me/assigned")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn notifications_end_with_access_to_what_they_are_about() {
    let t = TestApp::new().await;
    let b = board(&t, "olga@example.com").await;
    t.verified_user("bob@example.com", "Bob").await;
    let bob = t.login("bob@example.com").await;
    t.join(&b.c, &b.org, "bob@example.com", "member", &bob)
        .await;
    let bob_id = t.me(&bob).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let grant = |role: &str| {
        Req::new(Method::PUT, &format!("{}/members/{bob_id}", b.base))
            .cookie(&b.c)
            .json(json!({ "role": role }))
    };
    assert_eq!(t.send(grant("editor")).await.status, StatusCode::OK);
    let one = item(
        &t,
        &b,
        json!({"title": "Secret one", "assignee_id": bob_id}),
    )
    .await;
    item(
        &t,
        &b,
        json!({"title": "Secret two", "assignee_id": bob_id}),
    )
    .await;
    let kinds = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|n| {
                format!(
                    "{}:{}",
                    n["kind"].as_str().unwrap_or(""),
                    n["text"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    let list = || Req::get("/api/v1/me/notifications").cookie(&bob);
    assert_eq!(
        kinds(t.send(list()).await.json()),
        vec![
            "assigned:Secret two",
            "assigned:Secret one",
            "workspace_added:Launch",
            "invited:Acme"
        ]
    );
    // The item deleted: its notification (and title) is gone.
    let r = t
        .send(Req::delete(&format!("{}/items/{}", b.base, id(&one))).cookie(&b.c))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        kinds(t.send(list()).await.json()),
        vec![
            "assigned:Secret two",
            "workspace_added:Launch",
            "invited:Acme"
        ]
    );
    // Removed from the workspace: nothing about it is shown any more, nor counted.
    let r = t
        .send(Req::delete(&format!("{}/members/{bob_id}", b.base)).cookie(&b.c))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let got = t.send(list()).await.json();
    assert_eq!(kinds(got.clone()), vec!["invited:Acme"]);
    assert_eq!(got["unread"], 1);
    // Given access again: only what happens from now on.
    assert_eq!(t.send(grant("viewer")).await.status, StatusCode::OK);
    assert_eq!(
        kinds(t.send(list()).await.json()),
        vec!["workspace_added:Launch", "invited:Acme"]
    );
    // An org that requires two-factor sign-in shows nothing to a session without it.
    let mut c = crate::support::scoped_tx(&t.app, &b.org, "").await;
    sqlx::query("UPDATE orgs SET require_mfa = 1 WHERE id = $1")
        .bind(&b.org)
        .execute(&mut *c)
        .await
        .expect("policy on");
    c.commit().await.expect("commit");
    let got = t.send(list()).await.json();
    assert_eq!(
        kinds(got.clone()),
        vec!["invited:Acme"],
        "the invitation only"
    );
    assert_eq!(got["unread"], 1);
    let mut c = crate::support::scoped_tx(&t.app, &b.org, "").await;
    sqlx::query("UPDATE orgs SET require_mfa = 0 WHERE id = $1")
        .bind(&b.org)
        .execute(&mut *c)
        .await
        .expect("policy off");
    c.commit().await.expect("commit");
    // Removed from the org: everything from it goes, and does not come back on rejoining.
    let r = t
        .send(Req::delete(&format!("/api/v1/orgs/{}/members/{bob_id}", b.org)).cookie(&b.c))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let mut c = crate::support::scoped_tx(&t.app, &b.org, "").await;
    let left: i64 = sqlx::Row::try_get(
        &sqlx::query("SELECT COUNT(*) AS n FROM notifications WHERE org_id = $1 AND user_id = $2")
            .bind(&b.org)
            .bind(&bob_id)
            .fetch_one(&mut *c)
            .await
            .expect("count"),
        "n",
    )
    .expect("n");
    c.commit().await.expect("commit");
    assert_eq!(left, 0);
}

#[tokio::test]
async fn patching_statuses_by_name_keeps_keys_and_cannot_strand_items() {
    let t = TestApp::new().await;
    let b = board(&t, "olga@example.com").await;
    let it = item(&t, &b, json!({"title": "A", "status": "doing"})).await;
    let patch = |names: Value| {
        Req::new(Method::PATCH, &b.base)
            .cookie(&b.c)
            .json(json!({ "statuses": names }))
    };
    // The same names in another order (and case): the keys stay, the item keeps its column.
    let r = t.send(patch(json!(["done", "DOING", "To do"]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["statuses"], json!(["done", "doing", "todo"]));
    let got = t
        .send(Req::get(&format!("{}/items/{}", b.base, id(&it))).cookie(&b.c))
        .await;
    assert_eq!(got.json()["status"], "doing");
    // Leaving out a status that holds an item: 409, nothing changed.
    let r = t.send(patch(json!(["To do", "Done"]))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let ws = t.send(Req::get(&b.base).cookie(&b.c)).await.json();
    assert_eq!(ws["statuses"], json!(["done", "doing", "todo"]));
}

#[tokio::test]
async fn a_flood_of_labels_is_refused_at_once() {
    let t = TestApp::new().await;
    let b = board(&t, "olga@example.com").await;
    let labels: Vec<String> = (0..20_000).map(|i| format!("l{i}")).collect();
    let r = t
        .send(
            Req::post(&format!("{}/items", b.base))
                .cookie(&b.c)
                .json(json!({"title": "x", "labels": labels})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "invalid_labels");
}

#[tokio::test]
async fn texts_written_before_the_index_are_indexed_by_the_backfill_once() {
    let t = TestApp::new().await;
    let b = board(&t, "olga@example.com").await;
    let it = item(
        &t,
        &b,
        json!({"title": "Quarterly revenue", "labels": ["Finance"], "description": "from Zurich"}),
    )
    .await;
    let r = t
        .send(
            Req::post(&format!("{}/items/{}/updates", b.base, id(&it)))
                .cookie(&b.c)
                .json(json!({"body": "Numbers from Geneva"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // As if written before the index existed.
    let mut c = crate::support::scoped_tx(&t.app, &b.org, "").await;
    sqlx::query("DELETE FROM search_terms WHERE org_id = $1")
        .bind(&b.org)
        .execute(&mut *c)
        .await
        .expect("forget the index");
    c.commit().await.expect("commit");
    let found = |q: &'static str| {
        let t = &t;
        let path = format!("/api/v1/orgs/{}/search?q={q}", b.org);
        let cookie = b.c.clone();
        async move {
            t.send(Req::get(&path).cookie(&cookie)).await.json()["items"]
                .as_array()
                .expect("items")
                .len()
        }
    };
    assert_eq!(found("geneva").await, 0);
    let n = strongroom::tenancy::search::backfill(&t.app.db, &t.app.keyring)
        .await
        .expect("backfill");
    assert_eq!(n, 2, "the item and the comment");
    for q in ["revenue", "finance", "zurich", "geneva"] {
        assert_eq!(found(q).await, 1, "{q}");
    }
    let again = strongroom::tenancy::search::backfill(&t.app.db, &t.app.keyring)
        .await
        .expect("backfill");
    assert_eq!(again, 0, "nothing left to index");
}
