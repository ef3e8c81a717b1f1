//! Items of a workspace and their comments ("updates"). Viewers read; editors write.

use serde_json::{json, Value};

use super::workspaces::{open_text, seal_text, WorkspaceScope, WsRole};
use super::{audit_org, decode_cursor, page, page_limit, Page};
use crate::audit::Action;
use crate::error::{AppError, AppResult};
use crate::identity::RequestCtx;
use crate::state::App;
use crate::store::{self, work};

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ItemView {
    pub id: String,
    pub title: String,
    pub status: String,
    pub assignee_id: Option<String>,
    pub due_on: Option<String>,
    #[schema(value_type = Object)]
    pub fields: Value,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

/// Fields of an item; on update, absent fields keep their value and `assignee_id`/`due_on` set to
/// null clear it.
#[derive(Debug, Default)]
pub struct ItemInput {
    pub title: Option<String>,
    pub status: Option<String>,
    pub assignee_id: Option<Option<String>>,
    pub due_on: Option<Option<String>>,
    pub fields: Option<Value>,
}

const MAX_FIELDS_BYTES: usize = 16 * 1024;

fn view(ws: &mut WorkspaceScope, r: &work::ItemRow) -> AppResult<ItemView> {
    let key = ws.org.key.clone();
    let key = &*key;
    let fields = key.open("items", "fields", &r.id, &r.fields_ct)?;
    Ok(ItemView {
        id: r.id.clone(),
        title: key.open_string("items", "title", &r.id, &r.title_ct)?,
        status: open_text(key, "items", "status", &r.id, &r.status)?.0,
        assignee_id: r.assignee_id.clone(),
        due_on: r.due_on.clone(),
        fields: serde_json::from_slice(&fields).unwrap_or(Value::Null),
        created_by: r.created_by.clone(),
        created_at: crate::clock::rfc3339(r.created_at),
        updated_at: crate::clock::rfc3339(r.updated_at),
    })
}

/// The values to store, validated: title, a status of this workspace, an assignee who is a member
/// of this org, a real date, and a JSON object of bounded size.
async fn validate(
    app: &App,
    ws: &mut WorkspaceScope,
    id: &str,
    v: &ItemInput,
    current: Option<&ItemView>,
) -> AppResult<(String, String, Option<String>, Option<String>, Value)> {
    let _ = app;
    let title = match (&v.title, current) {
        (Some(t), _) => t.trim().to_string(),
        (None, Some(c)) => c.title.clone(),
        (None, None) => String::new(),
    };
    if let Some(t) = &v.title {
        crate::text::check_name("title", t)?;
    }
    if title.is_empty() || title.chars().count() > 300 || title.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "invalid_title",
            "title: 1 to 300 characters.",
        ));
    }
    let status = match (&v.status, current) {
        (Some(s), _) => s.clone(),
        (None, Some(c)) => c.status.clone(),
        (None, None) => ws
            .statuses()
            .first()
            .cloned()
            .unwrap_or_else(|| "todo".into()),
    };
    // Only what is being set is checked: an item whose status was retired, or whose assignee left,
    // stays editable.
    if (v.status.is_some() || current.is_none()) && !ws.statuses().contains(&status) {
        return Err(AppError::invalid(
            "invalid_status",
            format!("status: one of {}.", ws.statuses().join(", ")),
        ));
    }
    let assignee = match (&v.assignee_id, current) {
        (Some(a), _) => a.clone(),
        (None, Some(c)) => c.assignee_id.clone(),
        (None, None) => None,
    };
    if let (Some(a), Some(Some(_))) = (&assignee, &v.assignee_id) {
        let member = uuid::Uuid::parse_str(a).is_ok()
            && store::orgs::member_role(ws.org.tx(), a).await?.is_some();
        if !member {
            return Err(AppError::invalid(
                "invalid_assignee",
                "assignee_id: a member of this organization.",
            ));
        }
        // An item no one assigned to it could open helps nobody, and would tell its title to
        // someone kept out of the workspace (in notifications, later).
        let ws_id = ws.id().to_string();
        if !store::orgs::can_see_workspace(ws.org.tx(), a, &ws_id).await? {
            return Err(AppError::invalid(
                "assignee_without_access",
                "assignee_id: this person cannot see this workspace; give them a role in it first.",
            ));
        }
    }
    let due = match (&v.due_on, current) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => c.due_on.clone(),
        (None, None) => None,
    };
    if let Some(d) = &due {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        if time::Date::parse(d, &fmt).is_err() {
            return Err(AppError::invalid(
                "invalid_due_on",
                "due_on: a date like 2026-12-31.",
            ));
        }
    }
    let fields = match (&v.fields, current) {
        (Some(f), _) => f.clone(),
        (None, Some(c)) => c.fields.clone(),
        (None, None) => json!({}),
    };
    if !fields.is_object()
        || serde_json::to_vec(&fields).map_or(usize::MAX, |b| b.len()) > MAX_FIELDS_BYTES
    {
        return Err(AppError::invalid(
            "invalid_fields",
            "fields: a JSON object of at most 16 KiB.",
        ));
    }
    let _ = id;
    Ok((title, status, assignee, due, fields))
}

pub async fn create_item(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    input: ItemInput,
) -> AppResult<ItemView> {
    ws.require(WsRole::Editor)?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = app.clock.now_ms();
    let key = ws.org.key.clone();
    let key = &*key;
    let (title, status, assignee, due, fields) = validate(app, ws, &id, &input, None).await?;
    let limit = app.config.rate_limits.items_per_account;
    crate::ratelimit::creation(&*app.limiter, "item", ws.org.user_id(), limit).await?;
    let sealed_status = seal_text(key, "items", "status", &id, &status);
    let values = work::ItemValues {
        title_ct: key.seal("items", "title", &id, title.as_bytes()),
        status: &sealed_status,
        assignee_id: assignee.as_deref(),
        due_on: due.as_deref(),
        fields_ct: key.seal(
            "items",
            "fields",
            &id,
            &serde_json::to_vec(&fields).unwrap_or_default(),
        ),
    };
    let author = ws.org.user_id().to_string();
    work::insert_item(&mut ws.org.tx, ws.ws_id.as_str(), &id, values, &author, now).await?;
    audit_org(
        &mut ws.org,
        ctx,
        Action::ItemCreated,
        ("item", &id),
        json!({ "workspace_id": ws.ws_id.as_str() }),
        now,
    )
    .await?;
    ws.org.commit().await?;
    // The answer is what was stored, known without reading it back.
    let at = crate::clock::rfc3339(now);
    Ok(ItemView {
        id,
        title,
        status,
        assignee_id: assignee,
        due_on: due,
        fields,
        created_by: author,
        created_at: at.clone(),
        updated_at: at,
    })
}

pub async fn list_items(
    _app: &App,
    ws: &mut WorkspaceScope,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Page<ItemView>> {
    let after = decode_cursor(cursor)?;
    let limit = page_limit(limit)?;
    let rows = work::list_items(&mut ws.org.tx, ws.ws_id.as_str(), &after, limit + 1).await?;
    let items = rows
        .iter()
        .map(|r| view(ws, r))
        .collect::<AppResult<Vec<_>>>()?;
    Ok(page(items, limit, |i| i.id.clone()))
}

pub async fn get_item(_app: &App, ws: &mut WorkspaceScope, item_id: &str) -> AppResult<ItemView> {
    if uuid::Uuid::parse_str(item_id).is_err() {
        return Err(AppError::NotFound);
    }
    let row = work::get_item(&mut ws.org.tx, ws.ws_id.as_str(), item_id)
        .await?
        .ok_or(AppError::NotFound)?;
    view(ws, &row)
}

pub async fn update_item(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    item_id: &str,
    input: ItemInput,
) -> AppResult<ItemView> {
    let current = get_item(app, ws, item_id).await?;
    ws.require(WsRole::Editor)?;
    let now = app.clock.now_ms();
    let key = ws.org.key.clone();
    let key = &*key;
    let (title, status, assignee, due, fields) =
        validate(app, ws, item_id, &input, Some(&current)).await?;
    let status = seal_text(key, "items", "status", item_id, &status);
    let values = work::ItemValues {
        title_ct: key.seal("items", "title", item_id, title.as_bytes()),
        status: &status,
        assignee_id: assignee.as_deref(),
        due_on: due.as_deref(),
        fields_ct: key.seal(
            "items",
            "fields",
            item_id,
            &serde_json::to_vec(&fields).unwrap_or_default(),
        ),
    };
    if !work::update_item(&mut ws.org.tx, ws.ws_id.as_str(), item_id, values, now).await? {
        return Err(AppError::NotFound);
    }
    audit_org(
        &mut ws.org,
        ctx,
        Action::ItemUpdated,
        ("item", item_id),
        json!({ "workspace_id": ws.ws_id.as_str() }),
        now,
    )
    .await?;
    let view = get_item(app, ws, item_id).await?;
    ws.org.commit().await?;
    Ok(view)
}

pub async fn delete_item(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    item_id: &str,
) -> AppResult<()> {
    get_item(app, ws, item_id).await?;
    ws.require(WsRole::Editor)?;
    let now = app.clock.now_ms();
    if !work::delete_item(&mut ws.org.tx, ws.ws_id.as_str(), item_id).await? {
        return Err(AppError::NotFound);
    }
    audit_org(
        &mut ws.org,
        ctx,
        Action::ItemDeleted,
        ("item", item_id),
        json!({ "workspace_id": ws.ws_id.as_str() }),
        now,
    )
    .await?;
    ws.org.commit().await?;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct UpdateView {
    pub id: String,
    pub item_id: String,
    pub body: String,
    pub author_id: String,
    pub created_at: String,
}

pub async fn create_update(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    item_id: &str,
    body: &str,
) -> AppResult<UpdateView> {
    if uuid::Uuid::parse_str(item_id).is_err() {
        return Err(AppError::NotFound);
    }
    let body = body.trim().to_string();
    let id = uuid::Uuid::now_v7().to_string();
    let now = app.clock.now_ms();
    // The item is checked in the same transaction as the insert: a concurrent delete cannot slip
    // between them.
    work::get_item(&mut ws.org.tx, ws.ws_id.as_str(), item_id)
        .await?
        .ok_or(AppError::NotFound)?;
    ws.require(WsRole::Editor)?;
    crate::text::check_free_text("body", &body)?;
    if body.is_empty() || body.chars().count() > 10_000 {
        return Err(AppError::invalid(
            "invalid_body",
            "body: 1 to 10,000 characters.",
        ));
    }
    let limit = app.config.rate_limits.comments_per_account;
    crate::ratelimit::creation(&*app.limiter, "comment", ws.org.user_id(), limit).await?;
    let author = ws.org.user_id().to_string();
    let ct = ws
        .org
        .key()
        .seal("item_updates", "body", &id, body.as_bytes());
    work::insert_update(
        &mut ws.org.tx,
        work::NewUpdate {
            ws_id: ws.ws_id.as_str(),
            item_id,
            id: &id,
            body_ct: ct,
            author: &author,
            now,
        },
    )
    .await?;
    audit_org(
        &mut ws.org,
        ctx,
        Action::CommentCreated,
        ("comment", &id),
        json!({ "item_id": item_id }),
        now,
    )
    .await?;
    ws.org.commit().await?;
    Ok(UpdateView {
        id,
        item_id: item_id.to_string(),
        body,
        author_id: ws.org.user_id().to_string(),
        created_at: crate::clock::rfc3339(now),
    })
}

pub async fn list_updates(
    app: &App,
    ws: &mut WorkspaceScope,
    item_id: &str,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Page<UpdateView>> {
    get_item(app, ws, item_id).await?;
    let after = decode_cursor(cursor)?;
    let limit = page_limit(limit)?;
    let rows = work::list_updates(
        &mut ws.org.tx,
        ws.ws_id.as_str(),
        item_id,
        &after,
        limit + 1,
    )
    .await?;
    let key = ws.org.key.clone();
    let key = &*key;
    let items = rows
        .into_iter()
        .map(|(id, ct, author, at)| {
            Ok(UpdateView {
                body: key.open_string("item_updates", "body", &id, &ct)?,
                id,
                item_id: item_id.to_string(),
                author_id: author,
                created_at: crate::clock::rfc3339(at),
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    Ok(page(items, limit, |u| u.id.clone()))
}
