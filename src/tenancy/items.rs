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
    /// Markdown, as written (pages render it sanitised).
    pub description: String,
    pub labels: Vec<String>,
    /// The item's place in its status column: smaller comes first.
    pub position: i64,
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
    pub description: Option<String>,
    pub labels: Option<Vec<String>>,
}

const MAX_FIELDS_BYTES: usize = 16 * 1024;
const MAX_DESCRIPTION_CHARS: usize = 20_000;
const MAX_LABELS: usize = 10;

/// The values an item is stored with, validated.
struct Checked {
    title: String,
    status: String,
    assignee: Option<String>,
    due: Option<String>,
    fields: Value,
    description: String,
    labels: Vec<String>,
}

impl Checked {
    fn seal<'a>(
        &self,
        key: &crate::crypto::TenantKey,
        id: &str,
        status: &'a str,
    ) -> work::ItemValues<'a> {
        work::ItemValues {
            title_ct: key.seal("items", "title", id, self.title.as_bytes()),
            status,
            assignee_id: None,
            due_on: None,
            fields_ct: key.seal(
                "items",
                "fields",
                id,
                &serde_json::to_vec(&self.fields).unwrap_or_default(),
            ),
            description_ct: key.seal("items", "description", id, self.description.as_bytes()),
            labels_ct: key.seal(
                "items",
                "labels",
                id,
                &serde_json::to_vec(&self.labels).unwrap_or_default(),
            ),
        }
    }

    /// The words search finds this item by.
    fn words(&self) -> Vec<&str> {
        super::search::item_texts(&self.title, &self.description, &self.labels)
    }
}

/// 0 to 10 distinct labels (case-insensitively) of 1 to 30 characters, nothing hidden. The count
/// is checked first: a body of thousands of labels is refused before any of them is looked at.
fn check_labels(labels: &[String]) -> AppResult<Vec<String>> {
    let bad = || {
        AppError::invalid(
            "invalid_labels",
            "labels: up to 10 labels of 1 to 30 characters.",
        )
    };
    if labels.len() > MAX_LABELS * 4 {
        return Err(bad());
    }
    let mut seen = std::collections::HashSet::with_capacity(labels.len());
    let mut out: Vec<String> = Vec::with_capacity(labels.len());
    for l in labels {
        crate::text::check_name("labels", l)?;
        let l = l.trim();
        if l.is_empty() || l.chars().count() > 30 || l.chars().any(char::is_control) {
            return Err(bad());
        }
        if seen.insert(l.to_lowercase()) {
            out.push(l.to_string());
        }
    }
    if out.len() > MAX_LABELS {
        return Err(bad());
    }
    Ok(out)
}

fn view(ws: &mut WorkspaceScope, r: &work::ItemRow) -> AppResult<ItemView> {
    let key = ws.org.key.clone();
    item_view(&key, r)
}

/// An item's row, opened with its org's key.
pub(crate) fn item_view(key: &crate::crypto::TenantKey, r: &work::ItemRow) -> AppResult<ItemView> {
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
        description: match &r.description_ct {
            Some(ct) => key.open_string("items", "description", &r.id, ct)?,
            None => String::new(),
        },
        labels: match &r.labels_ct {
            Some(ct) => {
                serde_json::from_slice(&key.open("items", "labels", &r.id, ct)?).unwrap_or_default()
            }
            None => Vec::new(),
        },
        position: r.position,
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
) -> AppResult<Checked> {
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
    let description = match (&v.description, current) {
        (Some(d), _) => d.trim_end().to_string(),
        (None, Some(c)) => c.description.clone(),
        (None, None) => String::new(),
    };
    if v.description.is_some() {
        crate::text::check_free_text("description", &description)?;
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(AppError::invalid(
                "invalid_description",
                "description: at most 20,000 characters.",
            ));
        }
    }
    let labels = match (&v.labels, current) {
        (Some(l), _) => check_labels(l)?,
        (None, Some(c)) => c.labels.clone(),
        (None, None) => Vec::new(),
    };
    Ok(Checked {
        title,
        status,
        assignee,
        due,
        fields,
        description,
        labels,
    })
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
    let c = validate(app, ws, &id, &input, None).await?;
    let limit = app.config.rate_limits.items_per_account;
    crate::ratelimit::creation(&*app.limiter, "item", ws.org.user_id(), limit).await?;
    let sealed_status = seal_text(key, "items", "status", &id, &c.status);
    let mut values = c.seal(key, &id, &sealed_status);
    values.assignee_id = c.assignee.as_deref();
    values.due_on = c.due.as_deref();
    let author = ws.org.user_id().to_string();
    let position =
        work::insert_item(&mut ws.org.tx, ws.ws_id.as_str(), &id, values, &author, now).await?;
    let ws_id = ws.ws_id.clone();
    super::search::index(&mut ws.org, &ws_id, &id, &id, &c.words()).await?;
    if let Some(a) = &c.assignee {
        super::notifications::item_assigned(app, &mut ws.org, a, &ws_id, &id, &c.title, now)
            .await?;
    }
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
        title: c.title,
        status: c.status,
        assignee_id: c.assignee,
        due_on: c.due,
        fields: c.fields,
        created_by: author,
        created_at: at.clone(),
        updated_at: at,
        description: c.description,
        labels: c.labels,
        position,
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
    let c = validate(app, ws, item_id, &input, Some(&current)).await?;
    let status = seal_text(key, "items", "status", item_id, &c.status);
    let mut values = c.seal(key, item_id, &status);
    values.assignee_id = c.assignee.as_deref();
    values.due_on = c.due.as_deref();
    if !work::update_item(&mut ws.org.tx, ws.ws_id.as_str(), item_id, values, now).await? {
        return Err(AppError::NotFound);
    }
    let ws_id = ws.ws_id.clone();
    if c.title != current.title
        || c.description != current.description
        || c.labels != current.labels
    {
        super::search::reindex(&mut ws.org, &ws_id, item_id, item_id, &c.words()).await?;
    }
    if let Some(a) = c
        .assignee
        .as_deref()
        .filter(|a| current.assignee_id.as_deref() != Some(*a))
    {
        super::notifications::item_assigned(app, &mut ws.org, a, &ws_id, item_id, &c.title, now)
            .await?;
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
    // Notifications about it would keep its title.
    store::notifications::forget(&mut ws.org.tx, Some(ws.ws_id.as_str()), Some(item_id), None)
        .await?;
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
    let item = work::get_item(&mut ws.org.tx, ws.ws_id.as_str(), item_id)
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
    let ws_id = ws.ws_id.clone();
    super::search::index(&mut ws.org, &ws_id, item_id, &id, &[body.as_str()]).await?;
    if body.contains('@') {
        let title = ws
            .org
            .key()
            .open_string("items", "title", item_id, &item.title_ct)?;
        super::notifications::mentions(app, &mut ws.org, &body, &ws_id, item_id, &title, now)
            .await?;
    }
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

/// Moves an item to status `status`, before item `before_id` of that status (last when None):
/// a board's drag and drop. The item takes the middle of the gap between its new neighbours; a
/// column with no gap left is renumbered first.
pub async fn move_item(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    item_id: &str,
    status: &str,
    before_id: Option<&str>,
) -> AppResult<ItemView> {
    get_item(app, ws, item_id).await?;
    ws.require(WsRole::Editor)?;
    if !ws.statuses().iter().any(|s| s == status) {
        return Err(AppError::invalid(
            "invalid_status",
            format!("status: one of {}.", ws.statuses().join(", ")),
        ));
    }
    if before_id == Some(item_id) {
        return Err(AppError::invalid(
            "invalid_before_id",
            "before_id: another item of the target status.",
        ));
    }
    let key = ws.org.key.clone();
    let ws_id = ws.ws_id.clone();
    // The target column in board order, without the moving item.
    let mut column: Vec<(String, i64)> = Vec::new();
    for (id, stored, position) in work::item_places(&mut ws.org.tx, &ws_id).await? {
        if id != item_id && open_text(&key, "items", "status", &id, &stored)?.0 == status {
            column.push((id, position));
        }
    }
    let at = match before_id {
        None => column.len(),
        Some(b) => column.iter().position(|(id, _)| id == b).ok_or_else(|| {
            AppError::invalid(
                "invalid_before_id",
                "before_id: another item of the target status.",
            )
        })?,
    };
    let step = work::POSITION_STEP;
    let gap = |col: &[(String, i64)]| -> Option<i64> {
        let prev = if at == 0 { None } else { Some(col[at - 1].1) };
        let next = col.get(at).map(|(_, p)| *p);
        match (prev, next) {
            (None, None) => Some(step),
            (Some(p), None) => p.checked_add(step),
            (None, Some(n)) => n.checked_sub(step),
            (Some(p), Some(n)) => n
                .checked_sub(p)
                .filter(|gap| *gap >= 2)
                .map(|gap| p + gap / 2),
        }
    };
    let position = match gap(&column) {
        Some(p) => p,
        None => {
            // No room left between the neighbours: renumber the column, leaving room everywhere.
            let mut renumbered = Vec::with_capacity(column.len());
            for (i, (id, _)) in column.iter().enumerate() {
                let i = i64::try_from(i).unwrap_or(i64::MAX / step - 1);
                renumbered.push((id.clone(), (i + 1).saturating_mul(2 * step)));
            }
            work::set_positions(&mut ws.org.tx, &ws_id, &renumbered).await?;
            column = renumbered;
            gap(&column).unwrap_or(0)
        }
    };
    let now = app.clock.now_ms();
    let sealed = seal_text(&key, "items", "status", item_id, status);
    if !work::place_item(&mut ws.org.tx, &ws_id, item_id, &sealed, position, now).await? {
        return Err(AppError::NotFound);
    }
    audit_org(
        &mut ws.org,
        ctx,
        Action::ItemUpdated,
        ("item", item_id),
        json!({ "workspace_id": ws_id, "moved": true }),
        now,
    )
    .await?;
    let view = get_item(app, ws, item_id).await?;
    ws.org.commit().await?;
    Ok(view)
}
