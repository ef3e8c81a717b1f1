//! The platform superadmin's bypass: read any org, only through explicit routes that require a
//! written reason, each use recorded in the target org's own audit chain. Anyone else gets
//! "not found", as for any org they are not in.

use std::sync::Arc;

use serde_json::json;

use super::{members::MemberView, OrgRole, OrgScope, OrgView};
use crate::audit::{self, Action, Event};
use crate::crypto::WrappedKey;
use crate::error::{AppError, AppResult};
use crate::identity::{AuthSession, RequestCtx};
use crate::state::App;
use crate::store;
use crate::store::tenant::TenantTx;

/// Opens a read-only scope on `org_id` for a superadmin, after recording why.
pub async fn bypass(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    org_id: &str,
    reason: Option<&str>,
    what: &str,
) -> AppResult<OrgScope> {
    let mut c = app.db.read().await?;
    if !store::users::is_superadmin(&mut c, &s.user_id).await?
        || uuid::Uuid::parse_str(org_id).is_err()
    {
        return Err(AppError::NotFound);
    }
    drop(c);
    let reason = reason.map(str::trim).unwrap_or("");
    if reason.chars().count() < 10
        || reason.chars().count() > 500
        || reason.chars().any(|c| {
            c.is_control()
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        })
    {
        return Err(AppError::invalid(
            "reason_required",
            "Say why (10 to 500 characters, `reason` query parameter).",
        ));
    }
    crate::identity::mfa::require_recent_auth(app, s)?;
    let now = app.clock.now_ms();
    let (mut tx, (version, wrapped)) = TenantTx::superadmin_bypass(&app.db, org_id, &s.user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let ev = Event {
        actor_id: Some(&s.user_id),
        action: Action::SuperadminBypass,
        target_type: Some("org"),
        target_id: Some(org_id),
        ip: Some(ctx.ip),
        metadata: json!({ "reason": reason, "read": what }),
    };
    audit::append_org(&mut tx, now, ev).await?;
    let key = app
        .keyring
        .open_tenant_key(org_id, &WrappedKey { version, wrapped })?;
    // Read-only: the weakest org role; the bypass routes only read.
    // The bypass event commits with the reads (or not at all, when they fail).
    Ok(OrgScope {
        tx,
        role: OrgRole::Member,
        key: Arc::new(key),
        read_only: true,
        session_mfa: s.mfa,
        api_key_id: None,
    })
}

pub async fn read_org(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    org_id: &str,
    reason: Option<&str>,
) -> AppResult<OrgView> {
    let mut scope = bypass(app, ctx, s, org_id, reason, "org").await?;
    let org = super::get_org(app, &mut scope).await?;
    scope.commit().await?;
    Ok(org)
}

pub async fn read_members(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    org_id: &str,
    reason: Option<&str>,
) -> AppResult<Vec<MemberView>> {
    let mut scope = bypass(app, ctx, s, org_id, reason, "members").await?;
    let members = super::list_members(app, &mut scope, None, Some(200))
        .await?
        .items;
    scope.commit().await?;
    Ok(members)
}

/// Makes the verified account with `email` a platform superadmin (the command line's
/// `admin create-superadmin`; there is no API for it). Recorded in the platform chain.
pub async fn grant_superadmin(app: &App, email: &str) -> AppResult<String> {
    let addr = crate::identity::normalize_email(email)?;
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    let id = store::users::make_superadmin(&mut tx, &app.keyring.blind_index(&addr))
        .await?
        .ok_or_else(|| {
            AppError::invalid(
                "no_such_account",
                "No verified account uses that email address; sign up and verify it first.",
            )
        })?;
    let ev = Event {
        actor_id: None,
        action: Action::SuperadminGranted,
        target_type: Some("user"),
        target_id: Some(&id),
        ip: None,
        metadata: json!({ "via": "command_line" }),
    };
    audit::append_platform(&mut tx, now, ev).await?;
    tx.commit().await?;
    Ok(id)
}
