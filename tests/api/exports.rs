//! Personal exports: a step-up first; built in the background into a sealed object; a valid zip
//! of JSON files that holds exactly the caller's data (seeded with a second user and a second
//! org that share a workspace with the caller); downloadable by its owner alone, for seven days,
//! then removed.

use std::collections::BTreeSet;
use std::io::Read;

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::documents::{id, member, room, upload};
use crate::support::{Req, TestApp, PASSWORD};

const DAY: i64 = 86_400;

async fn post_item(t: &TestApp, base: &str, cookie: &str, body: Value) -> String {
    let r = t
        .send(
            Req::post(&format!("{base}/items"))
                .cookie(cookie)
                .json(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    id(&r.json())
}

async fn comment(t: &TestApp, base: &str, cookie: &str, item: &str, body: &str) {
    let r = t
        .send(
            Req::post(&format!("{base}/items/{item}/updates"))
                .cookie(cookie)
                .json(json!({ "body": body })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

/// Waits until the export is built (the request starts the build in the background; the job
/// function is run here too, in case).
async fn ready(t: &TestApp, cookie: &str, export: &str) -> Value {
    for _ in 0..100 {
        strongroom::exports::run_once(&t.app).await.expect("build");
        let v = t
            .send(Req::get(&format!("/api/v1/me/exports/{export}")).cookie(cookie))
            .await
            .json();
        if v["status"] != "pending" {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the export was never built");
}

#[tokio::test]
async fn a_personal_export_holds_exactly_the_callers_data_in_a_valid_zip() {
    let t = TestApp::new().await;
    // Ada's org and workspace; Bob is an editor in it, and owns an org of his own.
    let ada_room = room(&t, "ada@example.com").await;
    let ada = ada_room.owner.clone();
    let ada_id = t.me(&ada).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (bob, bob_id) = member(&t, &ada_room, "bob@example.com", "editor").await;
    let r = t
        .send(
            Req::post("/api/v1/orgs")
                .cookie(&bob)
                .json(json!({"name": "Bobcorp Holdings"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let bob_org = id(&r.json());
    let ws = t
        .send(
            Req::post(&format!("/api/v1/orgs/{bob_org}/workspaces"))
                .cookie(&bob)
                .json(json!({"name": "Bob's board", "kind": "board"})),
        )
        .await
        .json();
    let bob_base = format!("/api/v1/orgs/{bob_org}/workspaces/{}", id(&ws));
    post_item(
        &t,
        &bob_base,
        &bob,
        json!({"title": "Bobcorp private plan"}),
    )
    .await;

    // In the shared workspace: each writes an item and a comment; Bob assigns one to Ada.
    let base = ada_room.base.clone();
    let ada_item = post_item(&t, &base, &ada, json!({"title": "Ada's own item"})).await;
    comment(&t, &base, &ada, &ada_item, "Ada says hello").await;
    let bob_item = post_item(&t, &base, &bob, json!({"title": "Bob's unrelated item"})).await;
    comment(&t, &base, &bob, &bob_item, "Bob's private remark").await;
    let for_ada = post_item(
        &t,
        &base,
        &bob,
        json!({"title": "Bob asks Ada", "assignee_id": ada_id}),
    )
    .await;
    upload(&t, &ada_room, &ada, "ada-notes.txt", b"Ada's notes").await;
    upload(&t, &ada_room, &bob, "bob-secret.txt", b"Bob's file").await;
    t.new_mail().await;

    // A step-up first.
    t.clock
        .advance_secs(t.app.config.session.reauth_window_secs + 1);
    let r = t.send(Req::post("/api/v1/me/exports").cookie(&ada)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.code(), "reauthentication_required");
    let r = t
        .send(
            Req::post("/api/v1/me/reauthenticate")
                .cookie(&ada)
                .json(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = t.send(Req::post("/api/v1/me/exports").cookie(&ada)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let export = id(&r.json());
    assert_eq!(r.json()["status"], "pending");
    let v = ready(&t, &ada, &export).await;
    assert_eq!(v["status"], "ready", "{v}");
    let mail = t.mail_to("ada@example.com").await;
    assert!(mail.subject.contains("export is ready"), "{}", mail.subject);

    // Only Ada reaches it.
    for path in [
        format!("/api/v1/me/exports/{export}"),
        format!("/api/v1/me/exports/{export}/download"),
    ] {
        let r = t.send(Req::get(&path).cookie(&bob)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        let r = t.send(Req::get(&path)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // Stored sealed: the object is not a zip and shows no text.
    let object = t
        .app
        .blobs
        .get_range(&format!("exports/{export}"), 0..64)
        .await
        .expect("object");
    assert!(!object.starts_with(b"PK"), "sealed");

    let r = t
        .send(Req::get(&format!("/api/v1/me/exports/{export}/download")).cookie(&ada))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type").as_deref(), Some("application/zip"));
    assert!(r
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment")));
    assert_eq!(
        r.header("content-length").as_deref(),
        Some(v["size"].to_string().as_str())
    );
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(r.body.to_vec())).expect("a zip");
    let mut files = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).expect("entry");
        let mut text = String::new();
        f.read_to_string(&mut text).expect("utf-8");
        files.insert(f.name().to_string(), text);
    }
    let names: BTreeSet<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "README.txt",
            "profile.json",
            "sessions.json",
            "passkeys.json",
            "memberships.json",
            "items.json",
            "comments.json",
            "documents.json",
            "api_keys.json",
            "audit_events.json",
        ])
    );
    let json: std::collections::BTreeMap<&str, Value> = files
        .iter()
        .filter(|(n, _)| n.ends_with(".json"))
        .map(|(n, text)| {
            (
                n.as_str(),
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{n}: {e}")),
            )
        })
        .collect();
    assert_eq!(json["profile.json"]["email"], "ada@example.com");
    assert_eq!(json["profile.json"]["id"], json!(ada_id));
    let titles: BTreeSet<&str> = json["items.json"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["title"].as_str().expect("title"))
        .collect();
    assert_eq!(titles, BTreeSet::from(["Ada's own item", "Bob asks Ada"]));
    assert!(json["items.json"]
        .as_array()
        .expect("items")
        .iter()
        .any(|i| i["id"] == json!(for_ada)));
    let comments: Vec<&str> = json["comments.json"]
        .as_array()
        .expect("comments")
        .iter()
        .map(|c| c["body"].as_str().expect("body"))
        .collect();
    assert_eq!(comments, ["Ada says hello"]);
    let docs: Vec<&str> = json["documents.json"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d["name"].as_str().expect("name"))
        .collect();
    assert_eq!(docs, ["ada-notes.txt"]);
    let orgs = json["memberships.json"].as_array().expect("memberships");
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0]["org_id"], json!(ada_room.org));
    assert!(!json["sessions.json"]
        .as_array()
        .expect("sessions")
        .is_empty());
    for e in json["audit_events.json"].as_array().expect("events") {
        assert!(
            e["actor_id"] == json!(ada_id) || e["target_id"] == json!(ada_id),
            "{e}"
        );
    }
    let actions: BTreeSet<&str> = json["audit_events.json"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert!(
        actions.contains("user.signup") && actions.contains("item.created"),
        "{actions:?}"
    );
    // Nothing of Bob or his org, anywhere.
    let all: String = files.values().cloned().collect();
    for other in [
        "bob@example.com",
        "Bobcorp",
        "Bob's unrelated item",
        "Bob's private remark",
        "bob-secret.txt",
        &bob_org,
    ] {
        assert!(!all.contains(other), "the export holds {other}");
    }
    assert!(!all.contains(&format!(
        "\"actor_id\":\"{bob_id}\",\"target_type\":\"user\",\"target_id\":\"{bob_id}\""
    )));

    // Seven days later it is gone.
    t.clock.advance_secs(7 * DAY + 1);
    let v = t
        .send(Req::get(&format!("/api/v1/me/exports/{export}")).cookie(&ada))
        .await;
    // (Ada's session may have ended meanwhile; sign in again.)
    let ada = if v.status == StatusCode::UNAUTHORIZED {
        t.login("ada@example.com").await
    } else {
        ada
    };
    let v = t
        .send(Req::get(&format!("/api/v1/me/exports/{export}")).cookie(&ada))
        .await
        .json();
    assert_eq!(v["status"], "expired");
    let r = t
        .send(Req::get(&format!("/api/v1/me/exports/{export}/download")).cookie(&ada))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let gone = strongroom::exports::purge(&t.app, t.app.clock.now_ms(), None)
        .await
        .expect("purge");
    assert_eq!(gone, 1);
    assert!(t
        .app
        .blobs
        .size(&format!("exports/{export}"))
        .await
        .expect("head")
        .is_none());
    let r = t
        .send(Req::get(&format!("/api/v1/me/exports/{export}")).cookie(&ada))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn your_data_on_the_account_page_exports_and_schedules_and_cancels_a_deletion() {
    let t = TestApp::new().await;
    t.verified_user("pia@example.com", "Pia").await;
    let pia = t.login("pia@example.com").await;
    let page = t.send(Req::get("/account").cookie(&pia)).await.text();
    assert!(page.contains("id=\"your-data\""));
    assert!(page.contains("id=\"export-data\"") && page.contains("id=\"delete-account\""));
    assert!(
        page.contains("14 days after you ask"),
        "the grace period is stated"
    );

    let r = t.send(Req::post("/account/exports").cookie(&pia)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text().contains("Your export is being prepared"),
        "{}",
        r.text()
    );
    strongroom::exports::run_once(&t.app).await.expect("build");
    let mut page = String::new();
    for _ in 0..100 {
        page = t.send(Req::get("/account").cookie(&pia)).await.text();
        if page.contains("/download\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let link = page
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|h| h.starts_with("/api/v1/me/exports/") && h.ends_with("/download"))
        .expect("a download link")
        .to_string();
    assert!(page.contains("Ready; removed"), "{page}");
    let r = t.send(Req::get(&link).cookie(&pia)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with(b"PK"), "a zip");

    let r = t.send(Req::post("/account/deletion").cookie(&pia)).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    assert!(text.contains("Your account will be deleted on"), "{text}");
    assert!(text.contains("id=\"cancel-deletion\""), "{text}");
    assert!(!text.contains("id=\"delete-account\""));
    assert!(!t.me(&pia).await.json()["deletion_scheduled_for"].is_null());
    let r = t
        .send(Req::post("/account/deletion/cancel").cookie(&pia))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r
        .text()
        .contains("The deletion of your account is cancelled."));
    assert!(r.text().contains("id=\"delete-account\""));
    assert!(t.me(&pia).await.json()["deletion_scheduled_for"].is_null());

    // After the step-up window, the page asks for proof first.
    t.clock
        .advance_secs(t.app.config.session.reauth_window_secs + 1);
    let r = t.send(Req::post("/account/exports").cookie(&pia)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("Confirm it is you"));
}

#[tokio::test]
async fn an_owner_exports_the_whole_org_with_its_files_and_a_chain_that_verifies() {
    let t = TestApp::new().await;
    let r = room(&t, "olga@example.com").await;
    let (mia, _) = member(&t, &r, "mia@example.com", "editor").await;
    let item = post_item(&t, &r.base, &mia, json!({"title": "Term sheet"})).await;
    comment(&t, &r.base, &r.owner, &item, "Looks right").await;
    let data = crate::documents::bytes(300_000, 7);
    let doc = upload(&t, &r, &mia, "model.xlsx", &data).await;
    let doc_id = id(&doc);
    // Another org's data stays out.
    let other = room(&t, "other@example.com").await;
    post_item(&t, &other.base, &other.owner, json!({"title": "Elsewhere"})).await;

    // Owners only.
    let path = format!("/api/v1/orgs/{}/exports", r.org);
    let res = t.send(Req::post(&path).cookie(&mia)).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    let res = t.send(Req::post(&path).cookie(&other.owner)).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let res = t.send(Req::post(&path).cookie(&r.owner)).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    let export = id(&res.json());
    let status = format!("{path}/{export}");
    let mut v = Value::Null;
    for _ in 0..100 {
        strongroom::exports::run_once(&t.app).await.expect("build");
        v = t.send(Req::get(&status).cookie(&r.owner)).await.json();
        if v["status"] != "pending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(v["status"], "ready", "{v}");
    assert!(v["progress"].as_i64().expect("progress") > 0);
    for who in [&mia, &other.owner] {
        let res = t
            .send(Req::get(&format!("{status}/download")).cookie(who))
            .await;
        assert!(
            res.status == StatusCode::FORBIDDEN || res.status == StatusCode::NOT_FOUND,
            "{}",
            res.status
        );
    }
    // Not the personal route either.
    let res = t
        .send(Req::get(&format!("/api/v1/me/exports/{export}")).cookie(&r.owner))
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);

    let res = t
        .send(Req::get(&format!("{status}/download")).cookie(&r.owner))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(res.body.to_vec())).expect("a zip");
    let mut files = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).expect("entry");
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).expect("read");
        files.insert(f.name().to_string(), bytes);
    }
    let file = format!("documents/{doc_id}/model.xlsx");
    assert_eq!(files.get(&file), Some(&data), "the file, decrypted");
    let json = |n: &str| -> Value {
        serde_json::from_slice(files.get(n).unwrap_or_else(|| panic!("{n}"))).expect(n)
    };
    let members = json("members.json").to_string();
    assert!(members.contains("mia@example.com") && members.contains("olga@example.com"));
    assert_eq!(json("items.json")[0]["title"], "Term sheet");
    assert_eq!(json("comments.json")[0]["body"], "Looks right");
    assert_eq!(json("documents.json")[0]["file"], json!(file));
    assert_eq!(json("org.json")["id"], json!(r.org));
    assert!(json("workspaces.json")
        .as_array()
        .is_some_and(|w| w.len() == 1));
    let everything =
        String::from_utf8_lossy(&files.values().flatten().copied().collect::<Vec<_>>())
            .into_owned();
    assert!(!everything.contains("Elsewhere") && !everything.contains("other@example.com"));

    // The audit chain, as `strongroom audit verify --file` reads it.
    let chain = files.get("audit.jsonl").expect("audit.jsonl");
    let lines = String::from_utf8_lossy(chain).lines().count();
    assert!(lines > 5, "{lines}");
    let path = t.dir.path().join("org-audit.jsonl");
    std::fs::write(&path, chain).expect("write");
    let dir = t.dir.path().to_str().expect("dir");
    let (code, out, err) = crate::audit_trail::cli_verify(
        t.dir.path(),
        &["--file", path.to_str().expect("path"), "--data-dir", dir],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"valid\":true"), "{out}");
    let actions: Vec<String> = t
        .chain(&r.org)
        .await
        .iter()
        .map(|e| e.action.clone())
        .collect();
    assert!(actions.contains(&"export.requested".to_string()));
    assert!(actions.contains(&"export.downloaded".to_string()));
}

#[tokio::test]
async fn org_settings_offer_owners_an_export_with_its_progress_and_download() {
    let t = TestApp::new().await;
    let r = room(&t, "owen@example.com").await;
    let (ada, _) = member(&t, &r, "ada.admin@example.com", "editor").await;
    t.send(
        Req::new(
            axum::http::Method::PATCH,
            &format!("/api/v1/orgs/{}/members/{}", r.org, {
                t.me(&ada).await.json()["id"]
                    .as_str()
                    .expect("id")
                    .to_string()
            }),
        )
        .cookie(&r.owner)
        .json(json!({ "role": "admin" })),
    )
    .await;
    let settings = format!("/orgs/{}/settings", r.org);
    let page = t.send(Req::get(&settings).cookie(&ada)).await.text();
    assert!(!page.contains("id=\"export-org\""), "admins do not export");
    let res = t
        .send(Req::post(&format!("{settings}/export")).cookie(&ada))
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    let page = t.send(Req::get(&settings).cookie(&r.owner)).await.text();
    assert!(page.contains("id=\"export-org\""));
    let res = t
        .send(Req::post(&format!("{settings}/export")).cookie(&r.owner))
        .await;
    assert!(res.status.is_redirection(), "{}", res.status);
    assert!(res
        .header("location")
        .is_some_and(|l| l.ends_with("done=export_requested")));
    let page = t
        .send(Req::get(&format!("{settings}?done=export_requested")).cookie(&r.owner))
        .await
        .text();
    assert!(page.contains("The export is being prepared"));
    let mut page = String::new();
    for _ in 0..100 {
        strongroom::exports::run_once(&t.app).await.expect("build");
        page = t.send(Req::get(&settings).cookie(&r.owner)).await.text();
        if page.contains("/download\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let link = page
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|h| {
            h.starts_with(&format!("/api/v1/orgs/{}/exports/", r.org)) && h.ends_with("/download")
        })
        .expect("a download link")
        .to_string();
    let res = t.send(Req::get(&link).cookie(&r.owner)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body.starts_with(b"PK"));
    let res = t.send(Req::get(&link).cookie(&ada)).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}
