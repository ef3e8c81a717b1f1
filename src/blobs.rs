//! Object storage through the `object_store` crate: the local filesystem in the data dir by default.

use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

#[derive(Clone, Debug)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
}

const SENTINEL: &str = ".strongroom-ready";

impl Blobs {
    pub async fn local(dir: &std::path::Path) -> anyhow::Result<Self> {
        crate::private_dir::create(dir)?;
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir)?);
        let me = Self { store };
        me.store
            .put(&Path::from(SENTINEL), PutPayload::from_static(b"ok"))
            .await?;
        Ok(me)
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

/// Parts of a multipart upload: object stores want at least 5 MiB per part (the last excepted).
const PART: usize = 5 * 1024 * 1024;

/// An object being written in parts, holding at most about two parts in memory.
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
    /// Starts writing object `key`.
    pub async fn writer(&self, key: &str) -> anyhow::Result<BlobWriter> {
        let upload = self.store.put_multipart(&Path::from(key)).await?;
        Ok(BlobWriter {
            inner: object_store::WriteMultipart::new_with_chunk_size(upload, PART),
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

    /// Removes object `key` (none there is not an error).
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
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
