//! Organization pages: the org switcher, an org with its members, invitations and workspaces.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{context, Value};
use serde::Deserialize;

use super::*;
use crate::error::AppError;
use crate::http::middleware::RequestCtxExt;
use crate::http::problem::{ApiForm, ApiQuery};
use crate::http::session::FullSession;
use crate::http::work_api::{param, PathParams};
use crate::state::AppState;
use crate::store::tenant::Mode;

// Organizations

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct NameForm {
    name: String,
}

pub(super) async fn orgs_page(
    State(app): State<AppState>,
    FullSession(s): FullSession,
    ApiQuery(q): ApiQuery<DoneQuery>,
) -> Response {
    let Some(s) = s else { return to_login() };
    orgs_view(&app, &s, Outcome::done(&q), "").await
}

pub(super) async fn orgs_view(
    app: &AppState,
    s: &AuthSession,
    out: Outcome<'_>,
    name: &str,
) -> Response {
    let form = context! { name };
    let title = "Organizations";
    match all!(|c| tenancy::list_orgs(app, s, c.as_deref(), Some(PAGE))) {
        Ok((orgs, more)) => show(
            app,
            &out,
            "orgs.html",
            context! { title, orgs => Value::from_serialize(&orgs), more, form },
        ),
        // The list could not load: say why, and keep the create form usable.
        Err(e) if out.error.is_none() => show(
            app,
            &Outcome::failed(&e),
            "orgs.html",
            context! { title, form },
        ),
        Err(_) => show(app, &out, "orgs.html", context! { title, form }),
    }
}

pub(super) async fn create_org_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    ApiForm(f): ApiForm<NameForm>,
) -> Response {
    let Some(s) = s else { return to_login() };
    match tenancy::create_org(&app, &ctx.0, &s, &f.name).await {
        Ok(org) => Redirect::to(&format!("/orgs/{}?done=org_created", org.id)).into_response(),
        Err(e) => orgs_view(&app, &s, Outcome::failed(&e), &f.name).await,
    }
}

pub(super) async fn org_page(
    State(app): State<AppState>,
    OrgPage(mut scope, s): OrgPage,
    ApiQuery(q): ApiQuery<DoneQuery>,
) -> Response {
    org_view(&app, &s, &mut scope, Outcome::done(&q), context! {}).await
}

/// The org page again after a change in `failed` did not work, with its error and `form`
/// refilled: in a read scope of its own, never in the failed change's transaction.
pub(super) async fn org_again(
    app: &AppState,
    s: &AuthSession,
    failed: OrgScope,
    e: &AppError,
    form: Value,
) -> Response {
    let org_id = failed.org_id().to_string();
    // Given up first, so it does not hold its connection while the page loads.
    drop(failed);
    let mut scope = or_page!(app, tenancy::authorize(app, s, &org_id, Mode::Read).await);
    org_view(app, s, &mut scope, Outcome::failed(e), form).await
}

/// The org page: workspaces (those the caller may see), members, and for admins the invitations.
/// `form` refills a form that failed.
pub(super) async fn org_view(
    app: &AppState,
    s: &AuthSession,
    scope: &mut OrgScope,
    out: Outcome<'_>,
    form: Value,
) -> Response {
    let admin = scope.role() >= OrgRole::Admin;
    let owner = scope.role() == OrgRole::Owner;
    let loaded = async {
        let org = tenancy::get_org(app, scope).await?;
        let (members, more_members) = org_members(app, scope).await?;
        let invitations = if admin {
            all!(|c| tenancy::list_invitations(app, scope, c.as_deref(), Some(PAGE)))?
                .0
                .into_iter()
                .filter(|i| i.status == "pending")
                .collect()
        } else {
            Vec::new()
        };
        let (workspaces, more_workspaces) =
            all!(|c| workspaces::list_workspaces(app, scope, c.as_deref(), Some(PAGE)))?;
        Ok::<_, AppError>((
            org,
            members,
            more_members,
            invitations,
            workspaces,
            more_workspaces,
        ))
    };
    let (org, members, more_members, invitations, workspaces, more_workspaces) = match loaded.await
    {
        Ok(v) => v,
        Err(e) => return denied(app, &e),
    };
    // The only owner cannot leave (the service refuses it): no button, a hint instead. With more
    // members than one page shows, the count is unknown and the service still has the last word.
    let sole_owner =
        owner && !more_members && members.iter().filter(|m| m.role == OrgRole::Owner).count() == 1;
    let roles: &[&str] = if owner {
        &["member", "admin", "owner"]
    } else {
        &["member", "admin"]
    };
    show(
        app,
        &out,
        "org.html",
        context! {
            title => org.name.clone(), org => Value::from_serialize(&org), me => s.user_id.as_str(),
            is_admin => admin, is_owner => owner, sole_owner, roles,
            members => Value::from_serialize(&members), more_members,
            invitations => Value::from_serialize(&invitations),
            workspaces => Value::from_serialize(&workspaces), more_workspaces, form,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct InviteForm {
    email: String,
    role: String,
}

pub(super) fn parse_org_role(role: &str) -> AppResult<OrgRole> {
    OrgRole::parse(role)
        .ok_or_else(|| AppError::invalid("invalid_role", "Choose a role: member, admin or owner."))
}

pub(super) async fn invite_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    OrgPage(mut scope, s): OrgPage,
    ApiForm(f): ApiForm<InviteForm>,
) -> Response {
    let result = match parse_org_role(&f.role) {
        Ok(role) => tenancy::create_invitation(&app, &ctx.0, &mut scope, &f.email, role)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => org_done(&scope, "invited"),
        Err(e) => {
            let form = context! { invite_email => f.email, invite_role => f.role };
            org_again(&app, &s, scope, &e, form).await
        }
    }
}

pub(super) fn org_done(scope: &OrgScope, done: &str) -> Response {
    Redirect::to(&format!("/orgs/{}?done={done}", scope.org_id())).into_response()
}

pub(super) async fn revoke_invitation_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    OrgPage(mut scope, s): OrgPage,
    PathParams(path): PathParams,
) -> Response {
    let id = or_page!(&app, param(&path, "id"));
    match tenancy::revoke_invitation(&app, &ctx.0, &mut scope, &id).await {
        Ok(()) => org_done(&scope, "revoked"),
        Err(e) => org_again(&app, &s, scope, &e, context! {}).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RoleForm {
    role: String,
}

pub(super) async fn role_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    OrgPage(mut scope, s): OrgPage,
    PathParams(path): PathParams,
    ApiForm(f): ApiForm<RoleForm>,
) -> Response {
    let user_id = or_page!(&app, param(&path, "user_id"));
    let result = match parse_org_role(&f.role) {
        Ok(role) => tenancy::change_member_role(&app, &ctx.0, &mut scope, &user_id, role)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => org_done(&scope, "role"),
        Err(e) => org_again(&app, &s, scope, &e, context! {}).await,
    }
}

pub(super) async fn remove_member_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    OrgPage(mut scope, s): OrgPage,
    PathParams(path): PathParams,
) -> Response {
    let user_id = or_page!(&app, param(&path, "user_id"));
    match tenancy::remove_member(&app, &ctx.0, &mut scope, &user_id).await {
        Ok(()) if user_id == s.user_id => Redirect::to("/orgs?done=left").into_response(),
        Ok(()) => org_done(&scope, "removed"),
        Err(e) => org_again(&app, &s, scope, &e, context! {}).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WorkspaceForm {
    name: String,
    kind: String,
    description: String,
}

pub(super) async fn create_workspace_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    OrgPage(mut scope, s): OrgPage,
    ApiForm(f): ApiForm<WorkspaceForm>,
) -> Response {
    let input = WorkspaceInput {
        name: Some(f.name.clone()),
        kind: Some(f.kind.clone()),
        description: Some(f.description.clone()),
        statuses: None,
    };
    match workspaces::create_workspace(&app, &ctx.0, &mut scope, input).await {
        Ok(ws) => Redirect::to(&format!(
            "/orgs/{}/workspaces/{}?done=ws_created",
            scope.org_id(),
            ws.id
        ))
        .into_response(),
        Err(e) => {
            let form =
                context! { ws_name => f.name, ws_kind => f.kind, ws_description => f.description };
            org_again(&app, &s, scope, &e, form).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
