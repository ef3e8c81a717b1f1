//! Passkeys over the API: registration and management for the signed-in user, and passkey
//! sign-in (second factor with a pending session, passwordless without one).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth_api::LoginAnswer;
use super::middleware::RequestCtxExt;
use super::problem::{ApiJson, ApiPath};
use super::session::{session_cookie, Authed, MaybeAuthed};
use crate::error::AppResult;
use crate::identity::passkeys::{self, PasskeyView};
use crate::state::AppState;

pub fn me_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_registration))
        .routes(routes!(finish_registration))
        .routes(routes!(list_passkeys))
        .routes(routes!(rename_passkey, delete_passkey))
        .routes(routes!(start_reauthentication))
        .routes(routes!(finish_reauthentication))
}

/// Passkey sign-in (behind the auth rate limit).
pub fn login_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_authentication))
        .routes(routes!(finish_authentication))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishRegistrationBody {
    name: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create`, JSON-encoded (base64url).
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameBody {
    name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishAuthenticationBody {
    #[serde(default)]
    ceremony_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get`, JSON-encoded (base64url).
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyList {
    items: Vec<PasskeyView>,
    next_cursor: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/me/passkeys/register/start", tag = "me",
    responses((status = 200, description = "PublicKeyCredentialCreationOptions", body = Object), (status = 401), (status = 403)))]
async fn start_registration(State(app): State<AppState>, Authed(s): Authed) -> AppResult<Response> {
    let ccr = passkeys::start_registration(&app, &s).await?;
    Ok(axum::Json(ccr).into_response())
}

#[utoipa::path(post, path = "/api/v1/me/passkeys/register/finish", tag = "me", request_body = FinishRegistrationBody,
    responses((status = 201, body = PasskeyView), (status = 401), (status = 403), (status = 422)))]
async fn finish_registration(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiJson(b): ApiJson<FinishRegistrationBody>,
) -> AppResult<Response> {
    let view = passkeys::finish_registration(&app, &ctx.0, &s, &b.name, b.credential).await?;
    Ok((StatusCode::CREATED, ApiJson(view)).into_response())
}

#[utoipa::path(get, path = "/api/v1/me/passkeys", tag = "me", responses((status = 200, body = PasskeyList), (status = 401)))]
async fn list_passkeys(
    State(app): State<AppState>,
    Authed(s): Authed,
) -> AppResult<ApiJson<PasskeyList>> {
    Ok(ApiJson(PasskeyList {
        items: passkeys::list(&app, &s).await?,
        next_cursor: None,
    }))
}

#[utoipa::path(patch, path = "/api/v1/me/passkeys/{id}", tag = "me", params(("id" = String, Path)), request_body = NameBody,
    responses((status = 204), (status = 401), (status = 404), (status = 422)))]
async fn rename_passkey(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NameBody>,
) -> AppResult<StatusCode> {
    passkeys::rename(&app, &ctx.0, &s, &id, &b.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/me/passkeys/{id}", tag = "me", params(("id" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn delete_passkey(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiPath(id): ApiPath<String>,
) -> AppResult<StatusCode> {
    passkeys::remove(&app, &ctx.0, &s, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/passkey/start", tag = "auth",
    responses((status = 200, description = "ceremony_id and PublicKeyCredentialRequestOptions", body = Object), (status = 403), (status = 429)))]
async fn start_authentication(
    State(app): State<AppState>,
    MaybeAuthed(s): MaybeAuthed,
) -> AppResult<Response> {
    let pending = s.filter(|s| !s.is_full());
    let challenge = passkeys::start_authentication(&app, pending.as_ref()).await?;
    Ok(axum::Json(challenge).into_response())
}

#[utoipa::path(post, path = "/api/v1/auth/passkey/finish", tag = "auth", request_body = FinishAuthenticationBody,
    responses((status = 200, body = LoginAnswer), (status = 401), (status = 422), (status = 429)))]
async fn finish_authentication(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    MaybeAuthed(s): MaybeAuthed,
    jar: CookieJar,
    ApiJson(b): ApiJson<FinishAuthenticationBody>,
) -> AppResult<Response> {
    let pending = s.filter(|s| !s.is_full());
    let out = passkeys::finish_authentication(
        &app,
        &ctx.0,
        pending.as_ref(),
        &b.ceremony_id,
        b.credential,
    )
    .await?;
    let answer = LoginAnswer::from_outcome(&out);
    Ok((jar.add(session_cookie(&app, out.token)), ApiJson(answer)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialBody {
    #[serde(default)]
    ceremony_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get`, JSON-encoded (base64url).
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

#[utoipa::path(post, path = "/api/v1/me/reauthenticate/passkey/start", tag = "me",
    responses((status = 200, description = "ceremony_id and PublicKeyCredentialRequestOptions", body = Object), (status = 401), (status = 403)))]
async fn start_reauthentication(
    State(app): State<AppState>,
    Authed(s): Authed,
) -> AppResult<Response> {
    Ok(axum::Json(passkeys::start_reauthentication(&app, &s).await?).into_response())
}

#[utoipa::path(post, path = "/api/v1/me/reauthenticate/passkey/finish", tag = "me", request_body = CredentialBody,
    responses((status = 204), (status = 401), (status = 422)))]
async fn finish_reauthentication(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiJson(b): ApiJson<CredentialBody>,
) -> AppResult<StatusCode> {
    let _ = b.ceremony_id;
    passkeys::finish_reauthentication(&app, &ctx.0, &s, b.credential).await?;
    Ok(StatusCode::NO_CONTENT)
}
