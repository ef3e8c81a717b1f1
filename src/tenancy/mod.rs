//! Tenancy: organizations, their members and invitations.
//!
//! The application wall: an `OrgScope` can only be built here, by `authorize`, after the actor's
//! membership was checked; every store call on a tenant table takes one (its transaction is opened
//! for that org, which on PostgreSQL also arms row-level security). A caller who is not a member
//! gets `NotFound`, never `Forbidden`, so an org's existence does not leak.

pub mod admin;
pub mod api_keys;
pub mod audit_trail;
pub mod billing;
pub mod documents;
pub mod home;
mod invitations;
pub mod items;
pub mod members;
pub mod notifications;
mod orgs;
pub mod search;
pub mod share_links;
pub mod webhooks;
pub mod workspaces;

use std::sync::Arc;

pub use invitations::{
    accept_invitation, create_invitation, list_invitations, opt_out_of_invitations,
    optout_token_is_valid, preview_invitation, revoke_invitation, InvitationPreview,
    InvitationView,
};
pub use members::{change_member_role, list_members, remove_member, MemberView};
pub use orgs::{create_org, delete_org, get_org, list_orgs, update_org, OrgView};

use crate::crypto::{TenantKey, WrappedKey};
use crate::error::{AppError, AppResult};
use crate::identity::AuthSession;
use crate::state::App;
use crate::store;
use crate::store::tenant::{Mode, TenantTx};

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

/// Proof that `user_id` holds `role` in `org_id`, with the org's data key and the request's one
/// transaction in that org (`TenantTx`). Only `authorize` (and org creation, the superadmin
/// bypass and the invitation-token paths) can make one.
pub struct OrgScope {
    tx: TenantTx,
    role: OrgRole,
    key: Arc<TenantKey>,
    /// A superadmin's bypass: reads only.
    read_only: bool,
    /// The acting session proved a second factor.
    session_mfa: bool,
    /// The API key acting for the user, if the caller is one (its id goes into audit events).
    api_key_id: Option<String>,
}

impl OrgScope {
    pub fn org_id(&self) -> &str {
        self.tx.org_id()
    }
    pub fn user_id(&self) -> &str {
        self.tx.user_id()
    }
    pub fn role(&self) -> OrgRole {
        self.role
    }
    pub fn key(&self) -> &TenantKey {
        &self.key
    }

    /// The request's transaction in this org.
    pub fn tx(&mut self) -> &mut TenantTx {
        &mut self.tx
    }

    /// Commits the request's transaction (a read's too: it ends it).
    pub async fn commit(&mut self) -> AppResult<()> {
        Ok(self.tx.commit().await?)
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

/// Checks that the signed-in user is a member of `org_id` and opens the org's key, in the one
/// transaction the request then works in (`mode`: reads, or changes). Anything else (no such org,
/// not a member, a malformed id) is `NotFound`.
pub async fn authorize(
    app: &App,
    s: &AuthSession,
    org_id: &str,
    mode: Mode,
) -> AppResult<OrgScope> {
    Ok(enter(app, s, org_id, None, mode).await?.0)
}

/// `authorize`, reading the named workspace (and the caller's role in it) in the same statement.
pub(crate) async fn enter(
    app: &App,
    s: &AuthSession,
    org_id: &str,
    workspace_id: Option<&str>,
    mode: Mode,
) -> AppResult<(OrgScope, Option<store::tenant::WorkspaceAccess>)> {
    if uuid::Uuid::parse_str(org_id).is_err() {
        return Err(AppError::NotFound);
    }
    // An API key reaches its own org only (checked when it was presented, and again here).
    if s.api_key.as_ref().is_some_and(|k| k.org_id != org_id) {
        return Err(AppError::NotFound);
    }
    let (tx, access) = TenantTx::enter(&app.db, org_id, &s.user_id, workspace_id, mode)
        .await?
        .ok_or(AppError::NotFound)?;
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
    Ok((
        OrgScope {
            tx,
            role,
            key: Arc::new(key),
            read_only: false,
            session_mfa: s.mfa,
            api_key_id: s.api_key.as_ref().map(|k| k.key_id.clone()),
        },
        access.workspace,
    ))
}

pub(crate) fn mfa_required() -> AppError {
    AppError::Forbidden {
        code: "mfa_required",
        detail: "This organization requires two-factor sign-in: set up an authenticator app or a passkey in your security settings first.".into(),
    }
}

/// The org's data key, opened in a transaction that entered the org without a membership (a
/// share link, an invitation token, the webhook loop); None when the org has no key (it is gone).
pub(crate) async fn org_key(app: &App, tx: &mut TenantTx) -> AppResult<Option<TenantKey>> {
    let org_id = tx.org_id().to_string();
    let Some((version, wrapped)) = store::get_data_key(tx.conn()?, &org_id).await? else {
        return Ok(None);
    };
    Ok(Some(app.keyring.open_tenant_key(
        &org_id,
        &WrappedKey { version, wrapped },
    )?))
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
    scope: &mut OrgScope,
    ctx: &crate::identity::RequestCtx,
    action: crate::audit::Action,
    (target_type, target_id): (&str, &str),
    metadata: serde_json::Value,
    now: i64,
) -> AppResult<()> {
    let user = scope.user_id().to_string();
    let mut metadata = metadata;
    if let (Some(key), Some(m)) = (&scope.api_key_id, metadata.as_object_mut()) {
        m.insert("api_key_id".into(), key.clone().into());
    }
    let ev = crate::audit::Event {
        actor_id: Some(&user),
        action,
        target_type: Some(target_type),
        target_id: Some(target_id),
        ip: Some(ctx.ip),
        metadata,
    };
    crate::audit::append_org(&mut scope.tx, now, ev).await?;
    Ok(())
}
