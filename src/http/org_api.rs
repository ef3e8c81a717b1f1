//! `/api/v1/orgs/*` and invitation acceptance. Every org route takes `Org`, which resolves the
//! named `{org_id}` path parameter into an `OrgScope` (membership checked, 404 otherwise).

use std::collections::HashMap;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::middleware::RequestCtxExt;
use super::problem::{ApiJson, ApiPath, ApiQuery};
use super::session::Authed;
use crate::error::{AppError, AppResult};
use crate::identity::AuthSession;
use crate::state::AppState;
use crate::store::tenant::Mode;
use crate::tenancy::search::SearchResults;
use crate::tenancy::{self, InvitationView, MemberView, OrgRole, OrgScope, OrgView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_org, list_orgs))
        .routes(routes!(get_org, update_org, delete_org))
        .routes(routes!(list_members))
        .routes(routes!(change_member, remove_member))
        .routes(routes!(create_invitation, list_invitations))
        .routes(routes!(revoke_invitation))
        .routes(routes!(accept_invitation))
        .routes(routes!(admin_read_org))
        .routes(routes!(admin_read_members))
        .routes(routes!(search))
        .routes(routes!(request_org_export))
        .routes(routes!(get_org_export))
        .routes(routes!(download_org_export))
}

/// The caller's scope in the org named by the `{org_id}` path parameter.
pub struct Org(pub OrgScope, pub AuthSession);

impl FromRequestParts<AppState> for Org {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mode = mode_of(parts);
        let (scope, s) = org_scope(parts, app, mode).await?;
        Ok(Org(scope, s))
    }
}

/// `Org` in a write transaction whatever the method: for a read that records itself in the
/// org's audit trail (an export).
pub struct OrgWrite(pub OrgScope, pub AuthSession);

impl FromRequestParts<AppState> for OrgWrite {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (scope, s) = org_scope(parts, app, Mode::Write).await?;
        Ok(OrgWrite(scope, s))
    }
}

async fn org_scope(
    parts: &mut Parts,
    app: &AppState,
    mode: Mode,
) -> Result<(OrgScope, AuthSession), AppError> {
    let Authed(s) = Authed::from_request_parts(parts, app).await?;
    Ok((open_org(parts, app, &s, mode).await?, s))
}

/// The one check behind every org route, API and page alike (the pages' extractors call it too):
/// the org named by the `{org_id}` path parameter, opened for `s` in `mode` in the request's one
/// transaction (membership checked; `NotFound` otherwise). The extractors differ only in how
/// they find the session and how they answer a refusal.
pub(crate) async fn open_org(
    parts: &mut Parts,
    app: &AppState,
    s: &AuthSession,
    mode: Mode,
) -> AppResult<OrgScope> {
    let ApiPath(params) = ApiPath::<HashMap<String, String>>::from_request_parts(parts, app)
        .await
        .map_err(|_| AppError::NotFound)?;
    let org_id = params.get("org_id").ok_or(AppError::NotFound)?;
    tenancy::authorize(app, s, org_id, mode).await
}

/// A request's one transaction reads (`GET`, `HEAD`) or writes (anything else). The body was read
/// before (see `body::read_first`), so no client holds a write transaction open by sending slowly.
pub fn mode_of(parts: &Parts) -> Mode {
    if parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD {
        Mode::Read
    } else {
        Mode::Write
    }
}

#[derive(Deserialize, IntoParams)]
// Said outright: utoipa finds query parameters by axum's `Query`, not by `ApiQuery`.
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct List<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

impl<T> From<tenancy::Page<T>> for List<T> {
    fn from(p: tenancy::Page<T>) -> Self {
        Self {
            items: p.items,
            next_cursor: p.next_cursor,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrgBody {
    name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrgBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    require_mfa: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    role: OrgRole,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    email: String,
    role: OrgRole,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    token: String,
}

#[utoipa::path(post, path = "/api/v1/orgs", tag = "orgs", request_body = CreateOrgBody,
    responses((status = 201, body = OrgView), (status = 401), (status = 422)))]
async fn create_org(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiJson(b): ApiJson<CreateOrgBody>,
) -> AppResult<Response> {
    let org = tenancy::create_org(&app, &ctx.0, &s, &b.name).await?;
    Ok((StatusCode::CREATED, ApiJson(org)).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs", tag = "orgs", params(PageQuery), responses((status = 200, body = List<OrgView>), (status = 401)))]
async fn list_orgs(
    State(app): State<AppState>,
    Authed(s): Authed,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<ApiJson<List<OrgView>>> {
    Ok(ApiJson(
        tenancy::list_orgs(&app, &s, q.cursor.as_deref(), q.limit)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}", tag = "orgs", params(("org_id" = String, Path)),
    responses((status = 200, body = OrgView), (status = 401), (status = 404)))]
async fn get_org(
    State(app): State<AppState>,
    Org(mut scope, _): Org,
) -> AppResult<ApiJson<OrgView>> {
    Ok(ApiJson(tenancy::get_org(&app, &mut scope).await?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}", tag = "orgs", params(("org_id" = String, Path)), request_body = UpdateOrgBody,
    responses((status = 200, body = OrgView), (status = 403), (status = 404), (status = 422)))]
async fn update_org(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, _): Org,
    ApiJson(b): ApiJson<UpdateOrgBody>,
) -> AppResult<ApiJson<OrgView>> {
    Ok(ApiJson(
        tenancy::update_org(&app, &ctx.0, &mut scope, b.name.as_deref(), b.require_mfa).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}", tag = "orgs", params(("org_id" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn delete_org(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, s): Org,
) -> AppResult<StatusCode> {
    tenancy::delete_org(&app, &ctx.0, &s, &mut scope).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/members", tag = "orgs", params(("org_id" = String, Path), PageQuery),
    responses((status = 200, body = List<MemberView>), (status = 404)))]
async fn list_members(
    State(app): State<AppState>,
    Org(mut scope, _): Org,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<ApiJson<List<MemberView>>> {
    Ok(ApiJson(
        tenancy::list_members(&app, &mut scope, q.cursor.as_deref(), q.limit)
            .await?
            .into(),
    ))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/members/{user_id}", tag = "orgs",
    params(("org_id" = String, Path), ("user_id" = String, Path)), request_body = RoleBody,
    responses((status = 200, body = MemberView), (status = 403), (status = 404)))]
async fn change_member(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, _): Org,
    ApiPath(ids): ApiPath<(String, String)>,
    ApiJson(b): ApiJson<RoleBody>,
) -> AppResult<ApiJson<MemberView>> {
    Ok(ApiJson(
        tenancy::change_member_role(&app, &ctx.0, &mut scope, &ids.1, b.role).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/members/{user_id}", tag = "orgs",
    params(("org_id" = String, Path), ("user_id" = String, Path)), responses((status = 204), (status = 403), (status = 404)))]
async fn remove_member(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, _): Org,
    ApiPath(ids): ApiPath<(String, String)>,
) -> AppResult<StatusCode> {
    tenancy::remove_member(&app, &ctx.0, &mut scope, &ids.1).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/invitations", tag = "orgs", params(("org_id" = String, Path)), request_body = InviteBody,
    responses((status = 201, body = InvitationView), (status = 403), (status = 404), (status = 422)))]
async fn create_invitation(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, _): Org,
    ApiJson(b): ApiJson<InviteBody>,
) -> AppResult<Response> {
    let inv = tenancy::create_invitation(&app, &ctx.0, &mut scope, &b.email, b.role).await?;
    Ok((StatusCode::CREATED, ApiJson(inv)).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/invitations", tag = "orgs", params(("org_id" = String, Path), PageQuery),
    responses((status = 200, body = List<InvitationView>), (status = 403), (status = 404)))]
async fn list_invitations(
    State(app): State<AppState>,
    Org(mut scope, _): Org,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<ApiJson<List<InvitationView>>> {
    Ok(ApiJson(
        tenancy::list_invitations(&app, &mut scope, q.cursor.as_deref(), q.limit)
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/invitations/{id}", tag = "orgs",
    params(("org_id" = String, Path), ("id" = String, Path)), responses((status = 204), (status = 403), (status = 404)))]
async fn revoke_invitation(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, _): Org,
    ApiPath(ids): ApiPath<(String, String)>,
) -> AppResult<StatusCode> {
    tenancy::revoke_invitation(&app, &ctx.0, &mut scope, &ids.1).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "orgs", request_body = TokenBody,
    responses((status = 200, body = OrgView), (status = 400), (status = 401)))]
async fn accept_invitation(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiJson(b): ApiJson<TokenBody>,
) -> AppResult<ApiJson<OrgView>> {
    Ok(ApiJson(
        tenancy::accept_invitation(&app, &ctx.0, &s, &b.token).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why the org is being read (10 to 500 characters); recorded in the org's audit trail.
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct AdminMembers {
    items: Vec<MemberView>,
}

/// Superadmin bypass: any org, with a reason, audited in the org's chain; 404 for everyone else.
/// A POST (behind the cross-origin guard), so no link on another site can trigger it.
#[utoipa::path(post, path = "/api/v1/admin/orgs/{org_id}", tag = "admin", params(("org_id" = String, Path)), request_body = ReasonBody,
    responses((status = 200, body = OrgView), (status = 404), (status = 422)))]
async fn admin_read_org(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiPath(org_id): ApiPath<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> AppResult<ApiJson<OrgView>> {
    Ok(ApiJson(
        tenancy::admin::read_org(&app, &ctx.0, &s, &org_id, Some(&b.reason)).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/admin/orgs/{org_id}/members", tag = "admin", params(("org_id" = String, Path)), request_body = ReasonBody,
    responses((status = 200, body = AdminMembers), (status = 404), (status = 422)))]
async fn admin_read_members(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiPath(org_id): ApiPath<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> AppResult<ApiJson<AdminMembers>> {
    Ok(ApiJson(AdminMembers {
        items: tenancy::admin::read_members(&app, &ctx.0, &s, &org_id, Some(&b.reason)).await?,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words; each must be a whole word of the item or comment (any case).
    #[serde(default)]
    q: String,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/search", tag = "orgs", params(("org_id" = String, Path), SearchQuery),
    responses((status = 200, body = SearchResults), (status = 404), (status = 422)))]
async fn search(
    State(app): State<AppState>,
    Org(mut scope, _): Org,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> AppResult<ApiJson<SearchResults>> {
    Ok(ApiJson(
        crate::tenancy::search::search(&app, &mut scope, &q.q).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/exports", tag = "orgs", params(("org_id" = String, Path)),
    responses((status = 202, body = crate::exports::ExportView), (status = 403, description = "owners only, after a step-up"), (status = 404), (status = 429)))]
async fn request_org_export(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, s): Org,
) -> AppResult<(StatusCode, ApiJson<crate::exports::ExportView>)> {
    let v = crate::exports::request_org(&app, &ctx.0, &s, &mut scope).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(v)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/exports/{id}", tag = "orgs",
    params(("org_id" = String, Path), ("id" = String, Path)), responses((status = 200, body = crate::exports::ExportView), (status = 403), (status = 404)))]
async fn get_org_export(
    State(app): State<AppState>,
    Org(mut scope, _): Org,
    ApiPath(ids): ApiPath<(String, String)>,
) -> AppResult<ApiJson<crate::exports::ExportView>> {
    Ok(ApiJson(
        crate::exports::get_org(&app, &mut scope, &ids.1).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/exports/{id}/download", tag = "orgs",
    params(("org_id" = String, Path), ("id" = String, Path)), responses((status = 200, content_type = "application/zip"), (status = 403), (status = 404)))]
async fn download_org_export(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    super::session::Authed(s): super::session::Authed,
    ApiPath(ids): ApiPath<(String, String)>,
    headers: axum::http::HeaderMap,
) -> AppResult<axum::response::Response> {
    // A read that is audited: the org's transaction writes.
    let mut scope = tenancy::authorize(&app, &s, &ids.0, Mode::Write).await?;
    let t = crate::exports::download_org(&app, &ctx.0, &mut scope, &ids.1).await?;
    super::documents_api::serve(&app, t, &headers, false).await
}
