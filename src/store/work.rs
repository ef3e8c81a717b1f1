//! Workspaces, workspace roles, items and comments. Every query filters by org id (and runs in a
//! transaction opened for that org).

use sqlx::Row;

use super::tenant::TenantTx;

pub struct WorkspaceRow {
    pub id: String,
    pub kind: String,
    pub name_ct: Vec<u8>,
    pub description_ct: Vec<u8>,
    pub statuses: String,
    pub created_at: i64,
}

const WS_COLS: &str = "id, kind, name_ct, description_ct, statuses, created_at";

fn ws_from(r: &sqlx::any::AnyRow) -> Result<WorkspaceRow, sqlx::Error> {
    Ok(WorkspaceRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        name_ct: r.try_get("name_ct")?,
        description_ct: r.try_get("description_ct")?,
        statuses: r.try_get("statuses")?,
        created_at: r.try_get("created_at")?,
    })
}

pub struct NewWorkspace<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub name_ct: Vec<u8>,
    pub description_ct: Vec<u8>,
    pub statuses: &'a str,
    pub created_by: &'a str,
    pub now: i64,
}

pub async fn insert_workspace(t: &mut TenantTx, w: NewWorkspace<'_>) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO workspaces (id, org_id, kind, name_ct, description_ct, statuses, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(w.id)
    .bind(org_id)
    .bind(w.kind)
    .bind(w.name_ct)
    .bind(w.description_ct)
    .bind(w.statuses)
    .bind(w.created_by)
    .bind(w.now)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

pub async fn get_workspace(
    t: &mut TenantTx,
    id: &str,
) -> Result<Option<WorkspaceRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(&format!(
        "SELECT {WS_COLS} FROM workspaces WHERE org_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .as_ref()
    .map(ws_from)
    .transpose()
}

/// All workspaces of the org (for admins), or those `user_id` holds a role in.
pub async fn list_workspaces(
    t: &mut TenantTx,
    only_for: Option<&str>,
    after: &str,
    limit: i64,
) -> Result<Vec<WorkspaceRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let rows = match only_for {
        None => {
            sqlx::query(&format!("SELECT {WS_COLS} FROM workspaces WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"))
                .bind(org_id)
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *c)
                .await?
        }
        Some(uid) => {
            sqlx::query(&format!(
                "SELECT {WS_COLS} FROM workspaces w WHERE w.org_id = $1 AND w.id > $2 AND EXISTS \
                 (SELECT 1 FROM workspace_members m WHERE m.workspace_id = w.id AND m.org_id = $1 AND m.user_id = $4) ORDER BY w.id LIMIT $3"
            ))
            .bind(org_id)
            .bind(after)
            .bind(limit)
            .bind(uid)
            .fetch_all(&mut *c)
            .await?
        }
    };
    rows.iter().map(ws_from).collect()
}

/// Replaces the plaintext status list of a workspace by its sealed form (only if it is still the
/// plaintext that was read, so a concurrent change is not overwritten).
pub async fn reseal_statuses(
    t: &mut TenantTx,
    id: &str,
    plaintext: &str,
    sealed: &str,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "UPDATE workspaces SET statuses = $4 WHERE org_id = $1 AND id = $2 AND statuses = $3",
    )
    .bind(org_id)
    .bind(id)
    .bind(plaintext)
    .bind(sealed)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

/// The items of a workspace whose status is still plaintext (written before status names were
/// encrypted): (id, status).
pub async fn plaintext_item_statuses(
    t: &mut TenantTx,
    ws_id: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let rows = sqlx::query(
        "SELECT id, status FROM items WHERE org_id = $1 AND workspace_id = $2 AND status NOT LIKE 'sealed:%'",
    )
    .bind(org_id)
    .bind(ws_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("status")?)))
        .collect()
}

/// Replaces an item's plaintext status by its sealed form (if it is still that plaintext).
pub async fn reseal_item_status(
    t: &mut TenantTx,
    id: &str,
    plaintext: &str,
    sealed: &str,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query("UPDATE items SET status = $4 WHERE org_id = $1 AND id = $2 AND status = $3")
        .bind(org_id)
        .bind(id)
        .bind(plaintext)
        .bind(sealed)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

pub async fn update_workspace(
    t: &mut TenantTx,
    id: &str,
    name_ct: Option<Vec<u8>>,
    description_ct: Option<Vec<u8>>,
    statuses: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    if let Some(v) = name_ct {
        sqlx::query(
            "UPDATE workspaces SET name_ct = $3, updated_at = $4 WHERE org_id = $1 AND id = $2",
        )
        .bind(org_id)
        .bind(id)
        .bind(v)
        .bind(now)
        .execute(&mut *c)
        .await?;
    }
    if let Some(v) = description_ct {
        sqlx::query("UPDATE workspaces SET description_ct = $3, updated_at = $4 WHERE org_id = $1 AND id = $2").bind(org_id).bind(id).bind(v).bind(now).execute(&mut *c).await?;
    }
    if let Some(v) = statuses {
        sqlx::query(
            "UPDATE workspaces SET statuses = $3, updated_at = $4 WHERE org_id = $1 AND id = $2",
        )
        .bind(org_id)
        .bind(id)
        .bind(v)
        .bind(now)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

pub async fn delete_workspace(t: &mut TenantTx, id: &str) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query("DELETE FROM workspaces WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn workspace_role(
    t: &mut TenantTx,
    ws_id: &str,
    user_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query("SELECT role FROM workspace_members WHERE org_id = $1 AND workspace_id = $2 AND user_id = $3")
        .bind(org_id)
        .bind(ws_id)
        .bind(user_id)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| r.try_get("role"))
        .transpose()
}

/// Sets (inserts or replaces) a workspace role.
pub async fn set_workspace_role(
    t: &mut TenantTx,
    ws_id: &str,
    user_id: &str,
    role: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO workspace_members (workspace_id, org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(ws_id)
    .bind(org_id)
    .bind(user_id)
    .bind(role)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

pub async fn delete_workspace_role(
    t: &mut TenantTx,
    ws_id: &str,
    user_id: &str,
) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "DELETE FROM workspace_members WHERE org_id = $1 AND workspace_id = $2 AND user_id = $3",
    )
    .bind(org_id)
    .bind(ws_id)
    .bind(user_id)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn list_workspace_members(
    t: &mut TenantTx,
    ws_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query("SELECT user_id, role, created_at FROM workspace_members WHERE org_id = $1 AND workspace_id = $2 AND user_id > $3 ORDER BY user_id LIMIT $4")
        .bind(org_id)
        .bind(ws_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("user_id")?, r.try_get("role")?, r.try_get("created_at")?)))
        .collect()
}

/// Removes the user's workspace roles in the org (when they leave it).
pub async fn delete_user_workspace_roles(
    t: &mut TenantTx,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query("DELETE FROM workspace_members WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

pub struct ItemRow {
    pub id: String,
    pub title_ct: Vec<u8>,
    pub status: String,
    pub assignee_id: Option<String>,
    pub due_on: Option<String>,
    pub fields_ct: Vec<u8>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub position: i64,
    pub description_ct: Option<Vec<u8>>,
    pub labels_ct: Option<Vec<u8>>,
}

pub(crate) const ITEM_COLS: &str =
    "id, title_ct, status, assignee_id, due_on, fields_ct, created_by, created_at, updated_at, position, description_ct, labels_ct";

pub(crate) fn item_from(r: &sqlx::any::AnyRow) -> Result<ItemRow, sqlx::Error> {
    Ok(ItemRow {
        id: r.try_get("id")?,
        title_ct: r.try_get("title_ct")?,
        status: r.try_get("status")?,
        assignee_id: r.try_get("assignee_id")?,
        due_on: r.try_get("due_on")?,
        fields_ct: r.try_get("fields_ct")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        position: r.try_get("position")?,
        description_ct: r.try_get("description_ct")?,
        labels_ct: r.try_get("labels_ct")?,
    })
}

pub struct ItemValues<'a> {
    pub title_ct: Vec<u8>,
    pub status: &'a str,
    pub assignee_id: Option<&'a str>,
    pub due_on: Option<&'a str>,
    pub fields_ct: Vec<u8>,
    pub description_ct: Vec<u8>,
    pub labels_ct: Vec<u8>,
}

pub async fn insert_item(
    t: &mut TenantTx,
    ws_id: &str,
    id: &str,
    v: ItemValues<'_>,
    created_by: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO items (id, org_id, workspace_id, title_ct, status, assignee_id, due_on, fields_ct, created_by, created_at, updated_at, \
         description_ct, labels_ct, position) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $10)",
    )
    .bind(id)
    .bind(org_id)
    .bind(ws_id)
    .bind(v.title_ct)
    .bind(v.status)
    .bind(v.assignee_id)
    .bind(v.due_on)
    .bind(v.fields_ct)
    .bind(created_by)
    .bind(now)
    .bind(v.description_ct)
    .bind(v.labels_ct)
    .execute(&mut *c)
    .await?;
    // Its creation time: after every item made before it, found without a lookup.
    Ok(now)
}

/// The gap left between neighbouring positions when a column is renumbered: a move between two
/// cards takes the middle, and a column is renumbered only when two neighbours have no gap left.
/// (A new item's position is its creation time in milliseconds: last in its column.)
pub const POSITION_STEP: i64 = 1 << 16;

pub async fn update_item(
    t: &mut TenantTx,
    ws_id: &str,
    id: &str,
    v: ItemValues<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "UPDATE items SET title_ct = $4, status = $5, assignee_id = $6, due_on = $7, fields_ct = $8, updated_at = $9, \
         description_ct = $10, labels_ct = $11 \
         WHERE org_id = $1 AND workspace_id = $2 AND id = $3",
    )
    .bind(org_id)
    .bind(ws_id)
    .bind(id)
    .bind(v.title_ct)
    .bind(v.status)
    .bind(v.assignee_id)
    .bind(v.due_on)
    .bind(v.fields_ct)
    .bind(now)
    .bind(v.description_ct)
    .bind(v.labels_ct)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Every item of a workspace with its (sealed) status and position, in board order.
pub async fn item_places(
    t: &mut TenantTx,
    ws_id: &str,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT id, status, position FROM items WHERE org_id = $1 AND workspace_id = $2 ORDER BY position, id",
    )
    .bind(org_id)
    .bind(ws_id)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("id")?, r.try_get("status")?, r.try_get("position")?)))
    .collect()
}

/// Puts an item in a column (its sealed status) at a position.
pub async fn place_item(
    t: &mut TenantTx,
    ws_id: &str,
    id: &str,
    status: &str,
    position: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "UPDATE items SET status = $4, position = $5, updated_at = $6 WHERE org_id = $1 AND workspace_id = $2 AND id = $3",
    )
    .bind(org_id)
    .bind(ws_id)
    .bind(id)
    .bind(status)
    .bind(position)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Renumbers items (a column whose neighbours ran out of room between them).
pub async fn set_positions(
    t: &mut TenantTx,
    ws_id: &str,
    places: &[(String, i64)],
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    for (id, position) in places {
        sqlx::query(
            "UPDATE items SET position = $4 WHERE org_id = $1 AND workspace_id = $2 AND id = $3",
        )
        .bind(org_id)
        .bind(ws_id)
        .bind(id)
        .bind(position)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Removes the search terms of one item or comment.
pub async fn remove_terms(t: &mut TenantTx, target_id: &str) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query("DELETE FROM search_terms WHERE org_id = $1 AND target_id = $2")
        .bind(org_id)
        .bind(target_id)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

/// A comment's sealed body.
pub async fn update_body(t: &mut TenantTx, id: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query("SELECT body_ct FROM item_updates WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| r.try_get("body_ct"))
        .transpose()
}

/// Adds the search terms (keyed hashes) of one item or comment.
pub async fn add_terms(
    t: &mut TenantTx,
    ws_id: &str,
    item_id: &str,
    target_id: &str,
    terms: &[String],
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    // A few terms per statement: one round trip for a typical title.
    for chunk in terms.chunks(50) {
        let mut sql = String::from(
            "INSERT INTO search_terms (org_id, workspace_id, item_id, target_id, term) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("($1, $2, $3, $4, ${})", i + 5));
        }
        // A text indexed meanwhile (the backfill racing a request) keeps its terms once.
        sql.push_str(" ON CONFLICT DO NOTHING");
        let mut q = sqlx::query(&sql)
            .bind(org_id)
            .bind(ws_id)
            .bind(item_id)
            .bind(target_id);
        for term in chunk {
            q = q.bind(term);
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}

/// Items and comments of the org carrying `words` of `terms` (every word of a query, when the
/// terms are its words' hashes under one key each), in the workspaces `user_id` may see (every
/// workspace when `all_workspaces`): `(workspace_id, item_id, target_id)`.
pub async fn search(
    t: &mut TenantTx,
    terms: &[String],
    words: usize,
    all_workspaces: bool,
    limit: i64,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    let user_id = t.user_id().to_string();
    let (c, org_id) = t.read()?;
    let mut sql = String::from(
        "SELECT s.workspace_id, s.item_id, s.target_id FROM search_terms s WHERE s.org_id = $1 AND s.term IN (",
    );
    for i in 0..terms.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("${}", i + 5));
    }
    sql.push_str(
        ") AND ($3 = 1 OR s.workspace_id IN (SELECT wm.workspace_id FROM workspace_members wm \
         WHERE wm.org_id = $1 AND wm.user_id = $2)) \
         GROUP BY s.workspace_id, s.item_id, s.target_id HAVING COUNT(DISTINCT s.term) = $4 \
         ORDER BY s.target_id DESC",
    );
    sql.push_str(&format!(" LIMIT {}", limit.clamp(1, 200)));
    let mut q = sqlx::query(&sql)
        .bind(org_id)
        .bind(user_id)
        .bind(i64::from(all_workspaces))
        .bind(i64::try_from(words).unwrap_or(i64::MAX));
    for term in terms {
        q = q.bind(term);
    }
    q.fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("workspace_id")?,
                r.try_get("item_id")?,
                r.try_get("target_id")?,
            ))
        })
        .collect()
}

pub async fn get_item(
    t: &mut TenantTx,
    ws_id: &str,
    id: &str,
) -> Result<Option<ItemRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(&format!(
        "SELECT {ITEM_COLS} FROM items WHERE org_id = $1 AND workspace_id = $2 AND id = $3"
    ))
    .bind(org_id)
    .bind(ws_id)
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .as_ref()
    .map(item_from)
    .transpose()
}

pub async fn list_items(
    t: &mut TenantTx,
    ws_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<ItemRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(&format!("SELECT {ITEM_COLS} FROM items WHERE org_id = $1 AND workspace_id = $2 AND id > $3 ORDER BY id LIMIT $4"))
        .bind(org_id)
        .bind(ws_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(item_from)
        .collect()
}

pub async fn delete_item(t: &mut TenantTx, ws_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query("DELETE FROM items WHERE org_id = $1 AND workspace_id = $2 AND id = $3")
        .bind(org_id)
        .bind(ws_id)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub struct NewUpdate<'a> {
    pub ws_id: &'a str,
    pub item_id: &'a str,
    pub id: &'a str,
    pub body_ct: Vec<u8>,
    pub author: &'a str,
    pub now: i64,
}

pub async fn insert_update(t: &mut TenantTx, u: NewUpdate<'_>) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query("INSERT INTO item_updates (id, org_id, workspace_id, item_id, body_ct, author_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(u.id)
        .bind(org_id)
        .bind(u.ws_id)
        .bind(u.item_id)
        .bind(u.body_ct)
        .bind(u.author)
        .bind(u.now)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

pub async fn list_updates(
    t: &mut TenantTx,
    ws_id: &str,
    item_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, Vec<u8>, String, i64)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT id, body_ct, author_id, created_at FROM item_updates WHERE org_id = $1 AND workspace_id = $2 AND item_id = $3 AND id > $4 ORDER BY id LIMIT $5",
    )
    .bind(org_id)
    .bind(ws_id)
    .bind(item_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("id")?, r.try_get("body_ct")?, r.try_get("author_id")?, r.try_get("created_at")?)))
    .collect()
}

/// The items assigned to the transaction's user, with their workspace, in the workspaces they
/// can see (all of them when `all_workspaces`: org owners and admins).
pub async fn assigned_to(
    t: &mut TenantTx,
    all_workspaces: bool,
    limit: i64,
) -> Result<Vec<(WorkspaceRow, ItemRow)>, sqlx::Error> {
    let user_id = t.user_id().to_string();
    let (c, org_id) = t.read()?;
    let cols = ITEM_COLS
        .split(", ")
        .map(|c| format!("i.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query(&format!(
        "SELECT {cols}, w.id AS ws_id, w.kind AS ws_kind, w.name_ct AS ws_name_ct, \
         w.description_ct AS ws_description_ct, w.statuses AS ws_statuses, w.created_at AS ws_created_at \
         FROM items i JOIN workspaces w ON w.org_id = i.org_id AND w.id = i.workspace_id \
         WHERE i.org_id = $1 AND i.assignee_id = $2 \
         AND ($3 = 1 OR EXISTS (SELECT 1 FROM workspace_members wm WHERE wm.org_id = $1 AND wm.workspace_id = w.id AND wm.user_id = $2)) \
         ORDER BY i.due_on, i.id LIMIT $4"
    ))
    .bind(org_id)
    .bind(&user_id)
    .bind(i64::from(all_workspaces))
    .bind(limit)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| {
        Ok((
            WorkspaceRow {
                id: r.try_get("ws_id")?,
                kind: r.try_get("ws_kind")?,
                name_ct: r.try_get("ws_name_ct")?,
                description_ct: r.try_get("ws_description_ct")?,
                statuses: r.try_get("ws_statuses")?,
                created_at: r.try_get("ws_created_at")?,
            },
            item_from(r)?,
        ))
    })
    .collect()
}

/// Every tenant that holds a data key (orgs, and the platform's own key id, which callers skip).
pub async fn keyed_tenants(c: &mut super::Conn) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query("SELECT DISTINCT id FROM data_keys ORDER BY id")
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect()
}

/// The org's current data key, wrapped: `(version, wrapped)`.
pub async fn current_key(t: &mut TenantTx) -> Result<Option<(i64, Vec<u8>)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT version, wrapped FROM data_keys WHERE id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(org_id)
    .fetch_optional(&mut *c)
    .await?
    .map(|r| Ok((r.try_get("version")?, r.try_get("wrapped")?)))
    .transpose()
}

/// Up to `limit` items (after `after`, by id) with no search term: `(id, workspace_id, title,
/// description, labels)` sealed.
#[allow(clippy::type_complexity)]
pub async fn unindexed_items(
    t: &mut TenantTx,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, String, Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT i.id, i.workspace_id, i.title_ct, i.description_ct, i.labels_ct FROM items i \
         WHERE i.org_id = $1 AND i.id > $2 \
         AND NOT EXISTS (SELECT 1 FROM search_terms s WHERE s.org_id = i.org_id AND s.target_id = i.id) \
         ORDER BY i.id LIMIT $3",
    )
    .bind(org_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("id")?,
            r.try_get("workspace_id")?,
            r.try_get("title_ct")?,
            r.try_get("description_ct")?,
            r.try_get("labels_ct")?,
        ))
    })
    .collect()
}

/// Up to `limit` comments (after `after`, by id) with no search term: `(id, workspace_id,
/// item_id, body)` sealed.
pub async fn unindexed_updates(
    t: &mut TenantTx,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, String, String, Vec<u8>)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT u.id, u.workspace_id, u.item_id, u.body_ct FROM item_updates u \
         WHERE u.org_id = $1 AND u.id > $2 \
         AND NOT EXISTS (SELECT 1 FROM search_terms s WHERE s.org_id = u.org_id AND s.target_id = u.id) \
         ORDER BY u.id LIMIT $3",
    )
    .bind(org_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("id")?,
            r.try_get("workspace_id")?,
            r.try_get("item_id")?,
            r.try_get("body_ct")?,
        ))
    })
    .collect()
}
