//! Members: list (emails masked unless the caller is an admin or owner), change role, remove.
//! The last owner can neither leave nor be demoted; only owners make or remove owners.

use serde_json::json;

use super::{audit_org, decode_cursor, page, page_limit, OrgRole, OrgScope, Page};
use crate::audit::Action;
use crate::error::{AppError, AppResult};
use crate::identity::RequestCtx;
use crate::state::App;
use crate::store;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub display_name: String,
    /// Masked (`j***@e***.com`) unless the caller is an admin or owner.
    pub email: String,
    pub role: OrgRole,
    pub joined_at: String,
}

fn member_view(app: &App, r: store::orgs::MemberRow, full: bool) -> AppResult<MemberView> {
    // Empty for a member erased after the backup this database came from.
    let email =
        crate::identity::address(&app.keyring, &r.user_id, &r.email_ct)?.unwrap_or_default();
    let name = crate::identity::shown_name(&app.keyring, &r.user_id, &r.display_name_ct)?;
    Ok(MemberView {
        user_id: r.user_id,
        display_name: name,
        email: if full {
            email
        } else {
            crate::mask::email(&email)
        },
        role: OrgRole::parse(&r.role).unwrap_or(OrgRole::Member),
        joined_at: crate::clock::rfc3339(r.joined_at),
    })
}

/// The actor's role as it is now, under the org lock (it may have changed since `authorize`).
async fn current_role(scope: &mut OrgScope) -> AppResult<OrgRole> {
    let me = scope.user_id().to_string();
    store::orgs::member_role(scope.tx(), &me)
        .await?
        .and_then(|r| OrgRole::parse(&r))
        .ok_or(AppError::NotFound)
}

pub async fn list_members(
    app: &App,
    scope: &mut OrgScope,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Page<MemberView>> {
    let after = decode_cursor(cursor)?;
    let limit = page_limit(limit)?;
    let rows = store::orgs::list_members(scope.tx(), &after, limit + 1).await?;
    let full = scope.role() >= OrgRole::Admin;
    let items = rows
        .into_iter()
        .map(|r| member_view(app, r, full))
        .collect::<AppResult<Vec<_>>>()?;
    Ok(page(items, limit, |m| m.user_id.clone()))
}

fn last_owner() -> AppError {
    AppError::Forbidden {
        code: "last_owner",
        detail: "An organization needs at least one owner: make someone else owner first.".into(),
    }
}

fn owners_only() -> AppError {
    AppError::Forbidden {
        code: "forbidden",
        detail: "Only owners can make or remove owners.".into(),
    }
}

pub async fn change_member_role(
    app: &App,
    ctx: &RequestCtx,
    scope: &mut OrgScope,
    user_id: &str,
    role: OrgRole,
) -> AppResult<MemberView> {
    scope.require(OrgRole::Admin)?;
    if uuid::Uuid::parse_str(user_id).is_err() {
        return Err(AppError::NotFound);
    }
    let now = app.clock.now_ms();
    store::orgs::lock_org(scope.tx()).await?;
    let actor = current_role(scope).await?;
    if actor < OrgRole::Admin {
        return Err(AppError::Forbidden {
            code: "forbidden",
            detail: "This needs the admin role in the organization.".into(),
        });
    }
    let current = store::orgs::member_role(scope.tx(), user_id)
        .await?
        .and_then(|r| OrgRole::parse(&r))
        .ok_or(AppError::NotFound)?;
    if (current == OrgRole::Owner || role == OrgRole::Owner) && actor != OrgRole::Owner {
        return Err(owners_only());
    }
    if current == OrgRole::Owner
        && role != OrgRole::Owner
        && store::orgs::count_owners(scope.tx()).await? <= 1
    {
        return Err(last_owner());
    }
    store::orgs::set_member_role(scope.tx(), user_id, role.as_str()).await?;
    // API keys are made by admins and act as them: a member who is no longer one loses them.
    let (keys_revoked, webhooks_disabled) = if role < OrgRole::Admin {
        (
            store::api_keys::revoke_by_creator(scope.tx(), user_id, now).await?,
            store::webhooks::disable_by_creator(scope.tx(), user_id, now).await?,
        )
    } else {
        (0, 0)
    };
    audit_org(
        scope,
        ctx,
        Action::MemberRoleChanged,
        ("user", user_id),
        json!({ "from": current.as_str(), "to": role.as_str(), "api_keys_revoked": keys_revoked,
                "webhooks_disabled": webhooks_disabled }),
        now,
    )
    .await?;
    let row = store::orgs::get_member(scope.tx(), user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    scope.commit().await?;
    member_view(app, row, true)
}

/// Removes a member (admins remove members and admins, owners anyone; anyone may leave).
pub async fn remove_member(
    app: &App,
    ctx: &RequestCtx,
    scope: &mut OrgScope,
    user_id: &str,
) -> AppResult<()> {
    if uuid::Uuid::parse_str(user_id).is_err() {
        return Err(AppError::NotFound);
    }
    let leaving = user_id == scope.user_id();
    if !leaving {
        scope.require(OrgRole::Admin)?;
    }
    let now = app.clock.now_ms();
    store::orgs::lock_org(scope.tx()).await?;
    let actor = current_role(scope).await?;
    if !leaving && actor < OrgRole::Admin {
        return Err(AppError::Forbidden {
            code: "forbidden",
            detail: "This needs the admin role in the organization.".into(),
        });
    }
    let current = store::orgs::member_role(scope.tx(), user_id)
        .await?
        .and_then(|r| OrgRole::parse(&r))
        .ok_or(AppError::NotFound)?;
    if current == OrgRole::Owner {
        if !leaving && actor != OrgRole::Owner {
            return Err(owners_only());
        }
        if store::orgs::count_owners(scope.tx()).await? <= 1 {
            return Err(last_owner());
        }
    }
    store::orgs::delete_member(scope.tx(), user_id).await?;
    // Rejoining later must not bring back what they were told about before.
    store::notifications::forget(scope.tx(), None, None, Some(user_id)).await?;
    store::work::delete_user_workspace_roles(scope.tx(), user_id).await?;
    let keys_revoked = store::api_keys::revoke_by_creator(scope.tx(), user_id, now).await?;
    let webhooks_disabled = store::webhooks::disable_by_creator(scope.tx(), user_id, now).await?;
    audit_org(
        scope,
        ctx,
        Action::MemberRemoved,
        ("user", user_id),
        json!({ "role": current.as_str(), "left": leaving, "api_keys_revoked": keys_revoked,
                "webhooks_disabled": webhooks_disabled }),
        now,
    )
    .await?;
    scope.commit().await?;
    Ok(())
}
