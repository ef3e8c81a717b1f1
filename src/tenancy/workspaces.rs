//! Workspaces (a deal room or a board) and workspace roles. Org owners and admins act as owner of
//! every workspace of their org; members see only the workspaces they hold a role in, and any
//! other workspace is "not found" to them.

use serde_json::json;

use super::{audit_org, decode_cursor, page, page_limit, OrgRole, OrgScope, Page};
use crate::audit::Action;
use crate::error::{AppError, AppResult};
use crate::identity::{AuthSession, RequestCtx};
use crate::state::App;
use crate::store::tenant::Mode;
use crate::store::{self, work};

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
pub enum WsRole {
    Viewer,
    Editor,
    Owner,
}

impl WsRole {
    pub fn as_str(self) -> &'static str {
        match self {
            WsRole::Viewer => "viewer",
            WsRole::Editor => "editor",
            WsRole::Owner => "owner",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(WsRole::Viewer),
            "editor" => Some(WsRole::Editor),
            "owner" => Some(WsRole::Owner),
            _ => None,
        }
    }
}

/// Proof of the caller's (effective) role in one workspace of an org.
pub struct WorkspaceScope {
    pub org: OrgScope,
    pub(super) ws_id: String,
    role: WsRole,
    statuses: Vec<String>,
    columns: Vec<StatusDef>,
}

/// A status (a board's column): a stable key, which items hold, and a name people read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct StatusDef {
    pub key: String,
    pub name: String,
}

/// A stored status: a bare name (before statuses had keys: it is both) or a key with its name.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum StoredStatus {
    Bare(String),
    Def(StatusDef),
}

impl WorkspaceScope {
    pub fn id(&self) -> &str {
        &self.ws_id
    }
    pub fn role(&self) -> WsRole {
        self.role
    }
    /// The status keys, in board order.
    pub fn statuses(&self) -> &[String] {
        &self.statuses
    }
    /// The statuses with their names, in board order.
    pub fn columns(&self) -> &[StatusDef] {
        &self.columns
    }
    pub fn require(&self, role: WsRole) -> AppResult<()> {
        if self.role >= role {
            Ok(())
        } else {
            Err(AppError::Forbidden {
                code: "forbidden",
                detail: format!("This needs the {} role in the workspace.", role.as_str()),
            })
        }
    }
}

/// The caller's scope in workspace `ws_id` of org `org_id`, in the request's one transaction
/// (see `super::authorize`: the membership, the workspace and the caller's role in it are read by
/// one statement); `NotFound` when it does not exist in this org or the caller may not see it.
pub async fn authorize_workspace(
    app: &App,
    s: &AuthSession,
    org_id: &str,
    ws_id: &str,
    mode: Mode,
) -> AppResult<WorkspaceScope> {
    if uuid::Uuid::parse_str(ws_id).is_err() {
        return Err(AppError::NotFound);
    }
    let (mut org, ws) = super::enter(app, s, org_id, Some(ws_id), mode).await?;
    let ws = ws.ok_or(AppError::NotFound)?;
    let role = if org.role() >= OrgRole::Admin {
        WsRole::Owner
    } else {
        ws.role
            .as_deref()
            .and_then(WsRole::parse)
            .ok_or(AppError::NotFound)?
    };
    let (statuses, legacy) = open_statuses(org.key(), ws_id, &ws.statuses)?;
    if legacy {
        // Written before status names were encrypted: seal them now, once, with the statuses
        // of the workspace's items. A write: on a read request, in a transaction of its own
        // (the authorization is checked again in it), once per workspace ever.
        if mode == Mode::Read {
            org.commit().await?;
            let (writer, _) = super::enter(app, s, org_id, Some(ws_id), Mode::Write).await?;
            reseal_legacy(writer, ws_id, &ws.statuses, &statuses).await?;
            org = super::enter(app, s, org_id, Some(ws_id), Mode::Read)
                .await?
                .0;
        } else {
            let sealed = seal_statuses(org.key(), ws_id, &statuses);
            work::reseal_statuses(org.tx(), ws_id, &ws.statuses, &sealed).await?;
            reseal_items(&mut org, ws_id).await?;
        }
    }
    Ok(WorkspaceScope {
        org,
        ws_id: ws_id.to_string(),
        role,
        statuses: statuses.iter().map(|s| s.key.clone()).collect(),
        columns: statuses,
    })
}

async fn reseal_legacy(
    mut org: OrgScope,
    ws_id: &str,
    stored: &str,
    statuses: &[StatusDef],
) -> AppResult<()> {
    let sealed = seal_statuses(org.key(), ws_id, statuses);
    work::reseal_statuses(org.tx(), ws_id, stored, &sealed).await?;
    reseal_items(&mut org, ws_id).await?;
    org.commit().await
}

async fn reseal_items(org: &mut OrgScope, ws_id: &str) -> AppResult<()> {
    for (item_id, status) in work::plaintext_item_statuses(org.tx(), ws_id).await? {
        let sealed = seal_text(org.key(), "items", "status", &item_id, &status);
        work::reseal_item_status(org.tx(), &item_id, &status, &sealed).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct WorkspaceView {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub description: String,
    /// The status keys, in board order.
    pub statuses: Vec<String>,
    /// The statuses with their names, in board order.
    pub columns: Vec<StatusDef>,
    /// The caller's effective role.
    pub role: WsRole,
    pub created_at: String,
}

/// How a status column (`workspaces.statuses`, `items.status`, both TEXT) holds its value once
/// encrypted: this prefix, then the base64 of the value sealed under the org key, bound to org,
/// table, column and row like the names. Anything else is a value written before status names
/// were encrypted (plaintext).
const SEALED: &str = "sealed:";

pub(crate) fn seal_text(
    key: &crate::crypto::TenantKey,
    table: &str,
    column: &str,
    row: &str,
    text: &str,
) -> String {
    use base64::Engine;
    let ct = key.seal(table, column, row, text.as_bytes());
    format!(
        "{SEALED}{}",
        base64::engine::general_purpose::STANDARD.encode(ct)
    )
}

/// The text of a status column, and whether it was still stored in plaintext.
pub(crate) fn open_text(
    key: &crate::crypto::TenantKey,
    table: &str,
    column: &str,
    row: &str,
    stored: &str,
) -> AppResult<(String, bool)> {
    use base64::Engine;
    let Some(b64) = stored.strip_prefix(SEALED) else {
        return Ok((stored.to_string(), true));
    };
    let ct = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| AppError::Internal(anyhow::anyhow!("{table}.{column}: not base64")))?;
    Ok((key.open_string(table, column, row, &ct)?, false))
}

fn seal_statuses(key: &crate::crypto::TenantKey, ws_id: &str, list: &[StatusDef]) -> String {
    let json = serde_json::to_string(list).unwrap_or_else(|_| "[]".into());
    seal_text(key, "workspaces", "statuses", ws_id, &json)
}

/// The statuses of a stored workspace row.
pub(crate) fn open_columns(
    key: &crate::crypto::TenantKey,
    ws_id: &str,
    stored: &str,
) -> AppResult<Vec<StatusDef>> {
    Ok(open_statuses(key, ws_id, stored)?.0)
}

/// The statuses, and whether the column still held them in plaintext.
fn open_statuses(
    key: &crate::crypto::TenantKey,
    ws_id: &str,
    stored: &str,
) -> AppResult<(Vec<StatusDef>, bool)> {
    let (json, legacy) = open_text(key, "workspaces", "statuses", ws_id, stored)?;
    let list: Vec<StoredStatus> = serde_json::from_str(&json).unwrap_or_default();
    let list = list
        .into_iter()
        .map(|s| match s {
            StoredStatus::Bare(name) => StatusDef {
                key: name.clone(),
                name,
            },
            StoredStatus::Def(d) => d,
        })
        .collect();
    Ok((list, legacy))
}

fn view(org: &OrgScope, w: &work::WorkspaceRow, role: WsRole) -> AppResult<WorkspaceView> {
    let columns = open_statuses(org.key(), &w.id, &w.statuses)?.0;
    Ok(WorkspaceView {
        id: w.id.clone(),
        kind: w.kind.clone(),
        name: org
            .key()
            .open_string("workspaces", "name", &w.id, &w.name_ct)?,
        description: org.key().open_string(
            "workspaces",
            "description",
            &w.id,
            &w.description_ct,
        )?,
        statuses: columns.iter().map(|s| s.key.clone()).collect(),
        columns,
        role,
        created_at: crate::clock::rfc3339(w.created_at),
    })
}

fn text(field: &'static str, v: &str, max: usize, required: bool) -> AppResult<String> {
    let t = v.trim().to_string();
    if required {
        // A name: nothing hidden. Free text keeps its line breaks and tabs.
        crate::text::check_name(field, v)?;
    } else {
        crate::text::check_free_text(field, &t)?;
    }
    if (required && t.is_empty())
        || t.chars().count() > max
        || t.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(AppError::invalid(
            "invalid_field",
            format!("{field}: 1 to {max} characters, no control characters."),
        ));
    }
    Ok(t)
}

/// The statuses a new workspace starts with.
fn default_statuses() -> Vec<StatusDef> {
    [("todo", "To do"), ("doing", "Doing"), ("done", "Done")]
        .into_iter()
        .map(|(key, name)| StatusDef {
            key: key.into(),
            name: name.into(),
        })
        .collect()
}

/// Statuses given as bare names (create and PATCH): each name is its own key.
fn statuses(list: Option<Vec<String>>) -> AppResult<Vec<StatusDef>> {
    let Some(list) = list else {
        return Ok(default_statuses());
    };
    check_statuses(
        list.into_iter()
            .map(|s| StatusDef {
                key: s.clone(),
                name: s,
            })
            .collect(),
    )
}

/// 1 to 20 statuses, keys and names of 1 to 40 characters with nothing hidden, distinct keys and
/// distinct names.
fn check_statuses(list: Vec<StatusDef>) -> AppResult<Vec<StatusDef>> {
    let mut list = list;
    for s in &mut list {
        crate::text::check_name("statuses", &s.key)?;
        crate::text::check_name("statuses", &s.name)?;
        s.key = s.key.trim().to_string();
        s.name = s.name.trim().to_string();
    }
    let fine = |t: &str| (1..=40).contains(&t.chars().count()) && !t.chars().any(char::is_control);
    let distinct = |f: fn(&StatusDef) -> String| {
        list.iter()
            .map(f)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == list.len()
    };
    let ok = !list.is_empty()
        && list.len() <= 20
        && list.iter().all(|s| fine(&s.key) && fine(&s.name))
        && distinct(|s| s.key.clone())
        && distinct(|s| s.name.to_lowercase());
    if !ok {
        return Err(AppError::invalid(
            "invalid_statuses",
            "statuses: 1 to 20 statuses with distinct keys and names of 1 to 40 characters.",
        ));
    }
    Ok(list)
}

/// 409 `status_in_use` when `list` leaves out a status some item of the workspace still holds.
async fn refuse_removing_used(ws: &mut WorkspaceScope, list: &[StatusDef]) -> AppResult<()> {
    let keep: std::collections::HashSet<&str> = list.iter().map(|s| s.key.as_str()).collect();
    let removed: Vec<String> = ws
        .statuses()
        .iter()
        .filter(|k| !keep.contains(k.as_str()))
        .cloned()
        .collect();
    if !removed.is_empty() {
        let key = ws.org.key.clone();
        for (item_id, stored, _) in work::item_places(&mut ws.org.tx, ws.ws_id.as_str()).await? {
            let status = open_text(&key, "items", "status", &item_id, &stored)?.0;
            if removed.contains(&status) {
                return Err(AppError::Conflict {
                    code: "status_in_use",
                    detail: format!(
                        "The status \"{status}\" still holds items; move them to another status first."
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Replaces a workspace's statuses (workspace editors): add, rename (same key, new name), reorder
/// (the list's order) and remove; a status some item still holds cannot be removed (409).
pub async fn set_statuses(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    list: Vec<StatusDef>,
) -> AppResult<WorkspaceView> {
    ws.require(WsRole::Editor)?;
    let list = check_statuses(list)?;
    refuse_removing_used(ws, &list).await?;
    let now = app.clock.now_ms();
    let sealed = seal_statuses(ws.org.key(), ws.ws_id.as_str(), &list);
    work::update_workspace(
        &mut ws.org.tx,
        ws.ws_id.as_str(),
        None,
        None,
        Some(&sealed),
        now,
    )
    .await?;
    audit_org(
        &mut ws.org,
        ctx,
        Action::WorkspaceUpdated,
        ("workspace", ws.ws_id.as_str()),
        json!({ "statuses": list.len() }),
        now,
    )
    .await?;
    let view = get_workspace(app, ws).await?;
    ws.org.commit().await?;
    Ok(view)
}

pub struct WorkspaceInput {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub description: Option<String>,
    pub statuses: Option<Vec<String>>,
}

/// Creates a workspace (org admins); the creator holds its owner role.
pub async fn create_workspace(
    app: &App,
    ctx: &RequestCtx,
    org: &mut OrgScope,
    input: WorkspaceInput,
) -> AppResult<WorkspaceView> {
    org.require(OrgRole::Admin)?;
    let name = text("name", input.name.as_deref().unwrap_or(""), 120, true)?;
    let description = text(
        "description",
        input.description.as_deref().unwrap_or(""),
        4000,
        false,
    )?;
    let kind = match input.kind.as_deref() {
        Some("deal") => "deal",
        Some("board") => "board",
        _ => return Err(AppError::invalid("invalid_kind", "kind: deal or board.")),
    };
    let statuses = statuses(input.statuses)?;
    let limit = app.config.rate_limits.workspaces_per_account;
    crate::ratelimit::creation(&*app.limiter, "workspace", org.user_id(), limit).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = app.clock.now_ms();
    let me = org.user_id().to_string();
    let row = work::NewWorkspace {
        id: &id,
        kind,
        name_ct: org.key().seal("workspaces", "name", &id, name.as_bytes()),
        description_ct: org
            .key()
            .seal("workspaces", "description", &id, description.as_bytes()),
        statuses: &seal_statuses(org.key(), &id, &statuses),
        created_by: &me,
        now,
    };
    work::insert_workspace(org.tx(), row).await?;
    work::set_workspace_role(org.tx(), &id, &me, WsRole::Owner.as_str(), now).await?;
    audit_org(
        org,
        ctx,
        Action::WorkspaceCreated,
        ("workspace", &id),
        json!({ "kind": kind }),
        now,
    )
    .await?;
    let stored = work::get_workspace(org.tx(), &id)
        .await?
        .ok_or(AppError::NotFound)?;
    org.commit().await?;
    view(org, &stored, WsRole::Owner)
}

pub async fn list_workspaces(
    _app: &App,
    org: &mut OrgScope,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Page<WorkspaceView>> {
    let after = decode_cursor(cursor)?;
    let limit = page_limit(limit)?;
    let all = org.role() >= OrgRole::Admin;
    let me = org.user_id().to_string();
    let rows = work::list_workspaces(
        org.tx(),
        if all { None } else { Some(me.as_str()) },
        &after,
        limit + 1,
    )
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for w in &rows {
        let role = if all {
            WsRole::Owner
        } else {
            work::workspace_role(org.tx(), &w.id, &me)
                .await?
                .and_then(|r| WsRole::parse(&r))
                .unwrap_or(WsRole::Viewer)
        };
        items.push(view(org, w, role)?);
    }
    Ok(page(items, limit, |w| w.id.clone()))
}

pub async fn get_workspace(_app: &App, ws: &mut WorkspaceScope) -> AppResult<WorkspaceView> {
    let row = work::get_workspace(&mut ws.org.tx, ws.ws_id.as_str())
        .await?
        .ok_or(AppError::NotFound)?;
    view(&ws.org, &row, ws.role())
}

/// Renames, describes or re-states a workspace (workspace editors).
pub async fn update_workspace(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    input: WorkspaceInput,
) -> AppResult<WorkspaceView> {
    ws.require(WsRole::Editor)?;
    if input.kind.is_some() {
        return Err(AppError::invalid(
            "invalid_kind",
            "A workspace's kind cannot change.",
        ));
    }
    let name = input
        .name
        .as_deref()
        .map(|n| text("name", n, 120, true))
        .transpose()?;
    let description = input
        .description
        .as_deref()
        .map(|d| text("description", d, 4000, false))
        .transpose()?;
    // Bare names (the PATCH form): a name a status already has keeps that status's key, so
    // items keep their column; a status left out must hold no item (409), as for PUT statuses.
    let statuses = match input.statuses {
        Some(names) => {
            let mut list = statuses(Some(names))?;
            for s in &mut list {
                if let Some(c) = ws
                    .columns()
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(&s.name))
                {
                    s.key = c.key.clone();
                }
            }
            let list = check_statuses(list)?;
            refuse_removing_used(ws, &list).await?;
            Some(list)
        }
        None => None,
    };
    let now = app.clock.now_ms();
    let key = ws.org.key.clone();
    let key = &*key;
    work::update_workspace(
        &mut ws.org.tx,
        ws.ws_id.as_str(),
        name.as_ref()
            .map(|n| key.seal("workspaces", "name", ws.ws_id.as_str(), n.as_bytes())),
        description
            .as_ref()
            .map(|d| key.seal("workspaces", "description", ws.ws_id.as_str(), d.as_bytes())),
        statuses
            .as_ref()
            .map(|s| seal_statuses(key, ws.ws_id.as_str(), s))
            .as_deref(),
        now,
    )
    .await?;
    audit_org(
        &mut ws.org,
        ctx,
        Action::WorkspaceUpdated,
        ("workspace", ws.ws_id.as_str()),
        json!({}),
        now,
    )
    .await?;
    let view = get_workspace(app, ws).await?;
    ws.org.commit().await?;
    Ok(view)
}

pub async fn delete_workspace(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
) -> AppResult<()> {
    ws.require(WsRole::Owner)?;
    let now = app.clock.now_ms();
    super::documents::forget_workspace(ws, now).await?;
    work::delete_workspace(&mut ws.org.tx, ws.ws_id.as_str()).await?;
    store::notifications::forget(&mut ws.org.tx, Some(ws.ws_id.as_str()), None, None).await?;
    audit_org(
        &mut ws.org,
        ctx,
        Action::WorkspaceDeleted,
        ("workspace", ws.ws_id.as_str()),
        json!({}),
        now,
    )
    .await?;
    ws.org.commit().await?;
    super::documents::collect_garbage_soon(app);
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct WorkspaceMemberView {
    pub user_id: String,
    pub role: WsRole,
    pub since: String,
}

pub async fn list_workspace_members(
    _app: &App,
    ws: &mut WorkspaceScope,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Page<WorkspaceMemberView>> {
    let after = decode_cursor(cursor)?;
    let limit = page_limit(limit)?;
    let rows =
        work::list_workspace_members(&mut ws.org.tx, ws.ws_id.as_str(), &after, limit + 1).await?;
    let items = rows
        .into_iter()
        .map(|(user_id, role, since)| WorkspaceMemberView {
            user_id,
            role: WsRole::parse(&role).unwrap_or(WsRole::Viewer),
            since: crate::clock::rfc3339(since),
        })
        .collect();
    Ok(page(items, limit, |m| m.user_id.clone()))
}

/// Gives an org member a role in the workspace (workspace owners and org admins). Someone who is
/// not a member of this org is "not found".
pub async fn set_workspace_member(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    user_id: &str,
    role: WsRole,
) -> AppResult<WorkspaceMemberView> {
    ws.require(WsRole::Owner)?;
    if uuid::Uuid::parse_str(user_id).is_err() {
        return Err(AppError::NotFound);
    }
    let now = app.clock.now_ms();
    store::orgs::member_role(ws.org.tx(), user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let before = work::workspace_role(&mut ws.org.tx, ws.ws_id.as_str(), user_id).await?;
    work::set_workspace_role(
        &mut ws.org.tx,
        ws.ws_id.as_str(),
        user_id,
        role.as_str(),
        now,
    )
    .await?;
    audit_org(
        &mut ws.org,
        ctx,
        Action::WorkspaceMemberSet,
        ("user", user_id),
        json!({ "workspace_id": ws.ws_id.as_str(), "role": role.as_str() }),
        now,
    )
    .await?;
    if before.is_none() {
        let ws_id = ws.ws_id.clone();
        let row = work::get_workspace(&mut ws.org.tx, &ws_id)
            .await?
            .ok_or(AppError::NotFound)?;
        let name = ws
            .org
            .key()
            .open_string("workspaces", "name", &ws_id, &row.name_ct)?;
        super::notifications::workspace_added(app, &mut ws.org, user_id, &ws_id, &name, now)
            .await?;
    }
    ws.org.commit().await?;
    Ok(WorkspaceMemberView {
        user_id: user_id.to_string(),
        role,
        since: crate::clock::rfc3339(now),
    })
}

pub async fn remove_workspace_member(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    user_id: &str,
) -> AppResult<()> {
    ws.require(WsRole::Owner)?;
    if uuid::Uuid::parse_str(user_id).is_err() {
        return Err(AppError::NotFound);
    }
    let now = app.clock.now_ms();
    if !work::delete_workspace_role(&mut ws.org.tx, ws.ws_id.as_str(), user_id).await? {
        return Err(AppError::NotFound);
    }
    store::notifications::forget(&mut ws.org.tx, Some(ws.ws_id.as_str()), None, Some(user_id))
        .await?;
    audit_org(
        &mut ws.org,
        ctx,
        Action::WorkspaceMemberRemoved,
        ("user", user_id),
        json!({ "workspace_id": ws.ws_id.as_str() }),
        now,
    )
    .await?;
    ws.org.commit().await?;
    Ok(())
}
