//! The database. One query code path for SQLite and PostgreSQL through sqlx's `Any` driver: every
//! query uses `$n` placeholders (both engines accept them) and portable types (TEXT ids, BIGINT
//! unix-millisecond times, BLOB/BYTEA ciphertexts). Dialect differences live in the migrations.
//!
//! Store functions take a `&mut Conn` so that the caller decides the transaction: a change and the
//! audit event that records it commit together.

pub mod api_keys;
pub mod audit;
pub mod documents;
pub mod dump;
pub mod erasure;
pub mod exports;
pub mod keys;
pub mod mfa;
pub mod notifications;
pub mod orgs;
pub mod outbox;
pub mod purge;
pub mod sessions;
pub mod tenant;
pub mod tokens;
pub mod users;
pub mod webhooks;
pub mod work;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

pub type Conn = sqlx::AnyConnection;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// The connection pool and which engine is behind it.
#[derive(Clone, Debug)]
pub struct Db {
    /// On SQLite the one writer connection; on PostgreSQL the pool. Private: transactions on
    /// tenant data are opened by `tenant::TenantTx` only.
    pool: AnyPool,
    /// Connections for reads only: on SQLite a pool of `query_only` connections beside the writer
    /// (WAL lets them read while it writes, so a long export or a burst of writes stalls no
    /// session lookup); on PostgreSQL the same pool as `pool`.
    reader: AnyPool,
    pub dialect: Dialect,
    url: String,
    /// The login is privileged (see `is_privileged`): learnt once, when the first connection is
    /// made (every connection uses the same login), so transactions need not ask again.
    privileged: Arc<AtomicBool>,
}

/// The PostgreSQL role the application works as: no table owner, no BYPASSRLS, so row-level
/// security holds for every query it makes. Created by the migrations.
pub const APP_ROLE: &str = "strongroom_app";

/// A transaction on the database.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Creates a SQLite database file that does not exist yet, readable and writable by this user
/// only (SQLite gives its -wal and -shm files the same mode), so the library is private even when
/// embedded in a process with a permissive umask.
fn create_private_sqlite_file(url: &str) -> Result<(), sqlx::Error> {
    use std::str::FromStr;
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    let path = opts.get_filename();
    let name = path.to_string_lossy();
    // Only where sqlx would create it (`mode=rwc`): a URL that must find an existing file still
    // fails when there is none.
    if !url.contains("mode=rwc") || name.is_empty() || name == ":memory:" || path.exists() {
        return Ok(());
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    // Failing here (created meanwhile, a missing directory) is left to sqlx to report.
    let _ = o.open(path);
    Ok(())
}

impl Db {
    /// A lazy pool: the first connection is made after the migrations (which create the app
    /// role). SQLite connections get WAL, foreign keys and a busy timeout; PostgreSQL connections
    /// drop to the app role.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, sqlx::Error> {
        Self::connect_with(url, max_connections, max_connections.clamp(1, 4)).await
    }

    /// `connect`, with the size of SQLite's reader pool (PostgreSQL reads share `max_connections`).
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        sqlite_readers: u32,
    ) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        };
        if dialect == Dialect::Sqlite {
            create_private_sqlite_file(url)?;
        }
        let opts: AnyConnectOptions = url.parse()?;
        // SQLite has one writer: a single connection serializes writes instead of failing them
        // with SQLITE_BUSY when a read-then-write transaction races another.
        let max = if dialect == Dialect::Sqlite {
            1
        } else {
            max_connections
        };
        let privileged = Arc::new(AtomicBool::new(false));
        let flag = privileged.clone();
        // No ping before each acquire (sqlx's default): a round trip per request, on top of the
        // one sqlx makes when a connection is released. A connection that died while idle fails
        // its first statement and is dropped; idle and old connections are recycled anyway.
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                let flag = flag.clone();
                Box::pin(async move {
                    match dialect {
                        Dialect::Sqlite => {
                            sqlx::query("PRAGMA journal_mode = WAL")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("PRAGMA foreign_keys = ON")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("PRAGMA busy_timeout = 5000")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("PRAGMA synchronous = NORMAL")
                                .execute(&mut *conn)
                                .await?;
                        }
                        Dialect::Postgres => {
                            if drop_privileges(conn).await? {
                                flag.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                    Ok(())
                })
            })
            .connect_lazy_with(opts.clone());
        let reader = match dialect {
            Dialect::Postgres => pool.clone(),
            Dialect::Sqlite => AnyPoolOptions::new()
                .max_connections(sqlite_readers.max(1))
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        sqlx::query("PRAGMA query_only = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                        Ok(())
                    })
                })
                .connect_lazy_with(opts),
        };
        Ok(Self {
            pool,
            reader,
            dialect,
            url: url.to_string(),
            privileged,
        })
    }

    /// Applies the migrations on a connection of its own (the pool works as the app role).
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        use sqlx::Connection;
        let mut conn = sqlx::AnyConnection::connect(&self.url).await?;
        if self.dialect == Dialect::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&mut conn)
                .await?;
        }
        let result = match self.dialect {
            Dialect::Sqlite => SQLITE_MIGRATIONS.run(&mut conn).await,
            Dialect::Postgres => POSTGRES_MIGRATIONS.run(&mut conn).await,
        };
        let _ = conn.close().await;
        result
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// The database URL this store connects to (tools that need a connection of their own).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes every connection (at shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
        self.reader.close().await;
    }

    /// A transaction outside any tenant (accounts, sessions, the outbox, the platform audit
    /// chain): on PostgreSQL row-level security shows it no tenant's rows. On SQLite it starts
    /// with `BEGIN IMMEDIATE`, so a read-then-write never fails with SQLITE_BUSY.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.begin_mode(tenant::Mode::Write).await
    }

    /// A connection of the writer pool, outside any transaction.
    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, sqlx::Error> {
        self.pool.acquire().await
    }

    /// A transaction of the given mode, with no tenant context yet: a read on SQLite takes a
    /// `query_only` reader connection (it waits for no writer) and on PostgreSQL is `READ ONLY`;
    /// a write on SQLite takes the writer with `BEGIN IMMEDIATE`.
    async fn begin_mode(&self, mode: tenant::Mode) -> Result<Tx, sqlx::Error> {
        let started = std::time::Instant::now();
        let tx = self.begin_mode_inner(mode).await;
        // The wait for a connection (and, on SQLite, for the writer) with the BEGIN itself.
        metrics::histogram!("strongroom_db_begin_seconds", "mode" => match mode {
            tenant::Mode::Read => "read",
            tenant::Mode::Write => "write",
        })
        .record(started.elapsed().as_secs_f64());
        tx
    }

    /// Connections open and idle, per pool: `(pool, open, idle, max)`.
    pub fn pool_stats(&self) -> Vec<(&'static str, u32, usize, u32)> {
        let one = |name, p: &AnyPool| {
            (
                name,
                p.size(),
                p.num_idle(),
                p.options().get_max_connections(),
            )
        };
        match self.dialect {
            Dialect::Sqlite => vec![one("writer", &self.pool), one("reader", &self.reader)],
            Dialect::Postgres => vec![one("main", &self.pool)],
        }
    }

    /// Queued work: emails waiting to be sent, emails given up on, webhook messages due.
    pub async fn queue_depths(&self) -> Result<(i64, i64, i64), sqlx::Error> {
        let mut c = self.read().await?;
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM email_outbox WHERE sent_at IS NULL AND next_attempt_at < $1) AS pending, \
               (SELECT COUNT(*) FROM email_outbox WHERE sent_at IS NULL AND next_attempt_at >= $1) AS dead, \
               (SELECT COUNT(*) FROM webhook_due) AS hooks",
        )
        .bind(i64::MAX)
        .fetch_one(&mut *c)
        .await?;
        Ok((
            row.try_get("pending")?,
            row.try_get("dead")?,
            row.try_get("hooks")?,
        ))
    }

    async fn begin_mode_inner(&self, mode: tenant::Mode) -> Result<Tx, sqlx::Error> {
        match (self.dialect, mode) {
            (Dialect::Sqlite, tenant::Mode::Read) => self.reader.begin().await,
            (Dialect::Sqlite, tenant::Mode::Write) => self.pool.begin_with("BEGIN IMMEDIATE").await,
            (Dialect::Postgres, tenant::Mode::Read) => {
                self.pool.begin_with("BEGIN READ ONLY").await
            }
            (Dialect::Postgres, tenant::Mode::Write) => self.pool.begin().await,
        }
    }

    /// The role a transaction must assume (SET LOCAL ROLE): the app role when the login is
    /// privileged (learnt once, with the first connection), else none (empty).
    fn role_to_assume(&self) -> &'static str {
        if self.privileged.load(Ordering::Relaxed) {
            APP_ROLE
        } else {
            ""
        }
    }

    /// A transaction whose tenant context is `org_id` (and the acting user): on PostgreSQL,
    /// row-level security then shows only that org's rows, whatever a query forgets to filter.
    /// Private to the store: the tenant wall (`tenant::TenantTx`) decides who gets one.
    async fn begin_scoped(
        &self,
        org_id: &str,
        user_id: &str,
        mode: tenant::Mode,
    ) -> Result<Tx, sqlx::Error> {
        let mut tx = self.begin_mode(mode).await?;
        if self.dialect == Dialect::Postgres {
            // The role again in every transaction (SET LOCAL ROLE, as set_config): a pooler or a
            // RESET ROLE must not bring privileges back. In the same statement as the tenant
            // context; whether the login needs it was learnt once, with its first connection.
            sqlx::query(
                "SELECT set_config('strongroom.org_id', $1, true), set_config('strongroom.user_id', $2, true), \
                 CASE WHEN $3 = '' THEN '' ELSE set_config('role', $3, true) END",
            )
            .bind(org_id)
            .bind(user_id)
            .bind(self.role_to_assume())
            .execute(&mut *tx)
            .await?;
        }
        Ok(tx)
    }

    /// A connection for reads that need no tenant context (sessions, accounts): see `reader`.
    pub async fn read(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, sqlx::Error> {
        self.reader.acquire().await
    }

    /// A read transaction with only a user context: it sees that user's own memberships (the
    /// list of "my orgs") and no tenant's data.
    pub async fn begin_for_user(&self, user_id: &str) -> Result<Tx, sqlx::Error> {
        self.begin_scoped("", user_id, tenant::Mode::Read).await
    }

    /// A write transaction with only a user context: changes to that user's own rows of the
    /// user-scoped tables (notifications, their settings) and nothing of any tenant.
    pub async fn begin_for_user_write(&self, user_id: &str) -> Result<Tx, sqlx::Error> {
        self.begin_scoped("", user_id, tenant::Mode::Write).await
    }
}

/// Whether the current role would escape row-level security or the audit trail's privileges: a
/// superuser, a role with BYPASSRLS, or the owner of the tables (typically the login that ran the
/// migrations).
async fn is_privileged(conn: &mut sqlx::AnyConnection) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "SELECT CAST(CASE WHEN r.rolsuper OR r.rolbypassrls OR EXISTS \
           (SELECT 1 FROM pg_tables t WHERE t.schemaname = 'public' AND t.tableowner = current_user) \
         THEN 1 ELSE 0 END AS INTEGER) AS privileged FROM pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => r.try_get::<i32, _>("privileged")? != 0,
        None => false,
    })
}

/// Connected as a privileged role (typical in development and tests, and for the login that owns
/// the tables), the session switches to the app role; a dedicated login role without those
/// rights stays as it is. True when it had to switch.
async fn drop_privileges(conn: &mut sqlx::AnyConnection) -> Result<bool, sqlx::Error> {
    let privileged = is_privileged(conn).await?;
    if privileged {
        sqlx::query(&format!("SET ROLE {APP_ROLE}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(privileged)
}

/// The wrapped data key with this id, if one was stored.
pub async fn get_data_key(c: &mut Conn, id: &str) -> Result<Option<(u32, Vec<u8>)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT version, wrapped FROM data_keys WHERE id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    Ok(match row {
        Some(r) => {
            let v: i64 = r.try_get("version")?;
            Some((u32::try_from(v).unwrap_or(0), r.try_get("wrapped")?))
        }
        None => None,
    })
}

pub async fn insert_data_key(
    c: &mut Conn,
    id: &str,
    version: u32,
    wrapped: &[u8],
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO data_keys (id, version, wrapped, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(i64::from(version))
        .bind(wrapped.to_vec())
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

/// True when the error is a unique-constraint violation (both engines).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            matches!(d.kind(), sqlx::error::ErrorKind::UniqueViolation)
        }
        _ => false,
    }
}
