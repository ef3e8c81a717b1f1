//! Object storage through the `object_store` crate: the local filesystem in the data dir by default.

use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

#[derive(Clone, Debug)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// The directory of a local store (where an interrupted multipart upload leaves its staging
    /// file beside the object, `<key>#<n>`, which the store itself never lists).
    local_root: Option<std::path::PathBuf>,
}

const SENTINEL: &str = ".strongroom-ready";

impl Blobs {
    pub async fn local(dir: &std::path::Path) -> anyhow::Result<Self> {
        crate::private_dir::create(dir)?;
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir)?);
        let me = Self {
            store,
            local_root: Some(dir.to_path_buf()),
        };
        me.store
            .put(&Path::from(SENTINEL), PutPayload::from_static(b"ok"))
            .await?;
        Ok(me)
    }

    /// An S3-compatible store (AWS S3, MinIO, Ceph, R2...) as configured.
    pub async fn s3(cfg: &crate::config::S3Config) -> anyhow::Result<Self> {
        let mut b = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_allow_http(cfg.allow_http)
            .with_virtual_hosted_style_request(!cfg.path_style);
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e);
        }
        if let (Some(id), Some(secret)) = (&cfg.access_key_id, &cfg.secret_access_key) {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
        }
        let store: Arc<dyn ObjectStore> = Arc::new(b.build()?);
        let me = Self {
            store,
            local_root: None,
        };
        me.store
            .put(&Path::from(SENTINEL), PutPayload::from_static(b"ok"))
            .await?;
        Ok(me)
    }

    /// The store the configuration names: `[s3]`, else `objects/` in the data dir.
    pub async fn from_config(cfg: &crate::config::Config) -> anyhow::Result<Self> {
        match &cfg.s3 {
            Some(s3) => Self::s3(s3).await,
            None => Self::local(&cfg.data_dir.join("objects")).await,
        }
    }

    /// Whether the store answers (used by `/readyz`).
    pub async fn ping(&self) -> anyhow::Result<()> {
        self.store.head(&Path::from(SENTINEL)).await?;
        Ok(())
    }
}

/// Where a document version's encrypted object lives: under its org, named by ids only (no
/// user-chosen text ever reaches an object key).
pub fn document_key(org_id: &str, version_id: &str) -> Option<String> {
    let ok = |s: &str| uuid::Uuid::parse_str(s).is_ok();
    (ok(org_id) && ok(version_id)).then(|| format!("orgs/{org_id}/docs/{version_id}"))
}

/// Parts of a multipart upload: S3-compatible stores want at least 5 MiB per part (the last
/// excepted); the local filesystem takes any size, and smaller parts hold less in memory.
const S3_PART: usize = 5 * 1024 * 1024;
const LOCAL_PART: usize = 1024 * 1024;

/// An object being written in parts, holding at most about three parts in memory (the one being
/// filled and two being written).
pub struct BlobWriter {
    inner: object_store::WriteMultipart,
}

impl BlobWriter {
    /// Appends `data`, waiting while more than two parts are in flight.
    pub async fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.inner.write(data);
        self.inner.wait_for_capacity(2).await?;
        Ok(())
    }

    /// Appends `data` without copying it, waiting while more than two parts are in flight.
    pub async fn put(&mut self, data: bytes::Bytes) -> anyhow::Result<()> {
        self.inner.put(data);
        self.inner.wait_for_capacity(2).await?;
        Ok(())
    }

    /// Completes the object.
    pub async fn finish(self) -> anyhow::Result<()> {
        self.inner.finish().await?;
        Ok(())
    }

    /// Gives the object up (nothing is left behind by a completed abort).
    pub async fn abort(self) -> anyhow::Result<()> {
        self.inner.abort().await?;
        Ok(())
    }
}

impl Blobs {
    fn part_size(&self) -> usize {
        if self.local_root.is_some() {
            LOCAL_PART
        } else {
            S3_PART
        }
    }

    /// Starts writing object `key`.
    pub async fn writer(&self, key: &str) -> anyhow::Result<BlobWriter> {
        let upload = self.store.put_multipart(&Path::from(key)).await?;
        Ok(BlobWriter {
            inner: object_store::WriteMultipart::new_with_chunk_size(upload, self.part_size()),
        })
    }

    /// Bytes `range` of object `key`.
    pub async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> anyhow::Result<bytes::Bytes> {
        Ok(self.store.get_range(&Path::from(key), range).await?)
    }

    /// The size of object `key`, or None when there is none.
    pub async fn size(&self, key: &str) -> anyhow::Result<Option<u64>> {
        match self.store.head(&Path::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes object `key` (none there is not an error), and on a local store what an
    /// interrupted upload of it left behind.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(root) = &self.local_root {
            remove_staging(&root.join(key))?;
        }
        Ok(())
    }

    /// Whether the store holds any document object (a restore goes only into a store that
    /// holds none).
    pub async fn holds_documents(&self) -> anyhow::Result<bool> {
        use futures_util::StreamExt;
        let mut list = self.store.list(Some(&Path::from("orgs")));
        match list.next().await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(e.into()),
        }
    }

    /// Every document object's key.
    pub async fn document_keys(&self) -> anyhow::Result<Vec<String>> {
        self.keys_under("orgs").await
    }

    /// The keys of the objects under `prefix`, sorted.
    pub async fn keys_under(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        use futures_util::TryStreamExt;
        let mut keys: Vec<String> = self
            .store
            .list(Some(&Path::from(prefix)))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await?;
        keys.sort();
        Ok(keys)
    }

    /// Removes every object under `prefix` (a deleted org's).
    pub async fn delete_prefix(&self, prefix: &str) -> anyhow::Result<()> {
        use futures_util::TryStreamExt;
        let prefix = Path::from(prefix.trim_end_matches('/'));
        let keys: Vec<Path> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        for k in keys {
            self.delete(k.as_ref()).await?;
        }
        if let Some(root) = &self.local_root {
            let dir = root.join(prefix.as_ref());
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Removes the local store's staging files of `path` (`<path>#<digits>`).
fn remove_staging(path: &std::path::Path) -> anyhow::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Ok(());
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let staging = file
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('#'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if staging {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{document_key, Blobs};

    #[tokio::test]
    async fn objects_are_written_in_parts_read_by_range_and_removed() {
        let dir = tempfile::tempdir().expect("dir");
        let blobs = Blobs::local(dir.path()).await.expect("store");
        let org = uuid::Uuid::now_v7().to_string();
        let ver = uuid::Uuid::now_v7().to_string();
        let key = document_key(&org, &ver).expect("key");
        assert_eq!(key, format!("orgs/{org}/docs/{ver}"));
        let data: Vec<u8> = (0..12 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
        let mut w = blobs.writer(&key).await.expect("writer");
        for piece in data.chunks(100_003) {
            w.write(piece).await.expect("write");
        }
        w.finish().await.expect("finish");
        assert_eq!(
            blobs.size(&key).await.expect("head"),
            Some(data.len() as u64)
        );
        let r = blobs
            .get_range(&key, 6_000_000..6_000_100)
            .await
            .expect("range");
        assert_eq!(&r[..], &data[6_000_000..6_000_100]);
        blobs.delete(&key).await.expect("delete");
        assert_eq!(blobs.size(&key).await.expect("head"), None);
        blobs.delete(&key).await.expect("deleting nothing is fine");
        // An aborted upload leaves nothing.
        let mut w = blobs.writer(&key).await.expect("writer");
        w.write(&data[..1000]).await.expect("write");
        w.abort().await.expect("abort");
        assert_eq!(blobs.size(&key).await.expect("head"), None);
    }

    #[test]
    fn object_keys_carry_ids_only() {
        let id = uuid::Uuid::now_v7().to_string();
        assert!(document_key(&id, "../../etc/passwd").is_none());
        assert!(document_key("report.pdf", &id).is_none());
    }
}
