//! The audit core: an append-only table with one hash chain per org (and `platform` for account
//! events). `hash = SHA-256(prev_hash ‖ canonical event bytes)`; `seq` is gapless per chain because
//! the chain head row is locked (PostgreSQL) or writes are serialized (SQLite) while appending.
//! Events are written in the same transaction as the change they record.

use std::net::IpAddr;

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::store::Conn;

pub mod query;
pub mod retention;
pub mod trail;
pub mod verify;

pub use verify::{Report, Verifier};

pub use crate::store::tenant::PLATFORM_CHAIN;
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every action the system can audit, in one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    UserSignup,
    UserEmailVerified,
    AuthLoginSucceeded,
    AuthLoginFailed,
    AuthLogout,
    SessionRevoked,
    UserPasswordChanged,
    PasswordResetRequested,
    PasswordResetCompleted,
    UserProfileUpdated,
    AuthPasswordVerified,
    AuthMfaSucceeded,
    AuthMfaFailed,
    AuthReauthenticated,
    AuthReauthenticationFailed,
    MfaTotpEnabled,
    MfaTotpDisabled,
    MfaRecoveryCodesRegenerated,
    MfaRecoveryCodeUsed,
    PasskeyAdded,
    PasskeyRenamed,
    PasskeyRemoved,
    OrgCreated,
    OrgUpdated,
    OrgDeleted,
    MemberRoleChanged,
    MemberRemoved,
    InvitationCreated,
    InvitationRevoked,
    InvitationAccepted,
    InvitationOptedOut,
    WorkspaceCreated,
    WorkspaceUpdated,
    WorkspaceDeleted,
    WorkspaceMemberSet,
    WorkspaceMemberRemoved,
    ItemCreated,
    ItemUpdated,
    ItemDeleted,
    CommentCreated,
    SuperadminBypass,
    SuperadminGranted,
    AuditExported,
    AuditRetentionCheckpoint,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::UserSignup,
        Action::UserEmailVerified,
        Action::AuthLoginSucceeded,
        Action::AuthLoginFailed,
        Action::AuthLogout,
        Action::SessionRevoked,
        Action::UserPasswordChanged,
        Action::PasswordResetRequested,
        Action::PasswordResetCompleted,
        Action::UserProfileUpdated,
        Action::AuthPasswordVerified,
        Action::AuthMfaSucceeded,
        Action::AuthMfaFailed,
        Action::AuthReauthenticated,
        Action::AuthReauthenticationFailed,
        Action::MfaTotpEnabled,
        Action::MfaTotpDisabled,
        Action::MfaRecoveryCodesRegenerated,
        Action::MfaRecoveryCodeUsed,
        Action::PasskeyAdded,
        Action::PasskeyRenamed,
        Action::PasskeyRemoved,
        Action::OrgCreated,
        Action::OrgUpdated,
        Action::OrgDeleted,
        Action::MemberRoleChanged,
        Action::MemberRemoved,
        Action::InvitationCreated,
        Action::InvitationRevoked,
        Action::InvitationAccepted,
        Action::InvitationOptedOut,
        Action::WorkspaceCreated,
        Action::WorkspaceUpdated,
        Action::WorkspaceDeleted,
        Action::WorkspaceMemberSet,
        Action::WorkspaceMemberRemoved,
        Action::ItemCreated,
        Action::ItemUpdated,
        Action::ItemDeleted,
        Action::CommentCreated,
        Action::SuperadminBypass,
        Action::SuperadminGranted,
        Action::AuditExported,
        Action::AuditRetentionCheckpoint,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::UserSignup => "user.signup",
            Action::UserEmailVerified => "user.email_verified",
            Action::AuthLoginSucceeded => "auth.login_succeeded",
            Action::AuthLoginFailed => "auth.login_failed",
            Action::AuthLogout => "auth.logout",
            Action::SessionRevoked => "session.revoked",
            Action::UserPasswordChanged => "user.password_changed",
            Action::PasswordResetRequested => "user.password_reset_requested",
            Action::PasswordResetCompleted => "user.password_reset_completed",
            Action::UserProfileUpdated => "user.profile_updated",
            Action::AuthPasswordVerified => "auth.password_verified",
            Action::AuthMfaSucceeded => "auth.mfa_succeeded",
            Action::AuthMfaFailed => "auth.mfa_failed",
            Action::AuthReauthenticated => "auth.reauthenticated",
            Action::AuthReauthenticationFailed => "auth.reauthentication_failed",
            Action::MfaTotpEnabled => "mfa.totp_enabled",
            Action::MfaTotpDisabled => "mfa.totp_disabled",
            Action::MfaRecoveryCodesRegenerated => "mfa.recovery_codes_regenerated",
            Action::MfaRecoveryCodeUsed => "mfa.recovery_code_used",
            Action::PasskeyAdded => "mfa.passkey_added",
            Action::PasskeyRenamed => "mfa.passkey_renamed",
            Action::PasskeyRemoved => "mfa.passkey_removed",
            Action::OrgCreated => "org.created",
            Action::OrgUpdated => "org.updated",
            Action::OrgDeleted => "org.deleted",
            Action::MemberRoleChanged => "member.role_changed",
            Action::MemberRemoved => "member.removed",
            Action::InvitationCreated => "invitation.created",
            Action::InvitationRevoked => "invitation.revoked",
            Action::InvitationAccepted => "invitation.accepted",
            Action::InvitationOptedOut => "invitation.opted_out",
            Action::WorkspaceCreated => "workspace.created",
            Action::WorkspaceUpdated => "workspace.updated",
            Action::WorkspaceDeleted => "workspace.deleted",
            Action::WorkspaceMemberSet => "workspace.member_set",
            Action::WorkspaceMemberRemoved => "workspace.member_removed",
            Action::ItemCreated => "item.created",
            Action::ItemUpdated => "item.updated",
            Action::ItemDeleted => "item.deleted",
            Action::CommentCreated => "comment.created",
            Action::SuperadminBypass => "superadmin.bypass",
            Action::SuperadminGranted => "superadmin.granted",
            Action::AuditExported => "audit.exported",
            Action::AuditRetentionCheckpoint => "audit.retention_checkpoint",
        }
    }

    /// The action with this name, if there is one.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.as_str() == s)
    }
}

/// One event to append. `ip` is masked before it is stored; metadata must already be masked.
pub struct Event<'a> {
    pub actor_id: Option<&'a str>,
    pub action: Action,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub ip: Option<IpAddr>,
    pub metadata: Value,
}

/// Appends `ev` to the chain of the transaction's org, inside that transaction.
pub async fn append_org(
    t: &mut crate::store::tenant::TenantTx,
    now: i64,
    ev: Event<'_>,
) -> Result<i64, sqlx::Error> {
    let (c, org_id) = t.audit()?;
    let chain = org_id.to_string();
    append_chain(c, &chain, now, ev).await
}

/// Appends `ev` to the platform chain (accounts, sessions, the operator) inside the caller's
/// transaction.
pub async fn append_platform(c: &mut Conn, now: i64, ev: Event<'_>) -> Result<i64, sqlx::Error> {
    append_chain(c, PLATFORM_CHAIN, now, ev).await
}

/// Appends `ev` to `chain` inside the caller's transaction: three statements (move the head,
/// insert the event, record its hash on the head).
pub(crate) async fn append_chain(
    c: &mut Conn,
    chain: &str,
    now: i64,
    ev: Event<'_>,
) -> Result<i64, sqlx::Error> {
    // Creates the chain's head on its first event, else moves it on by one; either way it locks
    // the head row until the transaction ends: appends to one chain are serialized.
    let head = sqlx::query(
        "INSERT INTO audit_chains (chain, last_seq, last_hash) VALUES ($1, 1, $2) \
         ON CONFLICT (chain) DO UPDATE SET last_seq = audit_chains.last_seq + 1 \
         RETURNING last_seq, last_hash, last_at",
    )
    .bind(chain)
    .bind(GENESIS)
    .fetch_one(&mut *c)
    .await?;
    let seq: i64 = head.try_get("last_seq")?;
    let prev: String = head.try_get("last_hash")?;
    // Times never go backwards along a chain (a replica's clock may lag a little), so a time range
    // is a range of sequence numbers.
    let now = now.max(head.try_get::<i64, _>("last_at")?);
    let stored = StoredEvent {
        id: uuid::Uuid::now_v7().to_string(),
        chain: chain.to_string(),
        seq,
        at: now,
        actor_id: ev.actor_id.map(str::to_string),
        action: ev.action.as_str().to_string(),
        target_type: ev.target_type.map(str::to_string),
        target_id: ev.target_id.map(str::to_string),
        ip: ev.ip.map(crate::mask::ip),
        metadata: ev.metadata,
        prev_hash: prev,
        hash: String::new(),
    };
    let hash = stored.compute_hash();
    sqlx::query(
        "INSERT INTO audit_events (id, chain, seq, at, actor_id, action, target_type, target_id, ip, metadata, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&stored.id)
    .bind(chain)
    .bind(seq)
    .bind(now)
    .bind(&stored.actor_id)
    .bind(&stored.action)
    .bind(&stored.target_type)
    .bind(&stored.target_id)
    .bind(&stored.ip)
    .bind(canonical(&stored.metadata))
    .bind(&stored.prev_hash)
    .bind(&hash)
    .execute(&mut *c)
    .await?;
    sqlx::query("UPDATE audit_chains SET last_hash = $2, last_at = $3 WHERE chain = $1")
        .bind(chain)
        .bind(&hash)
        .bind(now)
        .execute(&mut *c)
        .await?;
    Ok(seq)
}

/// An event as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredEvent {
    pub id: String,
    pub chain: String,
    pub seq: i64,
    pub at: i64,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub metadata: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredEvent {
    /// SHA-256 over the previous hash and the canonical bytes of every other field.
    pub fn compute_hash(&self) -> String {
        let body = serde_json::json!({
            "id": self.id,
            "chain": self.chain,
            "seq": self.seq,
            "at": self.at,
            "actor_id": self.actor_id,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "ip": self.ip,
            "metadata": self.metadata,
        });
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(canonical(&body).as_bytes());
        hex::encode(h.finalize())
    }
}

/// JSON with object keys sorted at every level and no insignificant white space.
pub fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

pub(crate) const COLUMNS: &str =
    "id, chain, seq, at, actor_id, action, target_type, target_id, ip, metadata, prev_hash, hash";

pub(crate) fn from_row(r: &sqlx::any::AnyRow) -> Result<StoredEvent, sqlx::Error> {
    let meta: String = r.try_get("metadata")?;
    Ok(StoredEvent {
        id: r.try_get("id")?,
        chain: r.try_get("chain")?,
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor_id: r.try_get("actor_id")?,
        action: r.try_get("action")?,
        target_type: r.try_get("target_type")?,
        target_id: r.try_get("target_id")?,
        ip: r.try_get("ip")?,
        // `append` stores canonical JSON: anything else (not JSON, reformatted, duplicate keys that
        // another reader might resolve differently) reads as a marker that fails the hash.
        metadata: serde_json::from_str::<Value>(&meta)
            .ok()
            .filter(|v| canonical(v) == meta)
            .unwrap_or_else(|| Value::String("<metadata not as written>".into())),
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// Events of a chain in order, from `after_seq` on, at most `limit`.
pub async fn load_batch(
    c: &mut Conn,
    chain: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    ))
    .bind(chain)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Every event of a chain in order.
pub async fn load_chain(c: &mut Conn, chain: &str) -> Result<Vec<StoredEvent>, sqlx::Error> {
    load_batch(c, chain, 0, i64::MAX).await
}

/// The chain's head as the database records it: `(last_seq, last_hash)`.
pub async fn head(c: &mut Conn, chain: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
    let row = sqlx::query("SELECT last_seq, last_hash FROM audit_chains WHERE chain = $1")
        .bind(chain)
        .fetch_optional(&mut *c)
        .await?;
    row.map(|r| Ok((r.try_get("last_seq")?, r.try_get("last_hash")?)))
        .transpose()
}

/// The first sequence number at which the chain does not verify, if any (a chain that starts
/// after a retention checkpoint is checked without the checkpoint's signature).
pub fn first_bad_seq(events: &[StoredEvent]) -> Option<i64> {
    let mut v = Verifier::new(events.first().map(|e| e.chain.as_str()).unwrap_or(""), None);
    for e in events {
        v.feed(e);
    }
    v.finish(None).first_bad_seq
}
