//! The signed-in user's home: the items assigned to them across their orgs. Each org is read in
//! its own read transaction through the tenant wall (the membership is checked, and row-level
//! security holds, exactly as for a request into that org); an org whose policy the session does
//! not meet (require-MFA) is left out, as its pages would refuse it.

use super::workspaces::open_text;
use super::OrgRole;
use crate::error::{AppError, AppResult};
use crate::identity::AuthSession;
use crate::state::App;
use crate::store::{self, tenant::Mode, work};

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AssignedItem {
    pub org_id: String,
    pub org_name: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub item_id: String,
    pub title: String,
    /// The status's key and its name.
    pub status: String,
    pub status_name: String,
    pub due_on: Option<String>,
    /// Due before today (UTC).
    pub overdue: bool,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AssignedList {
    pub items: Vec<AssignedItem>,
}

/// At most this many orgs and items per org are read for the home page.
const MAX_ORGS: i64 = 50;
const MAX_PER_ORG: i64 = 100;

/// The items assigned to the caller in workspaces they can see, across their orgs: overdue first,
/// then by due date (none last), then by title.
pub async fn assigned(app: &App, s: &AuthSession) -> AppResult<AssignedList> {
    let orgs = {
        let mut tx = app.db.begin_for_user(&s.user_id).await?;
        let rows = store::orgs::list_orgs_for_user(&mut tx, &s.user_id, "", MAX_ORGS).await?;
        tx.commit().await?;
        rows
    };
    let today = crate::clock::utc_date(app.clock.now_ms());
    let mut items = Vec::new();
    for (org, _, _) in orgs {
        let mut scope = match super::enter(app, s, &org.id, None, Mode::Read).await {
            Ok((scope, _)) => scope,
            Err(AppError::NotFound | AppError::Forbidden { .. }) => continue,
            Err(e) => return Err(e),
        };
        let org_name = scope
            .key()
            .open_string("orgs", "name", &org.id, &org.name_ct)?;
        let all = scope.role() >= OrgRole::Admin;
        let rows = work::assigned_to(scope.tx(), all, MAX_PER_ORG).await?;
        let mut ws_cache: std::collections::HashMap<
            String,
            (String, Vec<super::workspaces::StatusDef>),
        > = std::collections::HashMap::new();
        for (ws, item) in rows {
            if !ws_cache.contains_key(&ws.id) {
                let name = scope
                    .key()
                    .open_string("workspaces", "name", &ws.id, &ws.name_ct)?;
                let cols = super::workspaces::open_columns(scope.key(), &ws.id, &ws.statuses)?;
                ws_cache.insert(ws.id.clone(), (name, cols));
            }
            let Some((ws_name, cols)) = ws_cache.get(&ws.id) else {
                continue;
            };
            let status = open_text(scope.key(), "items", "status", &item.id, &item.status)?.0;
            let status_name = cols
                .iter()
                .find(|c| c.key == status)
                .map_or_else(|| status.clone(), |c| c.name.clone());
            let overdue = item.due_on.as_deref().is_some_and(|d| d < today.as_str());
            items.push(AssignedItem {
                org_id: org.id.clone(),
                org_name: org_name.clone(),
                workspace_id: ws.id.clone(),
                workspace_name: ws_name.clone(),
                title: scope
                    .key()
                    .open_string("items", "title", &item.id, &item.title_ct)?,
                item_id: item.id,
                status,
                status_name,
                due_on: item.due_on,
                overdue,
            });
        }
        scope.commit().await?;
    }
    items.sort_by(|a, b| {
        b.overdue
            .cmp(&a.overdue)
            .then_with(|| match (&a.due_on, &b.due_on) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| a.title.to_lowercase().cmp(&b.title.to_lowercase()))
    });
    Ok(AssignedList { items })
}
