//! Backups and restores: a backup of a seeded installation (users, an org, a workspace, items,
//! comments, documents, the audit trail) restores into an empty database and object store with
//! every table and object equal, every audit chain intact, and a server on the restored copy
//! serves the same documents; a SQLite backup restores into PostgreSQL and back; a backup taken
//! while writes go on is consistent; a corrupted, truncated, foreign or mismatched backup is
//! refused with a clear error and nothing written; a live target is never overwritten.

use std::collections::BTreeMap;
use std::path::Path;

use axum::http::StatusCode;
use futures_util::StreamExt;
use serde_json::{json, Value};
use strongroom::backup::{self, Target};
use strongroom::blobs::Blobs;
use strongroom::store::dump::Snapshot;
use strongroom::store::Db;

use crate::documents::{bytes, id, latest_version, room, upload, Room};
use crate::support::{backend_is_postgres, fresh_database_of, Req, TestApp};

fn hidden() -> backup::Progress {
    backup::Progress::hidden()
}

/// An org with a workspace, two members, items, comments and two documents.
async fn seed(t: &TestApp) -> (Room, Vec<u8>) {
    let r = room(t, "owner@example.com").await;
    t.verified_user("mia@example.com", "Mia").await;
    let mia = t.login("mia@example.com").await;
    t.join(&r.owner, &r.org, "mia@example.com", "admin", &mia)
        .await;
    for i in 0..5 {
        let item = t
            .send(
                Req::post(&format!("{}/items", r.base))
                    .cookie(&r.owner)
                    .json(
                        json!({ "title": format!("Item {i}"), "description": "**secret** terms" }),
                    ),
            )
            .await;
        assert_eq!(item.status, StatusCode::CREATED, "{}", item.text());
        let c = t
            .send(
                Req::post(&format!("{}/items/{}/updates", r.base, id(&item.json())))
                    .cookie(&mia)
                    .json(json!({ "body": format!("comment on {i}") })),
            )
            .await;
        assert_eq!(c.status, StatusCode::CREATED, "{}", c.text());
    }
    let data = bytes(300_000, 7);
    upload(t, &r, &r.owner, "board-pack.pdf", &data).await;
    upload(t, &r, &mia, "notes.txt", b"minutes of the meeting").await;
    (r, data)
}

/// Every table's rows, each as a JSON object of its columns (so the two databases' column orders
/// compare equal), sorted.
pub(crate) async fn contents(url: &str) -> BTreeMap<String, Vec<String>> {
    let db = Db::connect(url, 2).await.expect("connect");
    let mut snap = db.snapshot().await.expect("snapshot");
    let mut out = BTreeMap::new();
    for t in snap.tables().await.expect("tables") {
        let sql = Snapshot::select(&t);
        let rows: Vec<_> = snap.rows(&sql, &t).collect().await;
        let mut rows: Vec<String> = rows
            .into_iter()
            .map(|r| {
                let obj: BTreeMap<&str, Value> = t
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .zip(r.expect("row"))
                    .collect();
                serde_json::to_string(&obj).expect("json")
            })
            .collect();
        rows.sort();
        out.insert(t.name.clone(), rows);
    }
    snap.finish().await.expect("finish");
    db.close().await;
    out
}

/// Every document object, by key.
pub(crate) async fn objects(blobs: &Blobs) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for k in blobs.document_keys().await.expect("list") {
        let size = blobs.size(&k).await.expect("head").expect("there");
        let data = blobs.get_range(&k, 0..size).await.expect("get");
        out.insert(k, data.to_vec());
    }
    out
}

/// An empty place to restore into: a database (of the kind asked) and an object store.
struct Place {
    dir: tempfile::TempDir,
    url: String,
    pg: Option<String>,
    blobs: Blobs,
}

impl Place {
    async fn new(postgres: bool) -> Place {
        let dir = tempfile::tempdir().expect("dir");
        let (url, pg) = fresh_database_of(dir.path(), postgres).await;
        let blobs = Blobs::local(&dir.path().join("objects"))
            .await
            .expect("store");
        Place {
            dir,
            url,
            pg,
            blobs,
        }
    }

    fn target(&self) -> Target<'_> {
        Target {
            database_url: &self.url,
            blobs: &self.blobs,
        }
    }

    async fn is_empty(&self) -> bool {
        backup::target_is_empty(&self.target()).await.expect("look")
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(name) = self.pg.take() {
            crate::support::drop_database(name);
        }
    }
}

fn master(t: &TestApp) -> strongroom::crypto::KeyBytes {
    backup::configured_master(&t.app.config).expect("master key")
}

fn root(t: &TestApp) -> strongroom::crypto::BackupRoot {
    t.app.keyring.backup_root()
}

async fn make_backup(t: &TestApp, dir: &Path, name: &str) -> std::path::PathBuf {
    let out = dir.join(name);
    let s = backup_to(t, &out).await;
    assert!(s.rows > 0 && s.objects == 2, "{s:?}");
    out
}

async fn backup_to(t: &TestApp, out: &Path) -> backup::Summary {
    backup::create(
        &t.app.db,
        &t.app.blobs,
        &root(t),
        out,
        t.app.clock.now_ms(),
        hidden(),
    )
    .await
    .expect("backup")
}

/// An old backup restored into a fresh place, with the keyrings that try to open it: the master
/// key with the installation's (live) vault, and the master key alone.
struct Old {
    p: Place,
    db: Db,
    cfg: strongroom::config::Config,
    ring: strongroom::crypto::Keyring,
    bare: strongroom::crypto::Keyring,
}

async fn restore_old(t: &TestApp, file: &Path) -> Old {
    let p = Place::new(backend_is_postgres()).await;
    backup::restore(file, &root(t), &p.target(), hidden())
        .await
        .expect("restore");
    let db = Db::connect(&p.url, 2).await.expect("connect");
    let mut cfg = crate::support::test_config(p.dir.path(), p.url.clone());
    cfg.master_key_file = Some(t.dir.path().join("master.key"));
    cfg.vault_dir = Some(t.app.config.vault_dir());
    let ring = strongroom::state::operator_keyring(&cfg, &db)
        .await
        .expect("keyring")
        .expect("configured");
    let (version, wrapped) = {
        let mut c = db.acquire().await.expect("conn");
        strongroom::store::get_data_key(&mut c, "platform")
            .await
            .expect("read")
            .expect("platform key")
    };
    let (bare, _) = strongroom::crypto::Keyring::open(
        master(t),
        Some(strongroom::crypto::WrappedKey { version, wrapped }),
    )
    .expect("platform key opens");
    Old {
        p,
        db,
        cfg,
        ring,
        bare,
    }
}

/// The restored copy must equal the source, table by table and object by object, and every
/// audit chain must verify.
async fn assert_same(t: &TestApp, p: &Place) {
    let source = contents(&t.app.config.database_url()).await;
    let restored = contents(&p.url).await;
    assert_eq!(
        source.keys().collect::<Vec<_>>(),
        restored.keys().collect::<Vec<_>>()
    );
    for (table, rows) in &source {
        assert_eq!(rows, &restored[table], "table {table} differs");
    }
    assert!(source["audit_events"].len() > 10);
    assert_eq!(objects(&t.app.blobs).await, objects(&p.blobs).await);
    let chains = backup::verify_chains(&p.url, master(t), None)
        .await
        .expect("verify");
    assert!(chains.len() >= 2, "{chains:?}");
    assert!(chains.iter().all(|c| c.valid && c.events > 0), "{chains:?}");
}

#[tokio::test]
async fn a_backup_restores_whole_and_the_restored_copy_serves_the_same_documents() {
    let t = TestApp::new().await;
    let (r, data) = seed(&t).await;
    let files = tempfile::tempdir().expect("dir");
    let file = make_backup(&t, files.path(), "full.srbk").await;
    // Sealed: no plaintext of any table or document in the file.
    let raw = std::fs::read(&file).expect("read");
    assert!(raw.starts_with(b"SRBACKUP"));
    for needle in [
        &b"owner@example.com"[..],
        b"Item 3",
        b"board-pack",
        b"comment on",
    ] {
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle),
            "{} in the clear",
            String::from_utf8_lossy(needle)
        );
    }

    let p = Place::new(backend_is_postgres()).await;
    let s = backup::restore(&file, &root(&t), &p.target(), hidden())
        .await
        .expect("restore");
    assert_eq!(s.objects, 2);
    assert_same(&t, &p).await;

    // A server on the restored copy (same master key, same shred vault: backups do not carry
    // it) lets the owner in and serves the file.
    let mut cfg = crate::support::test_config(p.dir.path(), p.url.clone());
    cfg.master_key_file = Some(t.dir.path().join("master.key"));
    cfg.vault_dir = Some(t.app.config.vault_dir());
    let restored = TestApp::on(cfg).await;
    let cookie = restored.login("owner@example.com").await;
    let doc = t
        .send(Req::get(&format!("{}/documents", r.base)).cookie(&r.owner))
        .await
        .json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|d| d["name"] == "board-pack.pdf")
        .map(id)
        .expect("the document");
    let got = restored
        .send(Req::get(&format!("{}/documents/{doc}/content", r.base)).cookie(&cookie))
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, data);
    let _ = latest_version(&t, &r, &doc).await;
}

#[tokio::test]
async fn a_backup_moves_between_sqlite_and_postgresql_both_ways() {
    let t = TestApp::new().await;
    seed(&t).await;
    let files = tempfile::tempdir().expect("dir");
    let file = make_backup(&t, files.path(), "first.srbk").await;
    // Into the other kind of database...
    let other = Place::new(!backend_is_postgres()).await;
    backup::restore(&file, &root(&t), &other.target(), hidden())
        .await
        .expect("restore into the other kind");
    assert_same(&t, &other).await;
    // ...and from there back into this kind: still the same data.
    let db = Db::connect(&other.url, 2).await.expect("connect");
    let again = files.path().join("second.srbk");
    backup::create(
        &db,
        &other.blobs,
        &root(&t),
        &again,
        t.app.clock.now_ms(),
        hidden(),
    )
    .await
    .expect("backup of the copy");
    db.close().await;
    let back = Place::new(backend_is_postgres()).await;
    backup::restore(&again, &root(&t), &back.target(), hidden())
        .await
        .expect("restore back");
    assert_same(&t, &back).await;
}

/// A tar archive's entries: names and contents.
type Entries = Vec<(String, Vec<u8>)>;

/// The error of a restore that must be refused, after checking it wrote nothing.
async fn refused(t: &TestApp, file: &Path, key: &strongroom::crypto::BackupRoot) -> String {
    let p = Place::new(backend_is_postgres()).await;
    let e = backup::restore(file, key, &p.target(), hidden())
        .await
        .expect_err("refused");
    assert!(p.is_empty().await, "a refused restore wrote something");
    let _ = t;
    format!("{e:#}")
}

#[tokio::test]
async fn damaged_foreign_and_mismatched_backups_are_refused_and_nothing_is_written() {
    let t = TestApp::new().await;
    seed(&t).await;
    let files = tempfile::tempdir().expect("dir");
    let good = make_backup(&t, files.path(), "good.srbk").await;
    let other = make_backup(&t, files.path(), "other.srbk").await;
    let raw = std::fs::read(&good).expect("read");
    let write = |name: &str, data: &[u8]| {
        let p = files.path().join(name);
        std::fs::write(&p, data).expect("write");
        p
    };

    // One flipped byte, anywhere: in the middle, in the last chunk, in the id.
    for at in [raw.len() / 2, raw.len() - 5, 12] {
        let mut bad = raw.clone();
        bad[at] ^= 0x01;
        let e = refused(&t, &write("flipped.srbk", &bad), &root(&t)).await;
        assert!(
            e.contains("damaged") || e.contains("does not open"),
            "byte {at}: {e}"
        );
    }
    // Cut short, at a chunk boundary and anywhere.
    for len in [raw.len() - 16, raw.len() / 3, 30] {
        let e = refused(&t, &write("short.srbk", &raw[..len]), &root(&t)).await;
        assert!(
            e.contains("truncated")
                || e.contains("damaged")
                || e.contains("does not open")
                || e.contains("Strongroom backup"),
            "{len}: {e}"
        );
    }
    // Not a backup at all.
    let e = refused(
        &t,
        &write("junk.srbk", b"PK\x03\x04 not a backup"),
        &root(&t),
    )
    .await;
    assert!(e.contains("not a Strongroom backup"), "{e}");
    // Another installation's master key.
    let e = refused(
        &t,
        &good,
        &strongroom::crypto::BackupRoot::from_master(&strongroom::crypto::KeyBytes::random()),
    )
    .await;
    assert!(e.contains("does not open with this master key"), "{e}");

    // Rebuilt archives, sealed properly (as someone holding the master key could): a manifest
    // from another backup, a missing object, an object changed, an older schema.
    let key = root(&t);
    let (id, archive) = backup::unseal(&good, &key).await.expect("unseal");
    let (_, other_archive) = backup::unseal(&other, &key).await.expect("unseal");
    let entries = |a: &[u8]| -> Entries {
        let mut ar = tar::Archive::new(a);
        ar.entries()
            .expect("entries")
            .map(|e| {
                let mut e = e.expect("entry");
                let name = e.path().expect("path").to_string_lossy().into_owned();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).expect("read");
                (name, data)
            })
            .collect()
    };
    let rebuild = |list: &[(String, Vec<u8>)]| -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in list {
            let mut h = tar::Header::new_ustar();
            h.set_path(name).expect("path");
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            h.set_cksum();
            b.append(&h, data.as_slice()).expect("append");
        }
        b.into_inner().expect("tar")
    };
    let mine = entries(&archive);
    let theirs = entries(&other_archive);
    assert_eq!(mine.last().expect("last").0, "manifest.json");
    let cases: Vec<(&str, Entries, &str)> = vec![
        (
            "another backup's manifest",
            {
                let mut l = mine.clone();
                let n = l.len() - 1;
                l[n] = theirs.last().expect("manifest").clone();
                l
            },
            "belongs to another backup",
        ),
        (
            "a missing object",
            mine.iter()
                .filter(|(n, _)| !n.starts_with("objects/"))
                .cloned()
                .collect(),
            "lacks objects/",
        ),
        (
            "a changed object",
            mine.iter()
                .map(|(n, d)| {
                    let mut d = d.clone();
                    if n.starts_with("objects/") {
                        d[40] ^= 1;
                    }
                    (n.clone(), d)
                })
                .collect(),
            "does not match the backup's manifest",
        ),
        (
            "an older schema",
            mine.iter()
                .map(|(n, d)| {
                    if n != "manifest.json" {
                        return (n.clone(), d.clone());
                    }
                    let mut m: Value = serde_json::from_slice(d).expect("manifest");
                    m["schema_version"] = json!(3);
                    (n.clone(), serde_json::to_vec(&m).expect("json"))
                })
                .collect(),
            "schema version 3",
        ),
    ];
    for (what, list, want) in cases {
        let path = files.path().join("rebuilt.srbk");
        let _ = std::fs::remove_file(&path);
        backup::seal(&rebuild(&list), &id, &key, &path)
            .await
            .expect("seal");
        let e = refused(&t, &path, &key).await;
        assert!(e.contains(want), "{what}: {e}");
    }

    // Rows that break a foreign key (the documents emptied, their versions kept, the manifest made
    // to agree): SQLite's check refuses them at the end, and the objects already written go too.
    let docs_part = mine
        .iter()
        .find(|(n, _)| n.starts_with("db/documents/"))
        .map(|(n, _)| n.clone())
        .expect("a documents part");
    let orphaned: Entries = mine
        .iter()
        .map(|(n, d)| {
            if *n == docs_part {
                return (n.clone(), Vec::new());
            }
            if n != "manifest.json" {
                return (n.clone(), d.clone());
            }
            let mut m: Value = serde_json::from_slice(d).expect("manifest");
            m["entries"][&docs_part] = json!({
                "size": 0,
                "sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"")),
            });
            (n.clone(), serde_json::to_vec(&m).expect("json"))
        })
        .collect();
    let path = files.path().join("orphans.srbk");
    backup::seal(&rebuild(&orphaned), &id, &key, &path)
        .await
        .expect("seal");
    let sqlite = Place::new(false).await;
    let e = backup::restore(&path, &key, &sqlite.target(), hidden())
        .await
        .expect_err("orphans refused");
    assert!(format!("{e:#}").contains("break a foreign key"), "{e:#}");
    assert!(
        sqlite.is_empty().await,
        "nothing stays of a refused restore"
    );
    assert!(sqlite.blobs.document_keys().await.expect("list").is_empty());

    // The untouched backup still restores; a second restore onto the now live copy is refused.
    let p = Place::new(backend_is_postgres()).await;
    backup::restore(&good, &key, &p.target(), hidden())
        .await
        .expect("restore");
    let before = contents(&p.url).await;
    let e = backup::restore(&other, &key, &p.target(), hidden())
        .await
        .expect_err("live target");
    assert!(format!("{e:#}").contains("not empty"), "{e:#}");
    assert_eq!(contents(&p.url).await, before, "the live copy is untouched");
}

/// `strongroom <args>` with the installation's master key, run to the end.
async fn cli(args: &[&str], master_key_file: &Path) -> std::process::Output {
    let mut cmd = tokio::process::Command::from(crate::support::strongroom_bin());
    cmd.args(args)
        .env("STRONGROOM_MASTER_KEY_FILE", master_key_file)
        .kill_on_drop(true);
    cmd.output().await.expect("run strongroom")
}

/// `strongroom backup --out OUT` of the installation in `data_dir` and `url`, which must work.
async fn backup_by_cli(out: &str, data_dir: &str, url: &str, key_file: &Path) {
    let args = [
        "backup",
        "--out",
        out,
        "--data-dir",
        data_dir,
        "--database-url",
        url,
    ];
    let done = cli(&args, key_file).await;
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
}

/// The restore drill `.ci/run` relies on (it runs in the suite on both databases): data seeded
/// through the API, a backup by the real binary while writes go on, a second one once they
/// stopped; each restored by the binary into a fresh place. The quiet backup's copy equals the
/// source in every table and object; the busy one's is a consistent earlier state: every audit
/// chain a prefix of the source's, every document it names present with the source's bytes, and
/// every row of the append-only trail one the source has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_writes_restores_a_consistent_state_and_a_quiet_one_an_equal_one() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let t = Arc::new(TestApp::new().await);
    let (r, _) = seed(&t).await;
    let key_file = t.dir.path().join("master.key");
    let url = t.app.config.database_url();
    let data_dir = t.dir.path().to_string_lossy().into_owned();
    let files = tempfile::tempdir().expect("dir");

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (t, stop, base, owner) = (t.clone(), stop.clone(), r.base.clone(), r.owner.clone());
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let item = t
                    .send(
                        Req::post(&format!("{base}/items"))
                            .cookie(&owner)
                            .json(json!({ "title": format!("During the backup {n}") })),
                    )
                    .await;
                assert_eq!(item.status, StatusCode::CREATED, "{}", item.text());
                if n % 3 == 0 {
                    let res = t
                        .send(
                            Req::post(&format!("{base}/documents"))
                                .cookie(&owner)
                                .file(&format!("during-{n}.bin"), &bytes(70_000, n as u8)),
                        )
                        .await;
                    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
                }
                n += 1;
            }
            n
        })
    };
    // Let some writes land first.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let busy = files.path().join("busy.srbk");
    let busy_s = busy.to_string_lossy().into_owned();
    backup_by_cli(&busy_s, &data_dir, &url, &key_file).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.expect("writer");
    assert!(written > 3, "writes went on ({written})");
    let quiet = files.path().join("quiet.srbk");
    let quiet_s = quiet.to_string_lossy().into_owned();
    backup_by_cli(&quiet_s, &data_dir, &url, &key_file).await;

    // Each restored by the binary, into a fresh place: its audit chains verified by it.
    let restore = |file: String| {
        let key_file = key_file.clone();
        async move {
            let p = Place::new(backend_is_postgres()).await;
            let dir = p.dir.path().to_string_lossy().into_owned();
            let out = cli(
                &[
                    "restore",
                    "--from",
                    &file,
                    "--data-dir",
                    &dir,
                    "--database-url",
                    &p.url,
                ],
                &key_file,
            )
            .await;
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(stdout.contains("all intact"), "{stdout}");
            p
        }
    };
    let quiet_copy = restore(quiet_s).await;
    assert_same(&t, &quiet_copy).await;

    let busy_copy = restore(busy_s).await;
    let source = contents(&url).await;
    let copy = contents(&busy_copy.url).await;
    assert!(copy["items"].len() >= 5 && copy["items"].len() < source["items"].len());
    for row in &copy["audit_events"] {
        assert!(
            source["audit_events"].contains(row),
            "not in the source: {row}"
        );
    }
    let chains = backup::verify_chains(&busy_copy.url, master(&t), None)
        .await
        .expect("verify");
    assert!(chains.iter().all(|c| c.valid), "{chains:?}");
    let source_objects = objects(&t.app.blobs).await;
    let copy_objects = objects(&busy_copy.blobs).await;
    assert_eq!(
        copy_objects.len(),
        copy["document_versions"].len(),
        "an object for every version"
    );
    for (k, v) in &copy_objects {
        assert_eq!(Some(v), source_objects.get(k), "{k}");
    }
}

#[tokio::test]
async fn scheduled_backups_keep_their_days_and_report_their_age_in_the_metrics() {
    let t = TestApp::with(|c| {
        c.backup.keep_days = 30;
        c.metrics_token = Some("metrics-token-for-the-backup-test".into());
    })
    .await;
    seed(&t).await;
    let dir = t.app.config.backup_dir();
    let day = 24 * 3600;
    let first = backup::run_scheduled(&t.app)
        .await
        .expect("ran")
        .expect("made");
    t.clock.advance_secs(20 * day);
    let second = backup::run_scheduled(&t.app)
        .await
        .expect("ran")
        .expect("made");
    assert!(first.exists() && second.exists());
    t.clock.advance_secs(20 * day);
    let third = backup::run_scheduled(&t.app)
        .await
        .expect("ran")
        .expect("made");
    // Forty days on, the first is past the thirty kept; the others stay.
    assert!(!first.exists(), "the 40-day-old backup was removed");
    assert!(second.exists() && third.exists());
    let names: Vec<_> = backup::scheduled_backups(&dir)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(names, vec![second.clone(), third.clone()]);
    // Each is a whole backup that restores.
    let p = Place::new(backend_is_postgres()).await;
    backup::restore(&third, &root(&t), &p.target(), hidden())
        .await
        .expect("the scheduled backup restores");
    // A backup held by someone else (a lease: another replica's) is not doubled.
    strongroom::store::dump::take_lease(&t.app.db, "elsewhere", t.app.clock.now_ms() + 60_000)
        .await
        .expect("lease");
    assert!(backup::run_scheduled(&t.app).await.expect("ran").is_none());

    let m = t
        .send(
            Req::get("/metrics")
                .header("authorization", "Bearer metrics-token-for-the-backup-test"),
        )
        .await
        .text();
    let last = m
        .lines()
        .find(|l| l.starts_with("strongroom_backup_last_success_timestamp_seconds "))
        .unwrap_or_else(|| panic!("no backup age in the metrics:\n{m}"));
    let secs: f64 = last
        .split(' ')
        .nth(1)
        .expect("value")
        .parse()
        .expect("number");
    assert!(secs > 1.7e9, "{last}");
    assert!(m.contains("strongroom_backups_total{result=\"ok\"}"), "{m}");
}

#[tokio::test]
async fn deleted_documents_keep_their_objects_while_a_backup_holds_its_lease() {
    let t = TestApp::new().await;
    let r = room(&t, "owner@example.com").await;
    let doc = id(&upload(&t, &r, &r.owner, "a.txt", b"kept for the backup").await);
    let version = latest_version(&t, &r, &doc).await;
    let key = strongroom::blobs::document_key(&r.org, &version).expect("key");
    let now = t.app.clock.now_ms();
    strongroom::store::dump::take_lease(&t.app.db, "backup-1", now + 60_000)
        .await
        .expect("lease");
    let gone = t
        .send(Req::delete(&format!("{}/documents/{doc}", r.base)).cookie(&r.owner))
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let removed = strongroom::tenancy::documents::collect_garbage(&t.app.db, &t.app.blobs, now)
        .await
        .expect("collect");
    assert_eq!(removed, 0);
    assert!(
        t.app.blobs.size(&key).await.expect("head").is_some(),
        "kept"
    );
    strongroom::store::dump::drop_lease(&t.app.db, "backup-1")
        .await
        .expect("drop");
    let removed = strongroom::tenancy::documents::collect_garbage(&t.app.db, &t.app.blobs, now)
        .await
        .expect("collect");
    assert_eq!(removed, 1);
    assert!(
        t.app.blobs.size(&key).await.expect("head").is_none(),
        "removed"
    );
}

/// Crypto-shredding against an old backup: an org deleted after a backup was taken stays
/// unreadable when that backup is restored, even with the master key and the installation's
/// shred vault; every other org's data opens as before.
#[tokio::test]
async fn a_deleted_orgs_data_stays_unreadable_in_a_backup_taken_before_its_deletion() {
    let t = TestApp::new().await;
    let (r, data) = seed(&t).await;
    let gone = room(&t, "leaving@example.com").await;
    let item = t
        .send(
            Req::post(&format!("{}/items", gone.base))
                .cookie(&gone.owner)
                .json(json!({ "title": "Secret plan" })),
        )
        .await;
    assert_eq!(item.status, StatusCode::CREATED, "{}", item.text());
    let gone_doc = id(&upload(&t, &gone, &gone.owner, "gone.txt", b"leaving soon").await);
    let files = tempfile::tempdir().expect("dir");
    let file = files.path().join("before.srbk");
    backup_to(&t, &file).await;

    // The org is deleted: its key row and its shred secret go.
    let vault = t.app.keyring.vault().expect("a vault").clone();
    assert!(vault.secret(&gone.org).expect("read").is_some());
    let res = t
        .send(Req::delete(&format!("/api/v1/orgs/{}", gone.org)).cookie(&gone.owner))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    assert!(vault.secret(&gone.org).expect("read").is_none());
    assert!(!vault.dir().join(&gone.org).exists());

    // The old backup, restored into a fresh place, brings the deleted org's rows back...
    let Old {
        p: _p,
        db,
        cfg,
        ring,
        bare,
    } = restore_old(&t, &file).await;
    let (version, wrapped) = {
        let mut c = db.acquire().await.expect("conn");
        strongroom::store::get_data_key(&mut c, &gone.org)
            .await
            .expect("read")
            .expect("the deleted org's key row is in the old backup")
    };
    let stored = strongroom::crypto::WrappedKey { version, wrapped };
    // ...but its key opens neither with the master key and the installation's vault...
    assert!(matches!(
        ring.open_tenant_key(&gone.org, &stored),
        Err(strongroom::crypto::CryptoError::Shredded)
    ));
    // ...nor with the master key alone (no vault at all)...
    assert!(bare.open_tenant_key(&gone.org, &stored).is_err());
    // ...while the other org's key opens with both.
    let (v, w) = {
        let mut c = db.acquire().await.expect("conn");
        strongroom::store::get_data_key(&mut c, &r.org)
            .await
            .expect("read")
            .expect("key")
    };
    assert!(ring
        .open_tenant_key(
            &r.org,
            &strongroom::crypto::WrappedKey {
                version: v,
                wrapped: w
            }
        )
        .is_ok());
    db.close().await;

    // A server on the restored copy: the other org's items and files are served; the deleted
    // org is not found, for its former owner too, and nothing of it is served.
    let restored = TestApp::on(cfg).await;
    let owner = restored.login("owner@example.com").await;
    let items = restored
        .send(Req::get(&format!("{}/items", r.base)).cookie(&owner))
        .await;
    assert_eq!(items.status, StatusCode::OK);
    assert!(items.text().contains("Item 3"));
    let doc = restored
        .send(Req::get(&format!("{}/documents", r.base)).cookie(&owner))
        .await
        .json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|d| d["name"] == "board-pack.pdf")
        .map(id)
        .expect("the document");
    let got = restored
        .send(Req::get(&format!("{}/documents/{doc}/content", r.base)).cookie(&owner))
        .await;
    assert_eq!(got.body, data);
    let former = restored.login("leaving@example.com").await;
    for path in [
        format!("/api/v1/orgs/{}", gone.org),
        format!("{}/items", gone.base),
        format!("{}/documents/{gone_doc}/content", gone.base),
    ] {
        let res = restored.send(Req::get(&path).cookie(&former)).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}: {}", res.text());
        assert!(!res.text().contains("Secret plan") && !res.text().contains("leaving soon"));
    }
}

/// One account's sealed email and name and its sessions' sealed IP addresses, read from `db`.
async fn account_cts(db: &Db, user_id: &str) -> (Vec<u8>, Vec<u8>, Vec<(String, Vec<u8>)>) {
    use sqlx::Row;
    let mut c = db.acquire().await.expect("conn");
    let u = sqlx::query("SELECT email_ct, display_name_ct FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&mut *c)
        .await
        .expect("the account's row");
    let sessions = sqlx::query("SELECT id, ip_ct FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(&mut *c)
        .await
        .expect("sessions")
        .into_iter()
        .map(|r| (r.get("id"), r.get("ip_ct")))
        .collect();
    (u.get("email_ct"), u.get("display_name_ct"), sessions)
}

fn user_field<'a>(column: &'a str, id: &'a str) -> strongroom::crypto::FieldAd<'a> {
    strongroom::crypto::FieldAd {
        scope: "platform",
        table: "users",
        column,
        row: id,
        account: Some(id),
    }
}

#[tokio::test]
async fn an_erased_accounts_email_and_name_stay_unreadable_in_a_backup_taken_before_the_erasure() {
    let t = TestApp::with(|c| c.accounts.deletion_grace_days = 0).await;
    let (r, _) = seed(&t).await;
    let (leaver, leaver_id) =
        crate::documents::member(&t, &r, "leaver@example.com", "editor").await;
    let mia = t.login("mia@example.com").await;
    let mia_id = t.me(&mia).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let files = tempfile::tempdir().expect("dir");
    let file = files.path().join("before.srbk");
    backup_to(&t, &file).await;

    // The account is erased (no grace period here): its shred secret goes with it.
    let accounts = t.app.keyring.account_vault().expect("a vault").clone();
    assert!(accounts.secret(&leaver_id).expect("read").is_some());
    let res = t
        .send(Req::post("/api/v1/me/deletion").cookie(&leaver))
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    assert!(accounts.secret(&leaver_id).expect("read").is_none());
    assert!(!accounts.dir().join(&leaver_id).exists());

    // The old backup, restored into a fresh place, holds the account as it was...
    let Old {
        p: _p,
        db,
        cfg,
        ring,
        bare,
    } = restore_old(&t, &file).await;
    let (email_ct, name_ct, sessions) = account_cts(&db, &leaver_id).await;
    assert!(!sessions.is_empty(), "the old backup holds its sessions");
    let (mia_email, mia_name, _) = account_cts(&db, &mia_id).await;
    // ...but its email, name and sessions' addresses open neither with the master key and the
    // installation's vault...
    use strongroom::crypto::CryptoError::Shredded;
    assert!(matches!(
        ring.open_field(&user_field("email", &leaver_id), &email_ct),
        Err(Shredded)
    ));
    assert!(matches!(
        ring.open_field(&user_field("display_name", &leaver_id), &name_ct),
        Err(Shredded)
    ));
    for (sid, ip) in &sessions {
        let ad = strongroom::crypto::FieldAd {
            scope: "platform",
            table: "sessions",
            column: "ip",
            row: sid,
            account: Some(&leaver_id),
        };
        assert!(matches!(ring.open_field(&ad, ip), Err(Shredded)));
    }
    // ...nor with the master key alone...
    assert!(bare
        .open_field(&user_field("email", &leaver_id), &email_ct)
        .is_err());
    assert!(bare
        .open_field(&user_field("email", &mia_id), &mia_email)
        .is_err());
    // ...while every other account's open with both keys together.
    assert_eq!(
        ring.open_field(&user_field("email", &mia_id), &mia_email)
            .expect("opens"),
        b"mia@example.com"
    );
    assert_eq!(
        ring.open_field(&user_field("display_name", &mia_id), &mia_name)
            .expect("opens"),
        b"Mia"
    );
    db.close().await;

    // A server on the restored copy: the erased account cannot sign in (its right password
    // answers as a wrong one), its old session is no session, and others see a deleted user
    // without an address; everyone else works as before.
    let restored = TestApp::on(cfg).await;
    let res = restored
        .login_as(
            "leaver@example.com",
            crate::support::PASSWORD,
            "203.0.113.9",
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    assert_eq!(res.code(), "invalid_credentials");
    assert_eq!(restored.me(&leaver).await.status, StatusCode::UNAUTHORIZED);
    let owner = restored.login("owner@example.com").await;
    let members = restored
        .send(Req::get(&format!("/api/v1/orgs/{}/members", r.org)).cookie(&owner))
        .await;
    assert_eq!(members.status, StatusCode::OK, "{}", members.text());
    let list = members.json()["items"].as_array().expect("items").clone();
    let gone = list
        .iter()
        .find(|m| m["user_id"] == json!(leaver_id))
        .expect("the membership is in the old backup");
    assert_eq!(gone["display_name"], "Deleted user");
    assert_eq!(gone["email"], "");
    assert!(!members.text().contains("leaver@example.com"));
    assert!(list.iter().any(|m| m["email"] == "mia@example.com"));
    restored.login("mia@example.com").await;
}
