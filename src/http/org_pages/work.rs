//! Workspace pages (board columns or a list) and item pages with comments.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

use super::*;
use crate::error::AppError;
use crate::http::middleware::RequestCtxExt;
use crate::http::problem::{ApiForm, ApiQuery};
use crate::http::work_api::{param, PathParams};
use crate::state::AppState;
use crate::store::tenant::Mode;

// Workspaces

#[derive(Serialize)]
pub(super) struct Card<'a> {
    id: &'a str,
    title: &'a str,
    status: &'a str,
    due_on: Option<&'a str>,
    assignee: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct Column<'a> {
    status: &'a str,
    items: Vec<&'a Card<'a>>,
}

#[derive(Serialize)]
pub(super) struct Access<'a> {
    user_id: &'a str,
    name: &'a str,
    role: WsRole,
}

pub(super) async fn workspace_page(
    State(app): State<AppState>,
    WsPage(mut ws, _): WsPage,
    ApiQuery(q): ApiQuery<DoneQuery>,
) -> Response {
    workspace_view(&app, &mut ws, Outcome::done(&q), context! {}).await
}

/// The workspace page again after a change in `failed` did not work, with its error and `form`
/// refilled: in a read scope of its own (`reopen_ws`).
pub(super) async fn workspace_again(
    app: &AppState,
    s: &AuthSession,
    failed: WorkspaceScope,
    e: &AppError,
    form: Value,
) -> Response {
    let mut ws = or_page!(app, reopen_ws(app, s, failed).await);
    workspace_view(app, &mut ws, Outcome::failed(e), form).await
}

/// A board shows one column per workspace status (and one for any status an item keeps after the
/// workspace's statuses changed); a deal room shows a list.
pub(super) async fn workspace_view(
    app: &AppState,
    ws: &mut WorkspaceScope,
    out: Outcome<'_>,
    form: Value,
) -> Response {
    let owner = ws.role() >= WsRole::Owner;
    let loaded = async {
        let org = tenancy::get_org(app, &mut ws.org).await?;
        let view = workspaces::get_workspace(app, ws).await?;
        let (items, more_items) = all!(|c| items::list_items(app, ws, c.as_deref(), Some(PAGE)))?;
        let (members, _) = org_members(app, &mut ws.org).await?;
        let access = if owner {
            all!(|c| workspaces::list_workspace_members(app, ws, c.as_deref(), Some(PAGE)))?.0
        } else {
            Vec::new()
        };
        Ok::<_, AppError>((org, view, items, more_items, members, access))
    };
    let (org, view, items, more_items, members, access) = match loaded.await {
        Ok(v) => v,
        Err(e) => return denied(app, &e),
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
        app,
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
pub(super) struct NewItemForm {
    title: String,
    status: String,
    due_on: String,
}

pub(super) async fn create_item_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    WsPage(mut ws, s): WsPage,
    ApiForm(f): ApiForm<NewItemForm>,
) -> Response {
    let input = ItemInput {
        title: Some(f.title.clone()),
        status: non_empty(&f.status),
        due_on: non_empty(&f.due_on).map(Some),
        ..ItemInput::default()
    };
    match items::create_item(&app, &ctx.0, &mut ws, input).await {
        Ok(_) => ws_done(&ws, "item_created"),
        Err(e) => {
            let form = context! { title => f.title, status => f.status, due_on => f.due_on };
            workspace_again(&app, &s, ws, &e, form).await
        }
    }
}

pub(super) fn ws_done(ws: &WorkspaceScope, done: &str) -> Response {
    Redirect::to(&format!(
        "/orgs/{}/workspaces/{}?done={done}",
        ws.org.org_id(),
        ws.id()
    ))
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct AccessForm {
    user_id: String,
    role: String,
}

pub(super) async fn grant_access_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    WsPage(mut ws, s): WsPage,
    ApiForm(f): ApiForm<AccessForm>,
) -> Response {
    let result = match WsRole::parse(&f.role) {
        Some(role) => workspaces::set_workspace_member(&app, &ctx.0, &mut ws, &f.user_id, role)
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
            workspace_again(&app, &s, ws, &e, form).await
        }
    }
}

pub(super) async fn remove_access_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    WsPage(mut ws, s): WsPage,
    PathParams(path): PathParams,
) -> Response {
    let user_id = or_page!(&app, param(&path, "user_id"));
    match workspaces::remove_workspace_member(&app, &ctx.0, &mut ws, &user_id).await {
        Ok(()) => ws_done(&ws, "access_removed"),
        Err(e) => workspace_again(&app, &s, ws, &e, context! {}).await,
    }
}

/// The caller's scope in the workspace of `failed` once more, for the page shown after a change in
/// it failed: a read scope of its own, never the failed change's transaction (given up first, so
/// it does not hold its connection while the page loads).
async fn reopen_ws(
    app: &AppState,
    s: &AuthSession,
    failed: WorkspaceScope,
) -> AppResult<WorkspaceScope> {
    let (org_id, ws_id) = (failed.org.org_id().to_string(), failed.id().to_string());
    drop(failed);
    workspaces::authorize_workspace(app, s, &org_id, &ws_id, Mode::Read).await
}

// ---------------------------------------------------------------------------------------------
// Items

/// The edit form. A field the form does not send keeps its value; an empty assignee or due date
/// clears it.
#[derive(Deserialize, Default, Serialize, Clone)]
#[serde(default)]
pub(super) struct EditForm {
    title: Option<String>,
    status: Option<String>,
    assignee_id: Option<String>,
    due_on: Option<String>,
    /// Markdown.
    description: Option<String>,
    /// Comma-separated.
    labels: Option<String>,
}

/// Labels typed as one comma-separated field.
fn split_labels(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[derive(Serialize)]
pub(super) struct Comment<'a> {
    id: &'a str,
    author: &'a str,
    body: &'a str,
    created_at: &'a str,
}

#[derive(Serialize)]
pub(super) struct Assignee<'a> {
    user_id: &'a str,
    name: &'a str,
}

pub(super) async fn item_page(
    State(app): State<AppState>,
    WsPage(mut ws, _): WsPage,
    PathParams(path): PathParams,
    ApiQuery(q): ApiQuery<DoneQuery>,
) -> Response {
    let item_id = or_page!(&app, param(&path, "item_id"));
    let out = Outcome::done(&q);
    item_view(&app, &mut ws, &item_id, out, None, "").await
}

/// The item page again after a change in `failed` did not work, with its error and the forms
/// refilled: in a read scope of its own (`reopen_ws`).
pub(super) async fn item_again(
    app: &AppState,
    s: &AuthSession,
    failed: WorkspaceScope,
    item_id: &str,
    e: &AppError,
    edit: Option<EditForm>,
    comment: &str,
) -> Response {
    let mut ws = or_page!(app, reopen_ws(app, s, failed).await);
    item_view(app, &mut ws, item_id, Outcome::failed(e), edit, comment).await
}

/// The item page; `edit` and `comment` refill the forms after a change that failed.
pub(super) async fn item_view(
    app: &AppState,
    ws: &mut WorkspaceScope,
    item_id: &str,
    out: Outcome<'_>,
    edit: Option<EditForm>,
    comment: &str,
) -> Response {
    let loaded = async {
        let item = items::get_item(app, ws, item_id).await?;
        let org = tenancy::get_org(app, &mut ws.org).await?;
        let view = workspaces::get_workspace(app, ws).await?;
        let (updates, more_comments) =
            all!(|c| items::list_updates(app, ws, item_id, c.as_deref(), Some(PAGE)))?;
        let (members, _) = org_members(app, &mut ws.org).await?;
        // Only those who can see the workspace can be assigned (org owners and admins see all).
        let (in_ws, _) =
            all!(|c| workspaces::list_workspace_members(app, ws, c.as_deref(), Some(PAGE)))?;
        let in_ws: std::collections::HashSet<String> =
            in_ws.into_iter().map(|m| m.user_id).collect();
        let assignable: Vec<bool> = members
            .iter()
            .map(|m| {
                matches!(
                    m.role,
                    crate::tenancy::OrgRole::Owner | crate::tenancy::OrgRole::Admin
                ) || in_ws.contains(&m.user_id)
            })
            .collect();
        Ok::<_, AppError>((
            item,
            org,
            view,
            updates,
            more_comments,
            (members, assignable),
        ))
    };
    let (item, org, view, updates, more_comments, (members, assignable)) = match loaded.await {
        Ok(v) => v,
        Err(e) => return denied(app, &e),
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
        .zip(&assignable)
        .filter(|(_, ok)| **ok)
        .map(|(m, _)| Assignee {
            user_id: &m.user_id,
            name: &m.display_name,
        })
        .collect();
    // Keep the current assignee selectable even when not listed, so saving does not clear it.
    if let Some(a) = item.assignee_id.as_deref() {
        if !assignees.iter().any(|x| x.user_id == a) {
            assignees.push(Assignee {
                user_id: a,
                name: name_of(&names, a),
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
        description: Some(item.description.clone()),
        labels: Some(item.labels.join(", ")),
    });
    show(
        app,
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

pub(super) async fn update_item_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    WsPage(mut ws, s): WsPage,
    PathParams(path): PathParams,
    ApiForm(f): ApiForm<EditForm>,
) -> Response {
    let item_id = or_page!(&app, param(&path, "item_id"));
    let input = ItemInput {
        title: f.title.clone(),
        status: f.status.clone(),
        assignee_id: f.assignee_id.as_deref().map(non_empty),
        due_on: f.due_on.as_deref().map(non_empty),
        fields: None,
        description: f.description.clone(),
        labels: f.labels.as_deref().map(split_labels),
    };
    match items::update_item(&app, &ctx.0, &mut ws, &item_id, input).await {
        Ok(item) => item_done(&ws, &item.id, "saved"),
        Err(e) => item_again(&app, &s, ws, &item_id, &e, Some(f), "").await,
    }
}

pub(super) fn item_done(ws: &WorkspaceScope, item_id: &str, done: &str) -> Response {
    Redirect::to(&format!(
        "/orgs/{}/workspaces/{}/items/{item_id}?done={done}",
        ws.org.org_id(),
        ws.id()
    ))
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CommentForm {
    body: String,
}

pub(super) async fn comment_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    WsPage(mut ws, s): WsPage,
    PathParams(path): PathParams,
    ApiForm(f): ApiForm<CommentForm>,
) -> Response {
    let item_id = or_page!(&app, param(&path, "item_id"));
    match items::create_update(&app, &ctx.0, &mut ws, &item_id, &f.body).await {
        Ok(u) => item_done(&ws, &u.item_id, "commented"),
        Err(e) => item_again(&app, &s, ws, &item_id, &e, None, &f.body).await,
    }
}

// ---------------------------------------------------------------------------------------------
