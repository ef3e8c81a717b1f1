//! Backups and restores: `strongroom backup --out FILE`, `strongroom restore --from FILE`, and the
//! scheduled backups of `serve`.
//!
//! A backup is one file: `SRBACKUP` ‖ format (1 byte) ‖ backup id (16 random bytes) ‖ the STREAM
//! header of `crypto::stream` ‖ sealed 64 KiB chunks. Sealed inside is a tar stream (POSIX ustar
//! headers from the `tar` crate) of:
//! - `db/<table>/<n>.jsonl`: the table's rows, one JSON array per line, at most about 4 MiB per
//!   entry (`store::dump` reads them in one snapshot);
//! - `objects/<key>`: each document object, byte for byte (already sealed under its own key);
//! - `manifest.json`, last: the backup id, the source database, the schema version, every table's
//!   columns and entries, every object, and the size and SHA-256 of every entry.
//!
//! The file is sealed with AES-256-GCM in the STREAM construction under a key derived (HKDF) from
//! the master key and the backup id, so a backup opens only with the master key it was made under,
//! a truncated, reordered or altered file fails to open, and a manifest carried over from another
//! backup names another id (and other sums). A restore reads the file twice: once to check all of
//! it against its manifest without writing anything, then to load it into an empty database and
//! object store, in one database transaction.
//!
//! Deleted documents' objects are not removed while a backup holds its lease (`backup_leases`),
//! so every object the snapshot names is still there when it is copied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};
use futures_util::StreamExt;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::blobs::Blobs;
use crate::crypto::stream::{ContentKey, Opener, Sealer, HEADER};
use crate::crypto::{BackupRoot, KeyBytes};
use crate::store::dump::{self, Snapshot, Table};
use crate::store::Db;

const MAGIC: &[u8; 8] = b"SRBACKUP";
const FORMAT: u8 = 1;
const ID_LEN: usize = 16;
const PREAMBLE: usize = MAGIC.len() + 1 + ID_LEN;
/// Rows gathered into one entry before it is written.
const ENTRY_BYTES: usize = 4 << 20;
/// The largest row entry a restore reads into memory.
const MAX_ROW_ENTRY: u64 = 256 << 20;
/// How long a backup's lease holds deleted objects back (renewed by no one: a crashed backup's
/// lease lapses by itself).
const LEASE_MS: i64 = 6 * 3600 * 1000;
const BLOCK: usize = 512;

/// The sums of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sum {
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableEntry {
    #[serde(flatten)]
    pub table: Table,
    pub rows: u64,
    pub parts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u8,
    pub backup_id: String,
    pub created_at: String,
    /// `sqlite` or `postgres`.
    pub source: String,
    pub schema_version: i64,
    pub tables: Vec<TableEntry>,
    pub objects: Vec<String>,
    pub entries: BTreeMap<String, Sum>,
}

/// What a backup or a restore did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub backup_id: String,
    pub tables: usize,
    pub rows: u64,
    pub objects: usize,
    /// Plaintext bytes of the archive.
    pub bytes: u64,
}

/// Progress for a terminal (hidden when not one, and for scheduled backups).
pub type Progress = indicatif::ProgressBar;

fn backup_key(root: &BackupRoot, id: &[u8]) -> ContentKey {
    root.key(&hex::encode(id))
}

fn ad(id: &[u8]) -> String {
    format!("strongroom-backup:{}", hex::encode(id))
}

// ---------------------------------------------------------------------------------------------
// Writing

/// A sealed tar stream being written to a file.
struct Out {
    file: tokio::io::BufWriter<tokio::fs::File>,
    sealer: Sealer,
    sealed: Vec<u8>,
    plain: u64,
    entries: BTreeMap<String, Sum>,
    mtime: u64,
    progress: Progress,
}

impl Out {
    async fn create(
        path: &Path,
        root: &BackupRoot,
        id: &[u8],
        mtime: u64,
        progress: Progress,
    ) -> anyhow::Result<Self> {
        let mut opts = tokio::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        opts.mode(0o600);
        let file = opts
            .open(path)
            .await
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let (sealer, header) = backup_key(root, id).sealer(&ad(id));
        file.write_all(MAGIC).await?;
        file.write_all(&[FORMAT]).await?;
        file.write_all(id).await?;
        file.write_all(&header).await?;
        Ok(Out {
            file,
            sealer,
            sealed: Vec::with_capacity(1 << 20),
            plain: 0,
            entries: BTreeMap::new(),
            mtime,
            progress,
        })
    }

    async fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.sealed.clear();
        self.sealer
            .push_into(data, &mut self.sealed)
            .map_err(|e| anyhow::anyhow!("sealing the backup: {e}"))?;
        self.file.write_all(&self.sealed).await?;
        self.plain += data.len() as u64;
        self.progress.inc(data.len() as u64);
        Ok(())
    }

    async fn header(&mut self, name: &str, size: u64) -> anyhow::Result<()> {
        ensure!(
            !self.entries.contains_key(name),
            "entry {name} written twice"
        );
        let mut h = tar::Header::new_ustar();
        h.set_path(name)
            .with_context(|| format!("entry name {name}"))?;
        h.set_size(size);
        h.set_mode(0o600);
        h.set_mtime(self.mtime);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        self.write(h.as_bytes()).await
    }

    async fn pad(&mut self, size: u64) -> anyhow::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.write(&[0u8; BLOCK][..BLOCK - rem]).await?;
        }
        Ok(())
    }

    /// One entry held in memory.
    async fn entry(&mut self, name: &str, data: &[u8]) -> anyhow::Result<()> {
        self.header(name, data.len() as u64).await?;
        self.write(data).await?;
        self.pad(data.len() as u64).await?;
        self.entries.insert(
            name.to_string(),
            Sum {
                size: data.len() as u64,
                sha256: hex::encode(Sha256::digest(data)),
            },
        );
        Ok(())
    }

    /// An object copied from the store in 1 MiB pieces.
    async fn object(&mut self, blobs: &Blobs, key: &str) -> anyhow::Result<()> {
        let size = blobs
            .size(key)
            .await?
            .ok_or_else(|| anyhow::anyhow!("object {key} is missing from the store"))?;
        let name = format!("objects/{key}");
        self.header(&name, size).await?;
        let mut hash = Sha256::new();
        let mut at = 0u64;
        while at < size {
            let end = (at + (1 << 20)).min(size);
            let piece = blobs.get_range(key, at..end).await?;
            ensure!(
                piece.len() as u64 == end - at,
                "object {key} changed while it was copied"
            );
            hash.update(&piece);
            self.write(&piece).await?;
            at = end;
        }
        self.pad(size).await?;
        self.entries.insert(
            name,
            Sum {
                size,
                sha256: hex::encode(hash.finalize()),
            },
        );
        Ok(())
    }

    async fn finish(mut self) -> anyhow::Result<u64> {
        self.write(&[0u8; 2 * BLOCK]).await?;
        self.close().await
    }

    /// Seals the last chunk and syncs the file.
    async fn close(mut self) -> anyhow::Result<u64> {
        let last = self
            .sealer
            .finish()
            .map_err(|e| anyhow::anyhow!("sealing the backup: {e}"))?;
        self.file.write_all(&last).await?;
        self.file.flush().await?;
        self.file.get_mut().sync_all().await?;
        Ok(self.plain)
    }
}

/// Writes a backup of `db` and `blobs` to `out` (which must not exist), sealed under a key
/// derived from the master key (`root`). The file appears whole or not at all (written beside it, then renamed).
pub async fn create(
    db: &Db,
    blobs: &Blobs,
    root: &BackupRoot,
    out: &Path,
    now_ms: i64,
    progress: Progress,
) -> anyhow::Result<Summary> {
    ensure!(!out.exists(), "{} exists already", out.display());
    let mut id = [0u8; ID_LEN];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let lease = hex::encode(id);
    dump::take_lease(db, &lease, now_ms + LEASE_MS).await?;
    let partial = partial_path(out);
    let result = write_backup(db, blobs, root, &id, &partial, now_ms, progress).await;
    let _ = dump::drop_lease(db, &lease).await;
    match result {
        Ok(summary) => {
            tokio::fs::rename(&partial, out).await?;
            Ok(summary)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(e)
        }
    }
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

async fn write_backup(
    db: &Db,
    blobs: &Blobs,
    root: &BackupRoot,
    id: &[u8],
    path: &Path,
    now_ms: i64,
    progress: Progress,
) -> anyhow::Result<Summary> {
    let mtime = u64::try_from(now_ms / 1000).unwrap_or(0);
    let mut out = Out::create(path, root, id, mtime, progress).await?;
    let mut snap = db.snapshot().await?;
    let tables = snap.tables().await?;
    let mut entries = Vec::new();
    let mut total_rows = 0;
    for t in tables {
        let (parts, rows) = write_table(&mut out, &mut snap, &t).await?;
        total_rows += rows;
        entries.push(TableEntry {
            table: t,
            rows,
            parts,
        });
    }
    let versions = snap.document_versions().await?;
    snap.finish().await?;
    let mut objects = Vec::new();
    for (org, version) in versions {
        let key = crate::blobs::document_key(&org, &version)
            .ok_or_else(|| anyhow::anyhow!("a document version with a malformed id"))?;
        out.object(blobs, &key).await?;
        objects.push(key);
    }
    let manifest = Manifest {
        format: FORMAT,
        backup_id: hex::encode(id),
        created_at: crate::clock::rfc3339(now_ms),
        source: match db.dialect {
            crate::store::Dialect::Sqlite => "sqlite".into(),
            crate::store::Dialect::Postgres => "postgres".into(),
        },
        schema_version: dump::schema_version(),
        tables: entries,
        objects,
        entries: out.entries.clone(),
    };
    let summary = Summary {
        backup_id: manifest.backup_id.clone(),
        tables: manifest.tables.len(),
        rows: total_rows,
        objects: manifest.objects.len(),
        bytes: 0,
    };
    out.entry("manifest.json", &serde_json::to_vec_pretty(&manifest)?)
        .await?;
    let bytes = out.finish().await?;
    Ok(Summary { bytes, ..summary })
}

async fn write_table(
    out: &mut Out,
    snap: &mut Snapshot,
    t: &Table,
) -> anyhow::Result<(Vec<String>, u64)> {
    let sql = Snapshot::select(t);
    let mut rows = snap.rows(&sql, t);
    let mut parts = Vec::new();
    let mut buf = Vec::new();
    let mut n = 0u64;
    while let Some(row) = rows.next().await {
        serde_json::to_writer(&mut buf, &row?)?;
        buf.push(b'\n');
        n += 1;
        if buf.len() >= ENTRY_BYTES {
            let name = format!("db/{}/{:06}.jsonl", t.name, parts.len());
            out.entry(&name, &buf).await?;
            parts.push(name);
            buf.clear();
        }
    }
    if !buf.is_empty() {
        let name = format!("db/{}/{:06}.jsonl", t.name, parts.len());
        out.entry(&name, &buf).await?;
        parts.push(name);
    }
    Ok((parts, n))
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A sealed tar stream being read from a file, its plaintext released only once authenticated.
struct In {
    file: tokio::io::BufReader<tokio::fs::File>,
    opener: Option<Opener>,
    plain: Vec<u8>,
    at: usize,
    read: u64,
    id: Vec<u8>,
    progress: Progress,
}

impl In {
    async fn open(path: &Path, root: &BackupRoot, progress: Progress) -> anyhow::Result<Self> {
        let file = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut file = tokio::io::BufReader::with_capacity(1 << 20, file);
        let mut pre = [0u8; PREAMBLE + HEADER];
        file.read_exact(&mut pre)
            .await
            .map_err(|_| anyhow::anyhow!("not a Strongroom backup (too short)"))?;
        ensure!(&pre[..MAGIC.len()] == MAGIC, "not a Strongroom backup");
        ensure!(
            pre[MAGIC.len()] == FORMAT,
            "a backup of format {} (this version reads format {FORMAT})",
            pre[MAGIC.len()]
        );
        let id = pre[MAGIC.len() + 1..PREAMBLE].to_vec();
        let opener = backup_key(root, &id)
            .opener(&ad(&id), &pre[PREAMBLE..])
            .map_err(|_| anyhow::anyhow!("not a Strongroom backup (bad header)"))?;
        Ok(In {
            file,
            opener: Some(opener),
            plain: Vec::new(),
            at: 0,
            read: 0,
            id,
            progress,
        })
    }

    /// More plaintext; false at the end of the file.
    async fn fill(&mut self) -> anyhow::Result<bool> {
        let Some(opener) = self.opener.as_mut() else {
            return Ok(false);
        };
        let mut buf = vec![0u8; 1 << 20];
        let n = self.file.read(&mut buf).await?;
        self.progress.inc(n as u64);
        self.plain.drain(..self.at);
        self.at = 0;
        let opened = if n == 0 {
            let Some(opener) = self.opener.take() else {
                return Ok(false);
            };
            opener.finish()
        } else {
            opener.push(&buf[..n])
        };
        let pt = opened.map_err(|e| self.damage(&e))?;
        self.plain.extend_from_slice(&pt);
        Ok(true)
    }

    fn damage(&self, e: &crate::crypto::stream::ContentError) -> anyhow::Error {
        use crate::crypto::stream::ContentError::*;
        match e {
            Corrupt(0) => anyhow::anyhow!(
                "the backup does not open with this master key (made under another one, or damaged at its start)"
            ),
            Corrupt(chunk) => anyhow::anyhow!(
                "the backup is damaged: its chunk {chunk} does not authenticate"
            ),
            Truncated => anyhow::anyhow!("the backup is truncated"),
            other => anyhow::anyhow!("the backup does not open: {other}"),
        }
    }

    /// Exactly `n` bytes of plaintext (less only at the end of the stream).
    async fn take(&mut self, n: usize) -> anyhow::Result<&[u8]> {
        while self.plain.len() - self.at < n {
            if !self.fill().await? {
                break;
            }
        }
        let end = (self.at + n).min(self.plain.len());
        let out = &self.plain[self.at..end];
        self.at = end;
        self.read += out.len() as u64;
        Ok(out)
    }

    /// The next entry's name and size, or None at the end of the archive.
    async fn next(&mut self) -> anyhow::Result<Option<(String, u64)>> {
        let block = self.take(BLOCK).await?.to_vec();
        ensure!(block.len() == BLOCK, "the backup is truncated");
        if block.iter().all(|b| *b == 0) {
            let end = self.take(BLOCK).await?.to_vec();
            ensure!(
                end.len() == BLOCK && end.iter().all(|b| *b == 0),
                "the backup's archive is malformed"
            );
            // Nothing may follow, and the stream's last chunk must be there.
            ensure!(
                self.take(1).await?.is_empty(),
                "the backup has data after its end"
            );
            ensure!(self.opener.is_none(), "the backup is truncated");
            return Ok(None);
        }
        let h = tar::Header::from_byte_slice(&block);
        let stored = h
            .cksum()
            .map_err(|_| anyhow::anyhow!("the backup's archive is malformed"))?;
        let sum: u32 = block
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        ensure!(stored == sum, "the backup's archive is malformed");
        let name = h
            .path()
            .map_err(|_| anyhow::anyhow!("the backup's archive is malformed"))?
            .to_string_lossy()
            .into_owned();
        let size = h
            .size()
            .map_err(|_| anyhow::anyhow!("the backup's archive is malformed"))?;
        Ok(Some((name, size)))
    }

    /// The entry's next piece (at most 1 MiB; `left` counts down from its size), its padding read
    /// after the last; None once it is all read.
    async fn piece(&mut self, left: &mut u64, size: u64) -> anyhow::Result<Option<Vec<u8>>> {
        if *left == 0 {
            return Ok(None);
        }
        let want = usize::try_from((*left).min(1 << 20)).unwrap_or(1 << 20);
        let piece = self.take(want).await?.to_vec();
        ensure!(piece.len() == want, "the backup is truncated");
        *left -= want as u64;
        if *left == 0 {
            let rem = (size % BLOCK as u64) as usize;
            if rem != 0 {
                let pad = BLOCK - rem;
                ensure!(
                    self.take(pad).await?.len() == pad,
                    "the backup is truncated"
                );
            }
        }
        Ok(Some(piece))
    }

    /// The entry's bytes, each piece handed to `f`.
    async fn body(
        &mut self,
        size: u64,
        mut f: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut left = size;
        while let Some(p) = self.piece(&mut left, size).await? {
            f(&p)?;
        }
        Ok(())
    }
}

/// Reads the whole backup and checks it against its manifest, writing nothing: the manifest.
pub async fn verify(
    path: &Path,
    root: &BackupRoot,
    progress: Progress,
) -> anyhow::Result<Manifest> {
    let mut input = In::open(path, root, progress).await?;
    let mut seen: BTreeMap<String, Sum> = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    while let Some((name, size)) = input.next().await? {
        ensure!(
            manifest.is_none(),
            "the backup has entries after its manifest"
        );
        let mut hash = Sha256::new();
        let mut kept = Vec::new();
        let is_manifest = name == "manifest.json";
        ensure!(
            !is_manifest || size <= MAX_ROW_ENTRY,
            "the backup's manifest is too large"
        );
        input
            .body(size, |piece| {
                hash.update(piece);
                if is_manifest {
                    kept.extend_from_slice(piece);
                }
                Ok(())
            })
            .await?;
        if is_manifest {
            let m: Manifest = serde_json::from_slice(&kept)
                .map_err(|e| anyhow::anyhow!("the backup's manifest does not parse: {e}"))?;
            manifest = Some(m);
        } else {
            ensure!(
                seen.insert(
                    name.clone(),
                    Sum {
                        size,
                        sha256: hex::encode(hash.finalize()),
                    },
                )
                .is_none(),
                "the backup holds {name} twice"
            );
        }
    }
    let m = manifest.ok_or_else(|| anyhow::anyhow!("the backup has no manifest"))?;
    ensure!(
        m.backup_id == hex::encode(&input.id),
        "the manifest belongs to another backup ({}, not {})",
        m.backup_id,
        hex::encode(&input.id)
    );
    ensure!(m.format == FORMAT, "the manifest's format is {}", m.format);
    for (name, sum) in &m.entries {
        match seen.get(name) {
            None => bail!("the backup lacks {name}, which its manifest lists"),
            Some(s) if s != sum => bail!("{name} does not match the backup's manifest"),
            Some(_) => {}
        }
    }
    if let Some(extra) = seen.keys().find(|n| !m.entries.contains_key(*n)) {
        bail!("the backup holds {extra}, which its manifest does not list");
    }
    for t in &m.tables {
        for p in &t.parts {
            ensure!(
                m.entries.contains_key(p),
                "the manifest lists {p} twice over"
            );
        }
    }
    for o in &m.objects {
        ensure!(
            m.entries.contains_key(&format!("objects/{o}")),
            "the manifest names object {o} without its entry"
        );
    }
    Ok(m)
}

/// Where a restore goes: a database and an object store that hold nothing yet.
pub struct Target<'a> {
    pub database_url: &'a str,
    pub blobs: &'a Blobs,
}

/// Restores the backup at `path` into `target`, after `verify` (the caller checks the target is
/// empty first: `target_is_empty`). The schema is this binary's migrations; the backup's must be
/// the same version.
pub async fn restore(
    path: &Path,
    root: &BackupRoot,
    target: &Target<'_>,
    progress: Progress,
) -> anyhow::Result<Summary> {
    let file_len = tokio::fs::metadata(path).await?.len();
    progress.set_length(file_len * 2);
    let m = verify(path, root, progress.clone()).await?;
    ensure!(
        m.schema_version == dump::schema_version(),
        "the backup has schema version {} and this binary {}: restore it with the version that made it, then upgrade",
        m.schema_version,
        dump::schema_version()
    );
    ensure!(
        target_is_empty(target).await?,
        "the target is not empty: a restore goes only into an empty database and object store"
    );
    let db = Db::connect(target.database_url, 2).await?;
    db.migrate().await?;
    let mut load = db.load().await?;
    let tables: BTreeMap<&str, &TableEntry> = m
        .tables
        .iter()
        .map(|t| (t.table.name.as_str(), t))
        .collect();
    let part_of: BTreeMap<&str, &TableEntry> = m
        .tables
        .iter()
        .flat_map(|t| t.parts.iter().map(move |p| (p.as_str(), t)))
        .collect();
    for t in tables.values() {
        load.check(&t.table)?;
    }
    let mut input = In::open(path, root, progress).await?;
    let mut written: Vec<String> = Vec::new();
    let mut rows = 0u64;
    let loaded = async {
        while let Some((name, size)) = input.next().await? {
            if let Some(t) = part_of.get(name.as_str()) {
                ensure!(size <= MAX_ROW_ENTRY, "{name} is too large");
                let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                input
                    .body(size, |p| {
                        data.extend_from_slice(p);
                        Ok(())
                    })
                    .await?;
                let batch: Vec<dump::Row> = data
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(serde_json::from_slice)
                    .collect::<Result<_, _>>()?;
                rows += batch.len() as u64;
                load.insert(&t.table, &batch).await?;
            } else if let Some(key) = name.strip_prefix("objects/") {
                let mut w = target.blobs.writer(key).await?;
                let mut left = size;
                while let Some(p) = input.piece(&mut left, size).await? {
                    w.put(bytes::Bytes::from(p)).await?;
                }
                w.finish().await?;
                written.push(key.to_string());
            } else {
                input.body(size, |_| Ok(())).await?;
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    // The rows commit last (after SQLite's foreign-key check); if anything failed, the objects
    // already written go too, so the target is left as empty as it was.
    let committed = match loaded {
        Ok(()) => load.commit().await,
        Err(e) => Err(e),
    };
    if let Err(e) = committed {
        for key in &written {
            let _ = target.blobs.delete(key).await;
        }
        return Err(e);
    }
    db.close().await;
    Ok(Summary {
        backup_id: m.backup_id,
        tables: m.tables.len(),
        rows,
        objects: m.objects.len(),
        bytes: input.read,
    })
}

/// Whether the target's database and object store hold nothing yet.
pub async fn target_is_empty(target: &Target<'_>) -> anyhow::Result<bool> {
    let db_empty = match dump::is_empty(target.database_url).await {
        Ok(e) => e,
        // A SQLite file that does not exist yet is empty.
        Err(_) if target.database_url.starts_with("sqlite:") => true,
        Err(e) => return Err(e),
    };
    Ok(db_empty && !target.blobs.holds_documents().await?)
}

// ---------------------------------------------------------------------------------------------
// Inspection

/// A backup's id and its plaintext archive (a tar stream), checked chunk by chunk but not against
/// its manifest. It holds the database's rows in the clear: write it only where the data itself
/// may be.
pub async fn unseal(path: &Path, root: &BackupRoot) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let mut input = In::open(path, root, Progress::hidden()).await?;
    while input.fill().await? {}
    Ok((input.id.clone(), std::mem::take(&mut input.plain)))
}

/// Seals `archive` as backup `id` into `out` (the inverse of `unseal`).
pub async fn seal(archive: &[u8], id: &[u8], root: &BackupRoot, out: &Path) -> anyhow::Result<()> {
    ensure!(id.len() == ID_LEN, "a backup id is {ID_LEN} bytes");
    let mut o = Out::create(out, root, id, 0, Progress::hidden()).await?;
    o.write(archive).await?;
    o.close().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The commands

/// The master key the configuration names, or the one generated in the data dir; never a new
/// one (a backup made or opened under a key nobody kept would be worthless).
pub fn configured_master(cfg: &crate::config::Config) -> anyhow::Result<KeyBytes> {
    let has_key = cfg.master_key.is_some()
        || cfg.master_key_file.is_some()
        || cfg.data_dir.join("master.key").exists();
    ensure!(
        has_key,
        "no master key: set master_key_file (or STRONGROOM_MASTER_KEY), or put the installation's master.key in the data dir"
    );
    let (master, _) = crate::crypto::load_master_key(
        cfg.master_key.as_deref(),
        cfg.master_key_file.as_deref(),
        &cfg.data_dir,
    )?;
    Ok(master)
}

/// The database URL of an installation that must exist already (a SQLite file is opened, never
/// created).
pub fn existing_database(cfg: &crate::config::Config) -> anyhow::Result<String> {
    Ok(match &cfg.database_url {
        Some(url) => url.clone(),
        None => {
            let path = cfg.embedded_database();
            ensure!(path.is_file(), "no database at {}", path.display());
            format!("sqlite://{}?mode=rw", path.display())
        }
    })
}

/// `strongroom backup --out FILE`.
pub async fn backup_command(
    cfg: &crate::config::Config,
    out: &Path,
    now_ms: i64,
    progress: Progress,
) -> anyhow::Result<Summary> {
    let master = configured_master(cfg)?;
    let db = Db::connect(&existing_database(cfg)?, 2).await?;
    let blobs = Blobs::from_config(cfg).await?;
    let root = BackupRoot::from_master(&master);
    let result = create(&db, &blobs, &root, out, now_ms, progress).await;
    db.close().await;
    result
}

/// One audit chain's verification after a restore.
#[derive(Debug, Serialize)]
pub struct ChainCheck {
    pub chain: String,
    pub valid: bool,
    pub events: u64,
    pub first_bad_seq: Option<i64>,
}

/// `strongroom restore --from FILE` (or `--from s3:NAME`, a scheduled backup in `[backup.s3]`):
/// into the (empty) database and object store the configuration names, then `audit verify` over
/// every chain of the result.
pub async fn restore_command(
    cfg: &crate::config::Config,
    from: &Path,
    progress: Progress,
) -> anyhow::Result<(Summary, Vec<ChainCheck>)> {
    let master = configured_master(cfg)?;
    crate::private_dir::create(&cfg.data_dir)?;
    let blobs = Blobs::from_config(cfg).await?;
    let url = cfg.database_url();
    let target = Target {
        database_url: &url,
        blobs: &blobs,
    };
    let root = BackupRoot::from_master(&master);
    let (file, fetched) = fetch_backup(cfg, from).await?;
    let restored = restore(&file, &root, &target, progress).await;
    if fetched {
        let _ = tokio::fs::remove_file(&file).await;
    }
    let summary = restored?;
    let previous = crate::crypto::load_previous_master_key(
        cfg.previous_master_key.as_deref(),
        cfg.previous_master_key_file.as_deref(),
    )?;
    let checks = verify_chains(&url, master, previous).await?;
    Ok((summary, checks))
}

/// `audit verify` over every chain in the database at `url`.
pub async fn verify_chains(
    url: &str,
    master: KeyBytes,
    previous: Option<KeyBytes>,
) -> anyhow::Result<Vec<ChainCheck>> {
    let db = Db::connect(url, 2).await?;
    let stored = {
        let mut c = db.acquire().await?;
        crate::store::get_data_key(&mut c, "platform").await?
    };
    let (keyring, _) = crate::crypto::Keyring::open_rotating(
        master,
        previous,
        stored.map(|(version, wrapped)| crate::crypto::WrappedKey { version, wrapped }),
    )?;
    let mut out = Vec::new();
    for chain in dump::chains(url).await? {
        let scope = if chain == crate::audit::PLATFORM_CHAIN {
            String::new()
        } else {
            chain.clone()
        };
        let report = crate::audit::query::verify_chain(
            || crate::store::tenant::TenantTx::for_operator_read(&db, &scope),
            Some(&keyring),
        )
        .await?;
        out.push(ChainCheck {
            chain,
            valid: report.valid,
            events: report.events,
            first_bad_seq: report.first_bad_seq,
        });
    }
    db.close().await;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Scheduled backups

const SCHEDULED_PREFIX: &str = "strongroom-";
const SCHEDULED_SUFFIX: &str = ".srbk";

/// The name of a scheduled backup made at `ms`: its time, so names sort by age.
fn scheduled_name(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{SCHEDULED_PREFIX}{:04}{:02}{:02}T{:02}{:02}{:02}Z{SCHEDULED_SUFFIX}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// When a scheduled backup named `name` was made (ms), if it is one.
fn scheduled_time(name: &str) -> Option<i64> {
    let stamp = name
        .strip_prefix(SCHEDULED_PREFIX)?
        .strip_suffix(SCHEDULED_SUFFIX)?;
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(stamp, &f).ok()?;
    Some(t.assume_utc().unix_timestamp() * 1000)
}

/// The scheduled backups in `dir`, oldest first, with their times.
pub fn scheduled_backups(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut out: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            scheduled_time(&name).map(|t| (t, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// One scheduled backup now (unless another backup holds a lease: another replica's), then the
/// removal of those older than `backup.keep_days`. Records the outcome in the metrics.
pub async fn run_scheduled(app: &crate::state::App) -> anyhow::Result<Option<PathBuf>> {
    let now = app.clock.now_ms();
    let dir = app.config.backup_dir();
    crate::private_dir::create(&dir)?;
    {
        let mut c = app.db.acquire().await?;
        if dump::leased(&mut c, now).await? {
            tracing::info!("a backup is already running elsewhere; this one is skipped");
            return Ok(None);
        }
    }
    let path = dir.join(scheduled_name(now));
    let started = std::time::Instant::now();
    let made = create(
        &app.db,
        &app.blobs,
        &app.keyring.backup_root(),
        &path,
        now,
        Progress::hidden(),
    )
    .await;
    match &made {
        Ok(s) => {
            metrics::counter!("strongroom_backups_total", "result" => "ok").increment(1);
            metrics::gauge!("strongroom_backup_last_success_timestamp_seconds")
                .set((now / 1000) as f64);
            metrics::gauge!("strongroom_backup_last_size_bytes").set(s.bytes as f64);
            metrics::histogram!("strongroom_backup_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            tracing::info!(
                file = %path.display(), backup_id = %s.backup_id, rows = s.rows,
                objects = s.objects, bytes = s.bytes, "backup written"
            );
        }
        Err(e) => {
            metrics::counter!("strongroom_backups_total", "result" => "failed").increment(1);
            tracing::error!(error = %format!("{e:#}"), "scheduled backup failed");
        }
    }
    made?;
    let keep_ms =
        i64::try_from(app.config.backup.keep_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    if let Some(s3) = &app.config.backup.s3 {
        let store = Blobs::s3(s3).await?;
        if let Err(e) = upload(&store, &path).await {
            metrics::counter!("strongroom_backups_total", "result" => "failed").increment(1);
            tracing::error!(error = %format!("{e:#}"), file = %path.display(), "backup not uploaded; the local copy stays");
            return Err(e);
        }
        tokio::fs::remove_file(&path).await?;
        for (t, key) in remote_backups(&store).await? {
            if now - t > keep_ms {
                match store.delete(&key).await {
                    Ok(()) => tracing::info!(key = %key, "old backup removed from the bucket"),
                    Err(e) => tracing::warn!(key = %key, error = %e, "old backup not removed"),
                }
            }
        }
        return Ok(Some(path));
    }
    for (t, old) in scheduled_backups(&dir) {
        if now - t > keep_ms {
            match tokio::fs::remove_file(&old).await {
                Ok(()) => tracing::info!(file = %old.display(), "old backup removed"),
                Err(e) => {
                    tracing::warn!(file = %old.display(), error = %e, "old backup not removed")
                }
            }
        }
    }
    Ok(Some(path))
}

/// Where backups live in a bucket.
const REMOTE_PREFIX: &str = "backups";

/// Copies a finished backup file to the bucket (multipart), under its own name.
async fn upload(store: &Blobs, path: &Path) -> anyhow::Result<()> {
    use tokio::io::AsyncReadExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow::anyhow!("a backup file has a name"))?;
    let mut file = tokio::fs::File::open(path).await?;
    let mut w = store.writer(&format!("{REMOTE_PREFIX}/{name}")).await?;
    let result = async {
        loop {
            let mut buf = vec![0u8; 1 << 20];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            w.put(bytes::Bytes::from(buf)).await?;
        }
        anyhow::Ok(())
    }
    .await;
    match result {
        Ok(()) => w.finish().await,
        Err(e) => {
            let _ = w.abort().await;
            Err(e)
        }
    }
}

/// The scheduled backups in the bucket: `(time made, key)`, oldest first.
async fn remote_backups(store: &Blobs) -> anyhow::Result<Vec<(i64, String)>> {
    let mut out: Vec<(i64, String)> = store
        .keys_under(REMOTE_PREFIX)
        .await?
        .into_iter()
        .filter_map(|k| {
            let name = k.strip_prefix(&format!("{REMOTE_PREFIX}/"))?;
            Some((scheduled_time(name)?, k.clone()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// When the newest scheduled backup was made: in the bucket with `[backup.s3]` (reached once,
/// then kept in `bucket`), else in the folder.
async fn newest_backup(app: &crate::state::App, bucket: &mut Option<Blobs>) -> Option<i64> {
    match &app.config.backup.s3 {
        Some(s3) => {
            if bucket.is_none() {
                match Blobs::s3(s3).await {
                    Ok(store) => *bucket = Some(store),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "cannot reach the backup bucket");
                        return None;
                    }
                }
            }
            let store = bucket.as_ref()?;
            match remote_backups(store).await {
                Ok(list) => list.last().map(|(t, _)| *t),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot list the backups in the bucket");
                    None
                }
            }
        }
        None => scheduled_backups(&app.config.backup_dir())
            .last()
            .map(|(t, _)| *t),
    }
}

/// A backup named `s3:NAME` fetched from `[backup.s3]` into the backup folder (removed by the
/// caller after the restore), or the local file named.
async fn fetch_backup(cfg: &crate::config::Config, from: &Path) -> anyhow::Result<(PathBuf, bool)> {
    let text = from.to_string_lossy();
    let Some(name) = text.strip_prefix("s3:") else {
        return Ok((from.to_path_buf(), false));
    };
    ensure!(
        scheduled_time(name).is_some(),
        "s3:{name} is not the name of a scheduled backup ({SCHEDULED_PREFIX}YYYYMMDDTHHMMSSZ{SCHEDULED_SUFFIX})"
    );
    let s3 = cfg
        .backup
        .s3
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("s3:{name}: no [backup.s3] bucket is configured"))?;
    let store = Blobs::s3(s3).await?;
    let key = format!("{REMOTE_PREFIX}/{name}");
    let size = store
        .size(&key)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no backup {name} in the bucket"))?;
    let dir = cfg.backup_dir();
    crate::private_dir::create(&dir)?;
    let local = dir.join(format!("{name}.download"));
    let mut file = tokio::fs::File::create(&local).await?;
    let mut at = 0;
    while at < size {
        use tokio::io::AsyncWriteExt;
        let end = (at + (8 << 20)).min(size);
        let chunk = store.get_range(&key, at..end).await?;
        file.write_all(&chunk).await?;
        at = end;
    }
    file.sync_all().await?;
    Ok((local, true))
}

/// Runs `run_scheduled` every `backup.interval_secs`, counted from the newest backup in the
/// folder (so a restart makes no extra one; with none, the first comes one interval after the
/// start), until shutdown. A failed backup is tried again after a quarter of an hour at most.
/// Shutdown does not wait for a backup in progress: its partial file is removed at the next start
/// and its lease lapses by itself.
pub fn spawn_schedule(
    app: &crate::state::AppState,
    shutdown: crate::shutdown::Shutdown,
) -> Option<tokio::task::JoinHandle<()>> {
    let every_ms = i64::try_from(app.config.backup.interval_secs.saturating_mul(1000)).ok()?;
    if every_ms == 0 {
        return None;
    }
    let app = std::sync::Arc::clone(app);
    Some(tokio::spawn(async move {
        let dir = app.config.backup_dir();
        remove_partials(&dir);
        let started = app.clock.now_ms();
        let mut retry_at = 0;
        let mut bucket = None;
        loop {
            let last = newest_backup(&app, &mut bucket).await;
            if let Some(t) = last {
                metrics::gauge!("strongroom_backup_last_success_timestamp_seconds")
                    .set((t / 1000) as f64);
            }
            let due = last
                .map_or(started, |t| t)
                .saturating_add(every_ms)
                .max(retry_at);
            let wait = u64::try_from(due - app.clock.now_ms()).unwrap_or(0);
            if wait > 0 {
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_millis(wait.min(60_000))) => continue,
                    _ = shutdown.wait() => return,
                }
            }
            tokio::select! {
                r = run_scheduled(&app) => {
                    if r.is_err() {
                        retry_at = app.clock.now_ms() + every_ms.min(15 * 60_000);
                    }
                }
                _ = shutdown.wait() => return,
            }
        }
    }))
}

/// Removes what interrupted backups left in `dir`.
fn remove_partials(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(SCHEDULED_PREFIX) && name.ends_with(".partial") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
