//! Tenancy: organizations, their members and invitations.
//!
//! The application wall: an `OrgScope` can only be built here, by `authorize`, after the actor's
//! membership was checked; every store call on a tenant table takes one (its transaction is opened
//! for that org, which on PostgreSQL also arms row-level security). A caller who is not a member
//! gets `NotFound`, never `Forbidden`, so an org's existence does not leak.

pub mod admin;
mod invitations;
pub mod items;
pub mod members;
mod orgs;
pub mod workspaces;

use std::sync::Arc;

pub use invitations::{
    accept_invitation, create_invitation, list_invitations, opt_out_of_invitations,
    optout_token_is_valid, revoke_invitation, InvitationView,
};
pub use members::{change_member_role, list_members, remove_member, MemberView};
pub use orgs::{create_org, delete_org, get_org, list_orgs, update_org, OrgView};

use crate::crypto::{TenantKey, WrappedKey};
use crate::error::{AppError, AppResult};
use crate::identity::AuthSession;
use crate::state::App;
use crate::store::{self, Tx};

/// Org roles, weakest first.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OrgRole {
    Member,
    Admin,
    Owner,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Member => "member",
            OrgRole::Admin => "admin",
            OrgRole::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(OrgRole::Member),
            "admin" => Some(OrgRole::Admin),
            "owner" => Some(OrgRole::Owner),
            _ => None,
        }
    }
}

/// Proof that `user_id` holds `role` in `org_id`, with the org's data key. Only `authorize` (and
/// org creation) can make one.
pub struct OrgScope {
    org_id: String,
    user_id: String,
    role: OrgRole,
    key: Arc<TenantKey>,
    /// A superadmin's bypass: reads only.
    read_only: bool,
    /// The acting session proved a second factor.
    session_mfa: bool,
}

impl OrgScope {
    pub fn org_id(&self) -> &str {
        &self.org_id
    }
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
    pub fn role(&self) -> OrgRole {
        self.role
    }
    pub fn key(&self) -> &TenantKey {
        &self.key
    }

    /// A transaction for this org (tenant context set for row-level security).
    pub async fn begin(&self, app: &App) -> AppResult<Tx> {
        Ok(app.db.begin_scoped(&self.org_id, &self.user_id).await?)
    }

    /// A read-only transaction for this org (see `Db::begin_scoped_read`): for reads, which then
    /// never wait for a writer on SQLite.
    pub async fn begin_read(&self, app: &App) -> AppResult<Tx> {
        Ok(app
            .db
            .begin_scoped_read(&self.org_id, &self.user_id)
            .await?)
    }

    /// Refuses (403) unless the caller holds at least `role`: the caller can see the org.
    pub fn require(&self, role: OrgRole) -> AppResult<()> {
        if self.role >= role && !self.read_only {
            Ok(())
        } else {
            Err(AppError::Forbidden {
                code: "forbidden",
                detail: format!("This needs the {} role in the organization.", role.as_str()),
            })
        }
    }
}

/// Checks that the signed-in user is a member of `org_id` and opens the org's key. Anything else
/// (no such org, not a member, a malformed id) is `NotFound`.
pub async fn authorize(app: &App, s: &AuthSession, org_id: &str) -> AppResult<OrgScope> {
    if uuid::Uuid::parse_str(org_id).is_err() {
        return Err(AppError::NotFound);
    }
    let mut tx = app.db.begin_scoped_read(org_id, &s.user_id).await?;
    let access = store::orgs::member_access(&mut tx, org_id, &s.user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    tx.commit().await?;
    let role = OrgRole::parse(&access.role).ok_or(AppError::NotFound)?;
    // Org policy: a session that has not proved a second factor reaches nothing of the org (the
    // member's own security settings are under /me, outside any org).
    if access.require_mfa && !s.mfa {
        return Err(mfa_required());
    }
    let key = app.keyring.open_tenant_key(
        org_id,
        &WrappedKey {
            version: access.key_version,
            wrapped: access.key_wrapped,
        },
    )?;
    Ok(OrgScope {
        org_id: org_id.to_string(),
        user_id: s.user_id.clone(),
        role,
        key: Arc::new(key),
        read_only: false,
        session_mfa: s.mfa,
    })
}

pub(crate) fn mfa_required() -> AppError {
    AppError::Forbidden {
        code: "mfa_required",
        detail: "This organization requires two-factor sign-in: set up an authenticator app or a passkey in your security settings first.".into(),
    }
}

/// Opaque list cursors: the last key of the previous page.
pub(crate) fn decode_cursor(cursor: Option<&str>) -> AppResult<String> {
    use base64::Engine;
    let bad = || {
        AppError::invalid(
            "invalid_cursor",
            "The cursor is not one this server gave out.",
        )
    };
    match cursor {
        None | Some("") => Ok(String::new()),
        Some(c) => {
            let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(bad)?;
            // Every list is keyed by UUIDs; anything else (a NUL byte, say) is refused here.
            uuid::Uuid::parse_str(&key).map_err(|_| bad())?;
            Ok(key)
        }
    }
}

pub(crate) fn encode_cursor(last: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
}

/// `limit` within 1..=200 (default 50).
pub(crate) fn page_limit(limit: Option<i64>) -> AppResult<i64> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=200).contains(&n) => Ok(n),
        Some(_) => Err(AppError::invalid(
            "invalid_limit",
            "limit must be between 1 and 200.",
        )),
    }
}

/// A page of items and the cursor of the next one.
#[derive(Debug, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub(crate) fn page<T>(mut items: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Page<T> {
    let more = items.len() as i64 > limit;
    items.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = if more {
        items.last().map(|i| encode_cursor(&key(i)))
    } else {
        None
    };
    Page { items, next_cursor }
}

pub(crate) async fn audit_org(
    tx: &mut Tx,
    scope: &OrgScope,
    ctx: &crate::identity::RequestCtx,
    action: crate::audit::Action,
    (target_type, target_id): (&str, &str),
    metadata: serde_json::Value,
    now: i64,
) -> AppResult<()> {
    let ev = crate::audit::Event {
        actor_id: Some(scope.user_id()),
        action,
        target_type: Some(target_type),
        target_id: Some(target_id),
        ip: Some(ctx.ip),
        metadata,
    };
    crate::audit::append(tx, scope.org_id(), now, ev).await?;
    Ok(())
}
