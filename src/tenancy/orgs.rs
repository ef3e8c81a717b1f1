//! Organizations: create (the creator is owner, and a data key is made for the org), list mine,
//! read, rename / set policy, delete (owner, step-up; destroys the org's key).

use std::sync::Arc;

use serde_json::json;

use super::{audit_org, decode_cursor, page, page_limit, OrgRole, OrgScope, Page};
use crate::audit::Action;
use crate::error::{AppError, AppResult};
use crate::identity::{mfa::require_recent_auth, AuthSession, RequestCtx};
use crate::state::App;
use crate::store;
use crate::store::tenant::TenantTx;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct OrgView {
    pub id: String,
    pub name: String,
    pub role: OrgRole,
    pub require_mfa: bool,
    pub created_at: String,
}

fn validate_name(name: &str) -> AppResult<String> {
    crate::text::check_name("name", name)?;
    let n = name.trim().to_string();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "invalid_name",
            "name: 1 to 100 characters for the organization's name.",
        ));
    }
    Ok(n)
}

fn view(
    scope_key: &crate::crypto::TenantKey,
    row: &store::orgs::OrgRow,
    role: OrgRole,
) -> AppResult<OrgView> {
    Ok(OrgView {
        id: row.id.clone(),
        name: scope_key.open_string("orgs", "name", &row.id, &row.name_ct)?,
        role,
        require_mfa: row.require_mfa,
        created_at: crate::clock::rfc3339(row.created_at),
    })
}

pub async fn create_org(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    name: &str,
) -> AppResult<OrgView> {
    let name = validate_name(name)?;
    let limit = app.config.rate_limits.orgs_per_account;
    crate::ratelimit::creation(&*app.limiter, "org", &s.user_id, limit).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = app.clock.now_ms();
    let (key, wrapped) = app.keyring.new_tenant_key(&id)?;
    let mut tx = TenantTx::for_new_org(&app.db, &id, &s.user_id).await?;
    store::insert_data_key(tx.conn()?, &id, wrapped.version, &wrapped.wrapped, now).await?;
    let name_ct = key.seal("orgs", "name", &id, name.as_bytes());
    store::orgs::insert_org(&mut tx, name_ct, &s.user_id, now).await?;
    store::orgs::insert_member(&mut tx, &s.user_id, OrgRole::Owner.as_str(), now).await?;
    let mut scope = OrgScope {
        tx,
        role: OrgRole::Owner,
        key: Arc::new(key),
        read_only: false,
        session_mfa: s.mfa,
        api_key_id: None,
    };
    audit_org(
        &mut scope,
        ctx,
        Action::OrgCreated,
        ("org", &id),
        json!({}),
        now,
    )
    .await?;
    scope.commit().await?;
    Ok(OrgView {
        id,
        name,
        role: OrgRole::Owner,
        require_mfa: false,
        created_at: crate::clock::rfc3339(now),
    })
}

pub async fn list_orgs(
    app: &App,
    s: &AuthSession,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Page<OrgView>> {
    let after = decode_cursor(cursor)?;
    let limit = page_limit(limit)?;
    let mut tx = app.db.begin_for_user(&s.user_id).await?;
    let rows = store::orgs::list_orgs_for_user(&mut tx, &s.user_id, &after, limit + 1).await?;
    tx.commit().await?;
    let mut items = Vec::with_capacity(rows.len());
    for (row, role, (version, wrapped)) in rows {
        let key = match app
            .keyring
            .open_tenant_key(&row.id, &crate::crypto::WrappedKey { version, wrapped })
        {
            // Deleted after the backup this copy came from: gone.
            Err(crate::crypto::CryptoError::Shredded) => continue,
            other => other?,
        };
        items.push(view(
            &key,
            &row,
            OrgRole::parse(&role).unwrap_or(OrgRole::Member),
        )?);
    }
    Ok(page(items, limit, |o| o.id.clone()))
}

pub async fn get_org(app: &App, scope: &mut OrgScope) -> AppResult<OrgView> {
    let _ = app;
    let row = store::orgs::get_org(scope.tx())
        .await?
        .ok_or(AppError::NotFound)?;
    view(scope.key(), &row, scope.role())
}

/// Rename and/or set the "require MFA" policy (admin).
pub async fn update_org(
    app: &App,
    ctx: &RequestCtx,
    scope: &mut OrgScope,
    name: Option<&str>,
    require_mfa: Option<bool>,
) -> AppResult<OrgView> {
    scope.require(OrgRole::Admin)?;
    let name = name.map(validate_name).transpose()?;
    if require_mfa == Some(true) {
        // Whoever turns the policy on must meet it, or they would lock themselves out.
        if !scope.session_mfa {
            return Err(super::mfa_required());
        }
    }
    let now = app.clock.now_ms();
    let ct = name.as_ref().map(|n| {
        scope
            .key()
            .seal("orgs", "name", scope.org_id(), n.as_bytes())
    });
    store::orgs::update_org(scope.tx(), ct, require_mfa, now).await?;
    let fields: Vec<&str> = [
        name.as_ref().map(|_| "name"),
        require_mfa.map(|_| "require_mfa"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let org_id = scope.org_id().to_string();
    audit_org(
        scope,
        ctx,
        Action::OrgUpdated,
        ("org", &org_id),
        json!({ "fields": fields, "require_mfa": require_mfa }),
        now,
    )
    .await?;
    let view = get_org(app, scope).await?;
    scope.commit().await?;
    Ok(view)
}

/// Deletes the org and destroys its data key: its ciphertexts, in old backups too, become
/// unreadable. Owner only, after a recent re-authentication.
pub async fn delete_org(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    scope: &mut OrgScope,
) -> AppResult<()> {
    scope.require(OrgRole::Owner)?;
    require_recent_auth(app, s)?;
    let now = app.clock.now_ms();
    let org_id = scope.org_id().to_string();
    audit_org(
        scope,
        ctx,
        Action::OrgDeleted,
        ("org", &org_id),
        json!({ "key_destroyed": true }),
        now,
    )
    .await?;
    super::documents::forget_org(scope, now).await?;
    store::orgs::delete_org(scope.tx()).await?;
    scope.commit().await?;
    // The key's shred secret goes last: with it, no copy of the key (in an old backup) opens
    // again. Should this fail, the purge's sweep removes secrets whose org is gone.
    if let Err(e) = app.keyring.destroy_org_secret(&org_id) {
        tracing::error!(org = %org_id, error = %e, "could not destroy the org's shred secret");
    }
    super::documents::collect_garbage_soon(app);
    Ok(())
}
