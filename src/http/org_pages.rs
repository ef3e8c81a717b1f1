//! Pages for organizations and their work: the org switcher, an org with its members, invitations
//! and workspaces, a workspace as a board (status columns) or a list, an item with its comments,
//! and invitation acceptance. Forms post back here and call the same service functions as the JSON
//! API. A change that works redirects (303) to the page to show next with a fixed notice; one that
//! fails shows the same page again with the service's error and the status it maps to. Anything
//! the caller may not see is a 404 page, as the services answer `NotFound`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::LazyLock;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::{context, Environment, Value};
use serde::{Deserialize, Serialize};

use super::middleware::RequestCtxExt;
use super::pages::page_error;
use super::session::FullSession;
use crate::error::{AppError, AppResult};
use crate::identity::AuthSession;
use crate::state::AppState;
use crate::tenancy::items::{self, ItemInput};
use crate::tenancy::workspaces::{self, WorkspaceInput, WorkspaceScope, WsRole};
use crate::tenancy::{self, MemberView, OrgRole, OrgScope, Page};

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, src) in [
        ("base.html", include_str!("../../templates/base.html")),
        ("message.html", include_str!("../../templates/message.html")),
        ("orgs.html", include_str!("../../templates/orgs.html")),
        ("org.html", include_str!("../../templates/org.html")),
        (
            "workspace.html",
            include_str!("../../templates/workspace.html"),
        ),
        ("item.html", include_str!("../../templates/item.html")),
        (
            "invitation_accept.html",
            include_str!("../../templates/invitation_accept.html"),
        ),
    ] {
        if let Err(e) = env.add_template(name, src) {
            tracing::error!(template = name, error = %e, "template does not compile");
        }
    }
    env
});

pub fn router() -> Router<AppState> {
    let ws = "/orgs/{org_id}/workspaces/{ws_id}";
    Router::new()
        .route("/orgs", get(orgs_page).post(create_org_submit))
        .route("/orgs/{org_id}", get(org_page))
        .route("/orgs/{org_id}/invitations", post(invite_submit))
        .route(
            "/orgs/{org_id}/invitations/{id}/revoke",
            post(revoke_invitation_submit),
        )
        .route("/orgs/{org_id}/members/{user_id}/role", post(role_submit))
        .route(
            "/orgs/{org_id}/members/{user_id}/remove",
            post(remove_member_submit),
        )
        .route("/orgs/{org_id}/workspaces", post(create_workspace_submit))
        .route(ws, get(workspace_page))
        .route(&format!("{ws}/members"), post(grant_access_submit))
        .route(
            &format!("{ws}/members/{{user_id}}/remove"),
            post(remove_access_submit),
        )
        .route(&format!("{ws}/items"), post(create_item_submit))
        .route(
            &format!("{ws}/items/{{item_id}}"),
            get(item_page).post(update_item_submit),
        )
        .route(
            &format!("{ws}/items/{{item_id}}/comments"),
            post(comment_submit),
        )
        .route("/invitations/accept", get(accept_page).post(accept_submit))
}

// ---------------------------------------------------------------------------------------------
// Rendering

fn render(status: StatusCode, name: &str, ctx: Value) -> Response {
    match TEMPLATES.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>Something went wrong.</p>".to_string()),
            )
                .into_response()
        }
    }
}

/// What a page shows above its content: the error that stopped a change, or a notice after one
/// that worked.
#[derive(Default)]
struct Outcome<'a> {
    error: Option<&'a AppError>,
    notice: Option<&'static str>,
}

impl<'a> Outcome<'a> {
    fn failed(e: &'a AppError) -> Self {
        Outcome {
            error: Some(e),
            notice: None,
        }
    }
    fn done(q: &DoneQuery) -> Self {
        Outcome {
            error: None,
            notice: notice(&q.done),
        }
    }
}

/// A page for a signed-in user, with the status of the error it shows (if any).
fn show(out: &Outcome<'_>, name: &str, ctx: Value) -> Response {
    let (status, error) = match out.error {
        Some(e) => {
            let (status, msg) = page_error(e);
            (status, Some(msg))
        }
        None => (StatusCode::OK, None),
    };
    let mut res = render(
        status,
        name,
        context! { error, notice => out.notice, signed_in => true, ..ctx },
    );
    if let Some(AppError::RateLimited { retry_after }) = out.error {
        res.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(*retry_after));
    }
    res
}

/// The page for an org, workspace or item the caller cannot open: 404 for anything they may not
/// see (the services never say whether it exists), else the reason (e.g. the org's MFA policy).
fn denied(e: &AppError) -> Response {
    let (status, msg) = page_error(e);
    let (title, message, link, link_text, error) = match e {
        AppError::NotFound => (
            "Not found",
            "There is nothing here, or you do not have access to it.",
            "/orgs",
            "Your organizations",
            None,
        ),
        AppError::Forbidden {
            code: "mfa_required",
            ..
        } => (
            "Two-factor sign-in required",
            "",
            "/account",
            "Security settings",
            Some(msg),
        ),
        _ => ("Organization", "", "/orgs", "Your organizations", Some(msg)),
    };
    let mut res = render(
        status,
        "message.html",
        context! { title, message, link, link_text, error, signed_in => true },
    );
    if let AppError::RateLimited { retry_after } = e {
        res.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(*retry_after));
    }
    res
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// Fixed notices after a change, named in the `done` query parameter of the redirect (so no
/// user-supplied text is ever reflected from the URL).
fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "org_created" => "The organization was created. You are its owner.",
        "joined" => "You joined the organization.",
        "invited" => "The invitation was sent.",
        "revoked" => "The invitation was revoked.",
        "role" => "The role was changed.",
        "removed" => "The member was removed.",
        "left" => "You left the organization.",
        "ws_created" => "The workspace was created.",
        "access" => "Access to the workspace was updated.",
        "access_removed" => "Access to the workspace was removed.",
        "item_created" => "The item was added.",
        "saved" => "The item was saved.",
        "commented" => "Your comment was added.",
        _ => return None,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DoneQuery {
    done: String,
}

/// Returns the response in `Err` from the enclosing handler.
macro_rules! or_page {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

async fn org_scope(app: &AppState, s: &AuthSession, org_id: &str) -> Result<OrgScope, Response> {
    tenancy::authorize(app, s, org_id)
        .await
        .map_err(|e| denied(&e))
}

async fn ws_scope(
    app: &AppState,
    s: &AuthSession,
    org_id: &str,
    ws_id: &str,
) -> Result<WorkspaceScope, Response> {
    let org = org_scope(app, s, org_id).await?;
    workspaces::authorize_workspace(app, org, ws_id)
        .await
        .map_err(|e| denied(&e))
}

const PAGE: i64 = 200;
const MAX_ROWS: usize = 1000;

/// The rows of a paginated service list, up to `MAX_ROWS`, and whether there were more.
async fn all<T, F, Fut>(mut next: F) -> AppResult<(Vec<T>, bool)>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = AppResult<Page<T>>>,
{
    let mut rows = Vec::new();
    let mut cursor = None;
    loop {
        let p = next(cursor.take()).await?;
        rows.extend(p.items);
        match p.next_cursor {
            None => return Ok((rows, false)),
            Some(_) if rows.len() >= MAX_ROWS => return Ok((rows, true)),
            c => cursor = c,
        }
    }
}

async fn org_members(app: &AppState, scope: &OrgScope) -> AppResult<(Vec<MemberView>, bool)> {
    all(|c| async move { tenancy::list_members(app, scope, c.as_deref(), Some(PAGE)).await }).await
}

/// Display names by user id, for assignees, authors and workspace access.
fn names(members: &[MemberView]) -> HashMap<&str, &str> {
    members
        .iter()
        .map(|m| (m.user_id.as_str(), m.display_name.as_str()))
        .collect()
}

const UNKNOWN_MEMBER: &str = "Former member";

fn name_of<'a>(names: &HashMap<&str, &'a str>, id: &str) -> &'a str {
    names.get(id).copied().unwrap_or(UNKNOWN_MEMBER)
}

/// `None` for an empty form value.
fn non_empty(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

// ---------------------------------------------------------------------------------------------
// Organizations

#[derive(Deserialize, Default)]
#[serde(default)]
struct NameForm {
    name: String,
}

async fn orgs_page(
    State(app): State<AppState>,
    FullSession(s): FullSession,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(s) = s else { return to_login() };
    orgs_view(&app, &s, Outcome::done(&q), "").await
}

async fn orgs_view(app: &AppState, s: &AuthSession, out: Outcome<'_>, name: &str) -> Response {
    let form = context! { name };
    let title = "Organizations";
    match all(|c| async move { tenancy::list_orgs(app, s, c.as_deref(), Some(PAGE)).await }).await {
        Ok((orgs, more)) => show(
            &out,
            "orgs.html",
            context! { title, orgs => Value::from_serialize(&orgs), more, form },
        ),
        // The list could not load: say why, and keep the create form usable.
        Err(e) if out.error.is_none() => {
            show(&Outcome::failed(&e), "orgs.html", context! { title, form })
        }
        Err(_) => show(&out, "orgs.html", context! { title, form }),
    }
}

async fn create_org_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    Form(f): Form<NameForm>,
) -> Response {
    let Some(s) = s else { return to_login() };
    match tenancy::create_org(&app, &ctx.0, &s, &f.name).await {
        Ok(org) => Redirect::to(&format!("/orgs/{}?done=org_created", org.id)).into_response(),
        Err(e) => orgs_view(&app, &s, Outcome::failed(&e), &f.name).await,
    }
}

async fn org_page(
    State(app): State<AppState>,
    FullSession(s): FullSession,
    Path(org_id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(s) = s else { return to_login() };
    let scope = or_page!(org_scope(&app, &s, &org_id).await);
    org_view(&app, &scope, Outcome::done(&q), context! {}).await
}

/// The org page: workspaces (those the caller may see), members, and for admins the invitations.
/// `form` refills a form that failed.
async fn org_view(app: &AppState, scope: &OrgScope, out: Outcome<'_>, form: Value) -> Response {
    let admin = scope.role() >= OrgRole::Admin;
    let owner = scope.role() == OrgRole::Owner;
    let loaded = async {
        let org = tenancy::get_org(app, scope).await?;
        let (members, more_members) = org_members(app, scope).await?;
        let invitations = if admin {
            all(|c| async move {
                tenancy::list_invitations(app, scope, c.as_deref(), Some(PAGE)).await
            })
            .await?
            .0
            .into_iter()
            .filter(|i| i.status == "pending")
            .collect()
        } else {
            Vec::new()
        };
        let (workspaces, more_workspaces) = all(|c| async move {
            workspaces::list_workspaces(app, scope, c.as_deref(), Some(PAGE)).await
        })
        .await?;
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
        Err(e) => return denied(&e),
    };
    let roles: &[&str] = if owner {
        &["member", "admin", "owner"]
    } else {
        &["member", "admin"]
    };
    show(
        &out,
        "org.html",
        context! {
            title => org.name.clone(), org => Value::from_serialize(&org), me => scope.user_id(),
            is_admin => admin, is_owner => owner, roles,
            members => Value::from_serialize(&members), more_members,
            invitations => Value::from_serialize(&invitations),
            workspaces => Value::from_serialize(&workspaces), more_workspaces, form,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct InviteForm {
    email: String,
    role: String,
}

fn parse_org_role(role: &str) -> AppResult<OrgRole> {
    OrgRole::parse(role)
        .ok_or_else(|| AppError::invalid("invalid_role", "Choose a role: member, admin or owner."))
}

async fn invite_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    Path(org_id): Path<String>,
    Form(f): Form<InviteForm>,
) -> Response {
    let Some(s) = s else { return to_login() };
    let scope = or_page!(org_scope(&app, &s, &org_id).await);
    let result = match parse_org_role(&f.role) {
        Ok(role) => tenancy::create_invitation(&app, &ctx.0, &scope, &f.email, role)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => org_done(&scope, "invited"),
        Err(e) => {
            let form = context! { invite_email => f.email, invite_role => f.role };
            org_view(&app, &scope, Outcome::failed(&e), form).await
        }
    }
}

fn org_done(scope: &OrgScope, done: &str) -> Response {
    Redirect::to(&format!("/orgs/{}?done={done}", scope.org_id())).into_response()
}

async fn revoke_invitation_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    Path((org_id, id)): Path<(String, String)>,
) -> Response {
    let Some(s) = s else { return to_login() };
    let scope = or_page!(org_scope(&app, &s, &org_id).await);
    match tenancy::revoke_invitation(&app, &ctx.0, &scope, &id).await {
        Ok(()) => org_done(&scope, "revoked"),
        Err(e) => org_view(&app, &scope, Outcome::failed(&e), context! {}).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RoleForm {
    role: String,
}

async fn role_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    Path((org_id, user_id)): Path<(String, String)>,
    Form(f): Form<RoleForm>,
) -> Response {
    let Some(s) = s else { return to_login() };
    let scope = or_page!(org_scope(&app, &s, &org_id).await);
    let result = match parse_org_role(&f.role) {
        Ok(role) => tenancy::change_member_role(&app, &ctx.0, &scope, &user_id, role)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => org_done(&scope, "role"),
        Err(e) => org_view(&app, &scope, Outcome::failed(&e), context! {}).await,
    }
}

async fn remove_member_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    Path((org_id, user_id)): Path<(String, String)>,
) -> Response {
    let Some(s) = s else { return to_login() };
    let scope = or_page!(org_scope(&app, &s, &org_id).await);
    match tenancy::remove_member(&app, &ctx.0, &scope, &user_id).await {
        Ok(()) if user_id == s.user_id => Redirect::to("/orgs?done=left").into_response(),
        Ok(()) => org_done(&scope, "removed"),
        Err(e) => org_view(&app, &scope, Outcome::failed(&e), context! {}).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WorkspaceForm {
    name: String,
    kind: String,
    description: String,
}

async fn create_workspace_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    Path(org_id): Path<String>,
    Form(f): Form<WorkspaceForm>,
) -> Response {
    let Some(s) = s else { return to_login() };
    let scope = or_page!(org_scope(&app, &s, &org_id).await);
    let input = WorkspaceInput {
        name: Some(f.name.clone()),
        kind: Some(f.kind.clone()),
        description: Some(f.description.clone()),
        statuses: None,
    };
    match workspaces::create_workspace(&app, &ctx.0, &scope, input).await {
        Ok(ws) => Redirect::to(&format!(
            "/orgs/{}/workspaces/{}?done=ws_created",
            scope.org_id(),
            ws.id
        ))
        .into_response(),
        Err(e) => {
            let form =
                context! { ws_name => f.name, ws_kind => f.kind, ws_description => f.description };
            org_view(&app, &scope, Outcome::failed(&e), form).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Workspaces

#[derive(Serialize)]
struct Card<'a> {
    id: &'a str,
    title: &'a str,
    status: &'a str,
    due_on: Option<&'a str>,
    assignee: Option<&'a str>,
}

#[derive(Serialize)]
struct Column<'a> {
    status: &'a str,
    items: Vec<&'a Card<'a>>,
}

#[derive(Serialize)]
struct Access<'a> {
    user_id: &'a str,
    name: &'a str,
    role: WsRole,
}

async fn workspace_page(
    State(app): State<AppState>,
    FullSession(s): FullSession,
    Path((org_id, ws_id)): Path<(String, String)>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(s) = s else { return to_login() };
    let ws = or_page!(ws_scope(&app, &s, &org_id, &ws_id).await);
    workspace_view(&app, &ws, Outcome::done(&q), context! {}).await
}

/// A board shows one column per workspace status (and one for any status an item keeps after the
/// workspace's statuses changed); a deal room shows a list.
async fn workspace_view(
    app: &AppState,
    ws: &WorkspaceScope,
    out: Outcome<'_>,
    form: Value,
) -> Response {
    let owner = ws.role() >= WsRole::Owner;
    let loaded = async {
        let org = tenancy::get_org(app, &ws.org).await?;
        let view = workspaces::get_workspace(app, ws).await?;
        let (items, more_items) =
            all(|c| async move { items::list_items(app, ws, c.as_deref(), Some(PAGE)).await })
                .await?;
        let (members, _) = org_members(app, &ws.org).await?;
        let access = if owner {
            all(|c| async move {
                workspaces::list_workspace_members(app, ws, c.as_deref(), Some(PAGE)).await
            })
            .await?
            .0
        } else {
            Vec::new()
        };
        Ok::<_, AppError>((org, view, items, more_items, members, access))
    };
    let (org, view, items, more_items, members, access) = match loaded.await {
        Ok(v) => v,
        Err(e) => return denied(&e),
    };
    let names = names(&members);
    let cards: Vec<Card<'_>> = items
        .iter()
        .map(|i| Card {
            id: &i.id,
            title: &i.title,
            status: &i.status,
            due_on: i.due_on.as_deref(),
            assignee: i.assignee_id.as_deref().map(|a| name_of(&names, a)),
        })
        .collect();
    let mut statuses: Vec<&str> = view.statuses.iter().map(String::as_str).collect();
    for c in &cards {
        if !statuses.contains(&c.status) {
            statuses.push(c.status);
        }
    }
    let columns: Vec<Column<'_>> = statuses
        .iter()
        .map(|st| Column {
            status: st,
            items: cards.iter().filter(|c| c.status == *st).collect(),
        })
        .collect();
    let access: Vec<Access<'_>> = access
        .iter()
        .map(|m| Access {
            user_id: &m.user_id,
            name: name_of(&names, &m.user_id),
            role: m.role,
        })
        .collect();
    show(
        &out,
        "workspace.html",
        context! {
            title => view.name.clone(), org => Value::from_serialize(&org),
            ws => Value::from_serialize(&view), columns => Value::from_serialize(&columns),
            items => Value::from_serialize(&cards), more_items,
            can_edit => ws.role() >= WsRole::Editor, is_ws_owner => owner,
            ws_members => Value::from_serialize(&access),
            org_members => Value::from_serialize(&members), form,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewItemForm {
    title: String,
    status: String,
    due_on: String,
}

async fn create_item_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    Path((org_id, ws_id)): Path<(String, String)>,
    Form(f): Form<NewItemForm>,
) -> Response {
    let Some(s) = s else { return to_login() };
    let ws = or_page!(ws_scope(&app, &s, &org_id, &ws_id).await);
    let input = ItemInput {
        title: Some(f.title.clone()),
        status: non_empty(&f.status),
        due_on: non_empty(&f.due_on).map(Some),
        ..ItemInput::default()
    };
    match items::create_item(&app, &ctx.0, &ws, input).await {
        Ok(_) => ws_done(&ws, "item_created"),
        Err(e) => {
            let form = context! { title => f.title, status => f.status, due_on => f.due_on };
            workspace_view(&app, &ws, Outcome::failed(&e), form).await
        }
    }
}

fn ws_done(ws: &WorkspaceScope, done: &str) -> Response {
    Redirect::to(&format!(
        "/orgs/{}/workspaces/{}?done={done}",
        ws.org.org_id(),
        ws.id()
    ))
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccessForm {
    user_id: String,
    role: String,
}

async fn grant_access_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    Path((org_id, ws_id)): Path<(String, String)>,
    Form(f): Form<AccessForm>,
) -> Response {
    let Some(s) = s else { return to_login() };
    let ws = or_page!(ws_scope(&app, &s, &org_id, &ws_id).await);
    let result = match WsRole::parse(&f.role) {
        Some(role) => workspaces::set_workspace_member(&app, &ctx.0, &ws, &f.user_id, role)
            .await
            .map(|_| ()),
        None => Err(AppError::invalid(
            "invalid_role",
            "Choose a role: viewer, editor or owner.",
        )),
    };
    match result {
        Ok(()) => ws_done(&ws, "access"),
        Err(e) => {
            let form = context! { user_id => f.user_id, role => f.role };
            workspace_view(&app, &ws, Outcome::failed(&e), form).await
        }
    }
}

async fn remove_access_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    Path((org_id, ws_id, user_id)): Path<(String, String, String)>,
) -> Response {
    let Some(s) = s else { return to_login() };
    let ws = or_page!(ws_scope(&app, &s, &org_id, &ws_id).await);
    match workspaces::remove_workspace_member(&app, &ctx.0, &ws, &user_id).await {
        Ok(()) => ws_done(&ws, "access_removed"),
        Err(e) => workspace_view(&app, &ws, Outcome::failed(&e), context! {}).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Items

/// The edit form. A field the form does not send keeps its value; an empty assignee or due date
/// clears it.
#[derive(Deserialize, Default, Serialize, Clone)]
#[serde(default)]
struct EditForm {
    title: Option<String>,
    status: Option<String>,
    assignee_id: Option<String>,
    due_on: Option<String>,
}

#[derive(Serialize)]
struct Comment<'a> {
    id: &'a str,
    author: &'a str,
    body: &'a str,
    created_at: &'a str,
}

#[derive(Serialize)]
struct Assignee<'a> {
    user_id: &'a str,
    name: &'a str,
}

async fn item_page(
    State(app): State<AppState>,
    FullSession(s): FullSession,
    Path((org_id, ws_id, item_id)): Path<(String, String, String)>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(s) = s else { return to_login() };
    let ws = or_page!(ws_scope(&app, &s, &org_id, &ws_id).await);
    item_view(&app, &ws, &item_id, Outcome::done(&q), None, "").await
}

/// The item page; `edit` and `comment` refill the forms after a change that failed.
async fn item_view(
    app: &AppState,
    ws: &WorkspaceScope,
    item_id: &str,
    out: Outcome<'_>,
    edit: Option<EditForm>,
    comment: &str,
) -> Response {
    let loaded = async {
        let item = items::get_item(app, ws, item_id).await?;
        let org = tenancy::get_org(app, &ws.org).await?;
        let view = workspaces::get_workspace(app, ws).await?;
        let (updates, more_comments) = all(|c| async move {
            items::list_updates(app, ws, item_id, c.as_deref(), Some(PAGE)).await
        })
        .await?;
        let (members, _) = org_members(app, &ws.org).await?;
        Ok::<_, AppError>((item, org, view, updates, more_comments, members))
    };
    let (item, org, view, updates, more_comments, members) = match loaded.await {
        Ok(v) => v,
        Err(e) => return denied(&e),
    };
    let names = names(&members);
    let fields: Vec<(&str, String)> = item
        .fields
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.as_str(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    let comments: Vec<Comment<'_>> = updates
        .iter()
        .map(|u| Comment {
            id: &u.id,
            author: name_of(&names, &u.author_id),
            body: &u.body,
            created_at: &u.created_at,
        })
        .collect();
    let mut assignees: Vec<Assignee<'_>> = members
        .iter()
        .map(|m| Assignee {
            user_id: &m.user_id,
            name: &m.display_name,
        })
        .collect();
    // Keep the current assignee selectable even when not listed, so saving does not clear it.
    if let Some(a) = item.assignee_id.as_deref() {
        if !names.contains_key(a) {
            assignees.push(Assignee {
                user_id: a,
                name: UNKNOWN_MEMBER,
            });
        }
    }
    let mut statuses = view.statuses.clone();
    if !statuses.contains(&item.status) {
        statuses.push(item.status.clone());
    }
    let edit = edit.unwrap_or_else(|| EditForm {
        title: Some(item.title.clone()),
        status: Some(item.status.clone()),
        assignee_id: item.assignee_id.clone(),
        due_on: item.due_on.clone(),
    });
    show(
        &out,
        "item.html",
        context! {
            title => item.title.clone(), org => Value::from_serialize(&org),
            ws => Value::from_serialize(&view), item => Value::from_serialize(&item),
            assignee => item.assignee_id.as_deref().map(|a| name_of(&names, a)),
            creator => names.get(item.created_by.as_str()).copied(),
            fields, statuses, assignees => Value::from_serialize(&assignees),
            can_edit => ws.role() >= WsRole::Editor, edit => Value::from_serialize(&edit),
            comments => Value::from_serialize(&comments), more_comments,
            form => context! { body => comment },
        },
    )
}

async fn update_item_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    Path((org_id, ws_id, item_id)): Path<(String, String, String)>,
    Form(f): Form<EditForm>,
) -> Response {
    let Some(s) = s else { return to_login() };
    let ws = or_page!(ws_scope(&app, &s, &org_id, &ws_id).await);
    let input = ItemInput {
        title: f.title.clone(),
        status: f.status.clone(),
        assignee_id: f.assignee_id.as_deref().map(non_empty),
        due_on: f.due_on.as_deref().map(non_empty),
        fields: None,
    };
    match items::update_item(&app, &ctx.0, &ws, &item_id, input).await {
        Ok(item) => item_done(&ws, &item.id, "saved"),
        Err(e) => item_view(&app, &ws, &item_id, Outcome::failed(&e), Some(f), "").await,
    }
}

fn item_done(ws: &WorkspaceScope, item_id: &str, done: &str) -> Response {
    Redirect::to(&format!(
        "/orgs/{}/workspaces/{}/items/{item_id}?done={done}",
        ws.org.org_id(),
        ws.id()
    ))
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CommentForm {
    body: String,
}

async fn comment_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    Path((org_id, ws_id, item_id)): Path<(String, String, String)>,
    Form(f): Form<CommentForm>,
) -> Response {
    let Some(s) = s else { return to_login() };
    let ws = or_page!(ws_scope(&app, &s, &org_id, &ws_id).await);
    match items::create_update(&app, &ctx.0, &ws, &item_id, &f.body).await {
        Ok(u) => item_done(&ws, &u.item_id, "commented"),
        Err(e) => item_view(&app, &ws, &item_id, Outcome::failed(&e), None, &f.body).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Invitations

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenForm {
    token: String,
}

const ACCEPT_TITLE: &str = "Join an organization";

/// The link in the invitation email. Opening it changes nothing (mail scanners prefetch links):
/// the button posts the token.
async fn accept_page(FullSession(s): FullSession, Query(q): Query<TokenForm>) -> Response {
    if s.is_none() {
        return render(
            StatusCode::OK,
            "invitation_accept.html",
            context! { title => ACCEPT_TITLE, signed_in => false },
        );
    }
    if q.token.is_empty() {
        return show(
            &Outcome::failed(&AppError::InvalidToken),
            "invitation_accept.html",
            context! { title => ACCEPT_TITLE },
        );
    }
    show(
        &Outcome::default(),
        "invitation_accept.html",
        context! { title => ACCEPT_TITLE, token => q.token },
    )
}

async fn accept_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    Form(f): Form<TokenForm>,
) -> Response {
    let Some(s) = s else { return to_login() };
    match tenancy::accept_invitation(&app, &ctx.0, &s, &f.token).await {
        Ok(org) => Redirect::to(&format!("/orgs/{}?done=joined", org.id)).into_response(),
        Err(e) => {
            // A refused token will not work on a second try: no button for it.
            let token = if matches!(e, AppError::InvalidToken) {
                String::new()
            } else {
                f.token
            };
            show(
                &Outcome::failed(&e),
                "invitation_accept.html",
                context! { title => ACCEPT_TITLE, token },
            )
        }
    }
}
