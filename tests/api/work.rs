//! Workspaces, items and comments: what they hold, who sees them, and ids swapped across
//! workspaces and organizations.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Req, TestApp};

async fn setup(t: &TestApp, email: &str, org_name: &str) -> (String, String) {
    t.verified_user(email, "Worker").await;
    let c = t.login(email).await;
    let r = t
        .send(
            Req::post("/api/v1/orgs")
                .cookie(&c)
                .json(json!({ "name": org_name })),
        )
        .await;
    (c, r.json()["id"].as_str().expect("id").to_string())
}

/// The id of what a `post` created.
async fn post_id(t: &TestApp, c: &str, path: &str, body: Value) -> String {
    post(t, c, path, body).await["id"]
        .as_str()
        .expect("an id")
        .to_string()
}

async fn post(t: &TestApp, c: &str, path: &str, body: Value) -> Value {
    let r = t.send(Req::post(path).cookie(c).json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.text());
    r.json()
}

#[tokio::test]
async fn boards_hold_items_with_statuses_fields_and_comments() {
    let t = TestApp::new().await;
    let (c, org) = setup(&t, "ann@example.com", "Org").await;
    let ws = post(
        &t,
        &c,
        &format!("/api/v1/orgs/{org}/workspaces"),
        json!({"name": "Launch", "kind": "board", "description": "Q3"}),
    )
    .await;
    assert_eq!(ws["statuses"], json!(["todo", "doing", "done"]));
    let ws_id = ws["id"].as_str().expect("id");
    let base = format!("/api/v1/orgs/{org}/workspaces/{ws_id}");
    let me = t.me(&c).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let item = post(&t, &c, &format!("{base}/items"), json!({"title": "Press kit", "assignee_id": me, "due_on": "2026-12-31", "fields": {"budget": 1200}})).await;
    assert_eq!(item["status"], "todo");
    assert_eq!(item["fields"]["budget"], 1200);
    let item_id = item["id"].as_str().expect("id");
    let r = t
        .send(
            Req::new(Method::PATCH, &format!("{base}/items/{item_id}"))
                .cookie(&c)
                .json(json!({"status": "doing", "due_on": null})),
        )
        .await;
    assert_eq!(r.json()["status"], "doing");
    assert_eq!(r.json()["due_on"], Value::Null);
    assert_eq!(
        r.json()["title"],
        "Press kit",
        "absent fields keep their value"
    );
    for bad in [
        json!({"status": "shipped"}),
        json!({"due_on": "2026-02-30"}),
        json!({"fields": [1, 2]}),
        json!({"title": ""}),
        json!({"assignee_id": "not-a-user"}),
    ] {
        let r = t
            .send(
                Req::new(Method::PATCH, &format!("{base}/items/{item_id}"))
                    .cookie(&c)
                    .json(bad.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    post(
        &t,
        &c,
        &format!("{base}/items/{item_id}/updates"),
        json!({"body": "Draft is ready"}),
    )
    .await;
    let updates = t
        .send(Req::get(&format!("{base}/items/{item_id}/updates")).cookie(&c))
        .await
        .json();
    assert_eq!(updates["items"][0]["body"], "Draft is ready");
    assert_eq!(updates["items"][0]["author_id"], me.as_str());
    // Pagination over items.
    for i in 0..3 {
        post(
            &t,
            &c,
            &format!("{base}/items"),
            json!({"title": format!("Task {i}")}),
        )
        .await;
    }
    let p1 = t
        .send(Req::get(&format!("{base}/items?limit=3")).cookie(&c))
        .await
        .json();
    let next = p1["next_cursor"].as_str().expect("more");
    let p2 = t
        .send(Req::get(&format!("{base}/items?limit=3&cursor={next}")).cookie(&c))
        .await
        .json();
    assert_eq!(
        p1["items"].as_array().expect("a").len() + p2["items"].as_array().expect("b").len(),
        4
    );
    assert_eq!(p2["next_cursor"], Value::Null);
    // Custom statuses.
    let deal = post(
        &t,
        &c,
        &format!("/api/v1/orgs/{org}/workspaces"),
        json!({"name": "Deal", "kind": "deal", "statuses": ["sourcing", "diligence", "closed"]}),
    )
    .await;
    assert_eq!(deal["statuses"][1], "diligence");
    let r = t
        .send(
            Req::post(&format!("/api/v1/orgs/{org}/workspaces"))
                .cookie(&c)
                .json(json!({"name": "X", "kind": "spreadsheet"})),
        )
        .await;
    assert_eq!(r.code(), "invalid_kind");
}

#[tokio::test]
async fn ids_swapped_across_workspaces_and_orgs_find_nothing_and_change_nothing() {
    let t = TestApp::new().await;
    let (a, org_a) = setup(&t, "amy@example.com", "A").await;
    let (b, org_b) = setup(&t, "bea@example.com", "B").await;
    let ws_a = post_id(
        &t,
        &a,
        &format!("/api/v1/orgs/{org_a}/workspaces"),
        json!({"name": "A1", "kind": "board"}),
    )
    .await;
    let ws_a2 = post_id(
        &t,
        &a,
        &format!("/api/v1/orgs/{org_a}/workspaces"),
        json!({"name": "A2", "kind": "board"}),
    )
    .await;
    let ws_b = post_id(
        &t,
        &b,
        &format!("/api/v1/orgs/{org_b}/workspaces"),
        json!({"name": "B1", "kind": "board"}),
    )
    .await;
    let item_a = post_id(
        &t,
        &a,
        &format!("/api/v1/orgs/{org_a}/workspaces/{ws_a}/items"),
        json!({"title": "Secret A"}),
    )
    .await;
    let item_b = post_id(
        &t,
        &b,
        &format!("/api/v1/orgs/{org_b}/workspaces/{ws_b}/items"),
        json!({"title": "Secret B"}),
    )
    .await;
    let bea_id = t.me(&b).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();

    // B's workspace and item under A's org, and A's item under A's other workspace.
    for path in [
        format!("/api/v1/orgs/{org_a}/workspaces/{ws_b}"),
        format!("/api/v1/orgs/{org_a}/workspaces/{ws_a}/items/{item_b}"),
        format!("/api/v1/orgs/{org_a}/workspaces/{ws_a2}/items/{item_a}"),
        format!("/api/v1/orgs/{org_a}/workspaces/{ws_a2}/items/{item_a}/updates"),
    ] {
        assert_eq!(
            t.send(Req::get(&path).cookie(&a)).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        assert_eq!(
            t.send(Req::delete(&path).cookie(&a)).await.status.as_u16() / 100,
            4,
            "{path}"
        );
    }
    let r = t
        .send(
            Req::post(&format!(
                "/api/v1/orgs/{org_a}/workspaces/{ws_a2}/items/{item_a}/updates"
            ))
            .cookie(&a)
            .json(json!({"body": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A user of another org as assignee or workspace member.
    let r = t
        .send(
            Req::post(&format!("/api/v1/orgs/{org_a}/workspaces/{ws_a}/items"))
                .cookie(&a)
                .json(json!({"title": "T", "assignee_id": bea_id})),
        )
        .await;
    assert_eq!(r.code(), "invalid_assignee");
    let r = t
        .send(
            Req::new(
                Method::PUT,
                &format!("/api/v1/orgs/{org_a}/workspaces/{ws_a}/members/{bea_id}"),
            )
            .cookie(&a)
            .json(json!({"role": "editor"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Nothing changed in B.
    let r = t
        .send(
            Req::get(&format!(
                "/api/v1/orgs/{org_b}/workspaces/{ws_b}/items/{item_b}"
            ))
            .cookie(&b),
        )
        .await;
    assert_eq!(r.json()["title"], "Secret B");
    assert_eq!(
        t.send(
            Req::get(&format!(
                "/api/v1/orgs/{org_a}/workspaces/{ws_a}/items/{item_a}"
            ))
            .cookie(&a)
        )
        .await
        .json()["title"],
        "Secret A"
    );
}

#[tokio::test]
async fn members_see_only_their_workspaces_and_contents_are_encrypted() {
    let t = TestApp::new().await;
    let (owner, org) = setup(&t, "oli@example.com", "Org").await;
    let open = post_id(
        &t,
        &owner,
        &format!("/api/v1/orgs/{org}/workspaces"),
        json!({"name": "Open room", "kind": "deal"}),
    )
    .await;
    post(
        &t,
        &owner,
        &format!("/api/v1/orgs/{org}/workspaces"),
        json!({"name": "Board room", "kind": "deal"}),
    )
    .await;
    t.send(
        Req::post(&format!("/api/v1/orgs/{org}/invitations"))
            .cookie(&owner)
            .json(json!({"email": "pia@example.com", "role": "member"})),
    )
    .await;
    let token = t
        .mail_to("pia@example.com")
        .await
        .token("/invitations/accept");
    t.verified_user("pia@example.com", "Pia").await;
    let pia = t.login("pia@example.com").await;
    t.send(
        Req::post("/api/v1/invitations/accept")
            .cookie(&pia)
            .json(json!({ "token": token })),
    )
    .await;
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}/workspaces")).cookie(&pia))
            .await
            .json()["items"],
        json!([])
    );
    let pia_id = t.me(&pia).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    t.send(
        Req::new(
            Method::PUT,
            &format!("/api/v1/orgs/{org}/workspaces/{open}/members/{pia_id}"),
        )
        .cookie(&owner)
        .json(json!({"role": "viewer"})),
    )
    .await;
    let list = t
        .send(Req::get(&format!("/api/v1/orgs/{org}/workspaces")).cookie(&pia))
        .await
        .json();
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|w| w["name"].as_str().expect("n"))
        .collect();
    assert_eq!(names, ["Open room"]);
    assert_eq!(list["items"][0]["role"], "viewer");
    assert_eq!(
        t.send(Req::get(&format!("/api/v1/orgs/{org}")).cookie(&owner))
            .await
            .json()["name"],
        "Org"
    );
    let item = post(
        &t,
        &owner,
        &format!("/api/v1/orgs/{org}/workspaces/{open}/items"),
        json!({"title": "Project Nightingale", "fields": {"codename": "heron"}}),
    )
    .await;
    post(
        &t,
        &owner,
        &format!(
            "/api/v1/orgs/{org}/workspaces/{open}/items/{}/updates",
            item["id"].as_str().expect("id")
        ),
        json!({"body": "valuation 42M"}),
    )
    .await;

    if !crate::support::backend_is_postgres() {
        let mut all = Vec::new();
        for f in ["test.db", "test.db-wal"] {
            if let Ok(b) = std::fs::read(t.dir.path().join(f)) {
                all.extend(b);
            }
        }
        for needle in [
            "Project Nightingale",
            "heron",
            "valuation 42M",
            "Open room",
            "Board room",
        ] {
            assert!(
                !all.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in plaintext"
            );
        }
    } else {
        use sqlx::Row;
        let owner_id = t.me(&owner).await.json()["id"]
            .as_str()
            .expect("id")
            .to_string();
        let mut tx = crate::support::scoped_tx(&t.app, &org, &owner_id).await;
        let mut dump = String::new();
        for table in ["workspaces", "items", "item_updates", "orgs"] {
            for r in sqlx::query(&format!("SELECT CAST(t.* AS TEXT) AS r FROM {table} t"))
                .fetch_all(&mut *tx)
                .await
                .expect("dump")
            {
                dump.push_str(&r.try_get::<String, _>("r").expect("row"));
            }
        }
        tx.commit().await.expect("commit");
        assert!(dump.len() > 500);
        for needle in ["Project Nightingale", "heron", "valuation 42M", "Open room"] {
            assert!(!dump.contains(needle), "{needle} in plaintext");
        }
    }
}

/// SQLite: a write transaction starts with `BEGIN IMMEDIATE`, so a request that reads and then
/// writes (an item create checks the membership and the workspace, then inserts) waits for
/// another writer instead of failing with SQLITE_BUSY: here a second process's writer holds the
/// database while the request starts, and commits a moment later.
#[tokio::test]
async fn a_read_then_write_waits_for_another_writer_instead_of_failing_busy() {
    use sqlx::Connection;
    if crate::support::backend_is_postgres() {
        return;
    }
    let t = TestApp::new().await;
    let (c, org) = setup(&t, "busy@example.com", "Busy").await;
    let ws = post_id(
        &t,
        &c,
        &format!("/api/v1/orgs/{org}/workspaces"),
        json!({"name": "Board", "kind": "board"}),
    )
    .await;
    // Warm the app's connections first (their set-up is not what is measured).
    post(
        &t,
        &c,
        &format!("/api/v1/orgs/{org}/workspaces/{ws}/items"),
        json!({"title": "Warm"}),
    )
    .await;
    let mut other = sqlx::AnyConnection::connect(&t.app.config.database_url())
        .await
        .expect("a connection of another process");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("the other writer");
    sqlx::query("UPDATE orgs SET updated_at = updated_at + 1 WHERE id = $1")
        .bind(&org)
        .execute(&mut other)
        .await
        .expect("a change of the other writer");
    let create = t.send(
        Req::post(&format!("/api/v1/orgs/{org}/workspaces/{ws}/items"))
            .cookie(&c)
            .json(json!({"title": "After the other writer"})),
    );
    let other_commits = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        sqlx::query("COMMIT")
            .execute(&mut other)
            .await
            .expect("commit");
    };
    let (r, ()) = tokio::join!(create, other_commits);
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["title"], "After the other writer");
}

/// A client that hangs up mid-request abandons no transaction: the request runs to its end on
/// the server, so no pooled connection is left inside a half-begun (read-only) transaction that
/// would then refuse the next request's writes. Many reads are dropped at different points, then
/// every write must still succeed.
#[tokio::test]
async fn reads_a_client_abandons_leave_no_transaction_behind() {
    let t = TestApp::new().await;
    let (c, org) = setup(&t, "gone@example.com", "Gone").await;
    let ws = post_id(
        &t,
        &c,
        &format!("/api/v1/orgs/{org}/workspaces"),
        json!({"name": "Board", "kind": "board"}),
    )
    .await;
    let item = post_id(
        &t,
        &c,
        &format!("/api/v1/orgs/{org}/workspaces/{ws}/items"),
        json!({"title": "Read me"}),
    )
    .await;
    let read = format!("/api/v1/orgs/{org}/workspaces/{ws}/items/{item}");
    for i in 0..200u64 {
        // Dropped after a few hundred microseconds: before, during or after its BEGIN.
        let wait = std::time::Duration::from_micros(50 + (i * 37) % 900);
        let _ = tokio::time::timeout(wait, t.send(Req::get(&read).cookie(&c))).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for n in 0..30 {
        let r = t
            .send(
                Req::post(&format!("/api/v1/orgs/{org}/workspaces/{ws}/items"))
                    .cookie(&c)
                    .json(json!({ "title": format!("Write {n}") })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "write {n}: {}", r.text());
    }
}

/// An assignee must be able to see the item's workspace: an org member without a role in it is
/// refused (422 `assignee_without_access`, nothing stored), on create and on update; once given a
/// role, or as an org admin (who sees every workspace), they can be assigned.
#[tokio::test]
async fn an_assignee_must_be_able_to_see_the_workspace() {
    let t = TestApp::new().await;
    let (owner, org) = setup(&t, "ola@example.com", "Org").await;
    let ws = post_id(
        &t,
        &owner,
        &format!("/api/v1/orgs/{org}/workspaces"),
        json!({"name": "Deal", "kind": "deal"}),
    )
    .await;
    let mut ids = Vec::new();
    for (email, role) in [("max@example.com", "member"), ("ada@example.com", "admin")] {
        t.verified_user(email, "Someone").await;
        let c = t.login(email).await;
        t.join(&owner, &org, email, role, &c).await;
        ids.push(
            t.me(&c).await.json()["id"]
                .as_str()
                .expect("id")
                .to_string(),
        );
    }
    let (max, ada) = (ids[0].clone(), ids[1].clone());
    let items = format!("/api/v1/orgs/{org}/workspaces/{ws}/items");
    let before = t.count("items").await;
    let r = t
        .send(
            Req::post(&items)
                .cookie(&owner)
                .json(json!({"title": "NDA", "assignee_id": max})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.code(), "assignee_without_access");
    assert_eq!(t.count("items").await, before, "nothing stored");

    // On update too; the item keeps its assignee (none).
    let item = post_id(&t, &owner, &items, json!({"title": "NDA"})).await;
    let r = t
        .send(
            Req::new(Method::PATCH, &format!("{items}/{item}"))
                .cookie(&owner)
                .json(json!({"assignee_id": max})),
        )
        .await;
    assert_eq!(r.code(), "assignee_without_access");
    let r = t
        .send(Req::get(&format!("{items}/{item}")).cookie(&owner))
        .await;
    assert_eq!(r.json()["assignee_id"], Value::Null);

    // An org admin sees every workspace: assignable as is.
    let r = t
        .send(
            Req::new(Method::PATCH, &format!("{items}/{item}"))
                .cookie(&owner)
                .json(json!({"assignee_id": ada})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // With a viewer role in the workspace, the member is assignable.
    let r = t
        .send(
            Req::new(
                Method::PUT,
                &format!("/api/v1/orgs/{org}/workspaces/{ws}/members/{max}"),
            )
            .cookie(&owner)
            .json(json!({"role": "viewer"})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = t
        .send(
            Req::new(Method::PATCH, &format!("{items}/{item}"))
                .cookie(&owner)
                .json(json!({"assignee_id": max})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["assignee_id"], max.as_str());
}
