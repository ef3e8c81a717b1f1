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
    status_name: &'a str,
    due_on: Option<&'a str>,
    overdue: bool,
    assignee: Option<&'a str>,
    labels: &'a [String],
    updated_at: &'a str,
}

#[derive(Serialize)]
pub(super) struct Column<'a> {
    key: &'a str,
    name: &'a str,
    items: Vec<&'a Card<'a>>,
}

#[derive(Serialize)]
pub(super) struct Access<'a> {
    user_id: &'a str,
    name: &'a str,
    role: WsRole,
}

/// A workspace page's filters (by assignee, label and text) and, for a deal room's table, its
/// sort order; all in the URL, so a filtered view can be shared and reloaded.
#[derive(Deserialize, Serialize, Default, Clone)]
#[serde(default)]
pub(super) struct BoardQuery {
    done: String,
    q: String,
    assignee: String,
    label: String,
    sort: String,
    dir: String,
}

pub(super) async fn workspace_page(
    State(app): State<AppState>,
    WsPage(mut ws, _): WsPage,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> Response {
    let out = Outcome::done(&DoneQuery {
        done: q.done.clone(),
    });
    workspace_view(&app, &mut ws, out, context! {}, &q).await
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
    workspace_view(
        app,
        &mut ws,
        Outcome::failed(e),
        form,
        &BoardQuery::default(),
    )
    .await
}

/// A board shows one column per workspace status (and one for any status an item keeps after the
/// workspace's statuses changed), cards in their saved order; a deal room shows a sortable
/// table. Both can be filtered by assignee, label and text.
pub(super) async fn workspace_view(
    app: &AppState,
    ws: &mut WorkspaceScope,
    out: Outcome<'_>,
    form: Value,
    q: &BoardQuery,
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
        let others = workspaces::list_workspaces(app, &mut ws.org, None, Some(50)).await?;
        Ok::<_, AppError>((org, view, items, more_items, members, access, others.items))
    };
    let (org, view, mut items, more_items, members, access, others) = match loaded.await {
        Ok(v) => v,
        Err(e) => return denied(app, &e),
    };
    let names = names(&members);
    let today = crate::clock::utc_date(app.clock.now_ms());
    let total = items.len();
    let mut labels: Vec<String> = items.iter().flat_map(|i| i.labels.clone()).collect();
    labels.sort_by_key(|l| l.to_lowercase());
    labels.dedup_by_key(|l| l.to_lowercase());
    // Filters.
    let needle = q.q.trim().to_lowercase();
    items.retain(|i| {
        let who = match q.assignee.as_str() {
            "" => true,
            "none" => i.assignee_id.is_none(),
            a => i.assignee_id.as_deref() == Some(a),
        };
        let label = q.label.is_empty() || i.labels.iter().any(|l| l.eq_ignore_ascii_case(&q.label));
        let text = needle.is_empty()
            || i.title.to_lowercase().contains(&needle)
            || i.description.to_lowercase().contains(&needle)
            || i.labels.iter().any(|l| l.to_lowercase().contains(&needle));
        who && label && text
    });
    let filtered = !(q.q.trim().is_empty() && q.assignee.is_empty() && q.label.is_empty());
    let status_name = |key: &str| -> String {
        view.columns
            .iter()
            .find(|c| c.key == key)
            .map_or_else(|| key.to_string(), |c| c.name.clone())
    };
    let status_names: Vec<String> = items.iter().map(|i| status_name(&i.status)).collect();
    let mut cards: Vec<Card<'_>> = items
        .iter()
        .zip(&status_names)
        .map(|(i, sn)| Card {
            id: &i.id,
            title: &i.title,
            status: &i.status,
            status_name: sn,
            due_on: i.due_on.as_deref(),
            overdue: i.due_on.as_deref().is_some_and(|d| d < today.as_str()),
            assignee: i.assignee_id.as_deref().map(|a| name_of(&names, a)),
            labels: &i.labels,
            updated_at: &i.updated_at,
        })
        .collect();
    // Board order: the saved positions.
    let positions: HashMap<&str, i64> = items.iter().map(|i| (i.id.as_str(), i.position)).collect();
    cards.sort_by_key(|c| (positions.get(c.id).copied().unwrap_or(0), c.id));
    let mut statuses: Vec<(String, String)> = view
        .columns
        .iter()
        .map(|c| (c.key.clone(), c.name.clone()))
        .collect();
    for c in &cards {
        if !statuses.iter().any(|(k, _)| k == c.status) {
            statuses.push((c.status.to_string(), c.status.to_string()));
        }
    }
    let columns: Vec<Column<'_>> = statuses
        .iter()
        .map(|(key, name)| Column {
            key,
            name,
            items: cards.iter().filter(|c| c.status == key).collect(),
        })
        .collect();
    // A deal room's table: sorted by the chosen column.
    let (sort, dir) = table_sort(q);
    let mut rows: Vec<&Card<'_>> = cards.iter().collect();
    rows.sort_by(|a, b| {
        let o = match sort {
            "status" => a
                .status_name
                .to_lowercase()
                .cmp(&b.status_name.to_lowercase()),
            "assignee" => a
                .assignee
                .map(str::to_lowercase)
                .cmp(&b.assignee.map(str::to_lowercase)),
            "due" => (a.due_on.is_none(), a.due_on).cmp(&(b.due_on.is_none(), b.due_on)),
            "updated" => a.updated_at.cmp(b.updated_at),
            _ => a.title.to_lowercase().cmp(&b.title.to_lowercase()),
        };
        if dir == "desc" {
            o.reverse()
        } else {
            o
        }
    });
    let base = format!("/orgs/{}/workspaces/{}", org.id, view.id);
    let table_columns: Vec<Value> = [
        ("title", "Item"),
        ("status", "Status"),
        ("assignee", "Assignee"),
        ("due", "Due"),
        ("updated", "Updated"),
    ]
    .iter()
    .map(|(key, label)| {
        let next_dir = if sort == *key && dir == "asc" {
            "desc"
        } else {
            "asc"
        };
        let mut link = BoardQuery {
            sort: key.to_string(),
            dir: next_dir.into(),
            ..q.clone()
        };
        link.done.clear();
        let qs = serde_urlencoded::to_string(&link).unwrap_or_default();
        context! { key, label, href => format!("{base}?{qs}") }
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
    let other_workspaces: Vec<Value> = others
        .iter()
        .filter(|w| w.id != view.id)
        .map(|w| context! { id => w.id.clone(), name => w.name.clone() })
        .collect();
    show(
        app,
        &out,
        "workspace.html",
        context! {
            title => view.name.clone(), org => Value::from_serialize(&org),
            ws => Value::from_serialize(&view), columns => Value::from_serialize(&columns),
            items => Value::from_serialize(&rows), more_items, total, shown => cards.len(),
            filtered, filter => Value::from_serialize(q), labels, sort, dir, table_columns,
            can_edit => ws.role() >= WsRole::Editor, is_ws_owner => owner,
            ws_members => Value::from_serialize(&access), other_workspaces,
            org_members => Value::from_serialize(&members), form,
        },
    )
}

/// The table's sort column and direction (title, ascending by default).
fn table_sort(q: &BoardQuery) -> (&'static str, &'static str) {
    let sort = match q.sort.as_str() {
        "status" => "status",
        "assignee" => "assignee",
        "due" => "due",
        "updated" => "updated",
        _ => "title",
    };
    let dir = if q.dir == "desc" { "desc" } else { "asc" };
    (sort, dir)
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
pub(super) async fn reopen_ws(
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
        // Authors who are no longer members: those whose account was erased are named so.
        let gone: Vec<&str> = updates
            .iter()
            .map(|u| u.author_id.as_str())
            .filter(|a| !members.iter().any(|m| m.user_id == *a))
            .collect();
        let erased = if gone.is_empty() {
            std::collections::HashSet::new()
        } else {
            crate::store::users::erased_among(ws.org.tx().conn()?, &gone).await?
        };
        Ok::<_, AppError>((
            item,
            org,
            view,
            updates,
            more_comments,
            (members, assignable, erased),
        ))
    };
    let (item, org, view, updates, more_comments, (members, assignable, erased)) =
        match loaded.await {
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
            author: if erased.contains(&u.author_id) {
                crate::identity::erasure::DELETED_USER
            } else {
                name_of(&names, &u.author_id)
            },
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
    let mut statuses: Vec<Value> = view
        .columns
        .iter()
        .map(|c| context! { key => c.key.clone(), name => c.name.clone() })
        .collect();
    let status_name = view
        .columns
        .iter()
        .find(|c| c.key == item.status)
        .map_or_else(|| item.status.clone(), |c| c.name.clone());
    if !view.statuses.contains(&item.status) {
        statuses.push(context! { key => item.status.clone(), name => item.status.clone() });
    }
    let today = crate::clock::utc_date(app.clock.now_ms());
    let overdue = item.due_on.as_deref().is_some_and(|d| d < today.as_str());
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
            fields, statuses, status_name, overdue, assignees => Value::from_serialize(&assignees),
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

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct MoveForm {
    status: String,
    before_id: String,
}

/// The board's move form (without JavaScript): to the end of a column, or before a card.
pub(super) async fn move_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    WsPage(mut ws, s): WsPage,
    PathParams(path): PathParams,
    ApiForm(f): ApiForm<MoveForm>,
) -> Response {
    let item_id = or_page!(&app, param(&path, "item_id"));
    let before = non_empty(&f.before_id);
    match items::move_item(
        &app,
        &ctx.0,
        &mut ws,
        &item_id,
        &f.status,
        before.as_deref(),
    )
    .await
    {
        Ok(_) => ws_done(&ws, "moved"),
        Err(e) => workspace_again(&app, &s, ws, &e, context! {}).await,
    }
}

/// The statuses form: rows of (key, name, order), the keys to remove, and an optional new name.
/// A new status's key is made from its name and a random suffix (keys never change after).
pub(super) async fn statuses_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    WsPage(mut ws, s): WsPage,
    axum::extract::RawForm(body): axum::extract::RawForm,
) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let all = |k: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let (keys, names, orders, removed) = (all("key"), all("name"), all("order"), all("remove"));
    let mut rows: Vec<(f64, usize, workspaces::StatusDef)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        if removed.contains(key) {
            continue;
        }
        let order = orders
            .get(i)
            .and_then(|o| o.trim().parse::<f64>().ok())
            .filter(|o| o.is_finite())
            .unwrap_or(i as f64 + 1.0);
        rows.push((
            order,
            i,
            workspaces::StatusDef {
                key: key.clone(),
                name: names.get(i).cloned().unwrap_or_default(),
            },
        ));
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut list: Vec<workspaces::StatusDef> = rows.into_iter().map(|r| r.2).collect();
    if let Some(name) = all("new_name").first().and_then(|n| non_empty(n)) {
        let slug: String = name
            .to_lowercase()
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { '-' })
            .take(24)
            .collect();
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
        list.push(workspaces::StatusDef {
            key: format!("{}-{suffix}", slug.trim_matches('-')),
            name,
        });
    }
    match workspaces::set_statuses(&app, &ctx.0, &mut ws, list).await {
        Ok(_) => ws_done(&ws, "statuses"),
        Err(e) => workspace_again(&app, &s, ws, &e, context! {}).await,
    }
}

/// "Delete this item?": the confirmation page; the item is only deleted by its form.
pub(super) async fn delete_item_page(
    State(app): State<AppState>,
    WsPage(mut ws, _): WsPage,
    PathParams(path): PathParams,
) -> Response {
    let item_id = or_page!(&app, param(&path, "item_id"));
    let loaded = async {
        let item = items::get_item(&app, &mut ws, &item_id).await?;
        ws.require(WsRole::Editor)?;
        let org = tenancy::get_org(&app, &mut ws.org).await?;
        let view = workspaces::get_workspace(&app, &mut ws).await?;
        Ok::<_, AppError>((item, org, view))
    };
    let (item, org, view) = match loaded.await {
        Ok(v) => v,
        Err(e) => return denied(&app, &e),
    };
    show(
        &app,
        &Outcome::default(),
        "item_delete.html",
        context! {
            title => "Delete this item?", org => Value::from_serialize(&org),
            ws => Value::from_serialize(&view), item => Value::from_serialize(&item),
        },
    )
}

pub(super) async fn delete_item_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    WsPage(mut ws, s): WsPage,
    PathParams(path): PathParams,
) -> Response {
    let item_id = or_page!(&app, param(&path, "item_id"));
    match items::delete_item(&app, &ctx.0, &mut ws, &item_id).await {
        Ok(()) => ws_done(&ws, "item_deleted"),
        Err(e) => item_again(&app, &s, ws, &item_id, &e, None, "").await,
    }
}
