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
