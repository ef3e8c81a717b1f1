//! `/api/v1/me*`: the signed-in user's profile, password and sessions.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::middleware::RequestCtxExt;
use super::org_api::PageQuery;
use super::problem::ApiQuery;
use super::problem::{ApiJson, ApiPath};
use super::session::Authed;
use crate::error::AppError;
use crate::error::AppResult;
use crate::exports::ExportView;
use crate::identity::erasure::DeletionView;
use crate::identity::{self, SessionView, UserView};
use crate::state::AppState;
use crate::tenancy::home::{self, AssignedList};
use crate::tenancy::notifications::{self, NotificationPage};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_me, update_me))
        .routes(routes!(change_password))
        .routes(routes!(request_deletion, cancel_deletion))
        .routes(routes!(request_export))
        .routes(routes!(get_export))
        .routes(routes!(download_export))
        .routes(routes!(list_sessions, revoke_other_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(assigned))
        .routes(routes!(list_notifications))
        .routes(routes!(read_notifications))
        .routes(routes!(
            get_notification_settings,
            update_notification_settings
        ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    #[serde(default)]
    ids: Option<Vec<String>>,
    #[serde(default)]
    all: Option<bool>,
}

type Settings = std::collections::BTreeMap<String, notifications::Channels>;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeBody {
    display_name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    items: Vec<SessionView>,
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "me", responses((status = 200, body = UserView), (status = 401)))]
async fn get_me(State(app): State<AppState>, Authed(s): Authed) -> AppResult<ApiJson<UserView>> {
    Ok(ApiJson(identity::get_me(&app, &s).await?))
}

#[utoipa::path(patch, path = "/api/v1/me", tag = "me", request_body = UpdateMeBody, responses((status = 200, body = UserView), (status = 401), (status = 422)))]
async fn update_me(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiJson(b): ApiJson<UpdateMeBody>,
) -> AppResult<ApiJson<UserView>> {
    Ok(ApiJson(
        identity::update_me(&app, &ctx.0, &s, &b.display_name).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", request_body = ChangePasswordBody, responses((status = 204), (status = 401), (status = 422), (status = 429)))]
async fn change_password(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiJson(b): ApiJson<ChangePasswordBody>,
) -> AppResult<StatusCode> {
    identity::change_password(&app, &ctx.0, &s, &b.current_password, &b.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every live session of the caller (a person has few; one page).
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "me", responses((status = 200, body = SessionList), (status = 401)))]
async fn list_sessions(
    State(app): State<AppState>,
    Authed(s): Authed,
) -> AppResult<ApiJson<SessionList>> {
    let items = identity::list_sessions(&app, &s).await?;
    Ok(ApiJson(SessionList {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "me", responses((status = 204), (status = 401)))]
async fn revoke_other_sessions(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
) -> AppResult<StatusCode> {
    identity::revoke_other_sessions(&app, &ctx.0, &s).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "me", params(("id" = String, Path)), responses((status = 204), (status = 401), (status = 404)))]
async fn revoke_session(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiPath(id): ApiPath<String>,
) -> AppResult<StatusCode> {
    identity::revoke_session(&app, &ctx.0, &s, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Items assigned to the caller across their orgs, overdue first.
#[utoipa::path(get, path = "/api/v1/me/assigned", tag = "me", responses((status = 200, body = AssignedList), (status = 401)))]
async fn assigned(
    State(app): State<AppState>,
    Authed(s): Authed,
) -> AppResult<ApiJson<AssignedList>> {
    Ok(ApiJson(home::assigned(&app, &s).await?))
}

#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "me", params(PageQuery),
    responses((status = 200, body = NotificationPage), (status = 401)))]
async fn list_notifications(
    State(app): State<AppState>,
    Authed(s): Authed,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<ApiJson<NotificationPage>> {
    Ok(ApiJson(
        notifications::list(&app, &s, q.cursor.as_deref(), q.limit).await?,
    ))
}

/// `{ids}` or `{all: true}`.
#[utoipa::path(post, path = "/api/v1/me/notifications/read", tag = "me", request_body = ReadBody,
    responses((status = 204), (status = 401), (status = 422)))]
async fn read_notifications(
    State(app): State<AppState>,
    Authed(s): Authed,
    ApiJson(b): ApiJson<ReadBody>,
) -> AppResult<StatusCode> {
    let ids = match (b.ids, b.all) {
        (Some(ids), None | Some(false)) => Some(ids),
        (None, Some(true)) => None,
        _ => {
            return Err(AppError::invalid(
                "invalid_body",
                "Send {\"ids\": [...]} or {\"all\": true}.",
            ))
        }
    };
    notifications::mark_read(&app, &s, ids).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/me/notification-settings", tag = "me",
    responses((status = 200, body = Object), (status = 401)))]
async fn get_notification_settings(
    State(app): State<AppState>,
    Authed(s): Authed,
) -> AppResult<ApiJson<Settings>> {
    Ok(ApiJson(notifications::settings(&app, &s).await?))
}

/// Per kind: `{in_app, email}`; kinds left out keep their setting.
#[utoipa::path(patch, path = "/api/v1/me/notification-settings", tag = "me", request_body = Object,
    responses((status = 200, body = Object), (status = 401), (status = 422)))]
async fn update_notification_settings(
    State(app): State<AppState>,
    Authed(s): Authed,
    ApiJson(b): ApiJson<Settings>,
) -> AppResult<ApiJson<Settings>> {
    Ok(ApiJson(notifications::update_settings(&app, &s, b).await?))
}

#[utoipa::path(post, path = "/api/v1/me/deletion", tag = "me", responses((status = 202, body = DeletionView), (status = 401), (status = 403, description = "step-up needed"), (status = 409, description = "the only owner of an organization")))]
async fn request_deletion(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
) -> AppResult<(StatusCode, ApiJson<DeletionView>)> {
    let v = identity::erasure::request_deletion(&app, &ctx.0, &s).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(v)))
}

#[utoipa::path(delete, path = "/api/v1/me/deletion", tag = "me", responses((status = 204), (status = 401), (status = 404, description = "no deletion is scheduled")))]
async fn cancel_deletion(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
) -> AppResult<StatusCode> {
    identity::erasure::cancel_deletion(&app, &ctx.0, &s).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/me/exports", tag = "me", responses((status = 202, body = ExportView), (status = 401), (status = 403, description = "step-up needed"), (status = 429)))]
async fn request_export(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
) -> AppResult<(StatusCode, ApiJson<ExportView>)> {
    let v = crate::exports::request(&app, &ctx.0, &s).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(v)))
}

#[utoipa::path(get, path = "/api/v1/me/exports/{id}", tag = "me", responses((status = 200, body = ExportView), (status = 401), (status = 404)))]
async fn get_export(
    State(app): State<AppState>,
    Authed(s): Authed,
    ApiPath(id): ApiPath<String>,
) -> AppResult<ApiJson<ExportView>> {
    Ok(ApiJson(crate::exports::get(&app, &s, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/me/exports/{id}/download", tag = "me", responses((status = 200, content_type = "application/zip"), (status = 401), (status = 404)))]
async fn download_export(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiPath(id): ApiPath<String>,
    headers: axum::http::HeaderMap,
) -> AppResult<axum::response::Response> {
    let t = crate::exports::download(&app, &ctx.0, &s, &id).await?;
    super::documents_api::serve(&app, t, &headers, false).await
}
