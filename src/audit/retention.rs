//! Retention: the only way events leave the trail. For each chain, the events older than the
//! retention period form a prefix (times never go backwards along a chain); that prefix is removed
//! and a checkpoint event is appended in the same transaction. The checkpoint names the last
//! removed event (seq and hash) and carries a MAC under a key derived from the master key, so the
//! remaining chain verifies from the checkpoint on, and a prefix removed any other way does not.
//!
//! The database lets the prefix go only while the retention gate names it: on PostgreSQL through
//! the `audit_remove_prefix` function (the application role has no DELETE on the table), on SQLite
//! by writing the gate row in the same transaction. This is the one place with a dialect branch
//! outside the migrations, because SQLite has no stored functions.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Row;

use super::{append_chain, Action, Event, PLATFORM_CHAIN};
use crate::crypto::Keyring;
use crate::shutdown::Shutdown;
use crate::state::App;
use crate::store::tenant::TenantTx;
use crate::store::{Conn, Dialect};

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

/// What one run removed: `(chain, events removed)` for each chain that had expired events.
pub async fn run_once(app: &App) -> anyhow::Result<Vec<(String, i64)>> {
    let days = app.config.audit.retention_days;
    if days <= 0 {
        return Ok(Vec::new());
    }
    let cutoff = app.clock.now_ms() - days * DAY_MS;
    let chains: Vec<String> = {
        let mut c = app.db.acquire().await?;
        // On PostgreSQL the heads are behind row-level security; a definer function lists them.
        let sql = match app.db.dialect {
            Dialect::Postgres => "SELECT audit_chain_names() AS chain",
            Dialect::Sqlite => "SELECT chain FROM audit_chains ORDER BY chain",
        };
        sqlx::query(sql)
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|r| r.try_get("chain"))
            .collect::<Result<_, _>>()?
    };
    let mut done = Vec::new();
    for chain in chains {
        let removed = apply(app, &chain, cutoff).await?;
        if removed > 0 {
            tracing::info!(chain = %chain, removed, "audit retention removed expired events");
            done.push((chain, removed));
        }
    }
    Ok(done)
}

/// Removes the events of `chain` older than `cutoff` and appends the checkpoint; the number removed.
async fn apply(app: &App, chain: &str, cutoff: i64) -> anyhow::Result<i64> {
    let org = if chain == PLATFORM_CHAIN { "" } else { chain };
    let mut t = TenantTx::for_retention(&app.db, org).await?;
    let tx = t.conn()?;
    // The expired prefix ends before the first event that has not expired (exact even if times
    // were ever out of order: nothing younger than the cutoff goes).
    let first_kept = sqlx::query(
        "SELECT seq FROM audit_events WHERE chain = $1 AND at >= $2 ORDER BY seq LIMIT 1",
    )
    .bind(chain)
    .bind(cutoff)
    .fetch_optional(&mut *tx)
    .await?;
    let through_seq = match first_kept {
        Some(r) => r.try_get::<i64, _>("seq")? - 1,
        None => super::head(&mut *tx, chain).await?.map_or(0, |h| h.0),
    };
    let first = sqlx::query("SELECT MIN(seq) AS s FROM audit_events WHERE chain = $1")
        .bind(chain)
        .fetch_one(&mut *tx)
        .await?
        .try_get::<Option<i64>, _>("s")?;
    let Some(first) = first.filter(|f| *f <= through_seq) else {
        return Ok(0);
    };
    let through_hash: String =
        sqlx::query("SELECT hash FROM audit_events WHERE chain = $1 AND seq = $2")
            .bind(chain)
            .bind(through_seq)
            .fetch_one(&mut *tx)
            .await?
            .try_get("hash")?;
    let removed = through_seq - first + 1;
    let signature = app.keyring.mac(
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
    // nothing to do), then the prefix it names.
    append_chain(&mut *tx, chain, app.clock.now_ms(), ev).await?;
    let gone = remove_prefix(app, &mut *tx, chain, through_seq).await?;
    if gone != removed {
        // Another run removed part of it meanwhile: leave everything as it was.
        t.rollback().await?;
        return Ok(0);
    }
    t.commit().await?;
    Ok(removed)
}

async fn remove_prefix(
    app: &App,
    tx: &mut Conn,
    chain: &str,
    through_seq: i64,
) -> anyhow::Result<i64> {
    match app.db.dialect {
        Dialect::Postgres => {
            let row = sqlx::query("SELECT audit_remove_prefix($1, $2) AS removed")
                .bind(chain)
                .bind(through_seq)
                .fetch_one(&mut *tx)
                .await?;
            Ok(row.try_get("removed")?)
        }
        Dialect::Sqlite => {
            sqlx::query("INSERT INTO audit_retention_gate (chain, through_seq) VALUES ($1, $2)")
                .bind(chain)
                .bind(through_seq)
                .execute(&mut *tx)
                .await?;
            let removed = sqlx::query("DELETE FROM audit_events WHERE chain = $1 AND seq <= $2")
                .bind(chain)
                .bind(through_seq)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM audit_retention_gate WHERE chain = $1")
                .bind(chain)
                .execute(&mut *tx)
                .await?;
            Ok(i64::try_from(removed)?)
        }
    }
}

/// The background job: a run at start and then every `audit.retention_interval_secs`.
pub fn spawn_job(app: crate::state::AppState, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_secs(app.config.audit.retention_interval_secs.max(1));
        loop {
            if let Err(e) = run_once(&app).await {
                tracing::error!(error = %format!("{e:#}"), "audit retention failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait() => return,
            }
        }
    })
}
