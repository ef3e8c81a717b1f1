//! The tenant wall, down to the SQL. Every store function on a tenant table takes a `TenantTx`:
//! a transaction opened for one org, whose tenant context is set (on PostgreSQL, row-level
//! security then shows that org's rows only) and whose org id the function filters by. It cannot
//! be built outside this module: `TenantTx::enter` makes one only after the membership check (in
//! the same transaction, so a removal takes effect at once), `TenantTx::superadmin_bypass` only
//! for a platform superadmin (read-only; the caller records the bypass in the org's chain), and
//! each background job has one named constructor of its own below (`pub(crate)`: nothing outside
//! the crate can call them).
//!
//! A request makes one `TenantTx` and does all its work in it: reads (`GET`, `HEAD`) on a read
//! transaction (SQLite: a `query_only` reader connection; PostgreSQL: `BEGIN READ ONLY`), changes
//! on a write transaction (SQLite: `BEGIN IMMEDIATE` on the one writer, so a read-then-write never
//! fails with SQLITE_BUSY), with their audit event and any email.

use sqlx::Row;

use super::{Conn, Db, Dialect, Tx};

/// The audit chain of the platform (accounts, sessions, the operator): the chain of no org.
pub const PLATFORM_CHAIN: &str = "platform";

/// The audit chain of a transaction's org id: the org's own, or the platform's for none (empty).
pub(super) fn chain_of(org_id: &str) -> &str {
    if org_id.is_empty() {
        PLATFORM_CHAIN
    } else {
        org_id
    }
}

/// What a transaction may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reads only (enforced by the database too).
    Read,
    /// Changes, with their audit events.
    Write,
}

/// A transaction inside one org (see the module documentation).
pub struct TenantTx {
    tx: Option<Tx>,
    dialect: Dialect,
    org_id: String,
    user_id: String,
    /// No change to the org's data (a superadmin's bypass, or a read transaction).
    read_only: bool,
    /// On a connection that can write (audit events of a read-only bypass go here).
    writable: bool,
}

/// The caller's access to an org, read by `TenantTx::enter` in the transaction it opened.
#[derive(Debug)]
pub struct Access {
    pub role: String,
    pub require_mfa: bool,
    pub key_version: u32,
    pub key_wrapped: Vec<u8>,
    /// When a workspace was named: `None` if the org has no such workspace.
    pub workspace: Option<WorkspaceAccess>,
}

/// The named workspace's status column (sealed) and the caller's own role in it, if any.
#[derive(Debug)]
pub struct WorkspaceAccess {
    pub statuses: String,
    pub role: Option<String>,
}

/// The access query of `enter` on SQLite (PostgreSQL runs the same in `strongroom_enter`).
const ACCESS_SQL: &str = "SELECT m.role AS role, o.require_mfa AS require_mfa, k.version AS key_version, \
     k.wrapped AS key_wrapped, CASE WHEN w.id IS NULL THEN 0 ELSE 1 END AS ws_found, \
     w.statuses AS ws_statuses, wm.role AS ws_role \
     FROM org_members m JOIN orgs o ON o.id = m.org_id JOIN data_keys k ON k.id = m.org_id \
     LEFT JOIN workspaces w ON w.org_id = m.org_id AND w.id = $3 \
     LEFT JOIN workspace_members wm ON wm.org_id = m.org_id AND wm.workspace_id = w.id AND wm.user_id = m.user_id \
     WHERE m.org_id = $1 AND m.user_id = $2 ORDER BY k.version DESC LIMIT 1";

impl TenantTx {
    /// The membership check: opens a transaction for `org_id`, sets its tenant context and reads
    /// the caller's access (role, the org's policy and key, and the named workspace with the
    /// caller's role in it) in one statement after `BEGIN`. `None` (and nothing kept open) when
    /// `user_id` is not a member of `org_id`.
    pub async fn enter(
        db: &Db,
        org_id: &str,
        user_id: &str,
        workspace_id: Option<&str>,
        mode: Mode,
    ) -> Result<Option<(TenantTx, Access)>, sqlx::Error> {
        let mut tx = db.begin_mode(mode).await?;
        let ws = workspace_id.unwrap_or("");
        let row = match db.dialect {
            Dialect::Postgres => {
                sqlx::query(
                    "SELECT role, require_mfa, key_version, key_wrapped, ws_found, ws_statuses, ws_role \
                     FROM strongroom_enter($1, $2, $3, $4)",
                )
                .bind(org_id)
                .bind(user_id)
                .bind(ws)
                .bind(db.role_to_assume())
                .fetch_optional(&mut *tx)
                .await?
            }
            Dialect::Sqlite => {
                sqlx::query(ACCESS_SQL)
                    .bind(org_id)
                    .bind(user_id)
                    .bind(ws)
                    .fetch_optional(&mut *tx)
                    .await?
            }
        };
        let Some(r) = row else {
            return Ok(None);
        };
        let workspace = if workspace_id.is_some() && r.try_get::<i64, _>("ws_found")? != 0 {
            Some(WorkspaceAccess {
                statuses: r.try_get("ws_statuses")?,
                role: r.try_get("ws_role")?,
            })
        } else {
            None
        };
        let access = Access {
            role: r.try_get("role")?,
            require_mfa: r.try_get::<i64, _>("require_mfa")? != 0,
            key_version: u32::try_from(r.try_get::<i64, _>("key_version")?).unwrap_or(0),
            key_wrapped: r.try_get("key_wrapped")?,
            workspace,
        };
        Ok(Some((TenantTx::new(db, tx, org_id, user_id, mode), access)))
    }

    /// A platform superadmin's read-only way into any org: `None` unless `user_id` is a
    /// superadmin and `org_id` exists. The transaction can write audit events only (the caller
    /// must record the bypass in it before reading); every other change is refused. Returns the
    /// org's wrapped key (version, ciphertext).
    pub async fn superadmin_bypass(
        db: &Db,
        org_id: &str,
        user_id: &str,
    ) -> Result<Option<(TenantTx, (u32, Vec<u8>))>, sqlx::Error> {
        let mut t = Self::open(db, org_id, user_id, Mode::Write).await?;
        let row = sqlx::query(
            "SELECT k.version AS version, k.wrapped AS wrapped FROM users u, orgs o \
             JOIN data_keys k ON k.id = o.id \
             WHERE u.id = $1 AND u.superadmin <> 0 AND o.id = $2 ORDER BY k.version DESC LIMIT 1",
        )
        .bind(user_id)
        .bind(org_id)
        .fetch_optional(t.conn()?)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let key = (
            u32::try_from(r.try_get::<i64, _>("version")?).unwrap_or(0),
            r.try_get("wrapped")?,
        );
        t.read_only = true;
        Ok(Some((t, key)))
    }

    /// Org creation: the org does not exist yet, so there is no membership to check; the
    /// creator becomes its owner in this transaction.
    pub(crate) async fn for_new_org(
        db: &Db,
        org_id: &str,
        user_id: &str,
    ) -> Result<TenantTx, sqlx::Error> {
        Self::open(db, org_id, user_id, Mode::Write).await
    }

    /// Accepting an invitation, or opting out of an org's invitations, by the emailed token:
    /// the token (checked by the caller) is the authority, not a membership.
    pub(crate) async fn for_invitation_token(
        db: &Db,
        org_id: &str,
        user_id: &str,
    ) -> Result<TenantTx, sqlx::Error> {
        Self::open(db, org_id, user_id, Mode::Write).await
    }

    /// Showing what an emailed invitation is for (org, role, inviter) to whoever holds its token,
    /// before it is accepted: read-only, no acting user; the token (checked by the caller) is the
    /// authority.
    pub(crate) async fn for_invitation_preview(
        db: &Db,
        org_id: &str,
    ) -> Result<TenantTx, sqlx::Error> {
        Self::open(db, org_id, "", Mode::Read).await
    }

    /// A share link's download page, by whoever holds the link: the link's token (checked by the
    /// caller against its keyed hash) is the authority; no acting user. The caller checks again
    /// in this transaction that the link is live and its creator still reaches the document.
    pub(crate) async fn for_share_link(
        db: &Db,
        org_id: &str,
        mode: Mode,
    ) -> Result<TenantTx, sqlx::Error> {
        Self::open(db, org_id, "", mode).await
    }

    /// An API key refused for its client address: the refusal goes on the key's org's chain. The
    /// key (found by the keyed hash of its secret) names the org; no acting user.
    pub(crate) async fn for_api_key_refusal(
        db: &Db,
        org_id: &str,
    ) -> Result<TenantTx, sqlx::Error> {
        Self::open(db, org_id, "", Mode::Write).await
    }

    /// The webhook delivery loop: turns one org's new events into messages and delivers them;
    /// no acting user (the endpoint, found through the cross-org cursor and due tables, is the
    /// authority, and every statement names it again).
    pub(crate) async fn for_webhooks(
        db: &Db,
        org_id: &str,
        mode: Mode,
    ) -> Result<TenantTx, sqlx::Error> {
        Self::open(db, org_id, "", mode).await
    }

    /// A verified billing event recording a plan change on the org's chain; no acting user.
    pub(crate) async fn for_billing(
        db: &Db,
        org_id: &str,
        mode: Mode,
    ) -> Result<TenantTx, sqlx::Error> {
        Self::open(db, org_id, "", mode).await
    }

    /// The search index backfill: finds (`Mode::Read`) and indexes (`Mode::Write`) one org's items
    /// and comments written before the index existed; no acting user.
    pub(crate) async fn for_index_backfill(
        db: &Db,
        org_id: &str,
        mode: Mode,
    ) -> Result<TenantTx, sqlx::Error> {
        Self::open(db, org_id, "", mode).await
    }

    /// The retention jobs: the audit trail's trims one org's chain, or the platform's (`org_id`
    /// empty); the purge removes one org's expired rows. No acting user.
    pub(crate) async fn for_retention(db: &Db, org_id: &str) -> Result<TenantTx, sqlx::Error> {
        Self::open(db, org_id, "", Mode::Write).await
    }

    /// An account's erasure: removes invitations addressed to the erased email (and its
    /// opt-outs) from one org, wherever the person was invited; no acting user (the erasure,
    /// requested by the account's owner after a step-up and its grace period, is the authority).
    pub(crate) async fn for_erasure(db: &Db, org_id: &str) -> Result<TenantTx, sqlx::Error> {
        Self::open(db, org_id, "", Mode::Write).await
    }

    /// The operator's key rotation (`strongroom keys rotate --org`): re-seals one org's fields and
    /// records the rotation in its chain; no acting user, or (`user_id`) the user whose own rows
    /// (notifications) it re-seals.
    pub(crate) async fn for_key_rotation(
        db: &Db,
        org_id: &str,
        user_id: &str,
    ) -> Result<TenantTx, sqlx::Error> {
        Self::open(db, org_id, user_id, Mode::Write).await
    }

    /// The operator's command line (`audit verify`): reads one org's chain, or the platform's
    /// (`org_id` empty); no acting user.
    pub async fn for_operator_read(db: &Db, org_id: &str) -> Result<TenantTx, sqlx::Error> {
        Self::open(db, org_id, "", Mode::Read).await
    }

    async fn open(db: &Db, org_id: &str, user_id: &str, mode: Mode) -> Result<Self, sqlx::Error> {
        let tx = db.begin_scoped(org_id, user_id, mode).await?;
        Ok(TenantTx::new(db, tx, org_id, user_id, mode))
    }

    fn new(db: &Db, tx: Tx, org_id: &str, user_id: &str, mode: Mode) -> Self {
        TenantTx {
            tx: Some(tx),
            dialect: db.dialect,
            org_id: org_id.to_string(),
            user_id: user_id.to_string(),
            read_only: mode == Mode::Read,
            writable: mode == Mode::Write,
        }
    }

    pub fn org_id(&self) -> &str {
        &self.org_id
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The audit chain of this transaction: the org's, or the platform's for the operator's and
    /// the retention job's transactions outside any org (empty org id).
    pub fn chain(&self) -> &str {
        chain_of(&self.org_id)
    }

    /// The engine behind this transaction (the store's few dialect branches).
    pub(super) fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The database role this transaction works as (PostgreSQL; "sqlite" on SQLite): a health
    /// check that the tenant wall holds (it must be the app role, never the login that owns the
    /// tables).
    pub async fn database_role(&mut self) -> Result<String, sqlx::Error> {
        let sql = match self.dialect {
            Dialect::Postgres => "SELECT CAST(current_user AS TEXT) AS r",
            Dialect::Sqlite => "SELECT 'sqlite' AS r",
        };
        sqlx::query(sql).fetch_one(self.conn()?).await?.try_get("r")
    }

    /// Ends the transaction without its changes.
    pub async fn rollback(&mut self) -> Result<(), sqlx::Error> {
        match self.tx.take() {
            Some(tx) => tx.rollback().await,
            None => Ok(()),
        }
    }

    /// No change to the org's data may be made in this transaction.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Commits (a read transaction too: it ends it). Idempotent; using the transaction after
    /// it is an error.
    pub async fn commit(&mut self) -> Result<(), sqlx::Error> {
        match self.tx.take() {
            Some(tx) => tx.commit().await,
            None => Ok(()),
        }
    }

    /// The connection, for reads and for the non-tenant tables a request touches in the same
    /// transaction (accounts, the outbox). An error after `commit`.
    pub(crate) fn conn(&mut self) -> Result<&mut Conn, sqlx::Error> {
        Ok(self.read()?.0)
    }

    /// The connection and the org id, for a read.
    pub(crate) fn read(&mut self) -> Result<(&mut Conn, &str), sqlx::Error> {
        let org = self.org_id.as_str();
        match self.tx.as_mut() {
            Some(tx) => Ok((&mut *tx, org)),
            None => Err(sqlx::Error::Protocol(
                "a tenant transaction was used after its commit".into(),
            )),
        }
    }

    /// The connection and the org id, for a change: refused on a read-only transaction.
    pub(crate) fn write(&mut self) -> Result<(&mut Conn, &str), sqlx::Error> {
        if self.read_only {
            return Err(read_only_error());
        }
        self.read()
    }

    /// The connection for an audit event of this org (allowed in a superadmin's read-only
    /// bypass, which must record itself; refused on a read transaction).
    pub(crate) fn audit(&mut self) -> Result<(&mut Conn, &str), sqlx::Error> {
        if !self.writable {
            return Err(read_only_error());
        }
        self.read()
    }
}

fn read_only_error() -> sqlx::Error {
    sqlx::Error::Protocol("a change was attempted in a read-only tenant transaction".into())
}
