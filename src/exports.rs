//! Personal exports (GDPR portability). A signed-in user asks (after a step-up); the export is
//! built in the background as a zip of JSON files with a README.txt, written as a stream (the
//! zip crate's streaming writer: no seeking, nothing held but the record being written), sealed
//! as it is written with AES-256-GCM STREAM under a content key of its own (wrapped under the
//! platform key), into the object store under `exports/{id}`. The owner downloads it behind the
//! same session for `EXPORT_DAYS` days (an email says it is ready); then it is removed, as it is
//! when the account is erased.
//!
//! What it holds is the caller's own: profile, memberships, the items they created or are
//! assigned, the comments they wrote, the documents they uploaded (metadata), their live
//! sessions, passkey names, the prefixes of API keys they made, and the audit events whose actor
//! or target they are (on org chains without metadata, which may describe other people).

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{json, Value};
use sha2::Digest;

use crate::audit::{self, Action, Event};
use crate::blobs::BlobWriter;
use crate::crypto::stream::{ContentKey, Sealer};
use crate::error::{AppError, AppResult};
use crate::identity::{AuthSession, RequestCtx};
use crate::state::{App, AppState};
use crate::store::exports as db;
use crate::store::tenant::{Mode, TenantTx};
use crate::store::{self, erasure};

/// How long a finished export can be downloaded.
pub const EXPORT_DAYS: i64 = 7;
const DAY_MS: i64 = 86_400_000;
/// Exports one user may ask for in a day.
const PER_DAY: i64 = 5;
/// Rows read per query while building.
const PAGE: i64 = 200;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportView {
    pub id: String,
    /// `pending`, `ready`, `failed` or `expired`.
    pub status: String,
    /// Bytes of the zip, once ready.
    pub size: Option<i64>,
    pub created_at: String,
    /// Until when it can be downloaded.
    pub expires_at: Option<String>,
    /// Records written so far, while it is being built.
    pub progress: i64,
}

fn view(r: &db::ExportRow, now: i64) -> ExportView {
    let status = if r.expires_at <= now {
        "expired".to_string()
    } else {
        r.status.clone()
    };
    ExportView {
        id: r.id.clone(),
        size: r.size.filter(|_| status == "ready"),
        expires_at: (status == "ready").then(|| crate::clock::rfc3339(r.expires_at)),
        created_at: crate::clock::rfc3339(r.created_at),
        progress: r.progress,
        status,
    }
}

/// `POST /me/exports`: queues an export of everything about the caller.
pub async fn request(app: &AppState, ctx: &RequestCtx, s: &AuthSession) -> AppResult<ExportView> {
    crate::identity::mfa::require_recent_auth(app, s)?;
    let now = app.clock.now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = app.db.begin().await?;
    if db::count_since(&mut tx, &s.user_id, now - DAY_MS).await? >= PER_DAY {
        return Err(AppError::RateLimited { retry_after: 3600 });
    }
    db::insert(
        &mut tx,
        db::NewExport {
            id: &id,
            kind: "user",
            user_id: &s.user_id,
            org_id: None,
            now,
            // A build that never finishes is removed with the rest after the same time.
            expires_at: now + EXPORT_DAYS * DAY_MS,
        },
    )
    .await?;
    let ev = Event {
        actor_id: Some(&s.user_id),
        action: Action::ExportRequested,
        target_type: Some("export"),
        target_id: Some(&id),
        ip: Some(ctx.ip),
        metadata: json!({ "kind": "user" }),
    };
    audit::append_platform(&mut tx, now, ev).await?;
    let row = db::get(&mut tx, &s.user_id, &id)
        .await?
        .ok_or(AppError::NotFound)?;
    tx.commit().await?;
    wake(app);
    Ok(view(&row, now))
}

/// Builds queued exports now, in the background (the periodic job catches any left behind).
fn wake(app: &AppState) {
    let job = Arc::clone(app);
    app.background.spawn(async move {
        if let Err(e) = run_once(&job).await {
            tracing::warn!(error = %e, "export build");
        }
    });
}

/// `POST /orgs/{org_id}/exports`: an owner's export of the whole org (after a step-up).
pub async fn request_org(
    app: &AppState,
    ctx: &RequestCtx,
    s: &AuthSession,
    scope: &mut crate::tenancy::OrgScope,
) -> AppResult<ExportView> {
    crate::identity::mfa::require_recent_auth(app, s)?;
    scope.require(crate::tenancy::OrgRole::Owner)?;
    let now = app.clock.now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    let org_id = scope.org_id().to_string();
    {
        let c = scope.tx().conn()?;
        if db::count_since(c, &s.user_id, now - DAY_MS).await? >= PER_DAY {
            return Err(AppError::RateLimited { retry_after: 3600 });
        }
        db::insert(
            c,
            db::NewExport {
                id: &id,
                kind: "org",
                user_id: &s.user_id,
                org_id: Some(&org_id),
                now,
                expires_at: now + EXPORT_DAYS * DAY_MS,
            },
        )
        .await?;
    }
    crate::tenancy::audit_org(
        scope,
        ctx,
        Action::ExportRequested,
        ("export", &id),
        json!({ "kind": "org" }),
        now,
    )
    .await?;
    let row = db::get(scope.tx().conn()?, &s.user_id, &id)
        .await?
        .ok_or(AppError::NotFound)?;
    scope.commit().await?;
    wake(app);
    Ok(view(&row, now))
}

/// The owner's export `id` of the scope's org.
async fn org_row(scope: &mut crate::tenancy::OrgScope, id: &str) -> AppResult<db::ExportRow> {
    scope.require(crate::tenancy::OrgRole::Owner)?;
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(AppError::NotFound);
    }
    let user = scope.user_id().to_string();
    let org = scope.org_id().to_string();
    db::get(scope.tx().conn()?, &user, id)
        .await?
        .filter(|r| r.kind == "org" && r.org_id.as_deref() == Some(org.as_str()))
        .ok_or(AppError::NotFound)
}

/// `GET /orgs/{org_id}/exports/{id}`.
pub async fn get_org(
    app: &App,
    scope: &mut crate::tenancy::OrgScope,
    id: &str,
) -> AppResult<ExportView> {
    let r = org_row(scope, id).await?;
    Ok(view(&r, app.clock.now_ms()))
}

/// The owner's recent exports of the scope's org (org settings).
pub async fn list_org(
    app: &App,
    scope: &mut crate::tenancy::OrgScope,
) -> AppResult<Vec<ExportView>> {
    let user = scope.user_id().to_string();
    let org = scope.org_id().to_string();
    let now = app.clock.now_ms();
    Ok(db::list(scope.tx().conn()?, &user, "org", Some(&org), 10)
        .await?
        .iter()
        .map(|r| view(r, now))
        .collect())
}

/// `GET /orgs/{org_id}/exports/{id}/download`: checked, audited on the org's chain.
pub async fn download_org(
    app: &App,
    ctx: &RequestCtx,
    scope: &mut crate::tenancy::OrgScope,
    id: &str,
) -> AppResult<crate::tenancy::documents::ContentTicket> {
    let now = app.clock.now_ms();
    let r = org_row(scope, id).await?;
    let (true, Some(wrapped), Some(size), Some(sha256)) = (
        r.status == "ready" && r.expires_at > now,
        &r.key_wrapped,
        r.size,
        &r.sha256,
    ) else {
        return Err(AppError::NotFound);
    };
    let key = ContentKey::unwrap(scope.key(), &ad(&r.id), wrapped)?;
    crate::tenancy::audit_org(
        scope,
        ctx,
        Action::ExportDownloaded,
        ("export", &r.id),
        json!({ "kind": "org", "size": size }),
        now,
    )
    .await?;
    scope.commit().await?;
    Ok(crate::tenancy::documents::ContentTicket {
        document_id: r.id.clone(),
        version_id: ad(&r.id),
        object_key: object_key(&r.id),
        size: u64::try_from(size).unwrap_or(0),
        sha256: sha256.clone(),
        content_type: "application/zip".into(),
        filename: format!(
            "strongroom-org-export-{}.zip",
            crate::clock::utc_date(r.created_at)
        ),
        key,
    })
}

/// `GET /me/exports/{id}`.
pub async fn get(app: &App, s: &AuthSession, id: &str) -> AppResult<ExportView> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(AppError::NotFound);
    }
    let mut c = app.db.read().await?;
    let r = db::get(&mut c, &s.user_id, id)
        .await?
        .filter(|r| r.kind == "user")
        .ok_or(AppError::NotFound)?;
    Ok(view(&r, app.clock.now_ms()))
}

/// The caller's recent exports, newest first (the account page).
pub async fn list(app: &App, s: &AuthSession) -> AppResult<Vec<ExportView>> {
    let mut c = app.db.read().await?;
    let now = app.clock.now_ms();
    Ok(db::list(&mut c, &s.user_id, "user", None, 10)
        .await?
        .iter()
        .map(|r| view(r, now))
        .collect())
}

/// `GET /me/exports/{id}/download`: what to stream, once checked (the owner's own, ready, not
/// expired) and audited.
pub async fn download(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    id: &str,
) -> AppResult<crate::tenancy::documents::ContentTicket> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(AppError::NotFound);
    }
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    let r = db::get(&mut tx, &s.user_id, id)
        .await?
        .filter(|r| r.kind == "user" && r.status == "ready" && r.expires_at > now)
        .ok_or(AppError::NotFound)?;
    let (Some(wrapped), Some(size), Some(sha256)) = (&r.key_wrapped, r.size, &r.sha256) else {
        return Err(AppError::NotFound);
    };
    let key = ContentKey::unwrap_platform(&app.keyring, &r.id, wrapped)?;
    let ev = Event {
        actor_id: Some(&s.user_id),
        action: Action::ExportDownloaded,
        target_type: Some("export"),
        target_id: Some(&r.id),
        ip: Some(ctx.ip),
        metadata: json!({ "kind": "user", "size": size }),
    };
    audit::append_platform(&mut tx, now, ev).await?;
    tx.commit().await?;
    Ok(crate::tenancy::documents::ContentTicket {
        document_id: r.id.clone(),
        version_id: ad(&r.id),
        object_key: object_key(&r.id),
        size: u64::try_from(size).unwrap_or(0),
        sha256: sha256.clone(),
        content_type: "application/zip".into(),
        filename: format!(
            "strongroom-export-{}.zip",
            crate::clock::utc_date(r.created_at)
        ),
        key,
    })
}

fn object_key(id: &str) -> String {
    format!("exports/{id}")
}

/// What the sealed stream is bound to (never a document version's id).
fn ad(id: &str) -> String {
    format!("export:{id}")
}

/// Builds every queued export, one at a time. Returns how many it finished.
pub async fn run_once(app: &AppState) -> AppResult<usize> {
    let mut built = 0;
    loop {
        let now = app.clock.now_ms();
        let claimed = {
            let mut c = app.db.acquire().await?;
            db::claim(&mut c, now, 15 * 60 * 1000).await?
        };
        let Some(row) = claimed else {
            return Ok(built);
        };
        let result = if row.kind == "org" {
            build_org(app, &row).await
        } else {
            build(app, &row).await
        };
        match result {
            Ok(()) => built += 1,
            Err(e) => {
                tracing::error!(export = %row.id, error = %e, "export failed");
                let _ = app.blobs.delete(&object_key(&row.id)).await;
                let mut c = app.db.acquire().await?;
                db::failed(&mut c, &row.id).await?;
            }
        }
    }
}

/// Removes exports past their time, their objects first. Returns how many went.
pub async fn purge(app: &App, now: i64, user_id: Option<&str>) -> AppResult<u64> {
    let ended = {
        let mut c = app.db.acquire().await?;
        db::ended(&mut c, now, user_id).await?
    };
    for id in &ended {
        app.blobs.delete(&object_key(id)).await?;
        let mut c = app.db.acquire().await?;
        db::delete(&mut c, id).await?;
    }
    let n = ended.len() as u64;
    metrics::counter!("strongroom_purged_total", "kind" => "exports").increment(n);
    Ok(n)
}

/// The export job in `serve`: builds what is queued (a build cut short by a restart is taken
/// again when its lease ends) and removes expired exports, every minute.
pub fn spawn_job(
    app: &AppState,
    shutdown: crate::shutdown::Shutdown,
) -> tokio::task::JoinHandle<()> {
    let app = Arc::clone(app);
    tokio::spawn(async move {
        loop {
            if let Err(e) = run_once(&app).await {
                tracing::warn!(error = %e, "export job");
            }
            if let Err(e) = purge(&app, app.clock.now_ms(), None).await {
                tracing::warn!(error = %e, "export purge");
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
                () = shutdown.wait() => return,
            }
        }
    })
}

/// The zip as it is written: compressed by the zip writer into `buf`, sealed a chunk at a time
/// and sent to the object store; only the pending chunk and one record are ever in memory.
struct ZipOut {
    zip: zip::ZipWriter<zip::write::StreamWriter<Sink>>,
    buf: Arc<Mutex<Vec<u8>>>,
    sealer: Sealer,
    blob: BlobWriter,
    hash: sha2::Sha256,
    size: u64,
    records: i64,
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn zip_err(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("export zip: {e}"))
}

impl ZipOut {
    async fn start(app: &App, id: &str, key: &ContentKey) -> AppResult<Self> {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (sealer, header) = key.sealer(&ad(id));
        let mut blob = app.blobs.writer(&object_key(id)).await?;
        blob.write(&header).await?;
        Ok(ZipOut {
            zip: zip::ZipWriter::new_stream(Sink(Arc::clone(&buf))),
            buf,
            sealer,
            blob,
            hash: sha2::Sha256::new(),
            size: 0,
            records: 0,
        })
    }

    fn file(&mut self, name: &str) -> AppResult<()> {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o600);
        self.zip.start_file(name, opts).map_err(zip_err)
    }

    async fn write(&mut self, data: &[u8]) -> AppResult<()> {
        self.zip.write_all(data).map_err(zip_err)?;
        self.drain().await
    }

    /// Writes `items` as a JSON array, one record per line.
    async fn array<T: Serialize>(&mut self, first: &mut bool, items: &[T]) -> AppResult<()> {
        for it in items {
            let line = serde_json::to_vec(it).map_err(zip_err)?;
            self.write(if *first { b"[\n" } else { b",\n" }).await?;
            *first = false;
            self.write(&line).await?;
            self.records += 1;
        }
        Ok(())
    }

    async fn end_array(&mut self, first: bool) -> AppResult<()> {
        self.write(if first { b"[]\n" } else { b"\n]\n" }).await
    }

    async fn json_file(&mut self, name: &str, v: &Value) -> AppResult<()> {
        self.file(name)?;
        let text = serde_json::to_vec_pretty(v).map_err(zip_err)?;
        self.write(&text).await?;
        self.records += 1;
        Ok(())
    }

    async fn drain(&mut self) -> AppResult<()> {
        let out = std::mem::take(
            &mut *self
                .buf
                .lock()
                .map_err(|_| zip_err("the buffer was poisoned"))?,
        );
        if out.is_empty() {
            return Ok(());
        }
        self.hash.update(&out);
        self.size += out.len() as u64;
        let sealed = self.sealer.push(&out).map_err(zip_err)?;
        if !sealed.is_empty() {
            self.blob.write(&sealed).await?;
        }
        Ok(())
    }

    async fn finish(mut self) -> AppResult<(u64, String)> {
        let zip = std::mem::replace(
            &mut self.zip,
            zip::ZipWriter::new_stream(Sink(Arc::new(Mutex::new(Vec::new())))),
        );
        zip.finish().map_err(zip_err)?;
        self.drain().await?;
        let last = self.sealer.finish().map_err(zip_err)?;
        self.blob.write(&last).await?;
        self.blob.finish().await?;
        Ok((self.size, hex::encode(self.hash.finalize())))
    }
}

const README: &str = "Your Strongroom data\n\
====================\n\n\
This archive holds what Strongroom keeps about you, as JSON (UTF-8). Times are RFC 3339, in UTC.\n\n\
profile.json        your account: id, email address, name, when it was made, second factors\n\
memberships.json    the organizations you belong to, with your role\n\
items.json          the items you created or are assigned, in every organization\n\
comments.json       the comments you wrote\n\
documents.json      the documents you uploaded (names, sizes, types, SHA-256; not their content:\n\
                    an organization's owner can export those)\n\
sessions.json       your signed-in sessions (device, network, times)\n\
passkeys.json       the names of your passkeys (never their keys)\n\
api_keys.json       the API keys you made (prefixes only: the secrets were never kept)\n\
audit_events.json   the audit events whose actor or subject you are; events of organizations\n\
                    are listed without their details, which may describe other people\n\n\
Other people's names and addresses are not included: items and comments name people by id.\n";

async fn build(app: &App, row: &db::ExportRow) -> AppResult<()> {
    let user_id = row.user_id.clone();
    let key = ContentKey::random();
    let mut out = ZipOut::start(app, &row.id, &key).await?;
    out.file("README.txt")?;
    out.write(README.as_bytes()).await?;

    // Profile, sessions, passkeys: the platform's rows.
    let (u, totp, passkeys) = {
        let mut c = app.db.read().await?;
        store::users::find_with_factors(&mut c, &user_id)
            .await?
            .ok_or(AppError::NotFound)?
    };
    let (email, name) = crate::identity::decrypt_user(&app.keyring, &u)?;
    out.json_file(
        "profile.json",
        &json!({
            "id": u.id,
            "email": email,
            "display_name": name,
            "email_verified": u.email_verified_at.is_some(),
            "created_at": crate::clock::rfc3339(u.created_at),
            "two_factor": { "authenticator_app": totp, "passkeys": passkeys },
            "deletion_scheduled_for": u.deletion_due_at.map(crate::clock::rfc3339),
        }),
    )
    .await?;
    let sessions = crate::identity::sessions::sessions_of(app, &user_id, "").await?;
    out.json_file(
        "sessions.json",
        &serde_json::to_value(&sessions).map_err(zip_err)?,
    )
    .await?;
    let keys = {
        let mut c = app.db.read().await?;
        store::mfa::list_passkeys(&mut c, &user_id).await?
    };
    let keys: Vec<Value> = keys
        .iter()
        .map(|p| {
            json!({ "name": p.name, "created_at": crate::clock::rfc3339(p.created_at),
                    "last_used_at": p.last_used_at.map(crate::clock::rfc3339) })
        })
        .collect();
    out.json_file("passkeys.json", &Value::Array(keys)).await?;

    // Each org: what is theirs in it.
    let orgs = {
        let mut tx = app.db.begin_for_user(&user_id).await?;
        let m = erasure::memberships(&mut tx, &user_id).await?;
        tx.commit().await?;
        m
    };
    let mut memberships = Vec::new();
    let mut org_keys = Vec::new();
    for (org_id, role) in &orgs {
        let Some((mut tx, access)) =
            TenantTx::enter(&app.db, org_id, &user_id, None, Mode::Read).await?
        else {
            continue;
        };
        let k = app.keyring.open_tenant_key(
            org_id,
            &crate::crypto::WrappedKey {
                version: access.key_version,
                wrapped: access.key_wrapped,
            },
        )?;
        let name = match store::orgs::get_org(&mut tx).await? {
            Some(o) => k.open_string("orgs", "name", &o.id, &o.name_ct)?,
            None => String::new(),
        };
        tx.commit().await?;
        memberships.push(json!({ "org_id": org_id, "org_name": name, "role": role }));
        org_keys.push((org_id.clone(), k));
    }
    out.json_file("memberships.json", &Value::Array(memberships))
        .await?;

    out.file("items.json")?;
    let mut first = true;
    for (org_id, k) in &org_keys {
        org_pages(
            &mut out,
            &mut first,
            app,
            (org_id, &user_id),
            |t, u, after| Box::pin(async move { Ok(db::items_of(t, &u, &after, PAGE).await?) }),
            |(_, r)| r.id.clone(),
            |(ws, r)| {
                let mut v = serde_json::to_value(crate::tenancy::items::item_view(k, &r)?)
                    .map_err(zip_err)?;
                v["org_id"] = json!(org_id);
                v["workspace_id"] = json!(ws);
                Ok(v)
            },
            Some(&row.id),
        )
        .await?;
    }
    out.end_array(first).await?;

    out.file("comments.json")?;
    let mut first = true;
    for (org_id, k) in &org_keys {
        org_pages(
            &mut out,
            &mut first,
            app,
            (org_id, &user_id),
            |t, u, after| Box::pin(async move { Ok(db::comments_of(t, &u, &after, PAGE).await?) }),
            |c| c.0.clone(),
            |(id, ws, item, body_ct, at)| {
                Ok(json!({
                    "id": id, "org_id": org_id, "workspace_id": ws, "item_id": item,
                    "body": k.open_string("item_updates", "body", &id, &body_ct)?,
                    "created_at": crate::clock::rfc3339(at),
                }))
            },
            None,
        )
        .await?;
    }
    out.end_array(first).await?;

    out.file("documents.json")?;
    let mut first = true;
    for (org_id, k) in &org_keys {
        org_pages(
            &mut out,
            &mut first,
            app,
            (org_id, &user_id),
            |t, u, after| Box::pin(async move { Ok(db::documents_of(t, &u, &after, PAGE).await?) }),
            |d| d.0.clone(),
            |(id, ws, name_ct, at, size, sha, ctype)| {
                Ok(json!({
                    "id": id, "org_id": org_id, "workspace_id": ws,
                    "name": crate::tenancy::documents::open_name(k, "documents", &id, &name_ct)?,
                    "size": size, "sha256": sha, "content_type": ctype,
                    "created_at": crate::clock::rfc3339(at),
                }))
            },
            None,
        )
        .await?;
    }
    out.end_array(first).await?;

    out.file("api_keys.json")?;
    let mut first = true;
    for (org_id, _) in &org_keys {
        let rows = in_org(app, org_id, &user_id, |t, u| {
            Box::pin(async move { Ok(db::api_keys_of(t, &u).await?) })
        })
        .await?;
        let page: Vec<Value> = rows
            .iter()
            .map(|(prefix, name, scopes, at, revoked)| {
                json!({ "org_id": org_id, "prefix": prefix, "name": name,
                        "scopes": scopes.split(' ').collect::<Vec<_>>(),
                        "created_at": crate::clock::rfc3339(*at),
                        "revoked_at": revoked.map(crate::clock::rfc3339) })
            })
            .collect();
        out.array(&mut first, &page).await?;
    }
    out.end_array(first).await?;

    // Audit events about them: the platform chain whole, org chains without metadata.
    out.file("audit_events.json")?;
    let mut first = true;
    let chains = std::iter::once(String::new()).chain(org_keys.iter().map(|(o, _)| o.clone()));
    for chain in chains {
        let mut after = 0;
        loop {
            let mut tx = if chain.is_empty() {
                TenantTx::for_operator_read(&app.db, "").await?
            } else {
                match TenantTx::enter(&app.db, &chain, &user_id, None, Mode::Read).await? {
                    Some((t, _)) => t,
                    None => break,
                }
            };
            let rows = db::events_about(&mut tx, &user_id, after, PAGE).await?;
            tx.commit().await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            let page: Vec<Value> = rows
                .iter()
                .map(|e| {
                    let mut v = json!({
                        "chain": if chain.is_empty() { "account" } else { chain.as_str() },
                        "seq": e.seq, "at": crate::clock::rfc3339(e.at), "action": e.action,
                        "actor_id": e.actor_id, "target_type": e.target_type,
                        "target_id": e.target_id, "ip": e.ip,
                    });
                    if chain.is_empty() {
                        v["metadata"] = serde_json::from_str(&e.metadata).unwrap_or(Value::Null);
                    }
                    v
                })
                .collect();
            out.array(&mut first, &page).await?;
        }
    }
    out.end_array(first).await?;

    let (size, sha256) = out.finish().await?;
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    let ok = db::ready(
        &mut tx,
        db::Ready {
            id: &row.id,
            key_wrapped: key.wrap_platform(&app.keyring, &row.id),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            sha256: &sha256,
            now,
            expires_at: now + EXPORT_DAYS * DAY_MS,
        },
    )
    .await?;
    if !ok {
        tx.rollback().await?;
        app.blobs.delete(&object_key(&row.id)).await?;
        return Ok(());
    }
    let body = format!(
        "The export of your Strongroom data you asked for is ready. Download it, signed in, from your account page:\n\n\
         {base}/account#your-data\n\n\
         It stays there for {EXPORT_DAYS} days, then it is deleted. If you did not ask for it, change your password \
         and review your sessions.\n",
        base = app.config.public_url().trim_end_matches('/'),
    );
    crate::mail::enqueue(
        &mut tx,
        &app.keyring,
        now,
        &crate::identity::email(&email, "Your Strongroom export is ready", body),
    )
    .await?;
    tx.commit().await?;
    app.mailer.wake();
    Ok(())
}

const ORG_README: &str = "Your organization's data in Strongroom\n\
======================================\n\n\
JSON (UTF-8); times are RFC 3339, in UTC.\n\n\
org.json            the organization\n\
members.json        its members, with their email addresses and roles\n\
workspaces.json     its workspaces\n\
items.json          every item of every workspace\n\
comments.json       every comment\n\
documents.json      every document (its latest version); the files themselves are under\n\
                    documents/<document id>/<name>, decrypted\n\
audit.jsonl         the organization's audit trail up to the moment of the export, one event per\n\
                    line, hash-chained: check it with `strongroom audit verify --file audit.jsonl`\n";

/// An owner's export of the whole org, read as that owner (still an owner when it is built).
async fn build_org(app: &AppState, row: &db::ExportRow) -> AppResult<()> {
    let org_id = row.org_id.clone().ok_or(AppError::NotFound)?;
    let user_id = row.user_id.clone();
    let (mut tx, access) = TenantTx::enter(&app.db, &org_id, &user_id, None, Mode::Read)
        .await?
        .ok_or(AppError::NotFound)?;
    if access.role != "owner" {
        return Err(AppError::NotFound);
    }
    let k = app.keyring.open_tenant_key(
        &org_id,
        &crate::crypto::WrappedKey {
            version: access.key_version,
            wrapped: access.key_wrapped,
        },
    )?;
    let org = store::orgs::get_org(&mut tx)
        .await?
        .ok_or(AppError::NotFound)?;
    let upto = audit::head(&mut tx).await?.map_or(0, |h| h.0);
    tx.commit().await?;
    let key = ContentKey::random();
    let mut out = ZipOut::start(app, &row.id, &key).await?;
    out.file("README.txt")?;
    out.write(ORG_README.as_bytes()).await?;
    out.json_file(
        "org.json",
        &json!({ "id": org.id, "name": k.open_string("orgs", "name", &org.id, &org.name_ct)?,
                 "require_mfa": org.require_mfa, "created_at": crate::clock::rfc3339(org.created_at) }),
    )
    .await?;

    out.file("members.json")?;
    let mut first = true;
    let scope = (org_id.as_str(), user_id.as_str());
    org_pages(
        &mut out,
        &mut first,
        app,
        scope,
        |t, _, after| Box::pin(async move { Ok(store::orgs::list_members(t, &after, PAGE).await?) }),
        |m| m.user_id.clone(),
        |m| {
            Ok(json!({
                "email": crate::identity::address(&app.keyring, &m.user_id, &m.email_ct)?,
                "display_name": crate::identity::shown_name(&app.keyring, &m.user_id, &m.display_name_ct)?,
                "user_id": m.user_id,
                "role": m.role,
                "joined_at": crate::clock::rfc3339(m.joined_at),
            }))
        },
        None,
    )
    .await?;
    out.end_array(first).await?;

    out.file("workspaces.json")?;
    let mut first = true;
    let mut workspaces = Vec::new();
    org_pages(
        &mut out,
        &mut first,
        app,
        scope,
        |t, _, after| {
            Box::pin(async move { Ok(store::work::list_workspaces(t, None, &after, PAGE).await?) })
        },
        |w| w.id.clone(),
        |w| {
            workspaces.push(w.id.clone());
            Ok(json!({
                "id": w.id, "kind": w.kind,
                "name": k.open_string("workspaces", "name", &w.id, &w.name_ct)?,
                "description": k.open_string("workspaces", "description", &w.id, &w.description_ct)?,
                "created_at": crate::clock::rfc3339(w.created_at),
            }))
        },
        None,
    )
    .await?;
    out.end_array(first).await?;

    out.file("items.json")?;
    let mut first = true;
    for ws in &workspaces {
        org_pages(
            &mut out,
            &mut first,
            app,
            scope,
            |t, _, after| {
                let ws = ws.clone();
                Box::pin(async move { Ok(store::work::list_items(t, &ws, &after, PAGE).await?) })
            },
            |r| r.id.clone(),
            |r| {
                let mut v = serde_json::to_value(crate::tenancy::items::item_view(&k, &r)?)
                    .map_err(zip_err)?;
                v["workspace_id"] = json!(ws);
                Ok(v)
            },
            Some(&row.id),
        )
        .await?;
    }
    out.end_array(first).await?;

    out.file("comments.json")?;
    let mut first = true;
    org_pages(
        &mut out,
        &mut first,
        app,
        scope,
        |t, _, after| Box::pin(async move { Ok(db::all_comments(t, &after, PAGE).await?) }),
        |c| c.0.clone(),
        |(id, ws, item, author, body_ct, at)| {
            Ok(json!({
                "id": id, "workspace_id": ws, "item_id": item, "author_id": author,
                "body": k.open_string("item_updates", "body", &id, &body_ct)?,
                "created_at": crate::clock::rfc3339(at),
            }))
        },
        Some(&row.id),
    )
    .await?;
    out.end_array(first).await?;

    // Documents: their list, then each one's bytes, decrypted as they stream.
    let mut docs = Vec::new();
    out.file("documents.json")?;
    let mut first = true;
    org_pages(
        &mut out,
        &mut first,
        app,
        scope,
        |t, _, after| Box::pin(async move { Ok(db::all_documents(t, &after, PAGE).await?) }),
        |d| d.id.clone(),
        |d| {
            let name = crate::tenancy::documents::open_name(&k, "documents", &d.id, &d.name_ct)?;
            let v = json!({
                "id": d.id, "workspace_id": d.workspace_id, "folder_id": d.folder_id,
                "name": name, "version": d.version, "size": d.size, "sha256": d.sha256,
                "content_type": d.content_type, "created_by": d.created_by,
                "created_at": crate::clock::rfc3339(d.created_at),
                "file": format!("documents/{}/{name}", d.id),
            });
            docs.push((name, d));
            Ok(v)
        },
        None,
    )
    .await?;
    out.end_array(first).await?;
    for (name, d) in docs {
        use futures_util::StreamExt;
        let ck = ContentKey::unwrap(&k, &d.version_id, &d.key_wrapped)?;
        let object = crate::blobs::document_key(&org_id, &d.version_id)
            .ok_or_else(|| zip_err("a document's object key"))?;
        let size = u64::try_from(d.size).unwrap_or(0);
        let mut stream = std::pin::pin!(crate::content::open_range(
            &app.blobs,
            ck,
            &d.version_id,
            &object,
            size,
            0..size,
        )
        .await
        .map_err(|e| AppError::Corrupt(format!("{e} (object {object})")))?);
        out.file(&format!("documents/{}/{name}", d.id))?;
        while let Some(part) = stream.next().await {
            let part = part.map_err(|e| AppError::Corrupt(format!("{e} (object {object})")))?;
            out.write(&part).await?;
        }
        out.records += 1;
        progress(app, &row.id, out.records).await?;
    }

    out.file("audit.jsonl")?;
    let mut lines = crate::tenancy::audit_trail::ChainLines::new(app, &org_id, &user_id, upto);
    while let Some(chunk) = lines.next().await? {
        out.write(&chunk).await?;
    }

    let (size, sha256) = out.finish().await?;
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    let ok = db::ready(
        &mut tx,
        db::Ready {
            id: &row.id,
            key_wrapped: key.wrap(&k, &ad(&row.id)),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            sha256: &sha256,
            now,
            expires_at: now + EXPORT_DAYS * DAY_MS,
        },
    )
    .await?;
    if !ok {
        tx.rollback().await?;
        app.blobs.delete(&object_key(&row.id)).await?;
        return Ok(());
    }
    tx.commit().await?;
    Ok(())
}

type Fut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = AppResult<T>> + Send + 'a>>;

/// Runs `f` in a read transaction of the org as the user (a page of their rows).
async fn in_org<T>(
    app: &App,
    org_id: &str,
    user_id: &str,
    f: impl for<'a> FnOnce(&'a mut TenantTx, String) -> Fut<'a, T>,
) -> AppResult<T>
where
    T: Default,
{
    let Some((mut tx, _)) = TenantTx::enter(&app.db, org_id, user_id, None, Mode::Read).await?
    else {
        return Ok(T::default());
    };
    let out = f(&mut tx, user_id.to_string()).await?;
    tx.commit().await?;
    Ok(out)
}

/// Writes one org's rows into the open JSON array, a page at a time: `fetch` reads the page after
/// a cursor (in a read transaction of the org, as the user, whose id it is given), `cursor` names a
/// row's cursor and `each` makes a row its record. With `progress_of`, the export's progress is
/// stored after each page.
#[allow(clippy::too_many_arguments)]
async fn org_pages<R, F>(
    out: &mut ZipOut,
    first: &mut bool,
    app: &App,
    (org_id, user_id): (&str, &str),
    fetch: F,
    cursor: impl Fn(&R) -> String,
    mut each: impl FnMut(R) -> AppResult<Value>,
    progress_of: Option<&str>,
) -> AppResult<()>
where
    F: for<'a> Fn(&'a mut TenantTx, String, String) -> Fut<'a, Vec<R>>,
{
    let mut after = String::new();
    loop {
        let from = after.clone();
        let rows = in_org(app, org_id, user_id, |t, u| fetch(t, u, from)).await?;
        let Some(last) = rows.last() else { break };
        after = cursor(last);
        let page = rows
            .into_iter()
            .map(&mut each)
            .collect::<AppResult<Vec<_>>>()?;
        out.array(first, &page).await?;
        if let Some(id) = progress_of {
            progress(app, id, out.records).await?;
        }
    }
    Ok(())
}

async fn progress(app: &App, id: &str, records: i64) -> AppResult<()> {
    let mut c = app.db.acquire().await?;
    db::set_progress(&mut c, id, records).await?;
    Ok(())
}
