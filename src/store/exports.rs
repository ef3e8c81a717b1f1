//! Exports: their rows (the zips themselves are objects under `exports/`), and the queries that
//! gather a person's own rows for their export.

use sqlx::Row;

use super::tenant::TenantTx;
use super::Conn;

pub struct ExportRow {
    pub id: String,
    pub kind: String,
    pub user_id: String,
    pub org_id: Option<String>,
    pub status: String,
    pub key_wrapped: Option<Vec<u8>>,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    pub progress: i64,
    pub created_at: i64,
    pub ready_at: Option<i64>,
    pub expires_at: i64,
}

const COLS: &str =
    "id, kind, user_id, org_id, status, key_wrapped, size, sha256, progress, created_at, ready_at, expires_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<ExportRow, sqlx::Error> {
    Ok(ExportRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        user_id: r.try_get("user_id")?,
        org_id: r.try_get("org_id")?,
        status: r.try_get("status")?,
        key_wrapped: r.try_get("key_wrapped")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        progress: r.try_get("progress")?,
        created_at: r.try_get("created_at")?,
        ready_at: r.try_get("ready_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

pub struct NewExport<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub user_id: &'a str,
    pub org_id: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

pub async fn insert(c: &mut Conn, e: NewExport<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO exports (id, kind, user_id, org_id, status, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, 'pending', $5, $6)",
    )
    .bind(e.id)
    .bind(e.kind)
    .bind(e.user_id)
    .bind(e.org_id)
    .bind(e.now)
    .bind(e.expires_at)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

/// The user's export `id`.
pub async fn get(c: &mut Conn, user_id: &str, id: &str) -> Result<Option<ExportRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLS} FROM exports WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(&mut *c)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// The user's exports of `kind` (and org), newest first.
pub async fn list(
    c: &mut Conn,
    user_id: &str,
    kind: &str,
    org_id: Option<&str>,
    limit: i64,
) -> Result<Vec<ExportRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLS} FROM exports WHERE user_id = $1 AND kind = $2 AND ($3 = '' OR org_id = $3) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(user_id)
    .bind(kind)
    .bind(org_id.unwrap_or(""))
    .bind(limit)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// How many exports the user asked for since `since` (a limit on requests).
pub async fn count_since(c: &mut Conn, user_id: &str, since: i64) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM exports WHERE user_id = $1 AND created_at >= $2")
        .bind(user_id)
        .bind(since)
        .fetch_one(&mut *c)
        .await?
        .try_get("n")
}

/// Claims a pending export whose lease is free: `(id)`.
pub async fn claim(
    c: &mut Conn,
    now: i64,
    lease_ms: i64,
) -> Result<Option<ExportRow>, sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE exports SET locked_until = $2 WHERE id = (SELECT id FROM exports WHERE status = 'pending' \
           AND (locked_until IS NULL OR locked_until <= $1) ORDER BY created_at, id LIMIT 1) \
           AND status = 'pending' AND (locked_until IS NULL OR locked_until <= $1) \
         RETURNING {COLS}"
    ))
    .bind(now)
    .bind(now + lease_ms)
    .fetch_optional(&mut *c)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

pub async fn set_progress(c: &mut Conn, id: &str, progress: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE exports SET progress = $2 WHERE id = $1")
        .bind(id)
        .bind(progress)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

pub struct Ready<'a> {
    pub id: &'a str,
    pub key_wrapped: Vec<u8>,
    pub size: i64,
    pub sha256: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// Marks a built export ready; false when it is gone meanwhile (its owner erased).
pub async fn ready(c: &mut Conn, r: Ready<'_>) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE exports SET status = 'ready', key_wrapped = $2, size = $3, sha256 = $4, ready_at = $5, \
         expires_at = $6, locked_until = NULL WHERE id = $1 AND status = 'pending'",
    )
    .bind(r.id)
    .bind(r.key_wrapped)
    .bind(r.size)
    .bind(r.sha256)
    .bind(r.now)
    .bind(r.expires_at)
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn failed(c: &mut Conn, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE exports SET status = 'failed', locked_until = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

/// Exports past their time (ready or not), and those of `user_id` if given: `(id)`.
pub async fn ended(
    c: &mut Conn,
    now: i64,
    user_id: Option<&str>,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query("SELECT id FROM exports WHERE expires_at <= $1 OR user_id = $2 ORDER BY id")
        .bind(now)
        .bind(user_id.unwrap_or(""))
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect()
}

pub async fn delete(c: &mut Conn, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM exports WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

// ---- a person's rows in one org (their tenant transaction) ----

/// Items the user created or is assigned, by id after `after`.
pub async fn items_of(
    t: &mut TenantTx,
    user_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, super::work::ItemRow)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let rows = sqlx::query(&format!(
        "SELECT workspace_id, {} FROM items WHERE org_id = $1 AND (created_by = $2 OR assignee_id = $2) \
         AND id > $3 ORDER BY id LIMIT $4",
        super::work::ITEM_COLS
    ))
    .bind(org_id)
    .bind(user_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("workspace_id")?, super::work::item_from(r)?)))
        .collect()
}

/// Comments the user wrote: `(id, workspace_id, item_id, body_ct, created_at)`.
pub async fn comments_of(
    t: &mut TenantTx,
    user_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, String, String, Vec<u8>, i64)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT id, workspace_id, item_id, body_ct, created_at FROM item_updates \
         WHERE org_id = $1 AND author_id = $2 AND id > $3 ORDER BY id LIMIT $4",
    )
    .bind(org_id)
    .bind(user_id)
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
            r.try_get("created_at")?,
        ))
    })
    .collect()
}

/// Documents the user uploaded (their latest version's metadata):
/// `(id, workspace_id, name_ct, created_at, size, sha256, content_type)`.
#[allow(clippy::type_complexity)]
pub async fn documents_of(
    t: &mut TenantTx,
    user_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, String, Vec<u8>, i64, i64, String, String)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT d.id AS id, d.workspace_id AS workspace_id, d.name_ct AS name_ct, d.created_at AS created_at, \
         v.size AS size, v.sha256 AS sha256, v.content_type AS content_type \
         FROM documents d JOIN document_versions v ON v.org_id = d.org_id AND v.document_id = d.id \
           AND v.number = d.latest_version \
         WHERE d.org_id = $1 AND d.created_by = $2 AND d.id > $3 ORDER BY d.id LIMIT $4",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("id")?,
            r.try_get("workspace_id")?,
            r.try_get("name_ct")?,
            r.try_get("created_at")?,
            r.try_get("size")?,
            r.try_get("sha256")?,
            r.try_get("content_type")?,
        ))
    })
    .collect()
}

/// API keys the user made: `(prefix, name, scopes, created_at, revoked_at)`.
pub async fn api_keys_of(
    t: &mut TenantTx,
    user_id: &str,
) -> Result<Vec<(String, String, String, i64, Option<i64>)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT prefix, name, scopes, created_at, revoked_at FROM api_keys \
         WHERE org_id = $1 AND created_by = $2 ORDER BY created_at, id",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("prefix")?,
            r.try_get("name")?,
            r.try_get("scopes")?,
            r.try_get("created_at")?,
            r.try_get("revoked_at")?,
        ))
    })
    .collect()
}

/// Events of the transaction's chain whose actor or target is the user, by seq after `after`.
pub async fn events_about(
    t: &mut TenantTx,
    user_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<super::audit::EventRow>, sqlx::Error> {
    let chain = t.chain().to_string();
    let c = t.conn()?;
    super::audit::about(c, &chain, user_id, after, limit).await
}

// ---- a whole org (an owner's export, in the org's transaction) ----

/// Every comment of the org: `(id, workspace_id, item_id, author_id, body_ct, created_at)`.
#[allow(clippy::type_complexity)]
pub async fn all_comments(
    t: &mut TenantTx,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, String, String, String, Vec<u8>, i64)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT id, workspace_id, item_id, author_id, body_ct, created_at FROM item_updates \
         WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3",
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
            r.try_get("author_id")?,
            r.try_get("body_ct")?,
            r.try_get("created_at")?,
        ))
    })
    .collect()
}

/// One document of the org with its latest version.
pub struct OrgDocument {
    pub id: String,
    pub workspace_id: String,
    pub folder_id: Option<String>,
    pub name_ct: Vec<u8>,
    pub created_by: String,
    pub created_at: i64,
    pub version_id: String,
    pub version: i64,
    pub size: i64,
    pub sha256: String,
    pub content_type: String,
    pub key_wrapped: Vec<u8>,
}

/// Every document of the org, by id after `after`.
pub async fn all_documents(
    t: &mut TenantTx,
    after: &str,
    limit: i64,
) -> Result<Vec<OrgDocument>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT d.id AS id, d.workspace_id AS workspace_id, d.folder_id AS folder_id, d.name_ct AS name_ct, \
         d.created_by AS created_by, d.created_at AS created_at, v.id AS version_id, v.number AS version, \
         v.size AS size, v.sha256 AS sha256, v.content_type AS content_type, v.key_wrapped AS key_wrapped \
         FROM documents d JOIN document_versions v ON v.org_id = d.org_id AND v.document_id = d.id \
           AND v.number = d.latest_version \
         WHERE d.org_id = $1 AND d.id > $2 ORDER BY d.id LIMIT $3",
    )
    .bind(org_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| {
        Ok(OrgDocument {
            id: r.try_get("id")?,
            workspace_id: r.try_get("workspace_id")?,
            folder_id: r.try_get("folder_id")?,
            name_ct: r.try_get("name_ct")?,
            created_by: r.try_get("created_by")?,
            created_at: r.try_get("created_at")?,
            version_id: r.try_get("version_id")?,
            version: r.try_get("version")?,
            size: r.try_get("size")?,
            sha256: r.try_get("sha256")?,
            content_type: r.try_get("content_type")?,
            key_wrapped: r.try_get("key_wrapped")?,
        })
    })
    .collect()
}
