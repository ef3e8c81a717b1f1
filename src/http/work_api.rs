//! Workspaces, workspace members, items and comments under `/api/v1/orgs/{org_id}/workspaces`.
//! `Ws` resolves the named `{ws_id}` parameter inside the caller's org scope (404 otherwise).

use std::collections::HashMap;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::middleware::RequestCtxExt;
use super::org_api::{mode_of, List, Org, PageQuery};
use super::problem::{ApiJson, ApiPath, ApiQuery};
use super::session::Authed;
use crate::error::{AppError, AppResult};
use crate::identity::AuthSession;
use crate::state::AppState;
use crate::store::tenant::Mode;
use crate::tenancy::items::{self, ItemInput, ItemView, UpdateView};
use crate::tenancy::workspaces::{
    self, WorkspaceInput, WorkspaceMemberView, WorkspaceScope, WorkspaceView, WsRole,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_workspace, list_workspaces))
        .routes(routes!(get_workspace, update_workspace, delete_workspace))
        .routes(routes!(list_workspace_members))
        .routes(routes!(set_workspace_member, remove_workspace_member))
        .routes(routes!(create_item, list_items))
        .routes(routes!(get_item, update_item, delete_item))
        .routes(routes!(create_update, list_updates))
        .routes(routes!(set_statuses))
        .routes(routes!(move_item))
}

/// The caller's scope in the workspace named by `{ws_id}` of the org named by `{org_id}`.
pub struct Ws(pub WorkspaceScope);

impl FromRequestParts<AppState> for Ws {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authed(s) = Authed::from_request_parts(parts, app).await?;
        let mode = mode_of(parts);
        Ok(Ws(open_workspace(parts, app, &s, mode).await?))
    }
}

/// The one check behind every workspace route, API and page alike (the pages' extractors call it
/// too): the workspace named by `{ws_id}` in the org named by `{org_id}`, opened for `s` in
/// `mode` in the request's one transaction (`NotFound` for anything the caller may not see).
pub(crate) async fn open_workspace(
    parts: &mut Parts,
    app: &AppState,
    s: &AuthSession,
    mode: Mode,
) -> AppResult<WorkspaceScope> {
    let PathParams(params) = PathParams::from_request_parts(parts, app).await?;
    let org_id = params.get("org_id").ok_or(AppError::NotFound)?;
    let ws_id = params.get("ws_id").ok_or(AppError::NotFound)?;
    workspaces::authorize_workspace(app, s, org_id, ws_id, mode).await
}

/// All path parameters by name (a named lookup, never a position in the URL).
pub struct PathParams(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ApiPath(params) = ApiPath::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::NotFound)?;
        Ok(PathParams(params))
    }
}

/// Path parameters after the org and workspace, by name.
pub(crate) fn param(params: &HashMap<String, String>, name: &str) -> AppResult<String> {
    params.get(name).cloned().ok_or(AppError::NotFound)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    statuses: Option<Vec<String>>,
}

impl From<WorkspaceBody> for WorkspaceInput {
    fn from(b: WorkspaceBody) -> Self {
        WorkspaceInput {
            name: b.name,
            kind: b.kind,
            description: b.description,
            statuses: b.statuses,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WsRoleBody {
    role: WsRole,
}

/// `Some(None)` for an explicit null, `None` when absent.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    assignee_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    due_on: Option<Option<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    fields: Option<Value>,
    /// Markdown.
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    labels: Option<Vec<String>>,
}

impl From<ItemBody> for ItemInput {
    fn from(b: ItemBody) -> Self {
        ItemInput {
            title: b.title,
            status: b.status,
            assignee_id: b.assignee_id,
            due_on: b.due_on,
            fields: b.fields,
            description: b.description,
            labels: b.labels,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusesBody {
    /// In board order.
    statuses: Vec<workspaces::StatusDef>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    status: String,
    /// The item it goes before, in the target status; last when absent or null.
    #[serde(default)]
    before_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    body: String,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/workspaces", tag = "work", params(("org_id" = String, Path)), request_body = WorkspaceBody,
    responses((status = 201, body = WorkspaceView), (status = 403), (status = 404), (status = 422)))]
async fn create_workspace(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, _): Org,
    ApiJson(b): ApiJson<WorkspaceBody>,
) -> AppResult<Response> {
    let ws = workspaces::create_workspace(&app, &ctx.0, &mut scope, b.into()).await?;
    Ok((StatusCode::CREATED, ApiJson(ws)).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/workspaces", tag = "work", params(("org_id" = String, Path), PageQuery),
    responses((status = 200, body = List<WorkspaceView>), (status = 404)))]
async fn list_workspaces(
    State(app): State<AppState>,
    Org(mut scope, _): Org,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<ApiJson<List<WorkspaceView>>> {
    Ok(ApiJson(
        workspaces::list_workspaces(&app, &mut scope, q.cursor.as_deref(), q.limit)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}", tag = "work", params(("org_id" = String, Path), ("ws_id" = String, Path)),
    responses((status = 200, body = WorkspaceView), (status = 404)))]
async fn get_workspace(
    State(app): State<AppState>,
    Ws(mut ws): Ws,
) -> AppResult<ApiJson<WorkspaceView>> {
    Ok(ApiJson(workspaces::get_workspace(&app, &mut ws).await?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}", tag = "work", params(("org_id" = String, Path), ("ws_id" = String, Path)),
    request_body = WorkspaceBody, responses((status = 200, body = WorkspaceView), (status = 403), (status = 404), (status = 422)))]
async fn update_workspace(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
    ApiJson(b): ApiJson<WorkspaceBody>,
) -> AppResult<ApiJson<WorkspaceView>> {
    Ok(ApiJson(
        workspaces::update_workspace(&app, &ctx.0, &mut ws, b.into()).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}", tag = "work", params(("org_id" = String, Path), ("ws_id" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn delete_workspace(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
) -> AppResult<StatusCode> {
    workspaces::delete_workspace(&app, &ctx.0, &mut ws).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/members", tag = "work", params(("org_id" = String, Path), ("ws_id" = String, Path), PageQuery),
    responses((status = 200, body = List<WorkspaceMemberView>), (status = 404)))]
async fn list_workspace_members(
    State(app): State<AppState>,
    Ws(mut ws): Ws,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<ApiJson<List<WorkspaceMemberView>>> {
    Ok(ApiJson(
        workspaces::list_workspace_members(&app, &mut ws, q.cursor.as_deref(), q.limit)
            .await?
            .into(),
    ))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/members/{user_id}", tag = "work",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("user_id" = String, Path)), request_body = WsRoleBody,
    responses((status = 200, body = WorkspaceMemberView), (status = 403), (status = 404)))]
async fn set_workspace_member(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
    ApiJson(b): ApiJson<WsRoleBody>,
) -> AppResult<ApiJson<WorkspaceMemberView>> {
    Ok(ApiJson(
        workspaces::set_workspace_member(
            &app,
            &ctx.0,
            &mut ws,
            &param(&params, "user_id")?,
            b.role,
        )
        .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/members/{user_id}", tag = "work",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("user_id" = String, Path)), responses((status = 204), (status = 403), (status = 404)))]
async fn remove_workspace_member(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
) -> AppResult<StatusCode> {
    workspaces::remove_workspace_member(&app, &ctx.0, &mut ws, &param(&params, "user_id")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/items", tag = "work", params(("org_id" = String, Path), ("ws_id" = String, Path)),
    request_body = ItemBody, responses((status = 201, body = ItemView), (status = 403), (status = 404), (status = 422)))]
async fn create_item(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
    ApiJson(b): ApiJson<ItemBody>,
) -> AppResult<Response> {
    let item = items::create_item(&app, &ctx.0, &mut ws, b.into()).await?;
    Ok((StatusCode::CREATED, ApiJson(item)).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/items", tag = "work", params(("org_id" = String, Path), ("ws_id" = String, Path), PageQuery),
    responses((status = 200, body = List<ItemView>), (status = 404)))]
async fn list_items(
    State(app): State<AppState>,
    Ws(mut ws): Ws,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<ApiJson<List<ItemView>>> {
    Ok(ApiJson(
        items::list_items(&app, &mut ws, q.cursor.as_deref(), q.limit)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/items/{item_id}", tag = "work",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("item_id" = String, Path)), responses((status = 200, body = ItemView), (status = 404)))]
async fn get_item(
    State(app): State<AppState>,
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
) -> AppResult<ApiJson<ItemView>> {
    Ok(ApiJson(
        items::get_item(&app, &mut ws, &param(&params, "item_id")?).await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/items/{item_id}", tag = "work",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("item_id" = String, Path)), request_body = ItemBody,
    responses((status = 200, body = ItemView), (status = 403), (status = 404), (status = 422)))]
async fn update_item(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
    ApiJson(b): ApiJson<ItemBody>,
) -> AppResult<ApiJson<ItemView>> {
    Ok(ApiJson(
        items::update_item(&app, &ctx.0, &mut ws, &param(&params, "item_id")?, b.into()).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/items/{item_id}", tag = "work",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("item_id" = String, Path)), responses((status = 204), (status = 403), (status = 404)))]
async fn delete_item(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
) -> AppResult<StatusCode> {
    items::delete_item(&app, &ctx.0, &mut ws, &param(&params, "item_id")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/items/{item_id}/updates", tag = "work",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("item_id" = String, Path)), request_body = CommentBody,
    responses((status = 201, body = UpdateView), (status = 403), (status = 404), (status = 422)))]
async fn create_update(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
    ApiJson(b): ApiJson<CommentBody>,
) -> AppResult<Response> {
    let u =
        items::create_update(&app, &ctx.0, &mut ws, &param(&params, "item_id")?, &b.body).await?;
    Ok((StatusCode::CREATED, ApiJson(u)).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/items/{item_id}/updates", tag = "work",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("item_id" = String, Path), PageQuery),
    responses((status = 200, body = List<UpdateView>), (status = 404)))]
async fn list_updates(
    State(app): State<AppState>,
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<ApiJson<List<UpdateView>>> {
    Ok(ApiJson(
        items::list_updates(
            &app,
            &mut ws,
            &param(&params, "item_id")?,
            q.cursor.as_deref(),
            q.limit,
        )
        .await?
        .into(),
    ))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/statuses", tag = "work",
    params(("org_id" = String, Path), ("ws_id" = String, Path)), request_body = StatusesBody,
    responses((status = 200, body = WorkspaceView), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn set_statuses(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
    ApiJson(b): ApiJson<StatusesBody>,
) -> AppResult<ApiJson<WorkspaceView>> {
    Ok(ApiJson(
        workspaces::set_statuses(&app, &ctx.0, &mut ws, b.statuses).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/workspaces/{ws_id}/items/{item_id}/move", tag = "work",
    params(("org_id" = String, Path), ("ws_id" = String, Path), ("item_id" = String, Path)), request_body = MoveBody,
    responses((status = 200, body = ItemView), (status = 403), (status = 404), (status = 422)))]
async fn move_item(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Ws(mut ws): Ws,
    PathParams(params): PathParams,
    ApiJson(b): ApiJson<MoveBody>,
) -> AppResult<ApiJson<ItemView>> {
    Ok(ApiJson(
        items::move_item(
            &app,
            &ctx.0,
            &mut ws,
            &param(&params, "item_id")?,
            &b.status,
            b.before_id.as_deref(),
        )
        .await?,
    ))
}
