//! Documents, folders, versions, share links and their uses (see migration 0015). Every function
//! on a tenant table takes the org's `TenantTx`; `blob_garbage` and `share_link_tokens` hold ids
//! and keyed hashes only and are read outside any org (the cleanup job, a link's first lookup).

use sqlx::Row;

use super::tenant::TenantTx;
use super::{Conn, Db};

/// A folder as stored.
pub struct FolderRow {
    pub id: String,
    pub parent_id: Option<String>,
    pub name_ct: Vec<u8>,
    pub created_at: i64,
}

pub async fn insert_folder(
    t: &mut TenantTx,
    ws_id: &str,
    f: &FolderRow,
    created_by: &str,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO folders (id, org_id, workspace_id, parent_id, name_ct, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&f.id)
    .bind(org_id)
    .bind(ws_id)
    .bind(&f.parent_id)
    .bind(&f.name_ct)
    .bind(created_by)
    .bind(f.created_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub async fn list_folders(t: &mut TenantTx, ws_id: &str) -> Result<Vec<FolderRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let rows = sqlx::query(
        "SELECT id, parent_id, name_ct, created_at FROM folders \
         WHERE org_id = $1 AND workspace_id = $2 ORDER BY id LIMIT 1000",
    )
    .bind(org_id)
    .bind(ws_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(FolderRow {
                id: r.try_get("id")?,
                parent_id: r.try_get("parent_id")?,
                name_ct: r.try_get("name_ct")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

pub async fn folder_exists(t: &mut TenantTx, ws_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.read()?;
    Ok(sqlx::query(
        "SELECT 1 AS x FROM folders WHERE org_id = $1 AND workspace_id = $2 AND id = $3",
    )
    .bind(org_id)
    .bind(ws_id)
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .is_some())
}

/// Whether the folder holds a document or a folder.
pub async fn folder_in_use(t: &mut TenantTx, ws_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.read()?;
    Ok(sqlx::query(
        "SELECT 1 AS x FROM documents WHERE org_id = $1 AND workspace_id = $2 AND folder_id = $3 \
         UNION ALL SELECT 1 AS x FROM folders WHERE org_id = $1 AND workspace_id = $2 AND parent_id = $3 LIMIT 1",
    )
    .bind(org_id)
    .bind(ws_id)
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .is_some())
}

pub async fn delete_folder(t: &mut TenantTx, ws_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query("DELETE FROM folders WHERE org_id = $1 AND workspace_id = $2 AND id = $3")
        .bind(org_id)
        .bind(ws_id)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// A document with its latest version.
pub struct DocumentRow {
    pub id: String,
    pub folder_id: Option<String>,
    pub name_ct: Vec<u8>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub latest: VersionRow,
}

/// One version of a document.
pub struct VersionRow {
    pub id: String,
    pub number: i64,
    pub name_ct: Vec<u8>,
    pub size: i64,
    pub sha256: String,
    pub content_type: String,
    pub key_wrapped: Vec<u8>,
    pub uploaded_by: String,
    pub created_at: i64,
}

const DOC_COLS: &str = "d.id AS id, d.folder_id AS folder_id, d.name_ct AS name_ct, d.created_by AS created_by, \
     d.created_at AS created_at, d.updated_at AS updated_at, v.id AS v_id, v.number AS v_number, \
     v.name_ct AS v_name_ct, v.size AS v_size, v.sha256 AS v_sha256, v.content_type AS v_content_type, \
     v.key_wrapped AS v_key_wrapped, v.uploaded_by AS v_uploaded_by, v.created_at AS v_created_at";

fn version_of(r: &sqlx::any::AnyRow, p: &str) -> Result<VersionRow, sqlx::Error> {
    let col = |c: &str| format!("{p}{c}");
    Ok(VersionRow {
        id: r.try_get(col("id").as_str())?,
        number: r.try_get(col("number").as_str())?,
        name_ct: r.try_get(col("name_ct").as_str())?,
        size: r.try_get(col("size").as_str())?,
        sha256: r.try_get(col("sha256").as_str())?,
        content_type: r.try_get(col("content_type").as_str())?,
        key_wrapped: r.try_get(col("key_wrapped").as_str())?,
        uploaded_by: r.try_get(col("uploaded_by").as_str())?,
        created_at: r.try_get(col("created_at").as_str())?,
    })
}

fn document_of(r: &sqlx::any::AnyRow) -> Result<DocumentRow, sqlx::Error> {
    Ok(DocumentRow {
        id: r.try_get("id")?,
        folder_id: r.try_get("folder_id")?,
        name_ct: r.try_get("name_ct")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        latest: version_of(r, "v_")?,
    })
}

/// The workspace's documents after `after` (ids ascending), with their latest versions; only
/// those in `folder` when one is named (`Some("")`: at the top level).
pub async fn list_documents(
    t: &mut TenantTx,
    ws_id: &str,
    folder: Option<&str>,
    after: &str,
    limit: i64,
) -> Result<Vec<DocumentRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let folder_filter = match folder {
        None => "",
        Some("") => "AND d.folder_id IS NULL",
        Some(_) => "AND d.folder_id = $5",
    };
    let sql = format!(
        "SELECT {DOC_COLS} FROM documents d JOIN document_versions v \
         ON v.org_id = d.org_id AND v.document_id = d.id AND v.number = d.latest_version \
         WHERE d.org_id = $1 AND d.workspace_id = $2 AND d.id > $3 {folder_filter} ORDER BY d.id LIMIT $4"
    );
    let mut q = sqlx::query(&sql)
        .bind(org_id)
        .bind(ws_id)
        .bind(after)
        .bind(limit);
    if let Some(f) = folder.filter(|f| !f.is_empty()) {
        q = q.bind(f);
    }
    let rows = q.fetch_all(&mut *c).await?;
    rows.iter().map(document_of).collect()
}

pub async fn get_document(
    t: &mut TenantTx,
    ws_id: &str,
    id: &str,
) -> Result<Option<DocumentRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let sql = format!(
        "SELECT {DOC_COLS} FROM documents d JOIN document_versions v \
         ON v.org_id = d.org_id AND v.document_id = d.id AND v.number = d.latest_version \
         WHERE d.org_id = $1 AND d.workspace_id = $2 AND d.id = $3"
    );
    sqlx::query(&sql)
        .bind(org_id)
        .bind(ws_id)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .as_ref()
        .map(document_of)
        .transpose()
}

/// Every version of a document, newest first.
pub async fn list_versions(t: &mut TenantTx, doc_id: &str) -> Result<Vec<VersionRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let rows = sqlx::query(
        "SELECT id AS v_id, number AS v_number, name_ct AS v_name_ct, size AS v_size, sha256 AS v_sha256, \
         content_type AS v_content_type, key_wrapped AS v_key_wrapped, uploaded_by AS v_uploaded_by, \
         created_at AS v_created_at FROM document_versions WHERE org_id = $1 AND document_id = $2 \
         ORDER BY number DESC",
    )
    .bind(org_id)
    .bind(doc_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(|r| version_of(r, "v_")).collect()
}

/// A new document with its first version (`d.latest` is it).
pub async fn insert_document(
    t: &mut TenantTx,
    ws_id: &str,
    d: &DocumentRow,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO documents (id, org_id, workspace_id, folder_id, name_ct, latest_version, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&d.id)
    .bind(org_id)
    .bind(ws_id)
    .bind(&d.folder_id)
    .bind(&d.name_ct)
    .bind(d.latest.number)
    .bind(&d.created_by)
    .bind(d.created_at)
    .bind(d.updated_at)
    .execute(&mut *c)
    .await?;
    insert_version(t, &d.id, &d.latest).await
}

pub async fn insert_version(
    t: &mut TenantTx,
    doc_id: &str,
    v: &VersionRow,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO document_versions (id, org_id, document_id, number, name_ct, size, sha256, content_type, key_wrapped, uploaded_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&v.id)
    .bind(org_id)
    .bind(doc_id)
    .bind(v.number)
    .bind(&v.name_ct)
    .bind(v.size)
    .bind(&v.sha256)
    .bind(&v.content_type)
    .bind(&v.key_wrapped)
    .bind(&v.uploaded_by)
    .bind(v.created_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Makes version `number` (already inserted) the document's latest, named `name_ct`.
pub async fn set_latest(
    t: &mut TenantTx,
    ws_id: &str,
    doc_id: &str,
    number: i64,
    name_ct: &[u8],
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "UPDATE documents SET latest_version = $4, name_ct = $5, updated_at = $6 \
         WHERE org_id = $1 AND workspace_id = $2 AND id = $3",
    )
    .bind(org_id)
    .bind(ws_id)
    .bind(doc_id)
    .bind(number)
    .bind(name_ct)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Renames and/or moves a document.
pub async fn update_document(
    t: &mut TenantTx,
    ws_id: &str,
    doc_id: &str,
    name_ct: Option<&[u8]>,
    folder_id: Option<Option<&str>>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "UPDATE documents SET name_ct = COALESCE($4, name_ct), \
         folder_id = CASE WHEN $5 = 1 THEN $6 ELSE folder_id END, updated_at = $7 \
         WHERE org_id = $1 AND workspace_id = $2 AND id = $3",
    )
    .bind(org_id)
    .bind(ws_id)
    .bind(doc_id)
    .bind(name_ct)
    .bind(i64::from(folder_id.is_some()))
    .bind(folder_id.flatten())
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The ids of a document's versions (their objects are to be removed with it).
pub async fn version_ids(t: &mut TenantTx, doc_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let rows =
        sqlx::query("SELECT id FROM document_versions WHERE org_id = $1 AND document_id = $2")
            .bind(org_id)
            .bind(doc_id)
            .fetch_all(&mut *c)
            .await?;
    rows.iter().map(|r| r.try_get("id")).collect()
}

/// The ids of every version of every document in a workspace.
pub async fn workspace_version_ids(
    t: &mut TenantTx,
    ws_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let rows = sqlx::query(
        "SELECT v.id AS id FROM document_versions v JOIN documents d ON d.org_id = v.org_id AND d.id = v.document_id \
         WHERE d.org_id = $1 AND d.workspace_id = $2",
    )
    .bind(org_id)
    .bind(ws_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(|r| r.try_get("id")).collect()
}

/// Deletes a document with its versions, links and their uses.
pub async fn delete_document(
    t: &mut TenantTx,
    ws_id: &str,
    doc_id: &str,
) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r =
        sqlx::query("DELETE FROM documents WHERE org_id = $1 AND workspace_id = $2 AND id = $3")
            .bind(org_id)
            .bind(ws_id)
            .bind(doc_id)
            .execute(&mut *c)
            .await?;
    Ok(r.rows_affected() == 1)
}

// ---- share links ----

/// A share link as stored.
pub struct LinkRow {
    pub id: String,
    pub document_id: String,
    pub version_id: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub max_downloads: Option<i64>,
    pub downloads: i64,
    pub password_hash: Option<String>,
    pub recipient_ct: Option<Vec<u8>>,
    pub watermark: bool,
    pub notify: bool,
    pub first_access_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const LINK_COLS: &str = "l.id AS id, l.document_id AS document_id, l.version_id AS version_id, \
     l.created_by AS created_by, l.created_at AS created_at, l.expires_at AS expires_at, \
     l.max_downloads AS max_downloads, l.downloads AS downloads, l.password_hash AS password_hash, \
     l.recipient_ct AS recipient_ct, l.watermark AS watermark, l.notify AS notify, \
     l.first_access_at AS first_access_at, l.revoked_at AS revoked_at";

fn link_of(r: &sqlx::any::AnyRow) -> Result<LinkRow, sqlx::Error> {
    Ok(LinkRow {
        id: r.try_get("id")?,
        document_id: r.try_get("document_id")?,
        version_id: r.try_get("version_id")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        max_downloads: r.try_get("max_downloads")?,
        downloads: r.try_get("downloads")?,
        password_hash: r.try_get("password_hash")?,
        recipient_ct: r.try_get("recipient_ct")?,
        watermark: r.try_get::<i64, _>("watermark")? != 0,
        notify: r.try_get::<i64, _>("notify")? != 0,
        first_access_at: r.try_get("first_access_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

pub async fn insert_link(
    t: &mut TenantTx,
    l: &LinkRow,
    token_hash: &str,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO share_links (id, org_id, document_id, version_id, created_by, created_at, expires_at, \
         max_downloads, downloads, password_hash, recipient_ct, watermark, notify) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $12)",
    )
    .bind(&l.id)
    .bind(org_id)
    .bind(&l.document_id)
    .bind(&l.version_id)
    .bind(&l.created_by)
    .bind(l.created_at)
    .bind(l.expires_at)
    .bind(l.max_downloads)
    .bind(&l.password_hash)
    .bind(&l.recipient_ct)
    .bind(i64::from(l.watermark))
    .bind(i64::from(l.notify))
    .execute(&mut *c)
    .await?;
    sqlx::query("INSERT INTO share_link_tokens (token_hash, link_id, org_id) VALUES ($1, $2, $3)")
        .bind(token_hash)
        .bind(&l.id)
        .bind(org_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// A document's links, newest first, with how many times each was used.
pub async fn list_links(t: &mut TenantTx, doc_id: &str) -> Result<Vec<LinkRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let rows = sqlx::query(&format!(
        "SELECT {LINK_COLS} FROM share_links l WHERE l.org_id = $1 AND l.document_id = $2 ORDER BY l.id DESC LIMIT 500"
    ))
    .bind(org_id)
    .bind(doc_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(link_of).collect()
}

pub async fn get_link(
    t: &mut TenantTx,
    doc_id: Option<&str>,
    link_id: &str,
) -> Result<Option<LinkRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(&format!(
        "SELECT {LINK_COLS} FROM share_links l WHERE l.org_id = $1 AND l.id = $2 \
         AND ($3 = '' OR l.document_id = $3)"
    ))
    .bind(org_id)
    .bind(link_id)
    .bind(doc_id.unwrap_or(""))
    .fetch_optional(&mut *c)
    .await?
    .as_ref()
    .map(link_of)
    .transpose()
}

/// Revokes a link (once: false when it was revoked already or is not the document's).
pub async fn revoke_link(
    t: &mut TenantTx,
    doc_id: &str,
    link_id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "UPDATE share_links SET revoked_at = $4 WHERE org_id = $1 AND document_id = $2 AND id = $3 AND revoked_at IS NULL",
    )
    .bind(org_id)
    .bind(doc_id)
    .bind(link_id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Where a link's token leads: (link id, org id). Outside any org: the token is the authority.
pub async fn find_link_token(
    c: &mut Conn,
    token_hash: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query("SELECT link_id, org_id FROM share_link_tokens WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| Ok((r.try_get("link_id")?, r.try_get("org_id")?)))
        .transpose()
}

/// Counts one download, only while the link is live (not revoked, not expired, not used up):
/// false when it is not, so two last downloads cannot both pass. Marks its first use.
pub async fn count_download(
    t: &mut TenantTx,
    link_id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "UPDATE share_links SET downloads = downloads + 1, first_access_at = COALESCE(first_access_at, $3) \
         WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL AND expires_at > $3 \
         AND (max_downloads IS NULL OR downloads < max_downloads)",
    )
    .bind(org_id)
    .bind(link_id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// One use of a link.
pub struct AccessRow {
    pub id: String,
    pub link_id: String,
    pub at: i64,
    pub outcome: String,
    pub ip: String,
    pub recipient_ct: Option<Vec<u8>>,
    pub bytes: i64,
}

pub async fn insert_access(t: &mut TenantTx, a: &AccessRow) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO link_accesses (id, org_id, link_id, at, outcome, ip, recipient_ct, bytes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&a.id)
    .bind(org_id)
    .bind(&a.link_id)
    .bind(a.at)
    .bind(&a.outcome)
    .bind(&a.ip)
    .bind(&a.recipient_ct)
    .bind(a.bytes)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// A link's uses, newest first.
pub async fn list_accesses(t: &mut TenantTx, link_id: &str) -> Result<Vec<AccessRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let rows = sqlx::query(
        "SELECT id, link_id, at, outcome, ip, recipient_ct, bytes FROM link_accesses \
         WHERE org_id = $1 AND link_id = $2 ORDER BY id DESC LIMIT 500",
    )
    .bind(org_id)
    .bind(link_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AccessRow {
                id: r.try_get("id")?,
                link_id: r.try_get("link_id")?,
                at: r.try_get("at")?,
                outcome: r.try_get("outcome")?,
                ip: r.try_get("ip")?,
                recipient_ct: r.try_get("recipient_ct")?,
                bytes: r.try_get("bytes")?,
            })
        })
        .collect()
}

/// Whether the user still reaches the workspace: an org admin or owner, or any workspace role.
pub async fn user_reaches_workspace(
    t: &mut TenantTx,
    ws_id: &str,
    user_id: &str,
) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.read()?;
    Ok(sqlx::query(
        "SELECT 1 AS x FROM org_members m JOIN workspaces w ON w.org_id = m.org_id AND w.id = $2 \
         LEFT JOIN workspace_members wm ON wm.org_id = m.org_id AND wm.workspace_id = w.id AND wm.user_id = m.user_id \
         WHERE m.org_id = $1 AND m.user_id = $3 AND (m.role IN ('admin', 'owner') OR wm.role IS NOT NULL)",
    )
    .bind(org_id)
    .bind(ws_id)
    .bind(user_id)
    .fetch_optional(&mut *c)
    .await?
    .is_some())
}

/// The workspace a document is in (for a link, which names only the document).
pub async fn document_workspace(
    t: &mut TenantTx,
    doc_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query("SELECT workspace_id FROM documents WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(doc_id)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| r.try_get("workspace_id"))
        .transpose()
}

pub async fn get_version(
    t: &mut TenantTx,
    doc_id: &str,
    version_id: &str,
) -> Result<Option<VersionRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT id AS v_id, number AS v_number, name_ct AS v_name_ct, size AS v_size, sha256 AS v_sha256, \
         content_type AS v_content_type, key_wrapped AS v_key_wrapped, uploaded_by AS v_uploaded_by, \
         created_at AS v_created_at FROM document_versions WHERE org_id = $1 AND document_id = $2 AND id = $3",
    )
    .bind(org_id)
    .bind(doc_id)
    .bind(version_id)
    .fetch_optional(&mut *c)
    .await?
    .as_ref()
    .map(|r| version_of(r, "v_"))
    .transpose()
}

// ---- one-time codes for a link's recipient ----

pub async fn insert_code(
    t: &mut TenantTx,
    id: &str,
    link_id: &str,
    email_ct: &[u8],
    code_hash: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO link_codes (id, org_id, link_id, email_ct, code_hash, attempts, expires_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $6)",
    )
    .bind(id)
    .bind(org_id)
    .bind(link_id)
    .bind(email_ct)
    .bind(code_hash)
    .bind(expires_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// The live code `id` of link `link_id`: (sealed email, code hash, attempts so far).
pub async fn get_code(
    t: &mut TenantTx,
    link_id: &str,
    id: &str,
    now: i64,
) -> Result<Option<(Vec<u8>, String, i64)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT email_ct, code_hash, attempts FROM link_codes WHERE org_id = $1 AND link_id = $2 AND id = $3 \
         AND used_at IS NULL AND expires_at > $4",
    )
    .bind(org_id)
    .bind(link_id)
    .bind(id)
    .bind(now)
    .fetch_optional(&mut *c)
    .await?
    .map(|r| {
        Ok((
            r.try_get("email_ct")?,
            r.try_get("code_hash")?,
            r.try_get("attempts")?,
        ))
    })
    .transpose()
}

/// Records a wrong try (`used` false) or the code's one use (`used` true).
pub async fn spend_code(
    t: &mut TenantTx,
    id: &str,
    used: bool,
    now: i64,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "UPDATE link_codes SET attempts = attempts + 1, used_at = CASE WHEN $3 = 1 THEN $4 ELSE used_at END \
         WHERE org_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(id)
    .bind(i64::from(used))
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(())
}

// ---- objects to remove ----

/// Marks `object_key` for removal once `not_before` has passed (an upload in progress, or a
/// deleted document's version). Already marked: the new time replaces the old.
pub async fn mark_garbage(
    c: &mut Conn,
    object_key: &str,
    not_before: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO blob_garbage (object_key, not_before) VALUES ($1, $2) \
         ON CONFLICT (object_key) DO UPDATE SET not_before = excluded.not_before",
    )
    .bind(object_key)
    .bind(not_before)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

/// Claims `object_key` (an upload now recorded as a version): no longer garbage.
pub async fn claim_object(c: &mut Conn, object_key: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM blob_garbage WHERE object_key = $1")
        .bind(object_key)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Up to `limit` object keys whose time has come.
pub async fn due_garbage(db: &Db, now: i64, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    let mut c = db.acquire().await?;
    // Nothing is removed while a backup may still copy it.
    if super::dump::leased(&mut c, now).await? {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT object_key FROM blob_garbage WHERE not_before <= $1 ORDER BY not_before LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(|r| r.try_get("object_key")).collect()
}

/// Forgets `object_key` after its object was removed.
pub async fn forget_garbage(db: &Db, object_key: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    claim_object(&mut tx, object_key).await?;
    tx.commit().await
}
