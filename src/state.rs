//! Everything a request handler needs, built once at start-up and passed in (no globals).

use std::sync::Arc;

use crate::blobs::Blobs;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::crypto::password::PasswordHasher;
use crate::crypto::{self, Keyring, MasterKeySource, WrappedKey};
use crate::mail::Mailer;
use crate::ratelimit::{MemoryLimiter, RateLimiter};
use crate::store::{self, Db};
use crate::templates::Templates;

pub struct App {
    pub config: Arc<Config>,
    pub db: Db,
    pub keyring: Arc<Keyring>,
    pub hasher: PasswordHasher,
    pub limiter: Arc<dyn RateLimiter>,
    pub clock: SharedClock,
    pub mailer: Mailer,
    pub blobs: Blobs,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub background: crate::background::Background,
    /// The WebAuthn relying party, when the public URL can be one.
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    /// The one template environment every page renders through.
    pub templates: Templates,
    /// The webhook delivery client behind its SSRF guard.
    pub webhooks: crate::tenancy::webhooks::Sender,
}

pub type AppState = Arc<App>;

impl App {
    /// Compiles the page templates, opens the data dir, database (migrated), keyring, object store
    /// and mailer.
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<AppState> {
        let templates = Templates::load()?;
        crate::private_dir::create(&config.data_dir)?;
        let db = Db::connect_with(
            &config.database_url(),
            config.database_max_connections,
            config.sqlite_read_connections,
        )
        .await?;
        db.migrate().await?;
        let (master, source) = crypto::load_master_key(
            config.master_key.as_deref(),
            config.master_key_file.as_deref(),
            &config.data_dir,
        )?;
        match source {
            MasterKeySource::Generated => tracing::warn!(
                "generated a new master key in the data dir; back it up and move it to a secret store for production"
            ),
            MasterKeySource::LoadedGenerated => tracing::warn!(
                "using the master key generated in the data dir; configure master_key_file for production"
            ),
            MasterKeySource::Configured => {}
        }
        let previous = crypto::load_previous_master_key(
            config.previous_master_key.as_deref(),
            config.previous_master_key_file.as_deref(),
        )?;
        if previous.is_some() {
            tracing::warn!("a previous master key is configured: run `strongroom keys rotate`, then remove it from the configuration");
        }
        let keyring = open_keyring(&db, master, previous, clock.now_ms())
            .await?
            .with_vault(Arc::new(crypto::vault::Vault::open(&config.vault_dir())?))
            .with_account_vault(Arc::new(crypto::vault::Vault::open(
                &config.account_vault_dir(),
            )?));
        crate::keys::adopt_vault(&db, &keyring).await?;
        crate::keys::adopt_accounts(&db, &keyring).await?;
        let keyring = Arc::new(keyring);
        let hasher = PasswordHasher::new(&config.password)?;
        let mailer = Mailer::new(&config, db.clone(), keyring.clone(), clock.clone())?;
        let blobs = Blobs::from_config(&config).await?;
        let limiter: Arc<dyn RateLimiter> = Arc::new(MemoryLimiter::new(clock.clone()));
        let trusted_proxies = config.trusted_proxy_nets();
        let webhooks = crate::tenancy::webhooks::Sender::new(&config.webhooks)?;
        let webauthn = crate::crypto::relying_party(&config.public_url()).map(Arc::new);
        if webauthn.is_none() {
            tracing::warn!("passkeys are unavailable: the public URL must use a domain name (localhost works for trials)");
        }
        Ok(Arc::new(App {
            config: Arc::new(config),
            db,
            keyring,
            hasher,
            limiter,
            clock,
            mailer,
            blobs,
            trusted_proxies,
            background: crate::background::Background::default(),
            webauthn,
            templates,
            webhooks,
        }))
    }

    /// What the retention purge works with (it runs outside any request).
    pub fn purge_job(&self) -> crate::purge::Job {
        crate::purge::Job {
            db: self.db.clone(),
            clock: self.clock.clone(),
            config: self.config.retention.clone(),
            session_idle_ms: self.config.session.idle_timeout_secs.saturating_mul(1000),
            vault: self.keyring.vault().cloned(),
            account_vault: self.keyring.account_vault().cloned(),
        }
    }

    /// What the audit retention job works with (it runs outside any request).
    pub fn retention_job(&self) -> crate::audit::retention::Job {
        crate::audit::retention::Job {
            db: self.db.clone(),
            keyring: self.keyring.clone(),
            clock: self.clock.clone(),
            config: self.config.audit.clone(),
        }
    }
}

/// The keyring of an existing installation, for the operator's commands: the configured master
/// key (never a generated one), the previous one if configured, and the platform key stored in
/// `db`. `None` when no master key is configured or the database holds no platform key.
pub async fn operator_keyring(cfg: &Config, db: &Db) -> anyhow::Result<Option<Keyring>> {
    let has_key = cfg.master_key.is_some()
        || cfg.master_key_file.is_some()
        || cfg.data_dir.join("master.key").exists();
    if !has_key {
        return Ok(None);
    }
    let (master, _) = crypto::load_master_key(
        cfg.master_key.as_deref(),
        cfg.master_key_file.as_deref(),
        &cfg.data_dir,
    )?;
    let previous = crypto::load_previous_master_key(
        cfg.previous_master_key.as_deref(),
        cfg.previous_master_key_file.as_deref(),
    )?;
    let mut c = db.acquire().await?;
    let Some((version, wrapped)) = store::get_data_key(&mut c, "platform").await? else {
        return Ok(None);
    };
    let (ring, _) = Keyring::open_rotating(master, previous, Some(WrappedKey { version, wrapped }))
        .map_err(|e| {
            anyhow::anyhow!("cannot open the platform key with the configured master key: {e}")
        })?;
    Ok(Some(
        ring.with_vault(Arc::new(crypto::vault::Vault::open(&cfg.vault_dir())?))
            .with_account_vault(Arc::new(crypto::vault::Vault::open(
                &cfg.account_vault_dir(),
            )?)),
    ))
}

pub(crate) async fn open_keyring(
    db: &Db,
    master: crypto::KeyBytes,
    previous: Option<crypto::KeyBytes>,
    now: i64,
) -> anyhow::Result<Keyring> {
    let mut tx = db.begin().await?;
    let stored = store::get_data_key(&mut tx, "platform").await?;
    let (ring, created) = Keyring::open_rotating(
        master,
        previous,
        stored.map(|(version, wrapped)| WrappedKey { version, wrapped }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the platform key with this master key: {e}"))?;
    if let Some(w) = created {
        store::insert_data_key(&mut tx, "platform", w.version, &w.wrapped, now).await?;
    }
    tx.commit().await?;
    Ok(ring)
}
