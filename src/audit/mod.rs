//! The audit core: an append-only table with one hash chain per org (and `platform` for account
//! events). `hash = SHA-256(prev_hash ‖ canonical event bytes)`; `seq` is gapless per chain because
//! the chain head row is locked (PostgreSQL) or writes are serialized (SQLite) while appending.
//! Events are written in the same transaction as the change they record.
//!
//! The hash chain is this module's (hashing, canonical JSON, verification, retention
//! checkpoints); its SQL is `store::audit`'s. What the trail shows an org's admins is tenancy's
//! (`tenancy::audit_trail`).

use std::net::IpAddr;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::store;
use crate::store::audit::{EventRow, Head};
use crate::store::tenant::TenantTx;
use crate::store::Conn;

pub mod query;
pub mod retention;
pub mod verify;

pub use verify::{Report, Verifier};

pub use crate::store::audit::head;
pub use crate::store::audit::GENESIS;
pub use crate::store::tenant::PLATFORM_CHAIN;

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
    AccountDeletionRequested,
    AccountDeletionCancelled,
    AccountErased,
    ExportRequested,
    ExportDownloaded,
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
    DocumentUploaded,
    DocumentUpdated,
    DocumentDownloaded,
    DocumentDeleted,
    FolderCreated,
    FolderDeleted,
    ShareLinkCreated,
    ShareLinkRevoked,
    ShareLinkDownloaded,
    ShareLinkRefused,
    ShareLinkCodeSent,
    ApiKeyCreated,
    ApiKeyRevoked,
    ApiKeyRefused,
    WebhookCreated,
    WebhookDeleted,
    WebhookSecretRotated,
    WebhookEnabled,
    WebhookDisabled,
    WebhookTested,
    WebhookRedelivered,
    BillingPlanChanged,
    SuperadminBypass,
    SuperadminGranted,
    AuditExported,
    AuditRetentionCheckpoint,
    KeysMasterRotated,
    KeysOrgRotationStarted,
    KeysOrgRotated,
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
        Action::AccountDeletionRequested,
        Action::AccountDeletionCancelled,
        Action::AccountErased,
        Action::ExportRequested,
        Action::ExportDownloaded,
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
        Action::DocumentUploaded,
        Action::DocumentUpdated,
        Action::DocumentDownloaded,
        Action::DocumentDeleted,
        Action::FolderCreated,
        Action::FolderDeleted,
        Action::ShareLinkCreated,
        Action::ShareLinkRevoked,
        Action::ShareLinkDownloaded,
        Action::ShareLinkRefused,
        Action::ShareLinkCodeSent,
        Action::ApiKeyCreated,
        Action::ApiKeyRevoked,
        Action::ApiKeyRefused,
        Action::WebhookCreated,
        Action::WebhookDeleted,
        Action::WebhookSecretRotated,
        Action::WebhookEnabled,
        Action::WebhookDisabled,
        Action::WebhookTested,
        Action::WebhookRedelivered,
        Action::BillingPlanChanged,
        Action::SuperadminBypass,
        Action::SuperadminGranted,
        Action::AuditExported,
        Action::AuditRetentionCheckpoint,
        Action::KeysMasterRotated,
        Action::KeysOrgRotationStarted,
        Action::KeysOrgRotated,
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
            Action::AccountDeletionRequested => "account.deletion_requested",
            Action::AccountDeletionCancelled => "account.deletion_cancelled",
            Action::AccountErased => "account.erased",
            Action::ExportRequested => "export.requested",
            Action::ExportDownloaded => "export.downloaded",
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
            Action::DocumentUploaded => "document.uploaded",
            Action::DocumentUpdated => "document.updated",
            Action::DocumentDownloaded => "document.downloaded",
            Action::DocumentDeleted => "document.deleted",
            Action::FolderCreated => "folder.created",
            Action::FolderDeleted => "folder.deleted",
            Action::ShareLinkCreated => "share_link.created",
            Action::ShareLinkRevoked => "share_link.revoked",
            Action::ShareLinkDownloaded => "share_link.downloaded",
            Action::ShareLinkRefused => "share_link.refused",
            Action::ShareLinkCodeSent => "share_link.code_sent",
            Action::ApiKeyCreated => "api_key.created",
            Action::ApiKeyRevoked => "api_key.revoked",
            Action::ApiKeyRefused => "api_key.refused",
            Action::WebhookCreated => "webhook.created",
            Action::WebhookDeleted => "webhook.deleted",
            Action::WebhookSecretRotated => "webhook.secret_rotated",
            Action::WebhookEnabled => "webhook.enabled",
            Action::WebhookDisabled => "webhook.disabled",
            Action::WebhookTested => "webhook.tested",
            Action::WebhookRedelivered => "webhook.redelivered",
            Action::BillingPlanChanged => "billing.plan_changed",
            Action::SuperadminBypass => "superadmin.bypass",
            Action::SuperadminGranted => "superadmin.granted",
            Action::AuditExported => "audit.exported",
            Action::AuditRetentionCheckpoint => "audit.retention_checkpoint",
            Action::KeysMasterRotated => "keys.master_rotated",
            Action::KeysOrgRotationStarted => "keys.org_rotation_started",
            Action::KeysOrgRotated => "keys.org_rotated",
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

/// Appends `ev` to the chain of the transaction's org, inside that transaction (in the retention
/// job's transaction outside any org, to the platform chain).
pub async fn append_org(t: &mut TenantTx, now: i64, ev: Event<'_>) -> Result<i64, sqlx::Error> {
    store::audit::append(t, |head| seal(head, now, ev)).await
}

/// Appends `ev` to the platform chain (accounts, sessions, the operator) inside the caller's
/// transaction.
pub async fn append_platform(c: &mut Conn, now: i64, ev: Event<'_>) -> Result<i64, sqlx::Error> {
    store::audit::append_platform(c, |head| seal(head, now, ev)).await
}

/// The row of `ev` on the chain head it lands on: its time (never before the event it follows:
/// a replica's clock may lag a little, and a time range must stay a range of sequence numbers),
/// its masked IP, the previous hash and its own.
fn seal(head: Head<'_>, now: i64, ev: Event<'_>) -> EventRow {
    let mut stored = StoredEvent {
        id: uuid::Uuid::now_v7().to_string(),
        chain: head.chain.to_string(),
        seq: head.seq,
        at: now.max(head.last_at),
        actor_id: ev.actor_id.map(str::to_string),
        action: ev.action.as_str().to_string(),
        target_type: ev.target_type.map(str::to_string),
        target_id: ev.target_id.map(str::to_string),
        ip: ev.ip.map(crate::mask::ip),
        metadata: ev.metadata,
        prev_hash: head.prev_hash,
        hash: String::new(),
    };
    stored.hash = stored.compute_hash();
    stored.into_row()
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

impl StoredEvent {
    /// The row to store: metadata as canonical JSON.
    fn into_row(self) -> EventRow {
        EventRow {
            metadata: canonical(&self.metadata),
            id: self.id,
            chain: self.chain,
            seq: self.seq,
            at: self.at,
            actor_id: self.actor_id,
            action: self.action,
            target_type: self.target_type,
            target_id: self.target_id,
            ip: self.ip,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

impl From<EventRow> for StoredEvent {
    fn from(r: EventRow) -> Self {
        // Appends store canonical JSON: anything else (not JSON, reformatted, duplicate keys that
        // another reader might resolve differently) reads as a marker that fails the hash.
        let metadata = serde_json::from_str::<Value>(&r.metadata)
            .ok()
            .filter(|v| canonical(v) == r.metadata)
            .unwrap_or_else(|| Value::String("<metadata not as written>".into()));
        StoredEvent {
            id: r.id,
            chain: r.chain,
            seq: r.seq,
            at: r.at,
            actor_id: r.actor_id,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            ip: r.ip,
            metadata,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// Events of the transaction's chain in order, from `after_seq` on, at most `limit`.
pub async fn load_batch(
    t: &mut TenantTx,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = store::audit::batch(t, after_seq, limit).await?;
    Ok(rows.into_iter().map(StoredEvent::from).collect())
}

/// Every event of the transaction's chain in order.
pub async fn load_chain(t: &mut TenantTx) -> Result<Vec<StoredEvent>, sqlx::Error> {
    load_batch(t, 0, i64::MAX).await
}

/// Every event of the platform chain in order.
pub async fn load_platform_chain(c: &mut Conn) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = store::audit::platform_batch(c, 0, i64::MAX).await?;
    Ok(rows.into_iter().map(StoredEvent::from).collect())
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
