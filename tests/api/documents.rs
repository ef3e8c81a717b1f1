//! Documents from the outside: uploads (streamed, encrypted, typed by their bytes, names
//! neutralised), downloads (permission on every request, ranges, attachment headers), tampering
//! detection, versions, folders, deletion, and share links with their expiry, revocation, limits,
//! passwords, recipient codes, watermarks, rate limits and access trail. On SQLite and PostgreSQL.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use strongroom::config::Limit;

use crate::support::{Req, TestApp, TestResponse, DEFAULT_IP};

/// An org with a workspace; the owner's cookie and the workspace's API base.
pub(crate) struct Room {
    pub(crate) owner: String,
    pub(crate) org: String,
    pub(crate) base: String,
}

pub(crate) async fn room(t: &TestApp, email: &str) -> Room {
    t.verified_user(email, "Owner").await;
    let owner = t.login(email).await;
    let org = t
        .send(
            Req::post("/api/v1/orgs")
                .cookie(&owner)
                .json(json!({"name": "Deal Co"})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("org")
        .to_string();
    let ws = t
        .send(
            Req::post(&format!("/api/v1/orgs/{org}/workspaces"))
                .cookie(&owner)
                .json(json!({"name": "Data room", "kind": "deal"})),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("ws")
        .to_string();
    Room {
        owner,
        base: format!("/api/v1/orgs/{org}/workspaces/{ws}"),
        org,
    }
}

/// A member of the room's org with `role` in its workspace: (cookie, user id).
pub(crate) async fn member(t: &TestApp, r: &Room, email: &str, role: &str) -> (String, String) {
    t.verified_user(email, "Member").await;
    let cookie = t.login(email).await;
    t.join(&r.owner, &r.org, email, "member", &cookie).await;
    let id = t.me(&cookie).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let res = t
        .send(
            Req::new(Method::PUT, &format!("{}/members/{id}", r.base))
                .cookie(&r.owner)
                .json(json!({ "role": role })),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    (cookie, id)
}

/// Rows of a tenant table in `org` (read in the org's context: on PostgreSQL row-level security
/// shows nothing outside one).
pub(crate) async fn tenant_count(t: &TestApp, org: &str, table: &str) -> i64 {
    use sqlx::Row;
    let mut tx = crate::support::scoped_tx(&t.app, org, "").await;
    sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .fetch_one(&mut *tx)
        .await
        .expect("count")
        .try_get("n")
        .expect("n")
}

pub(crate) fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u64 * 31 + u64::from(seed)) as u8 ^ (i >> 9) as u8)
        .collect()
}

pub(crate) async fn upload(t: &TestApp, r: &Room, cookie: &str, name: &str, data: &[u8]) -> Value {
    let res = t
        .send(
            Req::post(&format!("{}/documents", r.base))
                .cookie(cookie)
                .file(name, data),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()
}

pub(crate) fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// Every file under the data dir's object store.
fn objects(t: &TestApp) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if !p.ends_with(".strongroom-ready") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&t.dir.path().join("objects"), &mut out);
    out.sort();
    out
}

fn object_of(t: &TestApp, org: &str, version: &str) -> std::path::PathBuf {
    t.dir
        .path()
        .join(format!("objects/orgs/{org}/docs/{version}"))
}

/// The id of a document's latest version (editors see the list).
pub(crate) async fn latest_version(t: &TestApp, r: &Room, doc: &str) -> String {
    let d = t
        .send(Req::get(&format!("{}/documents/{doc}", r.base)).cookie(&r.owner))
        .await
        .json();
    d["versions"][0]["id"]
        .as_str()
        .expect("version")
        .to_string()
}

#[tokio::test]
async fn an_upload_is_stored_encrypted_and_comes_back_whole_and_in_ranges() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    let marker = b"CONFIDENTIAL-TERM-SHEET-MARKER ";
    let mut data = Vec::new();
    while data.len() < 300_000 {
        data.extend_from_slice(marker);
    }
    let doc = upload(&t, &r, &r.owner, "Term sheet.txt", &data).await;
    assert_eq!(doc["name"], "Term sheet.txt");
    assert_eq!(doc["size"], data.len());
    assert_eq!(doc["content_type"], "text/plain");
    assert_eq!(doc["sha256"], hex::encode(Sha256::digest(&data)));
    let doc_id = id(&doc);

    // At rest: one object, named by ids only, holding neither the name nor the content.
    let stored = objects(&t);
    assert_eq!(stored.len(), 1, "{stored:?}");
    let path = stored[0].to_string_lossy().to_string();
    assert!(path.contains(&format!("orgs/{}/docs/", r.org)), "{path}");
    assert!(!path.to_lowercase().contains("term"), "{path}");
    let raw = std::fs::read(&stored[0]).expect("object");
    assert!(raw.len() > data.len(), "sealed chunks carry tags");
    let needle = &marker[..16];
    assert!(
        !raw.windows(needle.len()).any(|w| w == needle),
        "plaintext at rest"
    );
    assert!(!raw.windows(10).any(|w| w == b"Term sheet"));

    // The whole file, as an attachment the browser will not sniff or run.
    let content = format!("{}/documents/{doc_id}/content", r.base);
    let res = t.send(Req::get(&content).cookie(&r.owner)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, data);
    assert_eq!(res.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(
        res.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(res
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment; filename=\"Term sheet.txt\"")));
    assert!(res
        .header("content-security-policy")
        .is_some_and(|c| c.starts_with("sandbox")));
    assert_eq!(res.header("accept-ranges").as_deref(), Some("bytes"));

    // Ranges across chunk boundaries, open-ended and from the end.
    for (range, lo, hi) in [
        ("bytes=65530-131080", 65_530usize, 131_081usize),
        ("bytes=0-0", 0, 1),
        ("bytes=299990-", 299_990, data.len()),
        ("bytes=-7", data.len() - 7, data.len()),
    ] {
        let res = t
            .send(Req::get(&content).cookie(&r.owner).header("range", range))
            .await;
        assert_eq!(res.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(res.body, &data[lo..hi], "{range}");
        assert_eq!(
            res.header("content-range"),
            Some(format!("bytes {lo}-{}/{}", hi - 1, data.len())),
            "{range}"
        );
    }
    let res = t
        .send(
            Req::get(&content)
                .cookie(&r.owner)
                .header("range", "bytes=999999-"),
        )
        .await;
    assert_eq!(res.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        res.header("content-range"),
        Some(format!("bytes */{}", data.len()))
    );
    // A range of a file that changed since (If-Range) is the whole file.
    let res = t
        .send(
            Req::get(&content)
                .cookie(&r.owner)
                .header("range", "bytes=0-9")
                .header("if-range", "\"something-else\""),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body.len(), data.len());

    // Listed and audited (the download with its range).
    let list = t
        .send(Req::get(&format!("{}/documents", r.base)).cookie(&r.owner))
        .await
        .json();
    assert_eq!(list["items"][0]["id"], doc_id.as_str());
    let actions: Vec<String> = t
        .chain(&r.org)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"document.uploaded".to_string()));
    assert!(
        actions
            .iter()
            .filter(|a| *a == "document.downloaded")
            .count()
            >= 6,
        "{actions:?}"
    );
    // An empty file is a document too.
    let empty = upload(&t, &r, &r.owner, "empty.txt", b"").await;
    let res = t
        .send(Req::get(&format!("{}/documents/{}/content", r.base, id(&empty))).cookie(&r.owner))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body.is_empty());
    assert_eq!(tenant_count(&t, &r.org, "documents").await, 2);
    assert_eq!(tenant_count(&t, &r.org, "document_versions").await, 2);
}

#[tokio::test]
async fn viewers_download_but_only_editors_upload_and_share_and_strangers_see_nothing() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    let (viewer, _) = member(&t, &r, "viewer@example.com", "viewer").await;
    let (editor, _) = member(&t, &r, "editor@example.com", "editor").await;
    let data = bytes(10_000, 1);
    let doc = upload(&t, &r, &editor, "plan.bin", &data).await;
    let doc_id = id(&doc);
    let content = format!("{}/documents/{doc_id}/content", r.base);

    let res = t.send(Req::get(&content).cookie(&viewer)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, data);
    let res = t
        .send(
            Req::post(&format!("{}/documents", r.base))
                .cookie(&viewer)
                .file("x.txt", b"nope"),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    let res = t
        .send(
            Req::post(&format!("{}/documents/{doc_id}/links", r.base))
                .cookie(&viewer)
                .json(json!({"expires_in_seconds": 3600})),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // A viewer sees the latest version only.
    let d = t
        .send(Req::get(&format!("{}/documents/{doc_id}", r.base)).cookie(&viewer))
        .await
        .json();
    assert!(d.get("versions").is_none(), "{d}");

    // Someone in no org, and the owner of another org, get 404 for everything; so does a
    // guessed id or a document moved into another org's URL.
    t.verified_user("stranger@example.com", "Stranger").await;
    let stranger = t.login("stranger@example.com").await;
    let other = room(&t, "other@example.com").await;
    for cookie in [&stranger, &other.owner] {
        for path in [
            content.clone(),
            format!("{}/documents/{doc_id}", r.base),
            format!("{}/documents", r.base),
        ] {
            let res = t.send(Req::get(&path).cookie(cookie)).await;
            assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        }
        let res = t
            .send(
                Req::post(&format!("{}/documents", r.base))
                    .cookie(cookie)
                    .file("x.txt", b"nope"),
            )
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
    }
    let res = t
        .send(Req::get(&format!("{}/documents/{doc_id}/content", other.base)).cookie(&other.owner))
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let res = t.send(Req::get(&content)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    // Access ends with the role: the next request is refused.
    let uid = t.me(&viewer).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    t.send(Req::delete(&format!("{}/members/{uid}", r.base)).cookie(&r.owner))
        .await;
    let res = t.send(Req::get(&content).cookie(&viewer)).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn types_come_from_the_bytes_and_nothing_is_served_inline() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    let html = b"<html><body><script>alert(document.cookie)</script></body></html>";
    let res = t
        .send(
            Req::post(&format!("{}/documents", r.base))
                .cookie(&r.owner)
                .file_claiming("cat.png", "image/png", html),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let doc = res.json();
    assert_eq!(doc["content_type"], "text/html", "sniffed, not claimed");
    let res = t
        .send(Req::get(&format!("{}/documents/{}/content", r.base, id(&doc))).cookie(&r.owner))
        .await;
    assert_eq!(res.header("content-type").as_deref(), Some("text/html"));
    assert!(res
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment;")));
    assert_eq!(
        res.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(res
        .header("content-security-policy")
        .is_some_and(|c| c.contains("sandbox") && c.contains("default-src 'none'")));

    let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    let doc = upload(&t, &r, &r.owner, "logo.svg", svg).await;
    assert_eq!(doc["content_type"], "image/svg+xml");
    let res = t
        .send(Req::get(&format!("{}/documents/{}/content", r.base, id(&doc))).cookie(&r.owner))
        .await;
    assert!(res
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment;")));
    assert!(res
        .header("content-security-policy")
        .is_some_and(|c| c.starts_with("sandbox")));

    let png = [
        0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 0, 0, 0, 13, b'I', b'H', b'D', b'R',
    ];
    let doc = upload(&t, &r, &r.owner, "report.pdf", &png).await;
    assert_eq!(doc["content_type"], "image/png");
}

#[tokio::test]
async fn hostile_file_names_are_neutralised() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    for (sent, kept) in [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("invoice\u{202e}fdp.exe", "invoicefdp.exe"),
        ("a\u{2066}b\u{200f}c.txt", "abc.txt"),
        ("..", "document"),
        ("   .hidden.  ", "hidden"),
        ("what?*<is>|this:.txt", "what___is__this_.txt"),
    ] {
        let doc = upload(&t, &r, &r.owner, sent, b"x").await;
        assert_eq!(doc["name"], kept, "{sent:?}");
        let res = t
            .send(Req::get(&format!("{}/documents/{}/content", r.base, id(&doc))).cookie(&r.owner))
            .await;
        let cd = res.header("content-disposition").expect("disposition");
        assert!(!cd.contains('/') || cd.contains("filename*"), "{cd}");
        assert!(!cd.contains(".."), "{cd}");
    }
    let long = format!("{}.pdf", "n".repeat(500));
    let doc = upload(&t, &r, &r.owner, &long, b"x").await;
    let name = doc["name"].as_str().expect("name");
    assert_eq!(name.chars().count(), 200);
    assert!(name.ends_with(".pdf"));
    // Control characters in the part's header: a NUL, and CR/LF (which end the header line, so
    // the part is malformed). Neutralised or refused, never a 500, never stored as sent.
    for sent in [
        "evil\0name.txt",
        "a\r\nContent-Type: text/html\r\n\r\nb.txt",
    ] {
        let res = t
            .send(
                Req::post(&format!("{}/documents", r.base))
                    .cookie(&r.owner)
                    .file(sent, b"x"),
            )
            .await;
        if res.status == StatusCode::CREATED {
            let name = res.json()["name"].as_str().expect("name").to_string();
            assert!(!name.contains(['\0', '\r', '\n']), "{name:?}");
        } else {
            assert!(
                res.status.is_client_error(),
                "{} {}",
                res.status,
                res.text()
            );
        }
    }
}

/// Replaces object `path` with `f(bytes)`.
fn tamper(path: &std::path::Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = std::fs::read(path).expect("object");
    f(&mut b);
    std::fs::write(path, b).expect("write");
}

#[tokio::test]
async fn every_kind_of_tampering_is_detected_and_nothing_wrong_is_served() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    let data = bytes(200_000, 7);
    let mut docs = Vec::new();
    for n in 0..6 {
        let d = upload(&t, &r, &r.owner, &format!("f{n}.bin"), &data).await;
        let v = latest_version(&t, &r, &id(&d)).await;
        docs.push((id(&d), object_of(&t, &r.org, &v)));
    }
    let fetch =
        |doc: &str| Req::get(&format!("{}/documents/{doc}/content", r.base)).cookie(&r.owner);
    let ok = t.send(fetch(&docs[0].0)).await;
    assert_eq!(ok.body, data);
    const SEALED: usize = 64 * 1024 + 16;
    use strongroom::crypto::stream::HEADER;
    // A flipped bit in the first chunk, in the last chunk, and in the header.
    tamper(&docs[0].1, |b| b[HEADER + 100] ^= 0x01);
    tamper(&docs[1].1, |b| {
        let n = b.len();
        b[n - 5] ^= 0x80;
    });
    tamper(&docs[2].1, |b| b[10] ^= 0x01);
    // Truncated at a chunk boundary (its last chunk dropped), and chunks reordered.
    tamper(&docs[3].1, |b| b.truncate(HEADER + 2 * SEALED));
    tamper(&docs[4].1, |b| {
        let (first, rest) = b[HEADER..].split_at_mut(SEALED);
        first.swap_with_slice(&mut rest[..SEALED]);
    });
    // Swapped: another document's (valid) object put in its place.
    let good = upload(&t, &r, &r.owner, "good.bin", &data).await;
    let good_obj = object_of(&t, &r.org, &latest_version(&t, &r, &id(&good)).await);
    std::fs::copy(&good_obj, &docs[5].1).expect("swap");
    for (n, (doc, _)) in docs.iter().enumerate() {
        let res = t.send(fetch(doc)).await;
        if res.status == StatusCode::OK {
            // A failure past the first window ends the body early: never the right bytes, never
            // silently wrong ones.
            assert_ne!(res.body, data, "tampered object {n} served as if whole");
            assert!(res.body.len() < data.len(), "object {n}");
            assert_eq!(
                &res.body[..],
                &data[..res.body.len()],
                "object {n}: wrong bytes"
            );
        } else {
            assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR, "object {n}");
            assert_eq!(res.code(), "document_corrupt", "object {n}: {}", res.text());
        }
    }
    // The intact document still opens.
    assert_eq!(t.send(fetch(&id(&good))).await.body, data);
}

#[tokio::test]
async fn versions_stay_downloadable_by_editors_and_links_follow_latest_or_stay_pinned() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    let (viewer, _) = member(&t, &r, "viewer@example.com", "viewer").await;
    let v1 = b"version one".to_vec();
    let v2 = b"version two, longer".to_vec();
    let doc = upload(&t, &r, &r.owner, "memo.txt", &v1).await;
    let doc_id = id(&doc);
    let first = latest_version(&t, &r, &doc_id).await;
    let pinned = link(
        &t,
        &r,
        &doc_id,
        json!({"expires_in_seconds": 3600, "version_id": first}),
    )
    .await;
    let latest = link(&t, &r, &doc_id, json!({"expires_in_seconds": 3600})).await;
    let res = t
        .send(
            Req::post(&format!("{}/documents/{doc_id}/versions", r.base))
                .cookie(&r.owner)
                .file("memo v2.txt", &v2),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(res.json()["version"], 2);
    assert_eq!(res.json()["name"], "memo v2.txt");
    let d = t
        .send(Req::get(&format!("{}/documents/{doc_id}", r.base)).cookie(&r.owner))
        .await
        .json();
    assert_eq!(d["versions"].as_array().expect("versions").len(), 2);
    let content = format!("{}/documents/{doc_id}/content", r.base);
    assert_eq!(t.send(Req::get(&content).cookie(&viewer)).await.body, v2);
    let old = format!("{content}?version_id={first}");
    assert_eq!(t.send(Req::get(&old).cookie(&r.owner)).await.body, v1);
    assert_eq!(
        t.send(Req::get(&old).cookie(&viewer)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(t.send(Req::get(&path_of(&pinned))).await.body, v1);
    assert_eq!(t.send(Req::get(&path_of(&latest))).await.body, v2);
}

pub(crate) async fn link(t: &TestApp, r: &Room, doc: &str, body: Value) -> String {
    let res = t
        .send(
            Req::post(&format!("{}/documents/{doc}/links", r.base))
                .cookie(&r.owner)
                .json(body),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let url = res.json()["url"].as_str().expect("url").to_string();
    assert!(url.starts_with("http://strongroom.test/s/"), "{url}");
    url
}

pub(crate) fn path_of(url: &str) -> String {
    url.trim_start_matches("http://strongroom.test").to_string()
}

fn token_of(url: &str) -> String {
    url.rsplit('/').next().expect("token").to_string()
}

#[tokio::test]
async fn share_links_expire_are_revoked_and_used_up_at_once_and_all_look_the_same() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    let data = bytes(70_000, 3);
    let doc = upload(&t, &r, &r.owner, "deck.bin", &data).await;
    let doc_id = id(&doc);

    // Bad terms change nothing.
    for body in [
        json!({"expires_in_seconds": 31 * 24 * 3600}),
        json!({"expires_in_seconds": 0}),
        json!({"expires_in_seconds": 3600, "max_downloads": 0}),
        json!({"expires_in_seconds": 3600, "recipient_email": "not an address"}),
        json!({"expires_in_seconds": 3600, "password": "short"}),
        json!({"expires_in_seconds": 3600, "version_id": uuid::Uuid::now_v7().to_string()}),
    ] {
        let res = t
            .send(
                Req::post(&format!("{}/documents/{doc_id}/links", r.base))
                    .cookie(&r.owner)
                    .json(body.clone()),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            res.text()
        );
    }
    assert_eq!(tenant_count(&t, &r.org, "share_links").await, 0);

    let plain = link(&t, &r, &doc_id, json!({"expires_in_seconds": 3600})).await;
    let once = link(
        &t,
        &r,
        &doc_id,
        json!({"expires_in_seconds": 3600, "max_downloads": 1}),
    )
    .await;
    let short = link(&t, &r, &doc_id, json!({"expires_in_seconds": 120})).await;
    // The secret is in the URL only: not in the database, in any form but its keyed hash.
    for url in [&plain, &once, &short] {
        let token = token_of(url);
        assert!(token.len() >= 43, "{token}");
        let stored = sqlx::query("SELECT token_hash FROM share_link_tokens")
            .fetch_all(&mut *t.app.db.acquire().await.expect("conn"))
            .await
            .expect("rows");
        use sqlx::Row;
        assert_eq!(stored.len(), 3);
        for row in stored {
            let h: String = row.try_get("token_hash").expect("hash");
            assert_ne!(h, token);
            assert!(!h.contains(&token));
        }
    }
    let res = t.send(Req::get(&path_of(&plain))).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, data);
    assert!(res
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment; filename=\"deck.bin\"")));
    assert_eq!(t.send(Req::get(&path_of(&once))).await.body, data);

    let gone = |res: &TestResponse| {
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
        res.text()
    };
    let unknown = gone(
        &t.send(Req::get("/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
            .await,
    );
    let exhausted = gone(&t.send(Req::get(&path_of(&once))).await);
    t.clock.advance_secs(121);
    let expired = gone(&t.send(Req::get(&path_of(&short))).await);
    // Revocation takes effect at once.
    let links = t
        .send(Req::get(&format!("{}/documents/{doc_id}/links", r.base)).cookie(&r.owner))
        .await
        .json();
    let plain_id = links
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["downloads"] == 1 && l["max_downloads"].is_null())
        .expect("plain link")["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(
        links.to_string().find(&token_of(&plain)).is_none(),
        "no secret in the list"
    );
    let res = t
        .send(
            Req::delete(&format!("{}/documents/{doc_id}/links/{plain_id}", r.base))
                .cookie(&r.owner),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let revoked = gone(&t.send(Req::get(&path_of(&plain))).await);
    assert_eq!(unknown, exhausted);
    assert_eq!(unknown, expired);
    assert_eq!(unknown, revoked);
    let malformed = gone(&t.send(Req::get("/s/..%2f..%2fetc")).await);
    assert_eq!(unknown, malformed);

    // Each refusal of a known link is on its access list and in the trail.
    let accesses = t
        .send(
            Req::get(&format!(
                "{}/documents/{doc_id}/links/{plain_id}/accesses",
                r.base
            ))
            .cookie(&r.owner),
        )
        .await
        .json();
    let outcomes: Vec<&str> = accesses
        .as_array()
        .expect("accesses")
        .iter()
        .map(|a| a["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(outcomes, ["revoked", "download"]);
    assert!(
        accesses[1]["ip"].as_str().expect("ip").ends_with(".0"),
        "masked"
    );
    assert_eq!(accesses[1]["bytes"], data.len());
    let actions: Vec<String> = t
        .chain(&r.org)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in [
        "share_link.created",
        "share_link.downloaded",
        "share_link.refused",
        "share_link.revoked",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a}: {actions:?}");
    }
}

#[tokio::test]
async fn a_link_stops_when_its_document_or_its_creators_access_goes() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    let (editor, editor_id) = member(&t, &r, "editor@example.com", "editor").await;
    let doc = upload(&t, &r, &editor, "a.bin", b"abc").await;
    let res = t
        .send(
            Req::post(&format!("{}/documents/{}/links", r.base, id(&doc)))
                .cookie(&editor)
                .json(json!({"expires_in_seconds": 3600})),
        )
        .await;
    let url = res.json()["url"].as_str().expect("url").to_string();
    assert_eq!(
        t.send(Req::get(&path_of(&url))).await.status,
        StatusCode::OK
    );
    // The creator leaves the workspace: the link stops.
    t.send(Req::delete(&format!("{}/members/{editor_id}", r.base)).cookie(&r.owner))
        .await;
    assert_eq!(
        t.send(Req::get(&path_of(&url))).await.status,
        StatusCode::NOT_FOUND
    );
    // Another document, then deleted: its link stops and its objects go.
    let doc = upload(&t, &r, &r.owner, "b.bin", b"def").await;
    let url = link(&t, &r, &id(&doc), json!({"expires_in_seconds": 3600})).await;
    let before = objects(&t).len();
    let res = t
        .send(Req::delete(&format!("{}/documents/{}", r.base, id(&doc))).cookie(&r.owner))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.send(Req::get(&path_of(&url))).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(objects(&t).len(), before - 1, "its object was removed");
    assert_eq!(t.count("blob_garbage").await, 0);
}

#[tokio::test]
async fn password_links_ask_first_and_guessing_is_rate_limited() {
    let t = TestApp::with(|c| {
        c.rate_limits.link_attempts_per_link = Limit::new(3, 900);
        c.rate_limits.link_attempts_per_ip = Limit::new(100, 900);
    })
    .await;
    let r = room(&t, "owner@example.com").await;
    let doc = upload(&t, &r, &r.owner, "secret.bin", b"the goods").await;
    let pw = "open sesame please";
    let url = link(
        &t,
        &r,
        &id(&doc),
        json!({"expires_in_seconds": 3600, "password": pw}),
    )
    .await;
    let path = path_of(&url);
    let stored: String = {
        use sqlx::Row;
        let mut tx = crate::support::scoped_tx(&t.app, &r.org, "").await;
        sqlx::query("SELECT password_hash FROM share_links")
            .fetch_one(&mut *tx)
            .await
            .expect("row")
            .try_get("password_hash")
            .expect("hash")
    };
    assert!(stored.starts_with("$argon2id$"), "{stored}");

    // A form first, not the file.
    let res = t.send(Req::get(&path)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.text().contains("name=\"password\""));
    assert!(!res.text().contains("the goods"));
    let form = |pw: &str, ip: &str| {
        Req::post(&path)
            .header("origin", "http://strongroom.test")
            .ip(ip)
            .form(&[("step", "password"), ("password", pw)])
    };
    for n in 0..3 {
        let res = t
            .send(form("wrong guess", &format!("198.51.100.{n}")))
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert!(res.header("set-cookie").is_none());
    }
    // The link's budget is spent, whatever the address: even the right password waits.
    let res = t.send(form(pw, "192.0.2.77")).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
    assert!(res.header("retry-after").is_some());
    t.clock.advance_secs(901);
    let res = t.send(form(pw, "192.0.2.77")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let grant = res
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("strongroom_link="))
        .expect("grant cookie")
        .to_string();
    assert!(
        grant.contains("HttpOnly") && grant.contains("Path=/s/"),
        "{grant}"
    );
    let pair = grant.split(';').next().expect("pair").to_string();
    let res = t.send(Req::get(&path).header("cookie", &pair)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, b"the goods");
    // A forged or altered grant is worth nothing.
    let forged = format!("{}x", pair);
    let res = t.send(Req::get(&path).header("cookie", &forged)).await;
    assert!(res.text().contains("name=\"password\""));
    // Wrong passwords are on the link's access list and in the trail.
    let refused = t
        .chain(&r.org)
        .await
        .into_iter()
        .filter(|e| e.action == "share_link.refused")
        .count();
    assert_eq!(refused, 3);
}

#[tokio::test]
async fn a_recipient_confirms_a_code_and_the_access_list_names_them_masked() {
    let t = TestApp::with(|c| {
        c.rate_limits.link_attempts_per_link = Limit::new(10, 900);
        c.rate_limits.link_attempts_per_ip = Limit::new(5, 900);
    })
    .await;
    let r = room(&t, "owner@example.com").await;
    let doc = upload(&t, &r, &r.owner, "nda.bin", b"for partners").await;
    let doc_id = id(&doc);
    let url = link(
        &t,
        &r,
        &doc_id,
        json!({"expires_in_seconds": 3600, "recipient_email": "@Partner.example", "notify_on_first_access": true}),
    )
    .await;
    let path = path_of(&url);
    t.new_mail().await;
    let post = |pairs: &[(&str, &str)]| {
        Req::post(&path)
            .header("origin", "http://strongroom.test")
            .form(pairs)
    };
    let res = t.send(Req::get(&path)).await;
    assert!(res.text().contains("name=\"email\""));
    // An address outside the domain gets the same answer and no email.
    let res = t
        .send(post(&[
            ("step", "email"),
            ("email", "eve@elsewhere.example"),
        ]))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.text().contains("name=\"code\""));
    assert!(t.new_mail().await.is_empty());
    let res = t
        .send(post(&[("step", "email"), ("email", "bob@partner.example")]))
        .await;
    let page = res.text();
    let code_id = code_id_in(&page);
    let code = mailed_code(&t, "bob@partner.example").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = t
        .send(post(&[
            ("step", "code"),
            ("code_id", &code_id),
            ("code", wrong),
        ]))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let res = t
        .send(post(&[
            ("step", "code"),
            ("code_id", &code_id),
            ("code", &code),
        ]))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let pair = grant_in(&res);
    // The code works once.
    let res = t
        .send(post(&[
            ("step", "code"),
            ("code_id", &code_id),
            ("code", &code),
        ]))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let res = t.send(Req::get(&path).header("cookie", &pair)).await;
    assert_eq!(res.body, b"for partners");
    // The creator hears of the first use.
    let note = t.mail_to("owner@example.com").await;
    assert!(note.subject.contains("opened"), "{}", note.subject);
    let links = t
        .send(Req::get(&format!("{}/documents/{doc_id}/links", r.base)).cookie(&r.owner))
        .await
        .json();
    assert_eq!(links[0]["recipient"], "@partner.example");
    let link_id = links[0]["id"].as_str().expect("id");
    let accesses = t
        .send(
            Req::get(&format!(
                "{}/documents/{doc_id}/links/{link_id}/accesses",
                r.base
            ))
            .cookie(&r.owner),
        )
        .await
        .json();
    let download = accesses
        .as_array()
        .expect("list")
        .iter()
        .find(|a| a["outcome"] == "download")
        .expect("download");
    assert_eq!(download["recipient"], "b***@p***.example");
    let events = t.chain(&r.org).await;
    let e = events
        .iter()
        .find(|e| e.action == "share_link.downloaded")
        .expect("event");
    assert!(!e.metadata.to_string().contains("bob@"), "{}", e.metadata);
    assert!(e.metadata.to_string().contains("b***@p***.example"));
    // Code guessing from one address runs out of budget.
    for _ in 0..3 {
        t.send(post(&[
            ("step", "code"),
            ("code_id", &code_id),
            ("code", "123456"),
        ]))
        .await;
    }
    let res = t
        .send(post(&[
            ("step", "code"),
            ("code_id", &code_id),
            ("code", "123456"),
        ]))
        .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
}

/// The code id in a share page's code form.
pub(crate) fn code_id_in(page: &str) -> String {
    regex::Regex::new(r#"name="code_id" value="([0-9a-f-]+)""#)
        .expect("re")
        .captures(page)
        .expect("code id")[1]
        .to_string()
}

/// The one-time code in the newest email to `to`.
pub(crate) async fn mailed_code(t: &TestApp, to: &str) -> String {
    regex::Regex::new(r"Your code: (\d{6})")
        .expect("re")
        .captures(&t.mail_to(to).await.body)
        .expect("code")[1]
        .to_string()
}

/// The `name=value` of the grant cookie a share page set.
pub(crate) fn grant_in(res: &TestResponse) -> String {
    res.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("strongroom_link="))
        .expect("grant cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_string()
}

/// A small PDF of `pages` pages, each saying which it is.
fn pdf(pages: usize) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{dictionary, Document, Object, Stream};
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Courier",
    });
    let resources = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font } });
    let mut kids = Vec::new();
    for i in 0..pages {
        let content = Content {
            operations: vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 20.into()]),
                Operation::new("Td", vec![72.into(), 700.into()]),
                Operation::new(
                    "Tj",
                    vec![Object::string_literal(format!("Board pack page {}", i + 1))],
                ),
                Operation::new("ET", vec![]),
            ],
        };
        let c = doc.add_object(Stream::new(
            dictionary! {},
            content.encode().expect("encode"),
        ));
        kids.push(
            doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => c })
                .into(),
        );
    }
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => pages as i64, "Resources" => resources,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save");
    out
}

#[tokio::test]
async fn a_watermarked_pdf_names_the_verified_recipient_on_every_page() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    let original = pdf(3);
    let doc = upload(&t, &r, &r.owner, "board-pack.pdf", &original).await;
    assert_eq!(doc["content_type"], "application/pdf");
    let url = link(
        &t,
        &r,
        &id(&doc),
        json!({"expires_in_seconds": 3600, "recipient_email": "carol@investor.example", "watermark": true}),
    )
    .await;
    let path = path_of(&url);
    let post = |pairs: &[(&str, &str)]| {
        Req::post(&path)
            .header("origin", "http://strongroom.test")
            .form(pairs)
    };
    let page = t
        .send(post(&[
            ("step", "email"),
            ("email", "Carol@Investor.example"),
        ]))
        .await
        .text();
    let code_id = code_id_in(&page);
    let code = mailed_code(&t, "carol@investor.example").await;
    let res = t
        .send(post(&[
            ("step", "code"),
            ("code_id", &code_id),
            ("code", &code),
        ]))
        .await;
    let pair = grant_in(&res);
    let res = t.send(Req::get(&path).header("cookie", &pair)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/pdf")
    );
    assert_ne!(res.body, original);
    // Read by an independent tool, page by page.
    let file = t.dir.path().join("downloaded.pdf");
    std::fs::write(&file, &res.body).expect("write");
    for page in 1..=3 {
        let out = std::process::Command::new("pdftotext")
            .args(["-f", &page.to_string(), "-l", &page.to_string()])
            .arg(&file)
            .arg("-")
            .output()
            .expect("pdftotext (poppler-utils) must be installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("carol@investor.example"),
            "page {page}: {text}"
        );
        assert!(text.contains("2027-01-15"), "the time, page {page}: {text}");
        assert!(
            text.contains(&format!("Board pack page {page}")),
            "page {page}: {text}"
        );
    }
    // The member's own download is the original.
    let mine = t
        .send(Req::get(&format!("{}/documents/{}/content", r.base, id(&doc))).cookie(&r.owner))
        .await;
    assert_eq!(mine.body, original);
}

#[tokio::test]
async fn a_failed_or_oversized_upload_leaves_no_document_and_no_object() {
    let t = TestApp::with(|c| c.documents.max_upload_bytes = 100_000).await;
    let r = room(&t, "owner@example.com").await;
    // Announced too large: refused before a byte is stored.
    let res = t
        .send(
            Req::post(&format!("{}/documents", r.base))
                .cookie(&r.owner)
                .file("big.bin", &bytes(2_000_000, 1)),
        )
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.text());
    // Streamed (no length announced) past the limit: stopped midway.
    let (ct, body) = crate::support::multipart(
        "file",
        "big.bin",
        "application/octet-stream",
        &bytes(150_000, 2),
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/documents", r.base))
        .header("content-type", &ct)
        .header("cookie", format!("{}={}", t.cookie_name(), r.owner))
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .expect("request");
    let res = t.send_request(req, DEFAULT_IP.parse().expect("ip")).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.text());
    // Interrupted midway (the client's connection fails).
    let (ct, body) = crate::support::multipart(
        "file",
        "cut.bin",
        "application/octet-stream",
        &bytes(90_000, 3),
    );
    let mut chunks: Vec<Result<Vec<u8>, std::io::Error>> = body[..50_000]
        .chunks(8192)
        .map(|c| Ok(c.to_vec()))
        .collect();
    chunks.push(Err(std::io::Error::other("connection reset")));
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/documents", r.base))
        .header("content-type", &ct)
        .header("cookie", format!("{}={}", t.cookie_name(), r.owner))
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .expect("request");
    let res = t.send_request(req, DEFAULT_IP.parse().expect("ip")).await;
    assert!(
        res.status.is_client_error(),
        "{} {}",
        res.status,
        res.text()
    );
    // No part named file, and no multipart at all.
    let (ct, body) = crate::support::multipart("other", "x.bin", "application/octet-stream", b"x");
    let res = t
        .send(
            Req::post(&format!("{}/documents", r.base))
                .cookie(&r.owner)
                .raw(&ct, body),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.code(), "missing_file");
    let res = t
        .send(
            Req::post(&format!("{}/documents", r.base))
                .cookie(&r.owner)
                .json(json!({"file": "x"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Nothing visible, nothing stored, nothing left to clean.
    assert_eq!(tenant_count(&t, &r.org, "documents").await, 0);
    assert_eq!(tenant_count(&t, &r.org, "document_versions").await, 0);
    assert!(objects(&t).is_empty(), "{:?}", objects(&t));
    assert_eq!(t.count("blob_garbage").await, 0);
}

#[tokio::test]
async fn the_cleanup_job_removes_what_a_crashed_upload_left_behind() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    let kept = upload(&t, &r, &r.owner, "kept.bin", b"kept").await;
    // A crash mid-upload leaves a marked object (and, on the local store, a staging file).
    let version = uuid::Uuid::now_v7().to_string();
    let key = format!("orgs/{}/docs/{version}", r.org);
    let dir = t.dir.path().join(format!("objects/orgs/{}/docs", r.org));
    std::fs::write(dir.join(&version), b"half").expect("object");
    std::fs::write(dir.join(format!("{version}#3")), b"staging").expect("staging");
    let deadline = 1_800_000_000_000i64 + 3_600_000;
    {
        let mut c = t.app.db.acquire().await.expect("conn");
        strongroom::store::documents::mark_garbage(&mut c, &key, deadline)
            .await
            .expect("mark");
    }
    // Before its deadline it is an upload that may still finish.
    strongroom::tenancy::documents::collect_garbage(&t.app.db, &t.app.blobs, deadline - 1)
        .await
        .expect("cleanup");
    assert!(dir.join(&version).exists());
    let n = strongroom::tenancy::documents::collect_garbage(&t.app.db, &t.app.blobs, deadline)
        .await
        .expect("cleanup");
    assert_eq!(n, 1);
    assert!(!dir.join(&version).exists());
    assert!(!dir.join(format!("{version}#3")).exists());
    assert_eq!(t.count("blob_garbage").await, 0);
    // What a version claims is never touched.
    let res = t
        .send(Req::get(&format!("{}/documents/{}/content", r.base, id(&kept))).cookie(&r.owner))
        .await;
    assert_eq!(res.body, b"kept");
}

#[tokio::test]
async fn deleting_the_org_destroys_its_key_and_its_objects() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    let other = room(&t, "other@example.com").await;
    upload(&t, &r, &r.owner, "a.bin", &bytes(5000, 1)).await;
    let keep = upload(&t, &other, &other.owner, "b.bin", &bytes(5000, 2)).await;
    let doomed_dir = t.dir.path().join(format!("objects/orgs/{}", r.org));
    assert!(doomed_dir.exists());
    t.send(
        Req::post("/api/v1/me/reauthenticate")
            .cookie(&r.owner)
            .json(json!({"password": crate::support::PASSWORD})),
    )
    .await;
    let res = t
        .send(Req::delete(&format!("/api/v1/orgs/{}", r.org)).cookie(&r.owner))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    assert!(!doomed_dir.exists(), "the org's objects are removed");
    let keys: i64 = {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM data_keys WHERE id = $1")
            .bind(&r.org)
            .fetch_one(&mut *t.app.db.acquire().await.expect("conn"))
            .await
            .expect("count")
            .try_get("n")
            .expect("n")
    };
    assert_eq!(keys, 0, "the org key is destroyed");
    let res = t
        .send(
            Req::get(&format!("{}/documents/{}/content", other.base, id(&keep)))
                .cookie(&other.owner),
        )
        .await;
    assert_eq!(res.body, bytes(5000, 2), "other orgs are untouched");
}

#[tokio::test]
async fn folders_hold_documents_and_only_empty_ones_go() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    let res = t
        .send(
            Req::post(&format!("{}/folders", r.base))
                .cookie(&r.owner)
                .json(json!({"name": "Financials"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let folder = id(&res.json());
    let res = t
        .send(
            Req::post(&format!("{}/documents?folder_id={folder}", r.base))
                .cookie(&r.owner)
                .file("q3.xlsx", b"numbers"),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(res.json()["folder_id"], folder.as_str());
    upload(&t, &r, &r.owner, "top.txt", b"top").await;
    let inside = t
        .send(Req::get(&format!("{}/documents?folder_id={folder}", r.base)).cookie(&r.owner))
        .await
        .json();
    assert_eq!(inside["items"].as_array().expect("items").len(), 1);
    let top = t
        .send(Req::get(&format!("{}/documents?folder_id=", r.base)).cookie(&r.owner))
        .await
        .json();
    assert_eq!(top["items"].as_array().expect("items").len(), 1);
    assert_eq!(top["items"][0]["name"], "top.txt");
    let res = t
        .send(Req::delete(&format!("{}/folders/{folder}", r.base)).cookie(&r.owner))
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(res.code(), "folder_not_empty");
    let res = t
        .send(
            Req::post(&format!(
                "{}/documents?folder_id={}",
                r.base,
                uuid::Uuid::now_v7()
            ))
            .cookie(&r.owner)
            .file("x.txt", b"x"),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(objects(&t).len() == 2, "a refused upload stores nothing");
    // Moved out, the folder can go.
    let doc = inside["items"][0]["id"].as_str().expect("id");
    let res = t
        .send(
            Req::new(Method::PATCH, &format!("{}/documents/{doc}", r.base))
                .cookie(&r.owner)
                .json(json!({"folder_id": null, "name": "Q3 figures.xlsx"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["name"], "Q3 figures.xlsx");
    let res = t
        .send(Req::delete(&format!("{}/folders/{folder}", r.base)).cookie(&r.owner))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
}
