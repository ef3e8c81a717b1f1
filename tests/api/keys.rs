//! Key rotation. The master key: every data key re-wrapped under a new master key while a server
//! holding both keeps serving; afterwards the new key alone opens everything, the old one opens
//! nothing, and the audit chains (retention checkpoints included) verify. An org's data key: a
//! rotation stopped midway leaves every record, document and search result readable (and writes
//! working), is resumed by the command line, and ends with every sealed value under the new key,
//! the old key gone, the other org untouched and the audit chain intact.

use std::time::Duration;

use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use sqlx::Row;
use strongroom::keys::{self, OrgOptions};
use strongroom::store::keys::Stored;
use strongroom::store::Db;

use crate::documents::{bytes, id, room, upload, Room};
use crate::support::{strongroom_bin, Req, TestApp};

fn hidden() -> indicatif::ProgressBar {
    indicatif::ProgressBar::hidden()
}

fn new_key() -> String {
    use rand::RngCore;
    let mut k = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut k);
    STANDARD.encode(k)
}

/// An org with a workspace, two members, items with descriptions and labels, comments (one
/// mentioning the other member, so a notification), a pending invitation and two documents.
async fn seed(t: &TestApp) -> Room {
    let r = room(t, "owner@example.com").await;
    t.verified_user("mia@example.com", "Mia").await;
    let mia = t.login("mia@example.com").await;
    t.join(&r.owner, &r.org, "mia@example.com", "admin", &mia)
        .await;
    for i in 0..7 {
        let item = t
            .send(
                Req::post(&format!("{}/items", r.base))
                    .cookie(&r.owner)
                    .json(json!({
                        "title": format!("Falcon item {i}"),
                        "description": format!("**confidential** term{i}"),
                        "labels": ["legal", format!("l{i}")],
                    })),
            )
            .await;
        assert_eq!(item.status, StatusCode::CREATED, "{}", item.text());
        let c = t
            .send(
                Req::post(&format!("{}/items/{}/updates", r.base, id(&item.json())))
                    .cookie(&r.owner)
                    .json(json!({ "body": format!("@Mia please review draft{i}") })),
            )
            .await;
        assert_eq!(c.status, StatusCode::CREATED, "{}", c.text());
    }
    let inv = t
        .send(
            Req::post(&format!("/api/v1/orgs/{}/invitations", r.org))
                .cookie(&r.owner)
                .json(json!({ "email": "later@example.com", "role": "member" })),
        )
        .await;
    assert_eq!(inv.status, StatusCode::CREATED, "{}", inv.text());
    upload(t, &r, &r.owner, "board-pack.pdf", &bytes(300_000, 3)).await;
    upload(t, &r, &mia, "notes.txt", b"minutes of the meeting").await;
    r
}

/// Everything a member reads of the org, through the API: the org's name, items, comments,
/// documents with their bytes, invitations, notifications, and search results.
async fn view(t: &TestApp, r: &Room) -> Value {
    let get = |path: String, cookie: String| async move {
        let res = t.send(Req::get(&path).cookie(&cookie)).await;
        assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text());
        res
    };
    let mia = t.login("mia@example.com").await;
    let orgs = get("/api/v1/orgs".into(), r.owner.clone()).await.json();
    let items = get(format!("{}/items", r.base), r.owner.clone())
        .await
        .json();
    let mut comments = Vec::new();
    for it in items["items"].as_array().expect("items") {
        let item = get(format!("{}/items/{}", r.base, id(it)), r.owner.clone()).await;
        let updates = get(
            format!("{}/items/{}/updates", r.base, id(it)),
            r.owner.clone(),
        )
        .await;
        comments.push(json!({ "item": item.json(), "updates": updates.json() }));
    }
    let docs = get(format!("{}/documents", r.base), r.owner.clone())
        .await
        .json();
    let mut contents = Vec::new();
    for d in docs["items"].as_array().expect("documents") {
        let c = get(
            format!("{}/documents/{}/content", r.base, id(d)),
            r.owner.clone(),
        )
        .await;
        contents.push(json!({ "name": d["name"], "sha256": hex::encode(sha(&c.body)) }));
    }
    let invitations = get(
        format!("/api/v1/orgs/{}/invitations", r.org),
        r.owner.clone(),
    )
    .await
    .json();
    let notifications = get("/api/v1/me/notifications".into(), mia).await.json();
    let mut searches = Vec::new();
    for q in [
        "falcon",
        "confidential term3",
        "legal",
        "review draft5",
        "minutes",
    ] {
        let s = get(
            format!("/api/v1/orgs/{}/search?q={}", r.org, q.replace(' ', "+")),
            r.owner.clone(),
        )
        .await
        .json();
        let mut hits: Vec<String> = s["items"]
            .as_array()
            .expect("hits")
            .iter()
            .map(|h| h["id"].as_str().unwrap_or("").to_string())
            .collect();
        hits.sort();
        searches.push(json!({ "q": q, "hits": hits }));
    }
    json!({
        "orgs": orgs, "items": items, "comments": comments, "documents": docs,
        "contents": contents, "invitations": invitations, "notifications": notifications,
        "searches": searches,
    })
}

/// `keys rotate --org` through the library, on the test app's database and keyring.
async fn rotate(t: &TestApp, org: &str, opts: &OrgOptions) -> anyhow::Result<keys::OrgRotation> {
    keys::rotate_org(
        &t.app.db,
        &t.app.keyring,
        &*t.app.clock,
        org,
        opts,
        &hidden(),
    )
    .await
}

fn sha(b: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(b).to_vec()
}

/// A connection of the login the tests use (on PostgreSQL it owns the tables, so row-level
/// security does not hide other tenants' rows from it): the database as it is.
async fn raw(db: &Db) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::AnyConnection::connect(db.url())
        .await
        .expect("connect")
}

/// `(version, wrapped length)` of each stored key of `id`, by version.
async fn stored_keys(db: &Db, id: &str) -> Vec<(i64, usize)> {
    let mut c = raw(db).await;
    sqlx::query("SELECT version, wrapped FROM data_keys WHERE id = $1 ORDER BY version")
        .bind(id)
        .fetch_all(&mut c)
        .await
        .expect("keys")
        .iter()
        .map(|r| {
            (
                r.try_get::<i64, _>("version").expect("v"),
                r.try_get::<Vec<u8>, _>("wrapped").expect("w").len(),
            )
        })
        .collect()
}

/// The key version each sealed value of `org` names in its header: `(table.column, version)`.
async fn sealed_versions(db: &Db, org: &str) -> Vec<(String, u32)> {
    let mut c = raw(db).await;
    let mut out = Vec::new();
    for group in keys::SEALED {
        for col in *group {
            let sql = format!(
                "SELECT {} AS v FROM {} WHERE {} = $1",
                col.column, col.table, col.org_column
            );
            for row in sqlx::query(&sql)
                .bind(org)
                .fetch_all(&mut c)
                .await
                .expect("rows")
            {
                let ct = match col.stored {
                    Stored::Blob => row.try_get::<Option<Vec<u8>>, _>("v").expect("blob"),
                    Stored::Text => row
                        .try_get::<Option<String>, _>("v")
                        .expect("text")
                        .and_then(|s| s.strip_prefix("sealed:").map(str::to_string))
                        .map(|b| STANDARD.decode(b).expect("base64")),
                };
                if let Some(ct) = ct {
                    let v = u32::from_be_bytes([ct[1], ct[2], ct[3], ct[4]]);
                    out.push((format!("{}.{}", col.table, col.column), v));
                }
            }
        }
    }
    out
}

async fn org_name_ct(db: &Db, org: &str) -> Vec<u8> {
    let mut c = raw(db).await;
    sqlx::query("SELECT name_ct FROM orgs WHERE id = $1")
        .bind(org)
        .fetch_one(&mut c)
        .await
        .expect("org")
        .try_get("name_ct")
        .expect("name")
}

async fn actions(t: &TestApp, chain: &str) -> Vec<String> {
    t.chain(chain).await.into_iter().map(|e| e.action).collect()
}

#[tokio::test]
async fn every_column_sealed_under_an_org_key_is_in_the_rotation_list() {
    // Tables of account data are sealed under the platform key (which a master key rotation
    // re-wraps and never re-seals); every other `_ct` column belongs to an org.
    let platform = [
        "users",
        "sessions",
        "email_outbox",
        "mfa_totp",
        "passkeys",
        "webauthn_states",
    ];
    let t = TestApp::new().await;
    let listed: Vec<String> = keys::SEALED
        .iter()
        .flat_map(|g| g.iter().map(|c| format!("{}.{}", c.table, c.column)))
        .collect();
    let mut snap = t.app.db.snapshot().await.expect("snapshot");
    let tables = snap.tables().await.expect("tables");
    snap.finish().await.expect("finish");
    assert!(tables.len() > 20);
    for table in tables
        .iter()
        .filter(|t| !platform.contains(&t.name.as_str()))
    {
        for col in table.columns.iter().filter(|c| c.name.ends_with("_ct")) {
            assert!(
                listed.contains(&format!("{}.{}", table.name, col.name)),
                "{}.{} is sealed but not re-sealed by a rotation",
                table.name,
                col.name
            );
        }
    }
    for must in [
        "workspaces.statuses",
        "items.status",
        "document_versions.key_wrapped",
    ] {
        assert!(listed.contains(&must.to_string()), "{must}");
    }
}

#[tokio::test]
async fn the_master_key_rotates_while_the_server_runs_and_audit_checkpoints_still_verify() {
    let (old, new) = (new_key(), new_key());
    let t = TestApp::with(|c| c.master_key = Some(old.clone())).await;
    let r = seed(&t).await;
    // A retention checkpoint on the org's chain and the platform's (signed before the rotation).
    t.clock.advance_secs(800 * 24 * 3600);
    let removed = strongroom::audit::retention::run_once(&t.app.retention_job())
        .await
        .expect("retention");
    assert!(removed.iter().any(|(c, _)| c == &r.org), "{removed:?}");
    let owner = t.login("owner@example.com").await;
    let r = Room { owner, ..r };
    let before = view(&t, &r).await;

    // The server restarted with the new master key and the old one as the previous key: it
    // serves everything while every key is still wrapped under the old one.
    let mut both = t.app.config.as_ref().clone();
    both.master_key = Some(new.clone());
    both.previous_master_key = Some(old.clone());
    let mid = TestApp::on(both).await;
    mid.clock.advance_secs(800 * 24 * 3600);
    assert_eq!(view(&mid, &r).await, before);
    let report = keys::rotate_master(
        &mid.app.db,
        &mid.app.keyring,
        mid.app.clock.now_ms(),
        &hidden(),
    )
    .await
    .expect("rotate");
    let n = {
        let mut c = mid.app.db.acquire().await.expect("conn");
        strongroom::store::keys::all_data_keys(&mut c)
            .await
            .expect("keys")
            .len() as u64
    };
    assert!(n >= 2, "the platform key and the org's");
    assert_eq!((report.keys, report.rewrapped), (n, n));
    // Still serving during and after; a second run finds nothing to do.
    assert_eq!(view(&mid, &r).await, before);
    let again = keys::rotate_master(
        &mid.app.db,
        &mid.app.keyring,
        mid.app.clock.now_ms(),
        &hidden(),
    )
    .await
    .expect("again");
    assert_eq!(again.rewrapped, 0);
    assert!(actions(&mid, "platform")
        .await
        .contains(&"keys.master_rotated".to_string()));

    // The new key alone opens everything; the old key alone opens nothing.
    let mut only_new = t.app.config.as_ref().clone();
    only_new.master_key = Some(new.clone());
    let after = TestApp::on(only_new.clone()).await;
    after.clock.advance_secs(800 * 24 * 3600);
    assert_eq!(view(&after, &r).await, before);
    let mut only_old = t.app.config.as_ref().clone();
    only_old.master_key = Some(old.clone());
    let refused = strongroom::state::App::build(only_old, after.clock.clone()).await;
    assert!(refused.is_err(), "the old master key must open nothing now");
    // Without a previous key there is nothing to rotate from.
    assert!(
        keys::rotate_master(&after.app.db, &after.app.keyring, 0, &hidden())
            .await
            .is_err()
    );

    // Every chain verifies, retention checkpoint signatures included.
    let checks = strongroom::backup::verify_chains(
        &only_new.database_url(),
        strongroom::backup::configured_master(&only_new).expect("master"),
        None,
    )
    .await
    .expect("verify");
    assert!(checks.len() >= 2);
    for c in &checks {
        assert!(c.valid, "{c:?}");
    }
    let chain = after.chain(&r.org).await;
    assert!(chain
        .iter()
        .any(|e| e.action == "audit.retention_checkpoint"));
    let v = after
        .send(Req::get(&format!("/api/v1/orgs/{}/audit-events/verify", r.org)).cookie(&r.owner))
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text());
    assert_eq!(v.json()["valid"], true, "{}", v.text());
}

#[tokio::test]
async fn an_org_key_rotation_stopped_midway_reads_everything_and_the_command_line_resumes_it() {
    let master = new_key();
    let t = TestApp::with(|c| {
        c.master_key = Some(master.clone());
        c.key_rotation_grace_secs = 0;
    })
    .await;
    let r = seed(&t).await;
    // Another org, which the rotation must not touch.
    let other = crate::documents::room(&t, "other@example.com").await;
    let other_keys = stored_keys(&t.app.db, &other.org).await;
    let other_sealed = sealed_versions(&t.app.db, &other.org).await;
    let before = view(&t, &r).await;
    let old_name_ct = org_name_ct(&t.app.db, &r.org).await;
    let sealed_before = sealed_versions(&t.app.db, &r.org).await;
    assert!(sealed_before.len() > 40, "{}", sealed_before.len());
    assert!(sealed_before.iter().all(|(_, v)| *v == 1));

    // Stopped after three batches of two rows: a crash midway, as far as the data can tell.
    let opts = OrgOptions {
        batch: 2,
        max_batches: Some(3),
        grace: Duration::ZERO,
    };
    let part = rotate(&t, &r.org, &opts).await.expect("partial");
    assert!(
        part.started && !part.finished && part.version == 2,
        "{part:?}"
    );
    assert!(part.resealed > 0 && part.reindexed > 0, "{part:?}");
    let mid_versions = sealed_versions(&t.app.db, &r.org).await;
    assert!(
        mid_versions.iter().any(|(_, v)| *v == 1),
        "some left under the old key"
    );
    assert!(
        mid_versions.iter().any(|(_, v)| *v == 2),
        "some under the new key"
    );
    let ks = stored_keys(&t.app.db, &r.org).await;
    assert_eq!(ks.iter().map(|k| k.0).collect::<Vec<_>>(), vec![1, 2]);

    // Midway, everything reads the same, and writes work (sealed under the new key).
    assert_eq!(view(&t, &r).await, before);
    let fresh = t
        .send(
            Req::post(&format!("{}/items", r.base))
                .cookie(&r.owner)
                .json(json!({ "title": "Osprey written midway", "description": "midway" })),
        )
        .await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.text());
    let midway_doc = upload(&t, &r, &r.owner, "midway.bin", &bytes(70_000, 9)).await;
    let found = t
        .send(Req::get(&format!("/api/v1/orgs/{}/search?q=osprey", r.org)).cookie(&r.owner))
        .await
        .json();
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1), "{found}");

    // A second interrupted run resumes (it does not start another rotation).
    let part2 = rotate(&t, &r.org, &opts).await.expect("partial again");
    assert!(
        !part2.started && !part2.finished && part2.version == 2,
        "{part2:?}"
    );

    // The command line resumes and finishes it.
    let cfg = &t.app.config;
    let out = strongroom_bin()
        .args([
            "keys",
            "rotate",
            "--org",
            &r.org,
            "--batch-size",
            "5",
            "--data-dir",
            cfg.data_dir.to_str().expect("dir"),
            "--database-url",
            &cfg.database_url(),
        ])
        .env("STRONGROOM_MASTER_KEY", &master)
        .env("STRONGROOM_KEY_ROTATION_GRACE_SECS", "0")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"finished\":true"), "{stdout}");
    assert!(stdout.contains("\"started\":false"), "{stdout}");

    // Everything under the new key alone; the old key is gone.
    let ks = stored_keys(&t.app.db, &r.org).await;
    assert_eq!(ks.len(), 1, "{ks:?}");
    assert_eq!(ks[0].0, 2);
    let after_versions = sealed_versions(&t.app.db, &r.org).await;
    assert!(after_versions.len() > sealed_before.len());
    assert!(
        after_versions.iter().all(|(_, v)| *v == 2),
        "{:?}",
        after_versions
            .iter()
            .filter(|(_, v)| *v != 2)
            .collect::<Vec<_>>()
    );
    let key = {
        let mut c = t.app.db.acquire().await.expect("conn");
        let (version, wrapped) = strongroom::store::get_data_key(&mut c, &r.org)
            .await
            .expect("read")
            .expect("key");
        t.app
            .keyring
            .open_tenant_key(&r.org, &strongroom::crypto::WrappedKey { version, wrapped })
            .expect("open")
    };
    assert!(!key.rotating());
    assert!(
        key.open("orgs", "name", &r.org, &old_name_ct).is_err(),
        "a value sealed under the old key no longer opens"
    );

    // Reads the same (plus what was written midway); the midway document downloads intact.
    let mut now = view(&t, &r).await;
    let items = now["items"]["items"].as_array_mut().expect("items");
    items.retain(|i| i["title"] != "Osprey written midway");
    now["comments"]
        .as_array_mut()
        .expect("c")
        .retain(|c| c["item"]["title"] != "Osprey written midway");
    now["documents"]["items"]
        .as_array_mut()
        .expect("d")
        .retain(|d| d["name"] != "midway.bin");
    now["contents"]
        .as_array_mut()
        .expect("c")
        .retain(|d| d["name"] != "midway.bin");
    assert_eq!(now, before);
    let c = t
        .send(
            Req::get(&format!("{}/documents/{}/content", r.base, id(&midway_doc))).cookie(&r.owner),
        )
        .await;
    assert_eq!(c.body, bytes(70_000, 9));
    let found = t
        .send(Req::get(&format!("/api/v1/orgs/{}/search?q=osprey", r.org)).cookie(&r.owner))
        .await
        .json();
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1), "{found}");

    // The other org is untouched; the org's chain records the rotation and verifies.
    assert_eq!(stored_keys(&t.app.db, &other.org).await, other_keys);
    assert_eq!(sealed_versions(&t.app.db, &other.org).await, other_sealed);
    let acts = actions(&t, &r.org).await;
    assert_eq!(
        acts.iter()
            .filter(|a| *a == "keys.org_rotation_started")
            .count(),
        1
    );
    assert_eq!(acts.iter().filter(|a| *a == "keys.org_rotated").count(), 1);
    let v = t
        .send(Req::get(&format!("/api/v1/orgs/{}/audit-events/verify", r.org)).cookie(&r.owner))
        .await;
    assert_eq!(v.json()["valid"], true, "{}", v.text());

    // A second rotation starts from version 2.
    let next = rotate(
        &t,
        &r.org,
        &OrgOptions {
            grace: Duration::ZERO,
            ..OrgOptions::default()
        },
    )
    .await
    .expect("next");
    assert!(
        next.started && next.finished && next.version == 3,
        "{next:?}"
    );
    assert_eq!(view(&t, &r).await["searches"], before["searches"]);
    // Nonsense refused clearly.
    let bad = rotate(&t, "not-an-org", &opts).await;
    assert!(bad.is_err());
    let missing = rotate(&t, &uuid::Uuid::now_v7().to_string(), &opts).await;
    assert!(format!("{:#}", missing.expect_err("no org")).contains("no org"));
}
