//! Retention of what is no longer needed (personal data kept no longer than it serves): expired
//! and revoked sessions, used and expired single-use tokens, finished passkey ceremonies, sent
//! mail (its sealed payload names the recipient), ended invitations, used and expired share-link
//! codes, old notifications and old webhook delivery logs. A job in `serve` runs `run_once` at
//! start and every `retention.interval_secs`; each kind removed is counted in
//! `strongroom_purged_total{kind}`.
//!
//! Account tables are purged in one transaction each; org tables in a transaction per org (on
//! PostgreSQL row-level security lets a transaction reach one org's rows only).

use serde::Serialize;

use crate::clock::SharedClock;
use crate::config::RetentionConfig;
use crate::shutdown::Shutdown;
use crate::store::{self, Db};

const DAY_MS: i64 = 86_400_000;

/// What one run removed, by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub sessions: u64,
    pub tokens: u64,
    pub passkey_ceremonies: u64,
    pub sent_emails: u64,
    pub invitations: u64,
    pub link_codes: u64,
    pub notifications: u64,
    pub webhook_messages: u64,
    /// Shred secrets left behind by an org deletion or an account erasure that stopped before
    /// removing its secret, or whose account is gone.
    pub shred_secrets: u64,
}

impl Purged {
    fn count(&self) {
        for (kind, n) in [
            ("sessions", self.sessions),
            ("tokens", self.tokens),
            ("passkey_ceremonies", self.passkey_ceremonies),
            ("sent_emails", self.sent_emails),
            ("invitations", self.invitations),
            ("link_codes", self.link_codes),
            ("notifications", self.notifications),
            ("webhook_messages", self.webhook_messages),
            ("shred_secrets", self.shred_secrets),
        ] {
            metrics::counter!("strongroom_purged_total", "kind" => kind).increment(n);
        }
    }
}

/// What the job works with.
#[derive(Clone)]
pub struct Job {
    pub db: Db,
    pub clock: SharedClock,
    pub config: RetentionConfig,
    /// Sessions idle this long are over whatever their absolute expiry says.
    pub session_idle_ms: i64,
    /// The shred vault, whose orphaned secrets the purge removes.
    pub vault: Option<std::sync::Arc<crate::crypto::vault::Vault>>,
    /// The accounts' shred vault, likewise.
    pub account_vault: Option<std::sync::Arc<crate::crypto::vault::Vault>>,
}

fn days(d: u64) -> i64 {
    i64::try_from(d)
        .unwrap_or(i64::MAX / DAY_MS)
        .saturating_mul(DAY_MS)
}

/// One pass over every kind.
pub async fn run_once(job: &Job) -> anyhow::Result<Purged> {
    let now = job.clock.now_ms();
    let c = &job.config;
    let ended = now - days(c.expired_keep_days);
    let mut out = Purged::default();
    {
        let mut tx = job.db.begin().await?;
        out.sessions = store::purge::sessions(&mut tx, ended, ended - job.session_idle_ms).await?;
        out.tokens = store::purge::user_tokens(&mut tx, ended).await?;
        out.passkey_ceremonies = store::purge::webauthn_states(&mut tx, now).await?;
        out.sent_emails =
            store::purge::sent_emails(&mut tx, now - days(c.sent_emails_days)).await?;
        tx.commit().await?;
    }
    let orgs = {
        let mut conn = job.db.acquire().await?;
        store::work::keyed_tenants(&mut conn).await?
    };
    for org in orgs.iter().filter(|o| uuid::Uuid::parse_str(o).is_ok()) {
        let mut t = store::tenant::TenantTx::for_retention(&job.db, org).await?;
        out.invitations += store::purge::invitations(&mut t, ended).await?;
        out.link_codes += store::purge::link_codes(&mut t, ended).await?;
        out.notifications += store::purge::notifications(
            &mut t,
            now - days(c.read_notifications_days),
            now - days(c.notifications_days),
        )
        .await?;
        out.webhook_messages +=
            store::purge::webhook_messages(&mut t, now - days(c.webhook_log_days)).await?;
        t.commit().await?;
    }
    if let Some(v) = &job.vault {
        out.shred_secrets = sweep_vault(v, &job.db).await?;
    }
    if let Some(v) = &job.account_vault {
        out.shred_secrets += sweep_account_vault(v, &job.db).await?;
    }
    out.count();
    Ok(out)
}

/// Destroys the secrets of orgs that are gone (an org deletion destroys its secret after its
/// commit; a crash in between leaves one). Only secrets older than an hour: a new org's secret is
/// made just before its transaction commits.
async fn sweep_vault(v: &crate::crypto::vault::Vault, db: &Db) -> anyhow::Result<u64> {
    let keyed = {
        let mut c = db.acquire().await?;
        store::work::keyed_tenants(&mut c).await?
    };
    sweep(v, keyed)
}

/// Destroys the secrets of accounts that are erased or gone (an erasure destroys the secret after
/// its commit; a crash in between leaves one; a signup never verified is purged with its row).
/// Only secrets older than an hour: a new account's secret is made just before its row.
async fn sweep_account_vault(v: &crate::crypto::vault::Vault, db: &Db) -> anyhow::Result<u64> {
    let live = {
        let mut c = db.acquire().await?;
        store::users::live_ids(&mut c).await?
    };
    sweep(v, live)
}

/// Destroys every secret in `v` older than an hour whose id is not in `keep`.
fn sweep(v: &crate::crypto::vault::Vault, keep: Vec<String>) -> anyhow::Result<u64> {
    let keep: std::collections::HashSet<String> = keep.into_iter().collect();
    let mut gone = 0;
    for (id, age) in v.ids()? {
        if age > std::time::Duration::from_secs(3600) && !keep.contains(&id) {
            v.destroy(&id)?;
            gone += 1;
        }
    }
    Ok(gone)
}

/// Runs `run_once` at start and every `retention.interval_secs` (0: never) until shutdown.
pub fn spawn_job(job: Job, shutdown: Shutdown) -> Option<tokio::task::JoinHandle<()>> {
    if job.config.interval_secs == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let every = std::time::Duration::from_secs(job.config.interval_secs);
        loop {
            match run_once(&job).await {
                Ok(p) if p != Purged::default() => {
                    tracing::info!(purged = ?p, "expired data removed")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %format!("{e:#}"), "retention purge failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = shutdown.wait() => return,
            }
        }
    }))
}
