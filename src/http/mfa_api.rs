//! Second factors over the API: finishing a pending login, enrolment and removal of TOTP,
//! recovery codes, and step-up re-authentication.

use axum::body::Bytes;
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
use super::problem::{body_shape_message, ApiJson};
use super::session::{session_cookie, Authed, PendingMfa};
use crate::error::{AppError, AppResult};
use crate::identity::mfa::{self, SecondFactor, TotpEnrolment};
use crate::state::AppState;

/// Routes that finish a pending login (rate limited with the other auth routes).
pub fn login_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(finish_with_totp))
        .routes(routes!(finish_with_recovery_code))
}

/// Routes of the signed-in user's own factors.
pub fn me_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_totp, disable_totp))
        .routes(routes!(confirm_totp))
        .routes(routes!(regenerate_recovery_codes))
        .routes(routes!(reauthenticate))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    code: String,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReauthBody {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

fn logged_in(app: &AppState, jar: CookieJar, out: crate::identity::LoginOutcome) -> Response {
    let answer = LoginAnswer::from_outcome(&out);
    (jar.add(session_cookie(app, out.token)), ApiJson(answer)).into_response()
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/totp", tag = "auth", request_body = CodeBody,
    responses((status = 200, body = LoginAnswer), (status = 401, body = super::problem::Problem), (status = 429)))]
async fn finish_with_totp(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    PendingMfa(p): PendingMfa,
    jar: CookieJar,
    ApiJson(b): ApiJson<CodeBody>,
) -> AppResult<Response> {
    let out = mfa::complete_mfa(&app, &ctx.0, &p, SecondFactor::Totp(&b.code)).await?;
    Ok(logged_in(&app, jar, out))
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/recovery-code", tag = "auth", request_body = CodeBody,
    responses((status = 200, body = LoginAnswer), (status = 401, body = super::problem::Problem), (status = 429)))]
async fn finish_with_recovery_code(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    PendingMfa(p): PendingMfa,
    jar: CookieJar,
    ApiJson(b): ApiJson<CodeBody>,
) -> AppResult<Response> {
    let out = mfa::complete_mfa(&app, &ctx.0, &p, SecondFactor::RecoveryCode(&b.code)).await?;
    Ok(logged_in(&app, jar, out))
}

#[utoipa::path(post, path = "/api/v1/me/mfa/totp", tag = "me",
    responses((status = 200, body = TotpEnrolment), (status = 401), (status = 403, body = super::problem::Problem)))]
async fn start_totp(
    State(app): State<AppState>,
    Authed(s): Authed,
) -> AppResult<ApiJson<TotpEnrolment>> {
    Ok(ApiJson(mfa::start_totp(&app, &s).await?))
}

#[utoipa::path(post, path = "/api/v1/me/mfa/totp/confirm", tag = "me", request_body = CodeBody,
    responses((status = 200, body = RecoveryCodes), (status = 401), (status = 403)))]
async fn confirm_totp(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiJson(b): ApiJson<CodeBody>,
) -> AppResult<ApiJson<RecoveryCodes>> {
    let recovery_codes = mfa::confirm_totp(&app, &ctx.0, &s, &b.code).await?;
    Ok(ApiJson(RecoveryCodes { recovery_codes }))
}

/// Body optional: `{code}` with a current code, or nothing after a recent re-authentication.
#[utoipa::path(delete, path = "/api/v1/me/mfa/totp", tag = "me", request_body(content = Option<CodeBody>),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn disable_totp(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    body: Bytes,
) -> AppResult<StatusCode> {
    let code = optional_json::<CodeBody>(&body)?.map(|b| b.code);
    mfa::disable_totp(&app, &ctx.0, &s, code.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/me/mfa/recovery-codes", tag = "me",
    responses((status = 200, body = RecoveryCodes), (status = 401), (status = 403)))]
async fn regenerate_recovery_codes(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
) -> AppResult<ApiJson<RecoveryCodes>> {
    let recovery_codes = mfa::regenerate_recovery_codes(&app, &ctx.0, &s).await?;
    Ok(ApiJson(RecoveryCodes { recovery_codes }))
}

#[utoipa::path(post, path = "/api/v1/me/reauthenticate", tag = "me", request_body = ReauthBody,
    responses((status = 204), (status = 401), (status = 422), (status = 429)))]
async fn reauthenticate(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiJson(b): ApiJson<ReauthBody>,
) -> AppResult<StatusCode> {
    mfa::reauthenticate(&app, &ctx.0, &s, b.password.as_deref(), b.code.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An empty body is None; anything else must be the JSON shape.
fn optional_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> AppResult<Option<T>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| AppError::invalid("invalid_body", body_shape_message(&e.to_string())))
}
