//! `/api/v1/orgs/{org_id}/audit-events*`: the org's audit trail for its owners and admins.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::middleware::RequestCtxExt;
use super::org_api::{List, Org, OrgWrite};
use super::problem::{ApiJson, ApiQuery};
use crate::audit::query::{EventView, Filter};
use crate::audit::Report;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::tenancy::audit_trail::{self as trail, Format};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(export_events))
        .routes(routes!(verify_events))
}

/// Filters shared by the list and the export.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
// Said outright: utoipa finds query parameters by axum's `Query`, not by `ApiQuery`.
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// An action name, e.g. `member.role_changed`.
    pub action: Option<String>,
    /// The acting user's id.
    pub actor_id: Option<String>,
    /// The target's id.
    pub target_id: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
    /// Export only: `jsonl` (default) or `csv`.
    pub format: Option<String>,
}

impl AuditQuery {
    pub fn filter(&self) -> AppResult<Filter> {
        Filter::parse(
            self.action.as_deref(),
            self.actor_id.as_deref(),
            self.target_id.as_deref(),
            self.since.as_deref(),
            self.until.as_deref(),
        )
    }
}

/// Exports and verifications cost the org's scan budget (and an export is recorded): a page on
/// another site must not be able to spend it by sending an admin's browser there.
fn refuse_cross_site(headers: &HeaderMap) -> AppResult<()> {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        None | Some("same-origin") | Some("none") => Ok(()),
        Some(_) => Err(AppError::Forbidden {
            code: "cross_origin",
            detail: "Open this from Strongroom itself.".into(),
        }),
    }
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/audit-events", tag = "audit",
    params(("org_id" = String, Path), AuditQuery),
    responses((status = 200, body = List<EventView>), (status = 401), (status = 404), (status = 422)))]
async fn list_events(
    State(app): State<AppState>,
    Org(mut scope, _): Org,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> AppResult<ApiJson<List<EventView>>> {
    trail::require_auditor(&scope)?;
    let f = q.filter()?;
    Ok(ApiJson(
        trail::list(&app, &mut scope, &f, q.cursor.as_deref(), q.limit)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/audit-events/export", tag = "audit",
    params(("org_id" = String, Path), AuditQuery),
    responses((status = 200, description = "JSON Lines (or CSV), oldest first, streamed"), (status = 401), (status = 404), (status = 422)))]
async fn export_events(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    headers: HeaderMap,
    OrgWrite(mut scope, _): OrgWrite,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> AppResult<Response> {
    trail::require_auditor(&scope)?;
    refuse_cross_site(&headers)?;
    let f = q.filter()?;
    let format = match q.format.as_deref() {
        None | Some("") | Some("jsonl") => Format::JsonLines,
        Some("csv") => Format::Csv,
        Some(_) => {
            return Err(AppError::invalid(
                "invalid_format",
                "format must be jsonl or csv.",
            ))
        }
    };
    let (content_type, ext) = match format {
        Format::JsonLines => ("application/x-ndjson", "jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let stream = trail::export(&app, &mut scope, &ctx.0, f, format).await?;
    let name = format!(
        "attachment; filename=\"audit-{}-{}.{ext}\"",
        scope.org_id(),
        app.clock.now_ms() / 1000
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/audit-events/verify", tag = "audit",
    params(("org_id" = String, Path)),
    responses((status = 200, body = Report), (status = 401), (status = 404)))]
async fn verify_events(
    State(app): State<AppState>,
    headers: HeaderMap,
    Org(mut scope, _): Org,
) -> AppResult<ApiJson<Report>> {
    trail::require_auditor(&scope)?;
    refuse_cross_site(&headers)?;
    Ok(ApiJson(trail::verify(&app, &mut scope).await?))
}
