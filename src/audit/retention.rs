//! Retention: the only way events leave the trail. For each chain, the events older than the
//! retention period form a prefix (times never go backwards along a chain); that prefix is removed
//! and a checkpoint event is appended in the same transaction. The checkpoint names the last
//! removed event (seq and hash) and carries a MAC under a key derived from the master key, so the
//! remaining chain verifies from the checkpoint on, and a prefix removed any other way does not.
//!
//! The job works on each chain in the transaction `TenantTx::for_retention` opens for it; the
//! database lets the prefix go only while the retention gate names it
//! (`store::audit::retention::remove_prefix`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{append_org, Action, Event, PLATFORM_CHAIN};
use crate::clock::SharedClock;
use crate::config::AuditConfig;
use crate::crypto::Keyring;
use crate::shutdown::Shutdown;
use crate::store;
use crate::store::tenant::TenantTx;
use crate::store::Db;

const MAC_LABEL: &str = "audit-retention-checkpoint";
const DAY_MS: i64 = 24 * 3600 * 1000;

/// The bytes a checkpoint's signature covers.
fn signed_bytes(
    chain: &str,
    through_seq: i64,
    through_hash: &str,
    removed: i64,
    cutoff: i64,
) -> String {
    super::canonical(&json!({
        "chain": chain,
        "through_seq": through_seq,
        "through_hash": through_hash,
        "removed": removed,
        "cutoff": cutoff,
    }))
}

/// Whether checkpoint metadata `meta` names the removed prefix `(through_seq, through_hash)` of
/// `chain` (and, with a keyring, carries a good signature).
pub fn checkpoint_names(
    chain: &str,
    meta: &Value,
    through_seq: i64,
    through_hash: &str,
    keyring: Option<&Keyring>,
) -> bool {
    let (Some(seq), Some(hash), Some(removed), Some(cutoff), Some(sig)) = (
        meta["through_seq"].as_i64(),
        meta["through_hash"].as_str(),
        meta["removed"].as_i64(),
        meta["cutoff"].as_i64(),
        meta["signature"].as_str(),
    ) else {
        return false;
    };
    if seq != through_seq || hash != through_hash {
        return false;
    }
    match keyring {
        None => true,
        Some(k) => k.verify_mac(
            MAC_LABEL,
            signed_bytes(chain, seq, hash, removed, cutoff).as_bytes(),
            sig,
        ),
    }
}

/// What the retention job works with, and nothing more: it runs outside any request.
#[derive(Clone)]
pub struct Job {
    pub db: Db,
    /// Signs the checkpoints.
    pub keyring: Arc<Keyring>,
    pub clock: SharedClock,
    pub config: AuditConfig,
}

/// What one run removed: `(chain, events removed)` for each chain that had expired events.
pub async fn run_once(job: &Job) -> anyhow::Result<Vec<(String, i64)>> {
    let days = job.config.retention_days;
    if days <= 0 {
        return Ok(Vec::new());
    }
    let cutoff = job.clock.now_ms() - days * DAY_MS;
    let mut done = Vec::new();
    for chain in store::audit::retention::chain_names(&job.db).await? {
        let removed = apply(job, &chain, cutoff).await?;
        if removed > 0 {
            tracing::info!(chain = %chain, removed, "audit retention removed expired events");
            done.push((chain, removed));
        }
    }
    Ok(done)
}

/// Removes the events of `chain` older than `cutoff` and appends the checkpoint; the number removed.
async fn apply(job: &Job, chain: &str, cutoff: i64) -> anyhow::Result<i64> {
    let org = if chain == PLATFORM_CHAIN { "" } else { chain };
    let mut t = TenantTx::for_retention(&job.db, org).await?;
    let Some((first, through_seq, through_hash)) =
        store::audit::retention::expired_prefix(&mut t, cutoff).await?
    else {
        return Ok(0);
    };
    let removed = through_seq - first + 1;
    let signature = job.keyring.mac(
        MAC_LABEL,
        signed_bytes(chain, through_seq, &through_hash, removed, cutoff).as_bytes(),
    );
    let ev = Event {
        actor_id: None,
        action: Action::AuditRetentionCheckpoint,
        target_type: Some("audit_chain"),
        target_id: Some(chain),
        ip: None,
        metadata: json!({
            "through_seq": through_seq,
            "through_hash": through_hash,
            "removed": removed,
            "cutoff": cutoff,
            "signature": signature,
        }),
    };
    // The checkpoint first (it locks the chain head, so a concurrent run waits and then finds
    // nothing to do), then the prefix it names; both on the transaction's own chain.
    append_org(&mut t, job.clock.now_ms(), ev).await?;
    let gone = store::audit::retention::remove_prefix(&mut t, through_seq).await?;
    if gone != removed {
        // Another run removed part of it meanwhile: leave everything as it was.
        t.rollback().await?;
        return Ok(0);
    }
    t.commit().await?;
    Ok(removed)
}

/// The background job: a run at start and then every `audit.retention_interval_secs`.
pub fn spawn_job(job: Job, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_secs(job.config.retention_interval_secs.max(1));
        loop {
            if let Err(e) = run_once(&job).await {
                tracing::error!(error = %format!("{e:#}"), "audit retention failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait() => return,
            }
        }
    })
}
