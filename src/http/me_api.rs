//! `/api/v1/me*`: the signed-in user's profile, password and sessions.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::middleware::RequestCtxExt;
use super::problem::{ApiJson, ApiPath};
use super::session::Authed;
use crate::error::AppResult;
use crate::identity::{self, SessionView, UserView};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_me, update_me))
        .routes(routes!(change_password))
        .routes(routes!(list_sessions, revoke_other_sessions))
        .routes(routes!(revoke_session))
}

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
