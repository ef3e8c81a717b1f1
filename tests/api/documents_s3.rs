//! Documents on an S3-compatible object store, end to end: multipart uploads in 5 MiB parts,
//! ciphertext under id-only keys, whole and ranged downloads, tampering, refused uploads and
//! deletion, checked against the bucket itself through a client of its own.
//!
//! These tests need a store: `STRONGROOM_TEST_S3` is its URL (CI starts `moto_server` on
//! 127.0.0.1 and runs them with `--include-ignored`; MinIO or any S3-compatible server works too).
//! Each test makes its own bucket.

use axum::http::StatusCode;
use futures_util::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use strongroom::config::S3Config;

use crate::documents::{bytes, id, latest_version, room, upload};
use crate::support::{Req, TestApp};

const NEEDS: &str =
    "STRONGROOM_TEST_S3: the URL of an S3-compatible store, for example `moto_server -H 127.0.0.1 -p 5599` then http://127.0.0.1:5599";

/// A fresh bucket on the test store, and the configuration that reaches it.
async fn bucket() -> S3Config {
    let endpoint = std::env::var("STRONGROOM_TEST_S3").expect(NEEDS);
    let bucket = format!("strongroom-{}", uuid::Uuid::new_v4().simple());
    let res = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect(NEEDS);
    assert!(res.status().is_success(), "create bucket: {}", res.status());
    S3Config {
        bucket,
        region: "us-east-1".into(),
        endpoint: Some(endpoint),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        path_style: true,
        allow_http: true,
    }
}

/// A client of the bucket of our own, to see what the server left there.
fn client(cfg: &S3Config) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&cfg.bucket)
        .with_region(&cfg.region)
        .with_endpoint(cfg.endpoint.as_deref().expect("endpoint"))
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_allow_http(true)
        .build()
        .expect("client")
}

/// The keys under `orgs/`, sorted.
async fn keys(store: &object_store::aws::AmazonS3) -> Vec<String> {
    keys_under(store, "orgs").await
}

#[tokio::test]
#[ignore = "needs an S3-compatible store in STRONGROOM_TEST_S3 (CI starts one)"]
async fn documents_round_trip_through_an_s3_compatible_store() {
    let cfg = bucket().await;
    let store = client(&cfg);
    let t = TestApp::with(|c| {
        c.s3 = Some(cfg.clone());
        c.documents.max_upload_bytes = 16 << 20;
    })
    .await;
    let ready = t.send(Req::get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());
    let r = room(&t, "owner@example.com").await;

    // 12 MiB and a bit: three parts of a multipart upload.
    let data = bytes((12 << 20) + 4321, 9);
    let doc = upload(&t, &r, &r.owner, "deal.bin", &data).await;
    let version = latest_version(&t, &r, &id(&doc)).await;
    let key = format!("orgs/{}/docs/{version}", r.org);
    assert_eq!(
        keys(&store).await,
        vec![key.clone()],
        "one object, ids only"
    );
    let path = object_store::path::Path::from(key.as_str());
    let raw = store
        .get(&path)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    use strongroom::crypto::stream::{sealed_len, HEADER};
    assert_eq!(raw.len() as u64, sealed_len(data.len() as u64));
    assert_eq!(&raw[..4], b"SRD2");
    assert!(
        raw.windows(32).all(|w| w != &data[1000..1032]),
        "the stored object holds no plaintext"
    );
    assert!(!raw.windows(8).any(|w| w == b"deal.bin"), "nor the name");

    // Whole, and a range that crosses a part boundary (5 MiB) and a chunk boundary.
    let content = format!("{}/documents/{}/content", r.base, id(&doc));
    let res = t.send(Req::get(&content).cookie(&r.owner)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(res.body == data, "the download is the upload");
    let (from, to) = ((5 << 20) - 100, (5 << 20) + 70_000);
    let res = t
        .send(
            Req::get(&content)
                .cookie(&r.owner)
                .header("range", &format!("bytes={from}-{to}")),
        )
        .await;
    assert_eq!(res.status, StatusCode::PARTIAL_CONTENT, "{}", res.text());
    assert!(res.body == data[from..=to], "the range");

    // Tampered in the bucket: one bit in the second chunk. Never served whole.
    let mut bad = raw.to_vec();
    bad[HEADER + 70_000] ^= 1;
    store.put(&path, bad.into()).await.expect("put");
    let res = t.send(Req::get(&content).cookie(&r.owner)).await;
    assert!(
        res.status != StatusCode::OK || res.body.len() < data.len(),
        "a tampered object is not served whole"
    );
    store.put(&path, raw.into()).await.expect("restore");

    // Too large: refused, and nothing left in the bucket.
    let res = t
        .send(
            Req::post(&format!("{}/documents", r.base))
                .cookie(&r.owner)
                .file("big.bin", &bytes(17 << 20, 1)),
        )
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.text());
    assert_eq!(keys(&store).await, vec![key.clone()]);

    // A second version is a second object; deleting the document removes both.
    let res = t
        .send(
            Req::post(&format!("{}/documents/{}/versions", r.base, id(&doc)))
                .cookie(&r.owner)
                .file("deal.bin", b"second version"),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(keys(&store).await.len(), 2);
    let res = t
        .send(Req::delete(&format!("{}/documents/{}", r.base, id(&doc))).cookie(&r.owner))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    assert!(keys(&store).await.is_empty(), "the objects are removed");
}

/// The keys under `prefix`, sorted.
async fn keys_under(store: &object_store::aws::AmazonS3, prefix: &str) -> Vec<String> {
    let prefix = object_store::path::Path::from(prefix);
    let mut keys: Vec<String> = store
        .list(Some(&prefix))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    keys.sort();
    keys
}

#[tokio::test]
#[ignore = "needs an S3-compatible store in STRONGROOM_TEST_S3 (CI starts one)"]
async fn scheduled_backups_go_to_a_bucket_are_pruned_there_and_restore_from_it() {
    use strongroom::backup;
    let cfg = bucket().await;
    let store = client(&cfg);
    let t = TestApp::with(|c| c.backup.s3 = Some(cfg.clone())).await;
    let r = room(&t, "owner@example.com").await;
    upload(&t, &r, &r.owner, "kept.txt", b"kept in the backup").await;

    let first = backup::run_scheduled(&t.app)
        .await
        .expect("backup")
        .expect("made");
    assert!(!first.exists(), "the local copy goes once it is uploaded");
    let listed = keys_under(&store, "backups").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let name = first
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .expect("name");
    assert_eq!(listed[0], format!("backups/{name}"));

    // A month later the next one is made and the first is pruned from the bucket.
    t.clock.advance_secs(31 * 86_400);
    let second = backup::run_scheduled(&t.app)
        .await
        .expect("backup")
        .expect("made");
    let name = second
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .expect("name");
    assert_eq!(
        keys_under(&store, "backups").await,
        vec![format!("backups/{name}")]
    );

    // `restore --from s3:NAME` into a fresh installation with the same master key.
    let dir = tempfile::tempdir().expect("dir");
    let (url, pg) =
        crate::support::fresh_database_of(dir.path(), crate::support::backend_is_postgres()).await;
    std::fs::copy(
        t.dir.path().join("master.key"),
        dir.path().join("master.key"),
    )
    .expect("key");
    let mut rc = t.app.config.as_ref().clone();
    rc.data_dir = dir.path().to_path_buf();
    rc.database_url = Some(url.clone());
    let refused = backup::restore_command(
        &rc,
        std::path::Path::new("s3:strongroom-20200101T000000Z.srbk"),
        backup::Progress::hidden(),
    )
    .await
    .expect_err("no such backup");
    assert!(format!("{refused:#}").contains("no backup"), "{refused:#}");
    let refused = backup::restore_command(
        &rc,
        std::path::Path::new("s3:../../etc/passwd"),
        backup::Progress::hidden(),
    )
    .await
    .expect_err("not a backup name");
    assert!(
        format!("{refused:#}").contains("not the name"),
        "{refused:#}"
    );
    let (summary, chains) = backup::restore_command(
        &rc,
        std::path::Path::new(&format!("s3:{name}")),
        backup::Progress::hidden(),
    )
    .await
    .expect("restore");
    assert_eq!(summary.objects, 1);
    assert!(
        !chains.is_empty() && chains.iter().all(|c| c.valid),
        "{chains:?}"
    );
    let mut source = crate::backup::contents(&t.app.config.database_url()).await;
    let mut restored = crate::backup::contents(&url).await;
    source.remove("backup_leases");
    restored.remove("backup_leases");
    assert_eq!(source, restored);
    assert!(
        !rc.backup_dir().join(format!("{name}.download")).exists(),
        "the downloaded copy is removed"
    );
    if let Some(name) = pg {
        crate::support::drop_database(name);
    }
}
