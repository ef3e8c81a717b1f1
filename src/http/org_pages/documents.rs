//! Document pages: a workspace's documents and folders (upload with a progress bar and drag and
//! drop in `static/documents.js`; a plain form without it), a document with its versions, its
//! share links (the new link's URL shown once), their access lists, and deletion.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Value};
use serde::Deserialize;

use super::*;
use crate::http::documents_api::{receive, Target};
use crate::http::middleware::RequestCtxExt;
use crate::http::problem::{ApiForm, ApiQuery};
use crate::http::work_api::{param, PathParams};
use crate::state::AppState;
use crate::store::tenant::Mode;
use crate::tenancy::documents::{self, LinkInput};

const WS: &str = "/orgs/{org_id}/workspaces/{ws_id}";

pub(super) fn routes() -> Router<AppState> {
    let d = format!("{WS}/documents/{{doc_id}}");
    Router::new()
        .route(&format!("{WS}/documents"), get(documents_page))
        .route(&format!("{WS}/folders"), post(create_folder_submit))
        .route(
            &format!("{WS}/folders/{{folder_id}}/delete"),
            post(delete_folder_submit),
        )
        .route(&d, get(document_page))
        .route(&format!("{d}/links"), post(create_link_submit))
        .route(&format!("{d}/links/{{link_id}}"), get(link_page))
        .route(
            &format!("{d}/links/{{link_id}}/revoke"),
            post(revoke_link_submit),
        )
        .route(&format!("{d}/delete"), post(delete_document_submit))
}

/// The page forms that upload (mounted with the streaming upload routes).
pub fn upload_routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{WS}/documents/upload"), post(upload_submit))
        .route(
            &format!("{WS}/documents/{{doc_id}}/versions/upload"),
            post(upload_version_submit),
        )
}

fn docs_url(ws: &WorkspaceScope) -> String {
    format!("/orgs/{}/workspaces/{}/documents", ws.org.org_id(), ws.id())
}

fn doc_done(ws: &WorkspaceScope, doc_id: &str, done: &str) -> Response {
    Redirect::to(&format!("{}/{doc_id}?done={done}", docs_url(ws))).into_response()
}

/// Notices after a change on these pages (by name, never text from the URL).
fn doc_notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "uploaded" => "The file was uploaded and encrypted.",
        "version" => "The new version was uploaded.",
        "link_revoked" => "The link was revoked: it stopped working at once.",
        "folder_created" => "The folder was created.",
        "folder_deleted" => "The folder was deleted.",
        "doc_deleted" => "The document was deleted, with its versions and links.",
        _ => return None,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct DocsQuery {
    done: String,
    folder: String,
}

async fn documents_page(
    State(app): State<AppState>,
    WsPage(mut ws, _): WsPage,
    ApiQuery(q): ApiQuery<DocsQuery>,
) -> Response {
    let notice = doc_notice(&q.done);
    documents_view(&app, &mut ws, &q.folder, notice, None).await
}

async fn documents_view(
    app: &AppState,
    ws: &mut WorkspaceScope,
    folder: &str,
    notice: Option<&'static str>,
    error: Option<&AppError>,
) -> Response {
    let loaded = async {
        let org = tenancy::get_org(app, &mut ws.org).await?;
        let view = workspaces::get_workspace(app, ws).await?;
        let current = (!folder.is_empty()).then_some(folder);
        let (folders, docs) = documents::documents_page(ws, Some(current.unwrap_or(""))).await?;
        let (members, _) = org_members(app, &mut ws.org).await?;
        Ok::<_, AppError>((org, view, folders, docs, members))
    };
    let (org, view, folders, docs, members) = or_page!(app, loaded.await);
    let names = names(&members);
    let here = folders.iter().find(|f| f.id == folder);
    let subfolders: Vec<_> = folders
        .iter()
        .filter(|f| f.parent_id.as_deref() == here.map(|h| h.id.as_str()))
        .collect();
    let rows: Vec<Value> = docs
        .iter()
        .map(|d| {
            context! {
                id => d.id, name => d.name, size => d.size, content_type => d.content_type,
                version => d.version, updated_at => d.updated_at,
                by => name_of(&names, &d.created_by),
            }
        })
        .collect();
    let parent = here.and_then(|h| h.parent_id.clone());
    let mut out = Outcome::done(&DoneQuery::default());
    out.notice = notice;
    out.error = error;
    show(
        app,
        &out,
        "documents.html",
        context! {
            title => match here { Some(h) => h.name.clone(), None => "Documents".to_string() },
            org, ws => view, nav => "orgs",
            folder => here, parent, subfolders, documents => rows,
            can_edit => ws.role() >= WsRole::Editor,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FolderForm {
    name: String,
    parent_id: String,
}

async fn create_folder_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    WsPage(mut ws, s): WsPage,
    ApiForm(f): ApiForm<FolderForm>,
) -> Response {
    let parent = non_empty(&f.parent_id);
    match documents::create_folder(&app, &ctx.0, &mut ws, &f.name, parent.as_deref()).await {
        Ok(folder) => Redirect::to(&format!(
            "{}?folder={}&done=folder_created",
            docs_url(&ws),
            folder.id
        ))
        .into_response(),
        Err(e) => {
            let mut ws = or_page!(&app, reopen_ws(&app, &s, ws).await);
            documents_view(&app, &mut ws, &f.parent_id, None, Some(&e)).await
        }
    }
}

async fn delete_folder_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    WsPage(mut ws, s): WsPage,
    PathParams(path): PathParams,
) -> Response {
    let folder = or_page!(&app, param(&path, "folder_id"));
    match documents::delete_folder(&app, &ctx.0, &mut ws, &folder).await {
        Ok(()) => Redirect::to(&format!("{}?done=folder_deleted", docs_url(&ws))).into_response(),
        Err(e) => {
            let mut ws = or_page!(&app, reopen_ws(&app, &s, ws).await);
            documents_view(&app, &mut ws, &folder, None, Some(&e)).await
        }
    }
}

async fn document_page(
    State(app): State<AppState>,
    WsPage(mut ws, _): WsPage,
    PathParams(path): PathParams,
    ApiQuery(q): ApiQuery<DocsQuery>,
) -> Response {
    let doc_id = or_page!(&app, param(&path, "doc_id"));
    document_view(
        &app,
        &mut ws,
        &doc_id,
        doc_notice(&q.done),
        None,
        context! {},
    )
    .await
}

async fn document_view(
    app: &AppState,
    ws: &mut WorkspaceScope,
    doc_id: &str,
    notice: Option<&'static str>,
    error: Option<&AppError>,
    extra: Value,
) -> Response {
    let loaded = async {
        let org = tenancy::get_org(app, &mut ws.org).await?;
        let view = workspaces::get_workspace(app, ws).await?;
        let (doc, links) = documents::document_page(app, ws, doc_id).await?;
        let (members, _) = org_members(app, &mut ws.org).await?;
        Ok::<_, AppError>((org, view, doc, links, members))
    };
    let (org, view, doc, links, members) = or_page!(app, loaded.await);
    let names = names(&members);
    let versions: Vec<Value> = doc
        .versions
        .iter()
        .flatten()
        .map(|v| {
            context! {
                id => v.id, number => v.number, name => v.name, size => v.size,
                content_type => v.content_type, sha256 => v.sha256, created_at => v.created_at,
                by => name_of(&names, &v.uploaded_by),
            }
        })
        .collect();
    let links: Vec<Value> = links
        .iter()
        .flatten()
        .map(|l| {
            let version = l.version_id.as_ref().and_then(|id| {
                doc.versions
                    .iter()
                    .flatten()
                    .find(|v| &v.id == id)
                    .map(|v| v.number)
            });
            context! {
                id => l.id, by => name_of(&names, &l.created_by), created_at => l.created_at,
                expires_at => l.expires_at, downloads => l.downloads,
                max_downloads => l.max_downloads, state => l.state, password => l.password,
                recipient => l.recipient, watermark => l.watermark, version,
            }
        })
        .collect();
    let mut out = Outcome::done(&DoneQuery::default());
    out.notice = notice;
    out.error = error;
    let folder = doc.folder_id.clone();
    show(
        app,
        &out,
        "document.html",
        context! {
            title => doc.name.clone(),
            org, ws => view, nav => "orgs", doc, versions, links, folder,
            by => name_of(&names, &doc.created_by),
            can_edit => ws.role() >= WsRole::Editor,
            ..extra
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LinkForm {
    expires_in_days: String,
    max_downloads: String,
    password: String,
    recipient_email: String,
    watermark: Option<String>,
    notify: Option<String>,
    version_id: String,
}

async fn create_link_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    PathParams(path): PathParams,
    session: crate::http::session::FullSession,
    ApiForm(f): ApiForm<LinkForm>,
) -> Response {
    let Some(s) = session.0 else {
        return to_login();
    };
    let (org_id, ws_id, doc_id) = match (
        param(&path, "org_id"),
        param(&path, "ws_id"),
        param(&path, "doc_id"),
    ) {
        (Ok(o), Ok(w), Ok(d)) => (o, w, d),
        _ => return denied(&app, &AppError::NotFound),
    };
    let form = context! {
        form => context! {
            expires_in_days => f.expires_in_days, max_downloads => f.max_downloads,
            recipient_email => f.recipient_email, watermark => f.watermark.is_some(),
            notify => f.notify.is_some(), version_id => f.version_id,
        }
    };
    let parsed = async {
        let days: i64 =
            f.expires_in_days.trim().parse().map_err(|_| {
                AppError::invalid("invalid_expiry", "expires_in_days: 1 to 30 days.")
            })?;
        if !(1..=30).contains(&days) {
            return Err(AppError::invalid(
                "invalid_expiry",
                "expires_in_days: 1 to 30 days.",
            ));
        }
        let max_downloads = match f.max_downloads.trim() {
            "" => None,
            m => Some(m.parse::<i64>().map_err(|_| {
                AppError::invalid("invalid_max_downloads", "max_downloads: a whole number.")
            })?),
        };
        // Hashed before the transaction opens (Argon2 takes a while).
        let password_hash = match f.password.as_str() {
            "" => None,
            p if !(8..=1024).contains(&p.chars().count()) => {
                return Err(AppError::invalid(
                    "invalid_password",
                    "password: 8 to 1024 characters.",
                ))
            }
            p => Some(
                app.hasher
                    .hash(p)
                    .await
                    .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?,
            ),
        };
        Ok(LinkInput {
            expires_in_seconds: days * 24 * 3600,
            max_downloads,
            password_hash,
            recipient: non_empty(&f.recipient_email),
            watermark: f.watermark.is_some(),
            version_id: non_empty(&f.version_id),
            notify: f.notify.is_some(),
        })
    }
    .await;
    let mut ws = match workspaces::authorize_workspace(&app, &s, &org_id, &ws_id, Mode::Write).await
    {
        Ok(ws) => ws,
        Err(e) => return denied(&app, &e),
    };
    let created = match parsed {
        Ok(input) => documents::create_link(&app, &ctx.0, &mut ws, &doc_id, input).await,
        Err(e) => Err(e),
    };
    let mut ws = or_page!(&app, reopen_ws(&app, &s, ws).await);
    match created {
        Ok(link) => {
            document_view(
                &app,
                &mut ws,
                &doc_id,
                Some("The link was created. Copy it now: it is shown only once."),
                None,
                context! { new_link => link.url, new_link_expires => link.expires_at },
            )
            .await
        }
        Err(e) => document_view(&app, &mut ws, &doc_id, None, Some(&e), form).await,
    }
}

async fn revoke_link_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    WsPage(mut ws, s): WsPage,
    PathParams(path): PathParams,
) -> Response {
    let (doc_id, link_id) = match (param(&path, "doc_id"), param(&path, "link_id")) {
        (Ok(d), Ok(l)) => (d, l),
        _ => return denied(&app, &AppError::NotFound),
    };
    match documents::revoke_link(&app, &ctx.0, &mut ws, &doc_id, &link_id).await {
        Ok(()) => doc_done(&ws, &doc_id, "link_revoked"),
        Err(e) => {
            let mut ws = or_page!(&app, reopen_ws(&app, &s, ws).await);
            document_view(&app, &mut ws, &doc_id, None, Some(&e), context! {}).await
        }
    }
}

async fn link_page(
    State(app): State<AppState>,
    WsPage(mut ws, _): WsPage,
    PathParams(path): PathParams,
) -> Response {
    let (doc_id, link_id) = match (param(&path, "doc_id"), param(&path, "link_id")) {
        (Ok(d), Ok(l)) => (d, l),
        _ => return denied(&app, &AppError::NotFound),
    };
    let loaded = async {
        let org = tenancy::get_org(&app, &mut ws.org).await?;
        let view = workspaces::get_workspace(&app, &mut ws).await?;
        let (doc, links) = documents::document_page(&app, &mut ws, &doc_id).await?;
        let link = links
            .into_iter()
            .flatten()
            .find(|l| l.id == link_id)
            .ok_or(AppError::NotFound)?;
        let accesses = documents::list_accesses(&mut ws, &doc_id, &link_id).await?;
        let (members, _) = org_members(&app, &mut ws.org).await?;
        Ok::<_, AppError>((org, view, doc, link, accesses, members))
    };
    let (org, view, doc, link, accesses, members) = or_page!(&app, loaded.await);
    let names = names(&members);
    let downloaded: i64 = accesses
        .iter()
        .filter(|a| a.outcome == "download")
        .map(|a| a.bytes)
        .sum();
    show(
        &app,
        &Outcome::default(),
        "share_link.html",
        context! {
            title => "Link activity",
            org, ws => view, nav => "orgs", doc, link, accesses, downloaded,
            by => name_of(&names, &link.created_by),
        },
    )
}

async fn delete_document_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    WsPage(mut ws, s): WsPage,
    PathParams(path): PathParams,
) -> Response {
    let doc_id = or_page!(&app, param(&path, "doc_id"));
    match documents::delete_document(&app, &ctx.0, &mut ws, &doc_id).await {
        Ok(()) => Redirect::to(&format!("{}?done=doc_deleted", docs_url(&ws))).into_response(),
        Err(e) => {
            let mut ws = or_page!(&app, reopen_ws(&app, &s, ws).await);
            document_view(&app, &mut ws, &doc_id, None, Some(&e), context! {}).await
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UploadPageQuery {
    folder: String,
}

async fn upload_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    session: crate::http::session::FullSession,
    PathParams(path): PathParams,
    ApiQuery(q): ApiQuery<UploadPageQuery>,
    req: Request,
) -> Response {
    upload_page(
        &app,
        &ctx.0,
        session,
        &path,
        non_empty(&q.folder),
        None,
        req,
    )
    .await
}

async fn upload_version_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    session: crate::http::session::FullSession,
    PathParams(path): PathParams,
    req: Request,
) -> Response {
    let doc = param(&path, "doc_id").ok();
    if doc.is_none() {
        return denied(&app, &AppError::NotFound);
    }
    upload_page(&app, &ctx.0, session, &path, None, doc, req).await
}

/// An upload from a page's plain form: to the document's page when it worked, else a page
/// saying why with a way back.
async fn upload_page(
    app: &AppState,
    ctx: &crate::identity::RequestCtx,
    session: crate::http::session::FullSession,
    path: &std::collections::HashMap<String, String>,
    folder: Option<String>,
    doc: Option<String>,
    req: Request,
) -> Response {
    let Some(s) = session.0 else {
        return to_login();
    };
    let (org_id, ws_id) = match (param(path, "org_id"), param(path, "ws_id")) {
        (Ok(o), Ok(w)) => (o, w),
        _ => return denied(app, &AppError::NotFound),
    };
    let back = format!("/orgs/{org_id}/workspaces/{ws_id}/documents");
    let new_version = doc.is_some();
    let target = Target {
        org_id,
        ws_id,
        document_id: doc,
        folder_id: folder,
    };
    match receive(app, ctx, &s, target, req).await {
        Ok(d) => Redirect::to(&format!(
            "{back}/{}?done={}",
            d.id,
            if new_version { "version" } else { "uploaded" }
        ))
        .into_response(),
        Err(AppError::NotFound) => denied(app, &AppError::NotFound),
        Err(e) => {
            let (status, message) = crate::http::pages::page_error(&e);
            let res = crate::http::pages::render(
                app,
                status,
                "message.html",
                context! {
                    title => "The upload did not work", message, link => back,
                    link_text => "Back to the documents", signed_in => true,
                },
            );
            with_retry_after(res, &e)
        }
    }
}
