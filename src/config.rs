//! One typed configuration, layered defaults → TOML file → `STRONGROOM_*` env → command-line flags,
//! validated once at start-up and passed in (no globals).
//!
//! Nested keys are set from the environment with a double underscore, e.g.
//! `STRONGROOM_SESSION__IDLE_TIMEOUT_SECS=900` or `STRONGROOM_RATE_LIMITS__LOGIN_PER_ACCOUNT__MAX=10`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The OWASP floor for Argon2id (m=19 MiB, t=2, p=1). Lower values are accepted only with a warning,
/// so that test suites can run fast; the defaults are at this floor.
pub const OWASP_MIN_MEMORY_KIB: u32 = 19 * 1024;
pub const OWASP_MIN_ITERATIONS: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub listen: String,
    /// A separate (admin) address serving only `/metrics`, e.g. `127.0.0.1:9090`; keep it off the
    /// public network. Unset: no admin listener.
    pub metrics_listen: Option<String>,
    /// A bearer token that opens `/metrics` on the main listener (`Authorization: Bearer <token>`).
    /// Unset: `/metrics` is 404 on the main listener.
    pub metrics_token: Option<String>,
    /// The URL people use to reach this server. Defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// Where the embedded database, local object store, outbox and generated master key live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to SQLite in the data dir.
    pub database_url: Option<String>,
    /// PostgreSQL: the pool size. SQLite: ignored (one writer connection).
    pub database_max_connections: u32,
    /// SQLite: read-only connections beside the one writer.
    pub sqlite_read_connections: u32,
    /// Path of a file holding the base64 master key (32 bytes).
    pub master_key_file: Option<PathBuf>,
    /// The base64 master key itself (prefer a file or a secret manager's env injection).
    pub master_key: Option<String>,
    /// The shred vault: one secret per org, outside the database and its backups, that org keys
    /// are wrapped with; deleting an org destroys its secret (default `<data_dir>/vault`). Keep
    /// it on durable storage, out of the database's backups (see ARCHITECTURE.md).
    pub vault_dir: Option<PathBuf>,
    /// During a master key rotation: the master key being rotated away from (a file, as
    /// `master_key_file`). Keys still wrapped under it open until `strongroom keys rotate` has
    /// re-wrapped them all; then remove it.
    pub previous_master_key_file: Option<PathBuf>,
    /// The previous master key itself (base64), as `master_key`.
    pub previous_master_key: Option<String>,
    /// `strongroom keys rotate --org`: how long a rotation waits after it starts before it checks
    /// a last time that nothing is sealed under the old key and drops it (so that a write begun
    /// before the rotation, under the old key, has ended). Seconds.
    pub key_rotation_grace_secs: u64,
    /// Tracing filter, e.g. `info` or `strongroom=debug,info`.
    pub log_level: String,
    /// Extra origins allowed to make credentialed cross-origin requests (CORS and the origin guard).
    pub allowed_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed (IP addresses or CIDR blocks).
    pub trusted_proxies: Vec<String>,
    /// `Contact:` of `/.well-known/security.txt`.
    pub security_contact: String,
    /// Largest request body accepted, in bytes (413 above).
    pub max_body_bytes: usize,
    /// Requests taking longer are answered 408.
    pub request_timeout_secs: u64,
    /// Sender of every outgoing email.
    pub mail_from: String,
    pub session: SessionConfig,
    pub password: PasswordConfig,
    pub rate_limits: RateLimitConfig,
    pub audit: AuditConfig,
    pub documents: DocumentsConfig,
    pub webhooks: WebhooksConfig,
    pub backup: BackupConfig,
    pub retention: RetentionConfig,
    pub billing: BillingConfig,
    pub accounts: AccountsConfig,
    /// Where documents are stored: absent, the local filesystem under `<data_dir>/objects`.
    pub s3: Option<S3Config>,
    /// HTTPS on `listen` (see `TlsConfig`).
    pub tls: Option<TlsConfig>,
    /// When absent, emails are written as `.eml` files to `<data_dir>/outbox/`.
    pub smtp: Option<SmtpConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub idle_timeout_secs: i64,
    pub absolute_timeout_secs: i64,
    /// How long a re-authentication (step-up) keeps sensitive actions open.
    pub reauth_window_secs: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Events older than this are removed (a whole prefix of each chain, followed by a signed
    /// checkpoint). 0 keeps them forever.
    pub retention_days: i64,
    /// How often the retention job looks for expired events.
    pub retention_interval_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 730,
            retention_interval_secs: 3600,
        }
    }
}

/// How long what is no longer needed is kept (`[retention]`), removed by a job in `serve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// How often the purge runs (and once at start); 0 never.
    pub interval_secs: u64,
    /// Ended sessions (expired, idle or revoked), used or expired tokens, ended invitations and
    /// share-link codes are removed this many days after they ended.
    pub expired_keep_days: u64,
    /// Sent mail is removed after this many days.
    pub sent_emails_days: u64,
    /// Notifications read this many days ago are removed...
    pub read_notifications_days: u64,
    /// ...and any notification this old.
    pub notifications_days: u64,
    /// Webhook messages (payloads and delivery logs) no longer pending are removed after this
    /// many days.
    pub webhook_log_days: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            interval_secs: 3600,
            expired_keep_days: 7,
            sent_emails_days: 7,
            read_notifications_days: 30,
            notifications_days: 180,
            webhook_log_days: 30,
        }
    }
}

/// An S3-compatible object store (`[s3]` in the config file, `STRONGROOM_S3__BUCKET`... in the
/// environment). Without credentials here, the usual `AWS_*` environment and instance roles are
/// not read: give them explicitly.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    #[serde(default = "default_s3_region")]
    pub region: String,
    /// For a store other than AWS (MinIO, Ceph, R2...): its URL.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), which most self-hosted stores want.
    #[serde(default)]
    pub path_style: bool,
    /// Plain HTTP to the endpoint (a store on localhost only).
    #[serde(default)]
    pub allow_http: bool,
}

fn default_s3_region() -> String {
    "us-east-1".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentsConfig {
    /// The largest file one upload may hold (bytes of the file itself).
    pub max_upload_bytes: u64,
    /// How long one upload may take from its first byte to its last.
    pub upload_timeout_secs: u64,
    /// An upload still unfinished this long after it started is taken as abandoned: the cleanup
    /// job removes whatever it left in the object store.
    pub abandoned_upload_secs: u64,
    /// How often the cleanup job removes abandoned uploads and deleted documents' objects.
    pub cleanup_interval_secs: u64,
    /// The largest PDF a watermarking link will stamp (it is stamped in memory).
    pub max_watermark_bytes: u64,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: 2 * 1024 * 1024 * 1024,
            upload_timeout_secs: 6 * 3600,
            abandoned_upload_secs: 7 * 3600,
            cleanup_interval_secs: 300,
            max_watermark_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Outbound webhooks (`[webhooks]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Networks (CIDRs or addresses) deliveries may reach although the SSRF guard refuses them
    /// otherwise (loopback, private...): for development and tests only. Empty by default.
    pub allow_networks: Vec<String>,
    /// Plain `http://` endpoints (development only; https otherwise).
    pub allow_http: bool,
    /// How long one delivery may take, connection included.
    pub timeout_secs: u64,
    /// How often the delivery loop looks for new events and due retries.
    pub poll_interval_ms: u64,
    /// Failed attempts in a row after which an endpoint is disabled (and its org's admins told).
    pub disable_after_failures: u32,
    /// How long the previous secret still signs deliveries after a rotation.
    pub rotation_overlap_secs: u64,
    /// Deliveries in flight at once (each endpoint has at most one: its messages go in order).
    pub max_in_flight: u32,
    /// Deliveries in flight at once for one org, so that an org with many slow endpoints
    /// cannot hold every slot.
    pub max_in_flight_per_org: u32,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_networks: Vec::new(),
            allow_http: false,
            timeout_secs: 10,
            poll_interval_ms: 1000,
            disable_after_failures: 20,
            rotation_overlap_secs: 24 * 3600,
            max_in_flight: 8,
            max_in_flight_per_org: 2,
        }
    }
}

/// Scheduled backups in `serve` (`[backup]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Seconds between backups; 0 turns them off.
    pub interval_secs: u64,
    /// Backups older than this are removed after each new one.
    pub keep_days: u64,
    /// Where they are written (default `backups/` in the data dir); with `[backup.s3]`, where
    /// each is made before it is uploaded.
    pub dir: Option<PathBuf>,
    /// An S3-compatible bucket the scheduled backups go to (`[backup.s3]`, as `[s3]`), under
    /// `backups/`; best a bucket of its own, away from the documents.
    pub s3: Option<S3Config>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            interval_secs: 3600,
            keep_days: 30,
            dir: None,
            s3: None,
        }
    }
}

/// HTTPS served by Strongroom itself (`[tls]`): absent, plain HTTP behind a proxy that terminates
/// TLS.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM.
    pub cert_file: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// A plain-HTTP address that only redirects to HTTPS (say `0.0.0.0:80`).
    #[serde(default)]
    pub redirect_listen: Option<String>,
    /// Adds `preload` to Strict-Transport-Security (only once the whole domain is HTTPS-only).
    #[serde(default)]
    pub hsts_preload: bool,
    /// How often the certificate files are checked for a change (SIGHUP reloads at once).
    #[serde(default = "default_tls_reload_secs")]
    pub reload_interval_secs: u64,
}

fn default_tls_reload_secs() -> u64 {
    10
}

/// Accounts (`[accounts]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// Days between a deletion request and the erasure, during which the owner can cancel it
    /// (by signing in). 0 erases at once.
    pub deletion_grace_days: u32,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            deletion_grace_days: 14,
        }
    }
}

/// Inbound billing events (`[billing]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    /// The endpoint secret (`whsec_...`) Stripe signs its events with; without it the billing
    /// webhook answers 404.
    pub stripe_webhook_secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// Minimum length in Unicode code points (NIST SP 800-63B-4: 15 for a single-factor password).
    pub min_length: usize,
    pub max_length: usize,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Allows Argon2 parameters below the OWASP floor. Only for test suites; never in production.
    pub insecure_fast_hashing_for_tests: bool,
    /// How many password hashes may run at once (the rest queue), so a login flood cannot starve
    /// the rest of the server.
    pub hash_concurrency: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub max: u32,
    pub window_secs: u64,
}

impl Limit {
    pub const fn new(max: u32, window_secs: u64) -> Self {
        Self { max, window_secs }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Failed logins for one account, whatever the source address.
    pub login_per_account: Limit,
    /// Failed logins from one address (wide, so one office behind NAT is not locked out).
    pub login_per_ip: Limit,
    pub signup_per_ip: Limit,
    /// Password-reset and resend-verification requests from one address.
    pub recovery_per_ip: Limit,
    /// Password-reset and resend-verification requests naming one email address.
    pub recovery_per_email: Limit,
    /// Every request to an authentication route from one address.
    pub auth_per_ip: Limit,
    /// Wrong second-factor codes for one account from one client network.
    pub mfa_per_account: Limit,
    /// Wrong second-factor codes for one account from anywhere.
    pub mfa_per_account_total: Limit,
    /// Invitations one organization may send (each is an email to an address of its choosing).
    pub invitations_per_org: Limit,
    /// Whole-trail reads (exports and verifications) per org: each walks the entire chain.
    pub audit_scans_per_org: Limit,
    /// Failed logins and step-ups from one known device (a client holding a device cookie for
    /// that account): its own budget, so strangers locking the account do not lock its owner out.
    pub login_per_device: Limit,
    /// Invitations one account may send, across every org it administers.
    pub invitations_per_inviter: Limit,
    /// Invitations one email address may receive, from every org together.
    pub invitations_per_recipient: Limit,
    /// Organizations one account may create.
    pub orgs_per_account: Limit,
    /// Workspaces one account may create.
    pub workspaces_per_account: Limit,
    /// Items one account may create.
    pub items_per_account: Limit,
    /// Comments one account may post.
    pub comments_per_account: Limit,
    /// TOTP enrolments one account may start (each makes a new secret and QR code).
    pub totp_enrolments_per_account: Limit,
    /// Every `/api/v1` request made with one session.
    pub api_per_session: Limit,
    /// Every `/api/v1` request from one client address (IPv6: its /64).
    pub api_per_ip: Limit,
    /// Uploads (documents and versions) one account may make.
    pub uploads_per_account: Limit,
    /// Share links one account may create.
    pub share_links_per_account: Limit,
    /// Every request to a share link (`/s/...`) from one client address.
    pub link_requests_per_ip: Limit,
    /// Wrong passwords and codes, and code requests, on one share link from anywhere.
    pub link_attempts_per_link: Limit,
    /// Wrong passwords and codes on share links from one client address.
    pub link_attempts_per_ip: Limit,
    /// Every request made with one API key, unless the key sets its own `rate_limit_per_minute`.
    pub api_per_key: Limit,
    /// API keys one org may create (each is a credential to audit and to keep track of).
    pub api_keys_per_org: Limit,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// `starttls` (default), `tls` or `none` (only for a relay on localhost).
    #[serde(default = "default_smtp_tls")]
    pub tls: String,
}

fn default_smtp_port() -> u16 {
    587
}
fn default_smtp_tls() -> String {
    "starttls".into()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            metrics_listen: None,
            metrics_token: None,
            public_url: None,
            data_dir: PathBuf::from("./strongroom-data"),
            database_url: None,
            database_max_connections: 16,
            sqlite_read_connections: 4,
            master_key_file: None,
            master_key: None,
            vault_dir: None,
            previous_master_key_file: None,
            previous_master_key: None,
            key_rotation_grace_secs: 60,
            log_level: "info".into(),
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            security_contact: "mailto:security@localhost".into(),
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            mail_from: "Strongroom <no-reply@localhost>".into(),
            session: SessionConfig::default(),
            password: PasswordConfig::default(),
            rate_limits: RateLimitConfig::default(),
            audit: AuditConfig::default(),
            documents: DocumentsConfig::default(),
            webhooks: WebhooksConfig::default(),
            backup: BackupConfig::default(),
            retention: RetentionConfig::default(),
            billing: BillingConfig::default(),
            accounts: AccountsConfig::default(),
            s3: None,
            tls: None,
            smtp: None,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            absolute_timeout_secs: 12 * 3600,
            reauth_window_secs: 10 * 60,
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            min_length: 15,
            max_length: 1024,
            argon2_memory_kib: OWASP_MIN_MEMORY_KIB,
            argon2_iterations: OWASP_MIN_ITERATIONS,
            argon2_parallelism: 1,
            insecure_fast_hashing_for_tests: false,
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            login_per_account: Limit::new(5, 15 * 60),
            login_per_ip: Limit::new(50, 15 * 60),
            signup_per_ip: Limit::new(5, 60),
            recovery_per_ip: Limit::new(10, 15 * 60),
            recovery_per_email: Limit::new(3, 60 * 60),
            auth_per_ip: Limit::new(120, 60),
            mfa_per_account: Limit::new(10, 15 * 60),
            mfa_per_account_total: Limit::new(30, 15 * 60),
            invitations_per_org: Limit::new(100, 3600),
            audit_scans_per_org: Limit::new(30, 3600),
            login_per_device: Limit::new(10, 15 * 60),
            invitations_per_inviter: Limit::new(50, 24 * 3600),
            invitations_per_recipient: Limit::new(3, 24 * 3600),
            orgs_per_account: Limit::new(10, 24 * 3600),
            workspaces_per_account: Limit::new(50, 3600),
            items_per_account: Limit::new(600, 3600),
            comments_per_account: Limit::new(600, 3600),
            totp_enrolments_per_account: Limit::new(10, 3600),
            api_per_session: Limit::new(600, 60),
            api_per_ip: Limit::new(1200, 60),
            uploads_per_account: Limit::new(300, 3600),
            share_links_per_account: Limit::new(200, 3600),
            link_requests_per_ip: Limit::new(120, 60),
            link_attempts_per_link: Limit::new(20, 15 * 60),
            link_attempts_per_ip: Limit::new(10, 15 * 60),
            api_per_key: Limit::new(600, 60),
            api_keys_per_org: Limit::new(50, 3600),
        }
    }
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

impl Config {
    /// Loads defaults, then the optional TOML file, then the environment, then the flags.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, String> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(format!(
                    "the configuration file {} does not exist",
                    path.display()
                ));
            }
            fig = fig.merge(Toml::file(path));
        }
        fig = fig
            .merge(Env::prefixed("STRONGROOM_").split("__").filter(|k| {
                let k = k.as_str().to_ascii_lowercase();
                !k.starts_with("test_") && k != "config"
            }))
            .merge(Serialized::defaults(overrides));
        let cfg: Config = fig.extract().map_err(|e| plain_figment_error(&e))?;
        let problems = cfg.validate();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Every problem with the configuration, in plain words; empty when it is usable.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Some(t) = &self.tls {
            if self
                .public_url
                .as_deref()
                .is_some_and(|u| !u.starts_with("https://"))
            {
                p.push("public_url: must be https:// when [tls] is set".into());
            }
            if !(1..=86_400).contains(&t.reload_interval_secs) {
                p.push("tls.reload_interval_secs: must be between 1 and 86400".into());
            }
            if let Err(e) = crate::tls::server_config(&t.cert_file, &t.key_file) {
                p.push(format!("tls: {e:#}"));
            }
        }
        if self.audit.retention_days != 0 && !(30..=36_500).contains(&self.audit.retention_days) {
            p.push(format!(
                "audit.retention_days: {} is not 0 (keep forever) or between 30 and 36500 days",
                self.audit.retention_days
            ));
        }
        if !(60..=86_400).contains(&self.audit.retention_interval_secs) {
            p.push("audit.retention_interval_secs: must be between 60 and 86400".into());
        }
        let d = &self.documents;
        if d.max_upload_bytes == 0 || d.max_upload_bytes > crate::crypto::stream::MAX_PLAINTEXT {
            p.push(format!(
                "documents.max_upload_bytes: must be between 1 and {}",
                crate::crypto::stream::MAX_PLAINTEXT
            ));
        }
        if d.upload_timeout_secs == 0 || d.abandoned_upload_secs <= d.upload_timeout_secs {
            p.push(
                "documents.abandoned_upload_secs: must exceed upload_timeout_secs (at least 1)"
                    .into(),
            );
        }
        if !(1..=86_400).contains(&d.cleanup_interval_secs) {
            p.push("documents.cleanup_interval_secs: must be between 1 and 86400".into());
        }
        if self.listen.parse::<SocketAddr>().is_err() {
            p.push(format!(
                "listen: '{}' is not an address like 127.0.0.1:8080",
                self.listen
            ));
        }
        if let Some(m) = &self.metrics_listen {
            match m.parse::<SocketAddr>() {
                Err(_) => p.push(format!(
                    "metrics_listen: '{m}' is not an address like 127.0.0.1:9090"
                )),
                // Port 0 picks a free port each time, so two port-0 listeners never collide.
                Ok(a)
                    if a.port() != 0
                        && self.listen.parse::<SocketAddr>().is_ok_and(|l| {
                            l.port() == a.port()
                                && (l.ip() == a.ip() || l.ip().is_unspecified() || a.ip().is_unspecified())
                        }) =>
                {
                    p.push(
                        "metrics_listen: must differ from listen (metrics belong on a separate admin address)"
                            .into(),
                    )
                }
                Ok(_) => {}
            }
        }
        if let Some(t) = &self.metrics_token {
            if t.trim().chars().count() < 16
                || t.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                p.push("metrics_token: must be at least 16 characters without spaces (e.g. openssl rand -hex 32)".into());
            }
        }
        if let Some(u) = &self.public_url {
            match url::Url::parse(u) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                _ => p.push(format!(
                    "public_url: '{u}' is not an http(s) URL like https://strongroom.example.com"
                )),
            }
        }
        if let Some(db) = &self.database_url {
            if !(db.starts_with("sqlite:")
                || db.starts_with("postgres://")
                || db.starts_with("postgresql://"))
            {
                p.push("database_url: must start with sqlite: or postgres://".into());
            }
        }
        for o in &self.allowed_origins {
            if !url::Url::parse(o)
                .map(|u| u.origin().is_tuple())
                .unwrap_or(false)
            {
                p.push(format!(
                    "allowed_origins: '{o}' is not an origin like https://app.example.com"
                ));
            }
        }
        for t in &self.trusted_proxies {
            if parse_net(t).is_none() {
                p.push(format!(
                    "trusted_proxies: '{t}' is neither an IP address nor a CIDR block"
                ));
            }
        }
        let pw = &self.password;
        if pw.min_length < 8 {
            p.push("password.min_length: must be at least 8 (NIST SP 800-63B)".into());
        }
        if pw.max_length < 128.max(pw.min_length) {
            p.push("password.max_length: must be at least 128 and not below min_length".into());
        }
        if pw.argon2_memory_kib < 8 * pw.argon2_parallelism.max(1)
            || pw.argon2_iterations == 0
            || pw.argon2_parallelism == 0
        {
            p.push("password.argon2_*: memory must be at least 8 KiB per lane, iterations and parallelism at least 1".into());
        }
        if (pw.argon2_memory_kib < OWASP_MIN_MEMORY_KIB
            || pw.argon2_iterations < OWASP_MIN_ITERATIONS)
            && !pw.insecure_fast_hashing_for_tests
        {
            p.push(format!(
                "password.argon2_*: at least {OWASP_MIN_MEMORY_KIB} KiB and {OWASP_MIN_ITERATIONS} iterations (OWASP); \
                 lower values need password.insecure_fast_hashing_for_tests = true"
            ));
        }
        if pw.hash_concurrency == 0 {
            p.push("password.hash_concurrency: must be at least 1".into());
        }
        if self.session.idle_timeout_secs <= 0 || self.session.absolute_timeout_secs <= 0 {
            p.push("session: timeouts must be positive numbers of seconds".into());
        }
        if self.session.idle_timeout_secs > self.session.absolute_timeout_secs {
            p.push("session.idle_timeout_secs: must not exceed absolute_timeout_secs".into());
        }
        let rl = &self.rate_limits;
        for (name, l) in [
            ("login_per_account", rl.login_per_account),
            ("login_per_ip", rl.login_per_ip),
            ("signup_per_ip", rl.signup_per_ip),
            ("recovery_per_ip", rl.recovery_per_ip),
            ("recovery_per_email", rl.recovery_per_email),
            ("auth_per_ip", rl.auth_per_ip),
            ("mfa_per_account", rl.mfa_per_account),
            ("mfa_per_account_total", rl.mfa_per_account_total),
            ("invitations_per_org", rl.invitations_per_org),
            ("audit_scans_per_org", rl.audit_scans_per_org),
            ("login_per_device", rl.login_per_device),
            ("invitations_per_inviter", rl.invitations_per_inviter),
            ("invitations_per_recipient", rl.invitations_per_recipient),
            ("orgs_per_account", rl.orgs_per_account),
            ("workspaces_per_account", rl.workspaces_per_account),
            ("items_per_account", rl.items_per_account),
            ("comments_per_account", rl.comments_per_account),
            (
                "totp_enrolments_per_account",
                rl.totp_enrolments_per_account,
            ),
            ("api_per_session", rl.api_per_session),
            ("api_per_ip", rl.api_per_ip),
            ("uploads_per_account", rl.uploads_per_account),
            ("share_links_per_account", rl.share_links_per_account),
            ("link_requests_per_ip", rl.link_requests_per_ip),
            ("link_attempts_per_link", rl.link_attempts_per_link),
            ("link_attempts_per_ip", rl.link_attempts_per_ip),
            ("api_per_key", rl.api_per_key),
            ("api_keys_per_org", rl.api_keys_per_org),
        ] {
            if l.max == 0 || l.window_secs == 0 {
                p.push(format!(
                    "rate_limits.{name}: max and window_secs must be at least 1"
                ));
            }
        }
        if self.database_max_connections == 0 || self.sqlite_read_connections == 0 {
            p.push("database_max_connections, sqlite_read_connections: must be at least 1".into());
        }
        if self.max_body_bytes < 1024 {
            p.push("max_body_bytes: must be at least 1024".into());
        }
        if self.webhooks.timeout_secs == 0
            || self.webhooks.poll_interval_ms == 0
            || self.webhooks.max_in_flight == 0
            || self.webhooks.max_in_flight_per_org == 0
        {
            p.push("webhooks.timeout_secs, webhooks.poll_interval_ms, webhooks.max_in_flight, webhooks.max_in_flight_per_org: must be at least 1".into());
        }
        if let Err(e) = crate::net_guard::NetGuard::new(&self.webhooks.allow_networks, false) {
            p.push(e.to_string());
        }
        if let Some(secret) = &self.billing.stripe_webhook_secret {
            // An empty key would let anyone sign events.
            if secret.len() < 16 {
                p.push(
                    "billing.stripe_webhook_secret: Stripe's endpoint secret (whsec_...), or unset"
                        .into(),
                );
            }
        }
        if self.request_timeout_secs == 0 {
            p.push("request_timeout_secs: must be at least 1".into());
        }
        if let Some(smtp) = &self.smtp {
            if !matches!(smtp.tls.as_str(), "starttls" | "tls" | "none") {
                p.push("smtp.tls: must be starttls, tls or none".into());
            }
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            p.push(format!(
                "mail_from: '{}' is not a mailbox like Strongroom <no-reply@example.com>",
                self.mail_from
            ));
        }
        p
    }

    /// Things that work but that an operator should know about.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let pw = &self.password;
        if pw.argon2_memory_kib < OWASP_MIN_MEMORY_KIB
            || pw.argon2_iterations < OWASP_MIN_ITERATIONS
        {
            w.push(
                "password.argon2_*: below the OWASP minimum (m=19456 KiB, t=2); use only for tests"
                    .into(),
            );
        }
        if self.master_key.is_none() && self.master_key_file.is_none() {
            w.push("no master key configured: one is generated in the data dir (fine for a trial, not for production)".into());
        }
        if let Some(Ok(a)) = self.metrics_listen.as_deref().map(str::parse::<SocketAddr>) {
            if !a.ip().is_loopback() {
                w.push(format!(
                    "metrics_listen {a} is not a loopback address: /metrics answers anyone who can reach it, without a token"
                ));
            }
        }
        if !self.public_url().starts_with("https://") {
            w.push("public_url is not https: cookies are not marked Secure and HSTS is off".into());
        }
        w
    }

    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None if self.tls.is_some() => format!("https://{}", self.listen),
            None => format!("http://{}", self.listen),
        }
    }

    pub fn is_https(&self) -> bool {
        self.public_url().starts_with("https://")
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}?mode=rwc", self.embedded_database().display()),
        }
    }

    /// The shred vault (`vault_dir`, default `<data_dir>/vault`).
    pub fn vault_dir(&self) -> PathBuf {
        self.vault_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("vault"))
    }

    /// The accounts' shred secrets: `accounts/` in the shred vault (the org vault lists only
    /// files named by an org id, so the two never mix).
    pub fn account_vault_dir(&self) -> PathBuf {
        self.vault_dir().join("accounts")
    }

    /// Where scheduled backups go.
    pub fn backup_dir(&self) -> PathBuf {
        self.backup
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("backups"))
    }

    /// The embedded SQLite database in the data dir, used when no database URL is configured.
    pub fn embedded_database(&self) -> PathBuf {
        self.data_dir.join("strongroom.db")
    }

    pub fn trusted_proxy_nets(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|t| parse_net(t))
            .collect()
    }
}

fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

fn plain_figment_error(e: &figment::Error) -> String {
    e.clone()
        .into_iter()
        .map(|err| {
            let path = err.path.join(".");
            if path.is_empty() {
                format!("{}", err.kind)
            } else {
                format!("{path}: {}", err.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_at_the_owasp_floor() {
        let c = Config::default();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert!(c.password.argon2_memory_kib >= OWASP_MIN_MEMORY_KIB);
        assert!(c.password.argon2_iterations >= 2);
        assert_eq!(c.password.min_length, 15);
    }

    #[test]
    fn bad_values_are_named() {
        let c = Config {
            listen: "nope".into(),
            public_url: Some("ftp://x".into()),
            trusted_proxies: vec!["banana".into()],
            ..Config::default()
        };
        let p = c.validate().join("\n");
        assert!(p.contains("listen"));
        assert!(p.contains("public_url"));
        assert!(p.contains("trusted_proxies"));
    }
}
