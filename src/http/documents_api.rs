//! Documents, folders and share links under `/api/v1/orgs/{org_id}/workspaces/{ws_id}`.
//!
//! Uploads have a router of their own (`upload_router`): their body streams through the handler
//! to the object store instead of being read first, under their own size limit and timeout, and
//! no transaction is open while it flows (see `tenancy::documents`). Downloads stream too, with
//! `Range`, as attachments that a browser will neither sniff nor run.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::middleware::RequestCtxExt;
use super::org_api::List;
use super::problem::{ApiJson, ApiQuery};
use super::session::Authed;
use super::work_api::{param, PathParams, Ws};
use crate::content::{self, UploadError};
use crate::error::{AppError, AppResult};
use crate::identity::{AuthSession, RequestCtx};
use crate::state::{App, AppState};
use crate::store::tenant::Mode;
use crate::tenancy::documents::{
    self, AccessView, ContentTicket, DocumentView, FolderView, LinkCreated, LinkInput, LinkView,
};
use crate::tenancy::workspaces::authorize_workspace;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_documents))
        .routes(routes!(get_document, update_document, delete_document))
        .routes(routes!(download))
        .routes(routes!(create_link, list_links))
        .routes(routes!(revoke_link))
        .routes(routes!(list_accesses))
        .routes(routes!(create_folder, list_folders))
        .routes(routes!(delete_folder))
}

/// The streaming upload routes (mounted outside the read-the-body-first layers).
pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(upload_version))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The folder to put a new document in.
    folder_id: Option<String>,
}

/// `multipart/form-data` with one part named `file`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/documents", tag = "documents",
    params(("org_id" = String, Path), ("ws_id" = String, Path), UploadQuery),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = DocumentView), (status = 403), (status = 404), (status = 413), (status = 422)))]
async fn upload(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    PathParams(params): PathParams,
    ApiQuery(q): ApiQuery<UploadQuery>,
    req: Request,
) -> AppResult<Response> {
    let target = Target {
        org_id: param(&params, "org_id")?,
        ws_id: param(&params, "ws_id")?,
        document_id: None,
        folder_id: q.folder_id,
    };
    let doc = receive(&app, &ctx.0, &s, target, req).await?;
    Ok((StatusCode::CREATED, ApiJson(doc)).into_response())
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/documents/{doc_id}/versions", tag = "documents",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("doc_id" = String, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = DocumentView), (status = 403), (status = 404), (status = 413), (status = 422)))]
async fn upload_version(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    PathParams(params): PathParams,
    req: Request,
) -> AppResult<Response> {
    let target = Target {
        org_id: param(&params, "org_id")?,
        ws_id: param(&params, "ws_id")?,
        document_id: Some(param(&params, "doc_id")?),
        folder_id: None,
    };
    let doc = receive(&app, &ctx.0, &s, target, req).await?;
    Ok((StatusCode::CREATED, ApiJson(doc)).into_response())
}

/// Where an upload goes.
pub(crate) struct Target {
    pub org_id: String,
    pub ws_id: String,
    pub document_id: Option<String>,
    pub folder_id: Option<String>,
}

/// Receives one upload: finds the `file` part, checks the caller's role, streams the part
/// through encryption into the object store and records it. Whatever fails, nothing is left
/// visible and the object is removed (or left to the cleanup job).
pub(crate) async fn receive(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    target: Target,
    req: Request,
) -> AppResult<DocumentView> {
    let max = app.config.documents.max_upload_bytes;
    let not_multipart = || {
        AppError::invalid(
            "invalid_body",
            "Send the file as multipart/form-data with one part named file.",
        )
    };
    let boundary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(not_multipart)?;
    let limits = multer::SizeLimit::new()
        .whole_stream(max.saturating_add(1024 * 1024))
        .per_field(max);
    let body = content::Paced::new(req.into_body().into_data_stream());
    let mut multipart = multer::Multipart::with_constraints(
        body,
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let field = loop {
        match multipart.next_field().await {
            Ok(Some(f)) if f.name() == Some("file") => break f,
            Ok(Some(_)) => continue,
            Ok(None) => {
                return Err(AppError::invalid(
                    "missing_file",
                    "Send the file as multipart/form-data with one part named file.",
                ))
            }
            Err(e) => return Err(multipart_error(&e, max)),
        }
    };
    let filename = field.file_name().unwrap_or("document").to_string();
    let ticket = {
        let mut ws =
            authorize_workspace(app, s, &target.org_id, &target.ws_id, Mode::Write).await?;
        documents::begin_upload(
            app,
            &mut ws,
            target.document_id.as_deref(),
            target.folder_id.as_deref(),
        )
        .await?
    };
    let mut writer = match app.blobs.writer(&ticket.object_key).await {
        Ok(w) => w,
        Err(e) => {
            documents::abandon_upload(app, &ticket).await;
            return Err(AppError::Internal(e));
        }
    };
    let body = field.map(|r| {
        r.map_err(|e| match multipart_error(&e, max) {
            AppError::TooLarge { .. } => UploadError::TooLarge(max),
            _ => UploadError::Client(e.to_string()),
        })
    });
    let body = std::pin::pin!(body);
    let stored = content::store(&ticket.key, &ticket.version_id, &mut writer, body, max).await;
    let stored = match stored {
        Ok(s) => match writer.finish().await {
            Ok(()) => s,
            Err(e) => {
                documents::abandon_upload(app, &ticket).await;
                return Err(AppError::Internal(e));
            }
        },
        Err(e) => {
            if let Err(a) = writer.abort().await {
                tracing::warn!(error = %format!("{a:#}"), "aborting an upload failed");
            }
            documents::abandon_upload(app, &ticket).await;
            return Err(match e {
                UploadError::TooLarge(max) => AppError::TooLarge {
                    detail: format!("The file is larger than this server accepts ({max} bytes)."),
                },
                UploadError::Client(why) => AppError::invalid(
                    "upload_interrupted",
                    format!("The upload did not arrive whole: {why}"),
                ),
                UploadError::Storage(e) => AppError::Internal(e),
            });
        }
    };
    match documents::finish_upload(app, ctx, s, &ticket, &stored, &filename).await {
        Ok(doc) => Ok(doc),
        Err(e) => {
            documents::abandon_upload(app, &ticket).await;
            Err(e)
        }
    }
}

/// A size limit (the body limit's, or the parser's) is a 413; anything else about the body, 422.
fn multipart_error(e: &multer::Error, max: u64) -> AppError {
    let too_large = matches!(
        e,
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. }
    ) || std::iter::successors(
        Some(e as &(dyn std::error::Error + 'static)),
        |e| e.source(),
    )
    .any(|e| e.is::<http_body_util::LengthLimitError>());
    if too_large {
        AppError::TooLarge {
            detail: format!("The file is larger than this server accepts ({max} bytes)."),
        }
    } else {
        AppError::invalid(
            "invalid_body",
            "The multipart body could not be read: it ended early or is malformed.",
        )
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DocumentsQuery {
    /// Only the documents in this folder (empty: at the top level).
    folder_id: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/documents", tag = "documents",
    params(("org_id" = String, Path), ("ws_id" = String, Path), DocumentsQuery),
    responses((status = 200, body = List<DocumentView>), (status = 404)))]
async fn list_documents(
    Ws(mut ws): Ws,
    ApiQuery(q): ApiQuery<DocumentsQuery>,
) -> AppResult<ApiJson<List<DocumentView>>> {
    Ok(ApiJson(
        documents::list_documents(
            &mut ws,
            q.folder_id.as_deref(),
            q.cursor.as_deref(),
            q.limit,
        )
        .await?
        .into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/documents/{doc_id}", tag = "documents",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("doc_id" = String, Path)),
    responses((status = 200, body = DocumentView), (status = 404)))]
async fn get_document(
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
) -> AppResult<ApiJson<DocumentView>> {
    Ok(ApiJson(
        documents::get_document(&mut ws, &param(&params, "doc_id")?).await?,
    ))
}

fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentBody {
    #[serde(default)]
    name: Option<String>,
    /// A folder of the workspace, or null for the top level.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    folder_id: Option<Option<String>>,
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/documents/{doc_id}", tag = "documents",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("doc_id" = String, Path)),
    request_body = DocumentBody, responses((status = 200, body = DocumentView), (status = 403), (status = 404), (status = 422)))]
async fn update_document(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
    ApiJson(b): ApiJson<DocumentBody>,
) -> AppResult<ApiJson<DocumentView>> {
    Ok(ApiJson(
        documents::update_document(
            &app,
            &ctx.0,
            &mut ws,
            &param(&params, "doc_id")?,
            b.name.as_deref(),
            b.folder_id.as_ref().map(|f| f.as_deref()),
        )
        .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/documents/{doc_id}", tag = "documents",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("doc_id" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn delete_document(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
) -> AppResult<StatusCode> {
    documents::delete_document(&app, &ctx.0, &mut ws, &param(&params, "doc_id")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ContentQuery {
    /// An older version (editors); the latest when absent.
    version_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/documents/{doc_id}/content", tag = "documents",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("doc_id" = String, Path), ContentQuery),
    responses((status = 200, description = "the file, as an attachment"), (status = 206, description = "the requested range"),
        (status = 404), (status = 416)))]
async fn download(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    PathParams(params): PathParams,
    ApiQuery(q): ApiQuery<ContentQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let org_id = param(&params, "org_id")?;
    let ws_id = param(&params, "ws_id")?;
    let doc_id = param(&params, "doc_id")?;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|r| r.chars().take(64).collect::<String>());
    // A write transaction: the download is audited in it.
    let mut ws = authorize_workspace(&app, &s, &org_id, &ws_id, Mode::Write).await?;
    let t = documents::open_download(
        &app,
        &ctx.0,
        &mut ws,
        &doc_id,
        q.version_id.as_deref(),
        range.as_deref(),
    )
    .await?;
    drop(ws);
    serve(&app, t, &headers, true).await
}

/// A byte range of a file of `size` bytes asked for by a `Range` header: `Ok(None)` for the whole
/// file (no header, several ranges, or a unit other than bytes), `Err(())` when it cannot be
/// satisfied.
pub(crate) fn parse_range(h: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size
        } else {
            let e: u64 = b.parse().map_err(|_| ())?;
            if e < start {
                return Err(());
            }
            e.saturating_add(1).min(size)
        };
        (start, end)
    };
    if range.0 >= size {
        return Err(());
    }
    Ok(Some(range))
}

/// `attachment` with an ASCII fallback name and the exact name in RFC 5987 form (RFC 6266).
pub(crate) fn content_disposition(name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%' | ';') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let exact = urlencoding::encode(name);
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// The content of `t` as a response: the whole file or the range asked for, streamed.
pub(crate) async fn serve(
    app: &App,
    t: ContentTicket,
    headers: &HeaderMap,
    ranges: bool,
) -> AppResult<Response> {
    let etag = format!("\"{}\"", t.sha256);
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // A range of a file that changed since the client's copy would splice two files: If-Range.
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == etag);
    let wanted = if ranges && if_range_ok {
        parse_range(range_header, t.size)
    } else {
        Ok(None)
    };
    let mut res = match wanted {
        Err(()) => {
            let mut r = super::problem::problem(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                Some(format!(
                    "The file has {} bytes; that range is outside it.",
                    t.size
                )),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", t.size)) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
        Ok(range) => {
            let (start, end) = range.unwrap_or((0, t.size));
            let stream = content::open_range(
                &app.blobs,
                t.key,
                &t.version_id,
                &t.object_key,
                t.size,
                start..end,
            )
            .await
            .map_err(|e| AppError::Corrupt(format!("{} (object {})", e, t.object_key)))?;
            let mut r = Response::new(Body::from_stream(stream));
            let h = r.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
            if range.is_some() {
                *r.status_mut() = StatusCode::PARTIAL_CONTENT;
                if let Ok(v) =
                    HeaderValue::from_str(&format!("bytes {start}-{}/{}", end - 1, t.size))
                {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
            }
            r
        }
    };
    attachment_headers(&mut res, &t.content_type, &t.filename);
    let h = res.headers_mut();
    if ranges {
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
    }
    Ok(res)
}

/// The headers of every file served: its sniffed type, as an attachment with a safe name, never
/// sniffed again by the browser, and sandboxed should it be opened in a tab anyway (it runs
/// nothing and loads nothing), never cached.
fn attachment_headers(res: &mut Response, content_type: &str, filename: &str) {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_DISPOSITION, content_disposition(filename));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; frame-ancestors 'none'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
}

/// A PDF through a watermarking link: read whole (up to `documents.max_watermark_bytes`),
/// stamped with the verified recipient (or "a link recipient") and the time on every page. A file
/// too large or a PDF that cannot be stamped is refused, never served without its watermark.
pub(crate) async fn serve_watermarked(
    app: &App,
    t: ContentTicket,
    recipient: Option<&str>,
    at: i64,
) -> AppResult<Response> {
    let max = app.config.documents.max_watermark_bytes;
    if t.size > max {
        return Err(AppError::Conflict {
            code: "watermark_too_large",
            detail: format!(
                "This file is too large to be watermarked ({} bytes; the limit is {max}), so this link cannot serve it.",
                t.size
            ),
        });
    }
    let mut stream = std::pin::pin!(content::open_range(
        &app.blobs,
        t.key,
        &t.version_id,
        &t.object_key,
        t.size,
        0..t.size,
    )
    .await
    .map_err(|e| AppError::Corrupt(format!("{} (object {})", e, t.object_key)))?);
    let mut pdf = Vec::with_capacity(usize::try_from(t.size).unwrap_or(0));
    while let Some(part) = stream.next().await {
        let part = part.map_err(|e| AppError::Corrupt(format!("{e} (object {})", t.object_key)))?;
        pdf.extend_from_slice(&part);
    }
    let line = format!(
        "Shared with {} on {} - Strongroom",
        recipient.unwrap_or("a link recipient"),
        crate::clock::rfc3339(at),
    );
    let stamped = tokio::task::spawn_blocking(move || crate::watermark::stamp_pdf(&pdf, &line))
        .await
        .map_err(|e| AppError::Internal(e.into()))?
        .map_err(|e| AppError::Conflict {
            code: "watermark_failed",
            detail: format!(
                "This PDF could not be watermarked ({e}), so this link cannot serve it."
            ),
        })?;
    let mut res = Response::new(Body::from(stamped));
    attachment_headers(&mut res, &t.content_type, &t.filename);
    Ok(res)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// At most 30 days (2592000).
    expires_in_seconds: i64,
    #[serde(default)]
    max_downloads: Option<i64>,
    #[serde(default)]
    password: Option<String>,
    /// An address, or `@domain`, that must confirm a code sent to it before downloading.
    #[serde(default)]
    recipient_email: Option<String>,
    /// PDF downloads carry the recipient and the time on every page.
    #[serde(default)]
    watermark: bool,
    /// A fixed version; the latest when absent.
    #[serde(default)]
    version_id: Option<String>,
    /// Email the creator when the link is first used.
    #[serde(default)]
    notify_on_first_access: bool,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/documents/{doc_id}/links", tag = "documents",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("doc_id" = String, Path)),
    request_body = LinkBody, responses((status = 201, body = LinkCreated), (status = 403), (status = 404), (status = 422)))]
async fn create_link(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    PathParams(params): PathParams,
    ApiJson(b): ApiJson<LinkBody>,
) -> AppResult<Response> {
    let org_id = param(&params, "org_id")?;
    let ws_id = param(&params, "ws_id")?;
    let doc_id = param(&params, "doc_id")?;
    // The password is hashed before the transaction opens (Argon2 takes a while).
    let password_hash = match b.password.as_deref().filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => {
            let n = p.chars().count();
            if !(8..=1024).contains(&n) {
                return Err(AppError::invalid(
                    "invalid_password",
                    "password: 8 to 1024 characters.",
                ));
            }
            Some(
                app.hasher
                    .hash(p)
                    .await
                    .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?,
            )
        }
    };
    let mut ws = authorize_workspace(&app, &s, &org_id, &ws_id, Mode::Write).await?;
    let created = documents::create_link(
        &app,
        &ctx.0,
        &mut ws,
        &doc_id,
        LinkInput {
            expires_in_seconds: b.expires_in_seconds,
            max_downloads: b.max_downloads,
            password_hash,
            recipient: b.recipient_email,
            watermark: b.watermark,
            version_id: b.version_id,
            notify: b.notify_on_first_access,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(created)).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/documents/{doc_id}/links", tag = "documents",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("doc_id" = String, Path)),
    responses((status = 200, body = Vec<LinkView>), (status = 403), (status = 404)))]
async fn list_links(
    State(app): State<AppState>,
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
) -> AppResult<ApiJson<Vec<LinkView>>> {
    Ok(ApiJson(
        documents::list_links(&app, &mut ws, &param(&params, "doc_id")?).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/documents/{doc_id}/links/{link_id}", tag = "documents",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("doc_id" = String, Path), ("link_id" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn revoke_link(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
) -> AppResult<StatusCode> {
    documents::revoke_link(
        &app,
        &ctx.0,
        &mut ws,
        &param(&params, "doc_id")?,
        &param(&params, "link_id")?,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/documents/{doc_id}/links/{link_id}/accesses", tag = "documents",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("doc_id" = String, Path), ("link_id" = String, Path)),
    responses((status = 200, body = Vec<AccessView>), (status = 403), (status = 404)))]
async fn list_accesses(
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
) -> AppResult<ApiJson<Vec<AccessView>>> {
    Ok(ApiJson(
        documents::list_accesses(
            &mut ws,
            &param(&params, "doc_id")?,
            &param(&params, "link_id")?,
        )
        .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FolderBody {
    name: String,
    #[serde(default)]
    parent_id: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/folders", tag = "documents",
    params(("org_id" = String, Path), ("ws_id" = String, Path)),
    request_body = FolderBody, responses((status = 201, body = FolderView), (status = 403), (status = 404), (status = 422)))]
async fn create_folder(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
    ApiJson(b): ApiJson<FolderBody>,
) -> AppResult<Response> {
    let f =
        documents::create_folder(&app, &ctx.0, &mut ws, &b.name, b.parent_id.as_deref()).await?;
    Ok((StatusCode::CREATED, ApiJson(f)).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/folders", tag = "documents",
    params(("org_id" = String, Path), ("ws_id" = String, Path)),
    responses((status = 200, body = Vec<FolderView>), (status = 404)))]
async fn list_folders(Ws(mut ws): Ws) -> AppResult<ApiJson<Vec<FolderView>>> {
    Ok(ApiJson(documents::list_folders(&mut ws).await?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/folders/{folder_id}", tag = "documents",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("folder_id" = String, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
async fn delete_folder(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
) -> AppResult<StatusCode> {
    documents::delete_folder(&app, &ctx.0, &mut ws, &param(&params, "folder_id")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::{content_disposition, parse_range};

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some((0, 10))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some((90, 100))));
        assert_eq!(parse_range(Some("bytes=-5"), 100), Ok(Some((95, 100))));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Ok(Some((50, 100))));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=9-3"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=x-3"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=-0"), 100), Err(()));
    }

    #[test]
    fn attachment_names_are_safe_in_the_header() {
        let v = content_disposition("r\u{e9}sum\u{e9} \"final\";.pdf");
        let s = v.to_str().expect("ascii");
        assert!(
            s.starts_with("attachment; filename=\"r_sum_ _final__.pdf\""),
            "{s}"
        );
        assert!(
            s.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%3B.pdf"),
            "{s}"
        );
    }
}
