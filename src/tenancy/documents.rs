//! Documents in a workspace: folders, uploads (and new versions), downloads, deletion, and the
//! share links editors make for people outside. Viewers read and download the latest version;
//! editors upload, see and download every version, and manage links.
//!
//! An upload runs in two short transactions around the transfer: the first checks the caller's
//! role and marks the object about to be written as garbage-unless-claimed (so a crash or a
//! dropped connection leaves nothing the cleanup job will not remove), the second checks the role
//! again and records the version, claiming its object. No transaction is open while bytes flow.

use serde_json::json;

use super::workspaces::{authorize_workspace, WorkspaceScope, WsRole};
use super::{audit_org, decode_cursor, page, page_limit, Page};
use crate::audit::Action;
use crate::blobs::document_key;
use crate::content::Stored;
use crate::crypto::stream::ContentKey;
use crate::crypto::TenantKey;
use crate::error::{AppError, AppResult};
use crate::identity::{AuthSession, RequestCtx};
use crate::state::App;
use crate::store::documents::{self as store, DocumentRow, FolderRow, LinkRow, VersionRow};
use crate::store::tenant::Mode;

/// The longest a share link may live.
pub const MAX_LINK_SECS: i64 = 30 * 24 * 3600;
const NAME_MAX_CHARS: usize = 200;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DocumentView {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
    pub folder_id: Option<String>,
    /// The latest version's number (1 for the first upload).
    pub version: i64,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    /// Every version, newest first: shown to editors only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<VersionView>>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct VersionView {
    pub id: String,
    pub number: i64,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
    pub uploaded_by: String,
    pub created_at: String,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FolderView {
    pub id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub created_at: String,
}

fn rfc(ms: i64) -> String {
    crate::clock::rfc3339(ms)
}

pub(crate) fn open_name(key: &TenantKey, table: &str, row: &str, ct: &[u8]) -> AppResult<String> {
    key.open_string(table, "name", row, ct)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("document name did not open: {e}")))
}

fn version_view(key: &TenantKey, v: &VersionRow) -> AppResult<VersionView> {
    Ok(VersionView {
        id: v.id.clone(),
        number: v.number,
        name: open_name(key, "document_versions", &v.id, &v.name_ct)?,
        size: v.size,
        content_type: v.content_type.clone(),
        sha256: v.sha256.clone(),
        uploaded_by: v.uploaded_by.clone(),
        created_at: rfc(v.created_at),
    })
}

fn document_view(key: &TenantKey, d: &DocumentRow) -> AppResult<DocumentView> {
    Ok(DocumentView {
        id: d.id.clone(),
        name: open_name(key, "documents", &d.id, &d.name_ct)?,
        size: d.latest.size,
        content_type: d.latest.content_type.clone(),
        sha256: d.latest.sha256.clone(),
        folder_id: d.folder_id.clone(),
        version: d.latest.number,
        created_by: d.created_by.clone(),
        created_at: rfc(d.created_at),
        updated_at: rfc(d.updated_at),
        versions: None,
    })
}

/// A file name as people will see it and as it is offered for saving: the last component of
/// whatever path a client sent, without invisible, control or direction-changing characters,
/// without characters that mean something to a file system, no dots or spaces at either end, at
/// most 200 characters (the extension kept), never empty.
pub fn safe_filename(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .nfc()
        .filter(|c| !crate::text::is_hidden(*c))
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
    let mut name = if trimmed.is_empty() {
        "document".to_string()
    } else {
        trimmed.to_string()
    };
    if name.chars().count() > NAME_MAX_CHARS {
        let ext: String = match name.rsplit_once('.') {
            Some((_, e)) if !e.is_empty() && e.chars().count() <= 16 => format!(".{e}"),
            _ => String::new(),
        };
        let keep = NAME_MAX_CHARS - ext.chars().count();
        name = name.chars().take(keep).collect::<String>() + &ext;
    }
    name
}

// ---- folders ----

pub async fn create_folder(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    name: &str,
    parent_id: Option<&str>,
) -> AppResult<FolderView> {
    ws.require(WsRole::Editor)?;
    crate::text::check_name("name", name)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX_CHARS {
        return Err(AppError::invalid(
            "invalid_name",
            "name: 1 to 200 characters.",
        ));
    }
    let ws_id = ws.id().to_string();
    if let Some(p) = parent_id {
        if uuid::Uuid::parse_str(p).is_err()
            || !store::folder_exists(ws.org.tx(), &ws_id, p).await?
        {
            return Err(AppError::invalid(
                "unknown_folder",
                "parent_id: no such folder in this workspace.",
            ));
        }
    }
    let now = app.clock.now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    let f = FolderRow {
        id: id.clone(),
        parent_id: parent_id.map(str::to_string),
        name_ct: ws.org.key().seal("folders", "name", &id, name.as_bytes()),
        created_at: now,
    };
    let user = ws.org.user_id().to_string();
    store::insert_folder(ws.org.tx(), &ws_id, &f, &user).await?;
    audit_org(
        &mut ws.org,
        ctx,
        Action::FolderCreated,
        ("folder", &id),
        json!({ "workspace_id": ws_id }),
        now,
    )
    .await?;
    ws.org.commit().await?;
    Ok(FolderView {
        id,
        parent_id: f.parent_id,
        name: name.to_string(),
        created_at: rfc(now),
    })
}

pub async fn list_folders(ws: &mut WorkspaceScope) -> AppResult<Vec<FolderView>> {
    let ws_id = ws.id().to_string();
    let rows = store::list_folders(ws.org.tx(), &ws_id).await?;
    rows.iter()
        .map(|f| {
            Ok(FolderView {
                id: f.id.clone(),
                parent_id: f.parent_id.clone(),
                name: open_name(ws.org.key(), "folders", &f.id, &f.name_ct)?,
                created_at: rfc(f.created_at),
            })
        })
        .collect()
}

/// Deletes an empty folder (409 `folder_not_empty` otherwise: documents are deleted one by one,
/// each with its own audit event).
pub async fn delete_folder(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    folder_id: &str,
) -> AppResult<()> {
    ws.require(WsRole::Editor)?;
    let ws_id = ws.id().to_string();
    if uuid::Uuid::parse_str(folder_id).is_err()
        || !store::folder_exists(ws.org.tx(), &ws_id, folder_id).await?
    {
        return Err(AppError::NotFound);
    }
    if store::folder_in_use(ws.org.tx(), &ws_id, folder_id).await? {
        return Err(AppError::Conflict {
            code: "folder_not_empty",
            detail: "The folder still holds documents or folders: move or delete them first."
                .into(),
        });
    }
    store::delete_folder(ws.org.tx(), &ws_id, folder_id).await?;
    let now = app.clock.now_ms();
    audit_org(
        &mut ws.org,
        ctx,
        Action::FolderDeleted,
        ("folder", folder_id),
        json!({ "workspace_id": ws_id }),
        now,
    )
    .await?;
    ws.org.commit().await
}

// ---- documents ----

pub async fn list_documents(
    ws: &mut WorkspaceScope,
    folder: Option<&str>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Page<DocumentView>> {
    let limit = page_limit(limit)?;
    let after = decode_cursor(cursor)?;
    if let Some(f) = folder.filter(|f| !f.is_empty()) {
        if uuid::Uuid::parse_str(f).is_err() {
            return Err(AppError::invalid(
                "unknown_folder",
                "folder_id: no such folder in this workspace.",
            ));
        }
    }
    let ws_id = ws.id().to_string();
    let rows = store::list_documents(ws.org.tx(), &ws_id, folder, &after, limit + 1).await?;
    let views = rows
        .iter()
        .map(|d| document_view(ws.org.key(), d))
        .collect::<AppResult<Vec<_>>>()?;
    Ok(page(views, limit, |d| d.id.clone()))
}

pub async fn get_document(ws: &mut WorkspaceScope, doc_id: &str) -> AppResult<DocumentView> {
    let ws_id = ws.id().to_string();
    let d = find(ws, &ws_id, doc_id).await?;
    let versions = if ws.role() >= WsRole::Editor {
        Some(store::list_versions(ws.org.tx(), doc_id).await?)
    } else {
        None
    };
    let mut view = document_view(ws.org.key(), &d)?;
    if let Some(vs) = versions {
        view.versions = Some(
            vs.iter()
                .map(|v| version_view(ws.org.key(), v))
                .collect::<AppResult<_>>()?,
        );
    }
    Ok(view)
}

/// What the workspace's documents page shows: its folders and the documents in `folder` (`None`:
/// every document; `Some("")`: those in no folder), in one read.
pub async fn documents_page(
    ws: &mut WorkspaceScope,
    folder: Option<&str>,
) -> AppResult<(Vec<FolderView>, Vec<DocumentView>)> {
    let ws_id = ws.id().to_string();
    if let Some(f) = folder.filter(|f| !f.is_empty()) {
        if uuid::Uuid::parse_str(f).is_err()
            || !store::folder_exists(ws.org.tx(), &ws_id, f).await?
        {
            return Err(AppError::NotFound);
        }
    }
    let folders = store::list_folders(ws.org.tx(), &ws_id).await?;
    let docs = store::list_documents(ws.org.tx(), &ws_id, folder, "", 500).await?;
    let key = ws.org.key();
    let folders = folders
        .iter()
        .map(|f| {
            Ok(FolderView {
                id: f.id.clone(),
                parent_id: f.parent_id.clone(),
                name: open_name(key, "folders", &f.id, &f.name_ct)?,
                created_at: rfc(f.created_at),
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    let docs = docs
        .iter()
        .map(|d| document_view(key, d))
        .collect::<AppResult<Vec<_>>>()?;
    Ok((folders, docs))
}

/// What a document's page shows: the document (with its versions for editors) and, for editors,
/// its links, in one read.
pub async fn document_page(
    app: &App,
    ws: &mut WorkspaceScope,
    doc_id: &str,
) -> AppResult<(DocumentView, Option<Vec<LinkView>>)> {
    let ws_id = ws.id().to_string();
    let d = find(ws, &ws_id, doc_id).await?;
    let editor = ws.role() >= WsRole::Editor;
    let (versions, links) = if editor {
        (
            Some(store::list_versions(ws.org.tx(), doc_id).await?),
            Some(store::list_links(ws.org.tx(), doc_id).await?),
        )
    } else {
        (None, None)
    };
    let key = ws.org.key();
    let mut view = document_view(key, &d)?;
    if let Some(vs) = versions {
        view.versions = Some(
            vs.iter()
                .map(|v| version_view(key, v))
                .collect::<AppResult<_>>()?,
        );
    }
    let now = app.clock.now_ms();
    let links = links
        .map(|ls| {
            ls.iter()
                .map(|l| link_view(key, l, now))
                .collect::<AppResult<Vec<_>>>()
        })
        .transpose()?;
    Ok((view, links))
}

async fn find(ws: &mut WorkspaceScope, ws_id: &str, doc_id: &str) -> AppResult<DocumentRow> {
    if uuid::Uuid::parse_str(doc_id).is_err() {
        return Err(AppError::NotFound);
    }
    store::get_document(ws.org.tx(), ws_id, doc_id)
        .await?
        .ok_or(AppError::NotFound)
}

/// Renames and/or moves a document (editors).
pub async fn update_document(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    doc_id: &str,
    name: Option<&str>,
    folder_id: Option<Option<&str>>,
) -> AppResult<DocumentView> {
    ws.require(WsRole::Editor)?;
    let ws_id = ws.id().to_string();
    find(ws, &ws_id, doc_id).await?;
    let name = name.map(safe_filename);
    if let Some(Some(f)) = folder_id {
        if uuid::Uuid::parse_str(f).is_err()
            || !store::folder_exists(ws.org.tx(), &ws_id, f).await?
        {
            return Err(AppError::invalid(
                "unknown_folder",
                "folder_id: no such folder in this workspace.",
            ));
        }
    }
    let now = app.clock.now_ms();
    let name_ct = name
        .as_ref()
        .map(|n| ws.org.key().seal("documents", "name", doc_id, n.as_bytes()));
    store::update_document(
        ws.org.tx(),
        &ws_id,
        doc_id,
        name_ct.as_deref(),
        folder_id,
        now,
    )
    .await?;
    audit_org(
        &mut ws.org,
        ctx,
        Action::DocumentUpdated,
        ("document", doc_id),
        json!({ "workspace_id": ws_id, "renamed": name.is_some(), "moved": folder_id.is_some() }),
        now,
    )
    .await?;
    let d = find(ws, &ws_id, doc_id).await?;
    ws.org.commit().await?;
    document_view(ws.org.key(), &d)
}

/// Deletes a document: its links stop working at once (they go with it) and its objects are
/// marked for removal in the same transaction; the cleanup job (started right away) removes them.
pub async fn delete_document(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    doc_id: &str,
) -> AppResult<()> {
    ws.require(WsRole::Editor)?;
    let ws_id = ws.id().to_string();
    let d = find(ws, &ws_id, doc_id).await?;
    let versions = store::version_ids(ws.org.tx(), doc_id).await?;
    let now = app.clock.now_ms();
    let org_id = ws.org.org_id().to_string();
    for v in &versions {
        if let Some(k) = document_key(&org_id, v) {
            store::mark_garbage(ws.org.tx().write()?.0, &k, now).await?;
        }
    }
    store::delete_document(ws.org.tx(), &ws_id, doc_id).await?;
    audit_org(
        &mut ws.org,
        ctx,
        Action::DocumentDeleted,
        ("document", doc_id),
        json!({ "workspace_id": ws_id, "versions": versions.len(), "size": d.latest.size }),
        now,
    )
    .await?;
    ws.org.commit().await?;
    collect_garbage_soon(app);
    Ok(())
}

/// Marks every object of a workspace's documents for removal (in the transaction that deletes the
/// workspace).
pub(crate) async fn forget_workspace(ws: &mut WorkspaceScope, now: i64) -> AppResult<()> {
    let ws_id = ws.id().to_string();
    let org_id = ws.org.org_id().to_string();
    for v in store::workspace_version_ids(ws.org.tx(), &ws_id).await? {
        if let Some(k) = document_key(&org_id, &v) {
            store::mark_garbage(ws.org.tx().write()?.0, &k, now).await?;
        }
    }
    Ok(())
}

/// Marks a deleted org's whole prefix for removal (its key is destroyed in the same transaction,
/// so any copy of these objects is unreadable already).
pub(crate) async fn forget_org(scope: &mut super::OrgScope, now: i64) -> AppResult<()> {
    let prefix = format!("orgs/{}/", scope.org_id());
    store::mark_garbage(scope.tx().write()?.0, &prefix, now).await?;
    Ok(())
}

/// Runs the cleanup job once, soon, in the background (after a deletion).
pub fn collect_garbage_soon(app: &App) {
    let (db, blobs, clock) = (app.db.clone(), app.blobs.clone(), app.clock.clone());
    app.background.spawn(async move {
        if let Err(e) = collect_garbage(&db, &blobs, clock.now_ms()).await {
            tracing::warn!(error = %format!("{e:#}"), "document cleanup failed; the job will retry");
        }
    });
}

/// The cleanup job: every `documents.cleanup_interval_secs`, removes abandoned uploads' and
/// deleted documents' objects.
pub fn spawn_cleanup(
    app: &App,
    shutdown: crate::shutdown::Shutdown,
) -> tokio::task::JoinHandle<()> {
    let (db, blobs, clock) = (app.db.clone(), app.blobs.clone(), app.clock.clone());
    let every = std::time::Duration::from_secs(app.config.documents.cleanup_interval_secs.max(1));
    tokio::spawn(async move {
        loop {
            match collect_garbage(&db, &blobs, clock.now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "document objects removed"),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "document cleanup failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait() => return,
            }
        }
    })
}

/// Removes every object whose time has come (abandoned uploads, deleted documents and orgs), then
/// forgets it. Returns how many were removed.
pub async fn collect_garbage(
    db: &crate::store::Db,
    blobs: &crate::blobs::Blobs,
    now: i64,
) -> anyhow::Result<usize> {
    let mut n = 0;
    loop {
        let due = store::due_garbage(db, now, 200).await?;
        if due.is_empty() {
            return Ok(n);
        }
        for key in &due {
            if key.ends_with('/') {
                blobs.delete_prefix(key).await?;
            } else {
                blobs.delete(key).await?;
            }
            store::forget_garbage(db, key).await?;
            n += 1;
        }
    }
}

/// An upload under way: where its object goes and the key it is sealed with.
pub struct UploadTicket {
    pub org_id: String,
    pub ws_id: String,
    pub document_id: String,
    pub version_id: String,
    pub object_key: String,
    pub key: ContentKey,
    new_document: bool,
    folder_id: Option<String>,
}

/// The first transaction of an upload: checks the role (editor), the document (for a new
/// version) and folder, counts the upload against the caller's budget, and marks the object as
/// garbage unless a version claims it in time. Commits.
pub async fn begin_upload(
    app: &App,
    ws: &mut WorkspaceScope,
    document_id: Option<&str>,
    folder_id: Option<&str>,
) -> AppResult<UploadTicket> {
    ws.require(WsRole::Editor)?;
    let ws_id = ws.id().to_string();
    if let Some(d) = document_id {
        find(ws, &ws_id, d).await?;
    }
    let folder_id = folder_id.filter(|f| !f.is_empty());
    if let Some(f) = folder_id {
        if uuid::Uuid::parse_str(f).is_err()
            || !store::folder_exists(ws.org.tx(), &ws_id, f).await?
        {
            return Err(AppError::invalid(
                "unknown_folder",
                "folder_id: no such folder in this workspace.",
            ));
        }
    }
    let limit = app.config.rate_limits.uploads_per_account;
    crate::ratelimit::creation(&*app.limiter, "upload", ws.org.user_id(), limit).await?;
    let org_id = ws.org.org_id().to_string();
    let version_id = uuid::Uuid::now_v7().to_string();
    let object_key = document_key(&org_id, &version_id).ok_or(AppError::NotFound)?;
    let key = ContentKey::random();
    let deadline = app.clock.now_ms()
        + i64::try_from(app.config.documents.abandoned_upload_secs).unwrap_or(i64::MAX / 2_000)
            * 1000;
    store::mark_garbage(ws.org.tx().write()?.0, &object_key, deadline).await?;
    ws.org.commit().await?;
    Ok(UploadTicket {
        org_id,
        ws_id,
        document_id: document_id
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        version_id,
        object_key,
        key,
        new_document: document_id.is_none(),
        folder_id: folder_id.map(str::to_string),
    })
}

/// The second transaction of an upload: the caller's role checked again (it may have changed
/// during the transfer), then the document (or its new version) recorded, its object claimed and
/// the upload audited. On an error the caller removes the object.
pub async fn finish_upload(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    t: &UploadTicket,
    stored: &Stored,
    filename: &str,
) -> AppResult<DocumentView> {
    let mut ws = authorize_workspace(app, s, &t.org_id, &t.ws_id, Mode::Write).await?;
    ws.require(WsRole::Editor)?;
    let name = safe_filename(filename);
    let now = app.clock.now_ms();
    let user = ws.org.user_id().to_string();
    let key = ws.org.key.clone();
    let mut version = VersionRow {
        id: t.version_id.clone(),
        number: 1,
        name_ct: key.seal("document_versions", "name", &t.version_id, name.as_bytes()),
        size: i64::try_from(stored.size).map_err(|e| AppError::Internal(e.into()))?,
        sha256: stored.sha256.clone(),
        content_type: stored.content_type.to_string(),
        // Wrapped again under the org key read in this transaction: the key may have been rotated
        // during the transfer, and what is written must be sealed under the key current now.
        key_wrapped: t.key.wrap(&key, &t.version_id),
        uploaded_by: user.clone(),
        created_at: now,
    };
    let name_ct = key.seal("documents", "name", &t.document_id, name.as_bytes());
    let row = if t.new_document {
        if let Some(f) = &t.folder_id {
            if !store::folder_exists(ws.org.tx(), &t.ws_id, f).await? {
                return Err(AppError::invalid(
                    "unknown_folder",
                    "folder_id: the folder was deleted during the upload.",
                ));
            }
        }
        let d = DocumentRow {
            id: t.document_id.clone(),
            folder_id: t.folder_id.clone(),
            name_ct,
            created_by: user.clone(),
            created_at: now,
            updated_at: now,
            latest: version,
        };
        store::insert_document(ws.org.tx(), &t.ws_id, &d).await?;
        d
    } else {
        let mut d = find(&mut ws, &t.ws_id.clone(), &t.document_id).await?;
        version.number = d.latest.number + 1;
        store::insert_version(ws.org.tx(), &t.document_id, &version)
            .await
            .map_err(|e| {
                if crate::store::is_unique_violation(&e) {
                    AppError::Conflict {
                        code: "version_conflict",
                        detail: "Another version of this document was uploaded at the same time: try again.".into(),
                    }
                } else {
                    e.into()
                }
            })?;
        store::set_latest(
            ws.org.tx(),
            &t.ws_id,
            &t.document_id,
            version.number,
            &name_ct,
            now,
        )
        .await?;
        d.name_ct = name_ct;
        d.updated_at = now;
        d.latest = version;
        d
    };
    store::claim_object(ws.org.tx().write()?.0, &t.object_key).await?;
    audit_org(
        &mut ws.org,
        ctx,
        Action::DocumentUploaded,
        ("document", &t.document_id),
        json!({
            "workspace_id": t.ws_id,
            "version": row.latest.number,
            "size": stored.size,
            "content_type": stored.content_type,
        }),
        now,
    )
    .await?;
    ws.org.commit().await?;
    document_view(&key, &row)
}

/// Removes what a failed upload wrote (best effort: what remains, the cleanup job removes).
pub async fn abandon_upload(app: &App, t: &UploadTicket) {
    if let Err(e) = app.blobs.delete(&t.object_key).await {
        tracing::warn!(error = %format!("{e:#}"), "could not remove a failed upload's object; the cleanup job will");
        return;
    }
    if let Err(e) = store::forget_garbage(&app.db, &t.object_key).await {
        tracing::warn!(error = %e, "could not forget a failed upload's object");
    }
}

/// What a download needs, read (and the download audited) in one transaction.
pub struct ContentTicket {
    pub document_id: String,
    pub version_id: String,
    pub object_key: String,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    pub filename: String,
    pub key: ContentKey,
}

fn ticket(key: &TenantKey, org_id: &str, doc_id: &str, v: &VersionRow) -> AppResult<ContentTicket> {
    let content_key = ContentKey::unwrap(key, &v.id, &v.key_wrapped)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("content key did not open: {e}")))?;
    Ok(ContentTicket {
        document_id: doc_id.to_string(),
        version_id: v.id.clone(),
        object_key: document_key(org_id, &v.id).ok_or(AppError::NotFound)?,
        size: u64::try_from(v.size).unwrap_or(0),
        sha256: v.sha256.clone(),
        content_type: v.content_type.clone(),
        filename: open_name(key, "document_versions", &v.id, &v.name_ct)?,
        key: content_key,
    })
}

/// A member's download of a document (the latest version; an older one by its id, for editors),
/// audited in the same transaction (`ws` opened for writing). `range` is the `Range` header the
/// client sent, recorded with the event.
pub async fn open_download(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    doc_id: &str,
    version_id: Option<&str>,
    range: Option<&str>,
) -> AppResult<ContentTicket> {
    ws.require(WsRole::Viewer)?;
    let ws_id = ws.id().to_string();
    let d = find(ws, &ws_id, doc_id).await?;
    let v = match version_id {
        None => d.latest,
        Some(v) if v == d.latest.id => d.latest,
        Some(v) => {
            ws.require(WsRole::Editor)?;
            if uuid::Uuid::parse_str(v).is_err() {
                return Err(AppError::NotFound);
            }
            store::get_version(ws.org.tx(), doc_id, v)
                .await?
                .ok_or(AppError::NotFound)?
        }
    };
    let now = app.clock.now_ms();
    audit_org(
        &mut ws.org,
        ctx,
        Action::DocumentDownloaded,
        ("document", doc_id),
        json!({
            "workspace_id": ws_id,
            "version": v.number,
            "range": range,
        }),
        now,
    )
    .await?;
    ws.org.commit().await?;
    ticket(ws.org.key(), ws.org.org_id(), doc_id, &v)
}

// ---- share links (editors' side) ----

/// What an editor asks for when making a link.
#[derive(Debug, Default)]
pub struct LinkInput {
    pub expires_in_seconds: i64,
    pub max_downloads: Option<i64>,
    /// Already hashed (Argon2id) by the caller, outside any transaction.
    pub password_hash: Option<String>,
    pub recipient: Option<String>,
    pub watermark: bool,
    pub version_id: Option<String>,
    pub notify: bool,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LinkCreated {
    pub id: String,
    /// Holds the only copy of the link's secret.
    pub url: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LinkView {
    pub id: String,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub downloads: i64,
    pub max_downloads: Option<i64>,
    pub revoked_at: Option<String>,
    pub version_id: Option<String>,
    pub password: bool,
    /// The address (or `@domain`) that must confirm a code first.
    pub recipient: Option<String>,
    pub watermark: bool,
    pub notify: bool,
    pub first_access_at: Option<String>,
    /// `active`, `expired`, `revoked` or `exhausted`.
    pub state: &'static str,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AccessView {
    pub id: String,
    pub at: String,
    /// `download`, or why an attempt was refused (`wrong_password`, `wrong_code`, `expired`,
    /// `revoked`, `exhausted`, `unavailable`).
    pub outcome: String,
    /// Masked.
    pub ip: String,
    /// The verified recipient, masked.
    pub recipient: Option<String>,
    pub bytes: i64,
}

pub(crate) fn link_state(l: &LinkRow, now: i64) -> &'static str {
    if l.revoked_at.is_some() {
        "revoked"
    } else if l.expires_at <= now {
        "expired"
    } else if l.max_downloads.is_some_and(|m| l.downloads >= m) {
        "exhausted"
    } else {
        "active"
    }
}

/// Checks a recipient: an email address, or `@domain` for anyone at that domain. Lower-cased.
pub fn normalize_recipient(raw: &str) -> AppResult<String> {
    let r = raw.trim();
    if let Some(domain) = r.strip_prefix('@') {
        let d = domain.to_ascii_lowercase();
        let ok = d.len() <= 253
            && d.contains('.')
            && d.split('.').all(|p| {
                !p.is_empty()
                    && p.len() <= 63
                    && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if ok {
            return Ok(format!("@{d}"));
        }
        return Err(AppError::invalid(
            "invalid_recipient",
            "recipient_email: an email address, or @domain for anyone at that domain.",
        ));
    }
    crate::identity::normalize_email(r).map_err(|_| {
        AppError::invalid(
            "invalid_recipient",
            "recipient_email: an email address, or @domain for anyone at that domain.",
        )
    })
}

/// Whether `email` (normalized) may open a link for `recipient`.
pub(crate) fn recipient_matches(recipient: &str, email: &str) -> bool {
    match recipient.strip_prefix('@') {
        Some(domain) => email
            .rsplit_once('@')
            .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain)),
        None => recipient.eq_ignore_ascii_case(email),
    }
}

pub async fn create_link(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    doc_id: &str,
    input: LinkInput,
) -> AppResult<LinkCreated> {
    ws.require(WsRole::Editor)?;
    if !(60..=MAX_LINK_SECS).contains(&input.expires_in_seconds) {
        return Err(AppError::invalid(
            "invalid_expiry",
            "expires_in_seconds: between 60 seconds and 30 days (2592000).",
        ));
    }
    if input
        .max_downloads
        .is_some_and(|m| !(1..=100_000).contains(&m))
    {
        return Err(AppError::invalid(
            "invalid_max_downloads",
            "max_downloads: between 1 and 100000.",
        ));
    }
    let recipient = input
        .recipient
        .as_deref()
        .filter(|r| !r.trim().is_empty())
        .map(normalize_recipient)
        .transpose()?;
    let ws_id = ws.id().to_string();
    find(ws, &ws_id, doc_id).await?;
    if let Some(v) = &input.version_id {
        if uuid::Uuid::parse_str(v).is_err()
            || store::get_version(ws.org.tx(), doc_id, v).await?.is_none()
        {
            return Err(AppError::invalid(
                "unknown_version",
                "version_id: no such version of this document.",
            ));
        }
    }
    let limit = app.config.rate_limits.share_links_per_account;
    crate::ratelimit::creation(&*app.limiter, "share-link", ws.org.user_id(), limit).await?;
    let now = app.clock.now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    let token = crate::crypto::new_token();
    let token_hash = app.keyring.hash_token(&token);
    let link = LinkRow {
        id: id.clone(),
        document_id: doc_id.to_string(),
        version_id: input.version_id.clone(),
        created_by: ws.org.user_id().to_string(),
        created_at: now,
        expires_at: now + input.expires_in_seconds * 1000,
        max_downloads: input.max_downloads,
        downloads: 0,
        password_hash: input.password_hash,
        recipient_ct: recipient.as_ref().map(|r| {
            ws.org
                .key()
                .seal("share_links", "recipient", &id, r.as_bytes())
        }),
        watermark: input.watermark,
        notify: input.notify,
        first_access_at: None,
        revoked_at: None,
    };
    store::insert_link(ws.org.tx(), &link, &token_hash).await?;
    audit_org(
        &mut ws.org,
        ctx,
        Action::ShareLinkCreated,
        ("share_link", &id),
        json!({
            "document_id": doc_id,
            "workspace_id": ws_id,
            "expires_at": rfc(link.expires_at),
            "max_downloads": link.max_downloads,
            "password": link.password_hash.is_some(),
            "recipient": recipient.as_deref().map(mask_recipient),
            "watermark": link.watermark,
            "version_id": link.version_id,
        }),
        now,
    )
    .await?;
    ws.org.commit().await?;
    Ok(LinkCreated {
        id,
        url: format!(
            "{}/s/{token}",
            app.config.public_url().trim_end_matches('/')
        ),
        expires_at: rfc(link.expires_at),
    })
}

/// A recipient as the audit trail shows it: an address masked, a domain as is.
pub(crate) fn mask_recipient(r: &str) -> String {
    if r.starts_with('@') {
        r.to_string()
    } else {
        crate::mask::email(r)
    }
}

pub async fn list_links(
    app: &App,
    ws: &mut WorkspaceScope,
    doc_id: &str,
) -> AppResult<Vec<LinkView>> {
    ws.require(WsRole::Editor)?;
    let ws_id = ws.id().to_string();
    find(ws, &ws_id, doc_id).await?;
    let rows = store::list_links(ws.org.tx(), doc_id).await?;
    let now = app.clock.now_ms();
    rows.iter()
        .map(|l| link_view(ws.org.key(), l, now))
        .collect()
}

fn link_view(key: &TenantKey, l: &LinkRow, now: i64) -> AppResult<LinkView> {
    let recipient = l
        .recipient_ct
        .as_ref()
        .map(|ct| key.open_string("share_links", "recipient", &l.id, ct))
        .transpose()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("recipient did not open: {e}")))?;
    Ok(LinkView {
        id: l.id.clone(),
        created_by: l.created_by.clone(),
        created_at: rfc(l.created_at),
        expires_at: rfc(l.expires_at),
        downloads: l.downloads,
        max_downloads: l.max_downloads,
        revoked_at: l.revoked_at.map(rfc),
        version_id: l.version_id.clone(),
        password: l.password_hash.is_some(),
        recipient,
        watermark: l.watermark,
        notify: l.notify,
        first_access_at: l.first_access_at.map(rfc),
        state: link_state(l, now),
    })
}

pub async fn revoke_link(
    app: &App,
    ctx: &RequestCtx,
    ws: &mut WorkspaceScope,
    doc_id: &str,
    link_id: &str,
) -> AppResult<()> {
    ws.require(WsRole::Editor)?;
    let ws_id = ws.id().to_string();
    find(ws, &ws_id, doc_id).await?;
    if uuid::Uuid::parse_str(link_id).is_err() {
        return Err(AppError::NotFound);
    }
    store::get_link(ws.org.tx(), Some(doc_id), link_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let now = app.clock.now_ms();
    if store::revoke_link(ws.org.tx(), doc_id, link_id, now).await? {
        audit_org(
            &mut ws.org,
            ctx,
            Action::ShareLinkRevoked,
            ("share_link", link_id),
            json!({ "document_id": doc_id, "workspace_id": ws_id }),
            now,
        )
        .await?;
    }
    ws.org.commit().await
}

pub async fn list_accesses(
    ws: &mut WorkspaceScope,
    doc_id: &str,
    link_id: &str,
) -> AppResult<Vec<AccessView>> {
    ws.require(WsRole::Editor)?;
    let ws_id = ws.id().to_string();
    find(ws, &ws_id, doc_id).await?;
    if uuid::Uuid::parse_str(link_id).is_err()
        || store::get_link(ws.org.tx(), Some(doc_id), link_id)
            .await?
            .is_none()
    {
        return Err(AppError::NotFound);
    }
    let rows = store::list_accesses(ws.org.tx(), link_id).await?;
    rows.iter()
        .map(|a| {
            let recipient = a
                .recipient_ct
                .as_ref()
                .map(|ct| {
                    ws.org
                        .key()
                        .open_string("link_accesses", "recipient", &a.id, ct)
                })
                .transpose()
                .map_err(|e| AppError::Internal(anyhow::anyhow!("recipient did not open: {e}")))?;
            Ok(AccessView {
                id: a.id.clone(),
                at: rfc(a.at),
                outcome: a.outcome.clone(),
                ip: a.ip.clone(),
                recipient: recipient.as_deref().map(crate::mask::email),
                bytes: a.bytes,
            })
        })
        .collect()
}
