//! The shred vault: one random 32-byte secret per tenant (an org, or in `accounts/` an account),
//! kept in files outside the database (and so outside its backups). An org's data key is wrapped
//! under a key derived from the master key *and* its secret, an account's own fields are sealed
//! under a key derived from the platform key and its secret; deleting the org (erasing the
//! account) deletes the secret, after which no copy of the database, old backups included, opens
//! them, even with the master key.
//!
//! Files are `<dir>/<id>` (mode 0600, the directory 0700), written whole to a temporary name,
//! synced and renamed; a removal syncs the directory. Secrets are cached in memory once read (a
//! few bytes per tenant, up to `CACHED` of them), so the request path reads a file once per tenant
//! per process.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use rand::RngCore;
use zeroize::Zeroizing;

use super::CryptoError;

/// How many secrets a vault keeps in memory at most.
const CACHED: usize = 100_000;

pub struct Vault {
    dir: PathBuf,
    cache: RwLock<HashMap<String, Zeroizing<[u8; 32]>>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault({})", self.dir.display())
    }
}

fn vault_err(what: &str, e: impl std::fmt::Display) -> CryptoError {
    CryptoError::Vault(format!("{what}: {e}"))
}

/// Ids are the tenants' UUIDs; anything else never names a file.
fn valid(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
}

impl Vault {
    /// The vault in `dir`, created (0700) when missing.
    pub fn open(dir: &Path) -> Result<Self, CryptoError> {
        crate::private_dir::create(dir).map_err(|e| vault_err(&dir.display().to_string(), e))?;
        Ok(Vault {
            dir: dir.to_path_buf(),
            cache: RwLock::new(HashMap::new()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The secret of `id`, if it has one.
    pub fn secret(&self, id: &str) -> Result<Option<Zeroizing<[u8; 32]>>, CryptoError> {
        if !valid(id) {
            return Ok(None);
        }
        if let Some(s) = self
            .cache
            .read()
            .map_err(|_| vault_err("cache", "poisoned"))?
            .get(id)
        {
            return Ok(Some(s.clone()));
        }
        let path = self.dir.join(id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(vault_err(&path.display().to_string(), e)),
        };
        let mut s = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(vault_err(
                &path.display().to_string(),
                "not a 32-byte secret",
            ));
        }
        s.copy_from_slice(&bytes);
        self.remember(id, &s)?;
        Ok(Some(s))
    }

    /// `id`'s secret, made (and stored durably) if it has none yet.
    pub fn ensure(&self, id: &str) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        if let Some(s) = self.secret(id)? {
            return Ok(s);
        }
        if !valid(id) {
            return Err(vault_err(id, "not a tenant id"));
        }
        let mut s = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut s[..]);
        let tmp = self
            .dir
            .join(format!(".{id}.{}", uuid::Uuid::new_v4().simple()));
        let path = self.dir.join(id);
        let write = || -> std::io::Result<()> {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp)?;
            f.write_all(&s[..])?;
            f.sync_all()?;
            // Never replace a secret another process made meanwhile: it may wrap a key already.
            std::fs::hard_link(&tmp, &path)?;
            std::fs::remove_file(&tmp)?;
            sync_dir(&self.dir)
        };
        match write() {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(&tmp);
                return self
                    .secret(id)?
                    .ok_or_else(|| vault_err(id, "vanished while being made"));
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(vault_err(&path.display().to_string(), e));
            }
        }
        self.remember(id, &s)?;
        Ok(s)
    }

    /// Caches a secret read or made; the cache is emptied when it reaches `CACHED` ids.
    fn remember(&self, id: &str, s: &Zeroizing<[u8; 32]>) -> Result<(), CryptoError> {
        let mut cache = self
            .cache
            .write()
            .map_err(|_| vault_err("cache", "poisoned"))?;
        if cache.len() >= CACHED {
            cache.clear();
        }
        cache.insert(id.to_string(), s.clone());
        Ok(())
    }

    /// Destroys `id`'s secret: what was wrapped under it never opens again.
    pub fn destroy(&self, id: &str) -> Result<(), CryptoError> {
        if !valid(id) {
            return Ok(());
        }
        self.cache
            .write()
            .map_err(|_| vault_err("cache", "poisoned"))?
            .remove(id);
        let path = self.dir.join(id);
        // Overwritten first where the filesystem writes in place; removed in any case.
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) {
            let _ = f.write_all(&[0u8; 32]);
            let _ = f.sync_all();
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(vault_err(&path.display().to_string(), e)),
        }
        sync_dir(&self.dir).map_err(|e| vault_err(&self.dir.display().to_string(), e))
    }

    /// Every id holding a secret, with how long ago its file was written.
    pub fn ids(&self) -> Result<Vec<(String, std::time::Duration)>, CryptoError> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| vault_err(&self.dir.display().to_string(), e))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !valid(&name) {
                continue;
            }
            let age = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            out.push((name, age));
        }
        out.sort();
        Ok(out)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()?;
    }
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_made_once_read_back_and_destroyed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v = Vault::open(&dir.path().join("vault")).expect("vault");
        let id = uuid::Uuid::now_v7().to_string();
        assert!(v.secret(&id).expect("read").is_none());
        let s = v.ensure(&id).expect("make");
        assert_eq!(*v.ensure(&id).expect("again"), *s, "made once");
        let fresh = Vault::open(v.dir()).expect("reopen");
        assert_eq!(*fresh.secret(&id).expect("read").expect("there"), *s);
        assert_eq!(fresh.ids().expect("ids").len(), 1);
        fresh.destroy(&id).expect("destroy");
        assert!(fresh.secret(&id).expect("read").is_none());
        assert!(Vault::open(v.dir())
            .expect("reopen")
            .secret(&id)
            .expect("read")
            .is_none());
        assert!(v.secret("../etc/passwd").expect("refused").is_none());
    }
}
