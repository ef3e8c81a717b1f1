//! `/api/v1/auth/*`: signup, verification, login, logout, password reset.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::middleware::RequestCtxExt;
use super::problem::ApiJson;
use super::session::{clear_cookie, login_cookies, MaybeAuthed};
use crate::error::{AppError, AppResult};
use crate::identity::{self, SignupInput, UserView};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(request_password_reset))
        .routes(routes!(confirm_password_reset))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    email: String,
    password: String,
    display_name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirmBody {
    token: String,
    new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct LoginAnswer {
    mfa_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<UserView>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    methods: Vec<&'static str>,
}

impl LoginAnswer {
    pub fn from_outcome(out: &identity::LoginOutcome) -> Self {
        Self {
            mfa_required: out.user.is_none(),
            user: out.user.clone(),
            methods: out.methods.clone(),
        }
    }
}

/// The one answer to signup, resend and reset requests, whatever happened.
fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        ApiJson(Accepted { status: "accepted" }),
    )
        .into_response()
}

#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", request_body = SignupBody,
    responses((status = 202, body = Accepted), (status = 422, body = super::problem::Problem), (status = 429)))]
async fn signup(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    ApiJson(b): ApiJson<SignupBody>,
) -> AppResult<Response> {
    let input = SignupInput {
        email: b.email,
        password: b.password,
        display_name: b.display_name,
    };
    identity::signup(&app, &ctx.0, input).await?;
    Ok(accepted())
}

#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = TokenBody,
    responses((status = 200, body = Accepted), (status = 400, body = super::problem::Problem)))]
async fn verify_email(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    ApiJson(b): ApiJson<TokenBody>,
) -> AppResult<Response> {
    identity::verify_email(&app, &ctx.0, &b.token).await?;
    Ok(ApiJson(Accepted { status: "verified" }).into_response())
}

#[utoipa::path(post, path = "/api/v1/auth/resend-verification", tag = "auth", request_body = EmailBody,
    responses((status = 202, body = Accepted), (status = 429)))]
async fn resend_verification(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    ApiJson(b): ApiJson<EmailBody>,
) -> AppResult<Response> {
    identity::resend_verification(&app, &ctx.0, &b.email).await?;
    Ok(accepted())
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, body = LoginAnswer), (status = 401, body = super::problem::Problem),
              (status = 403, body = super::problem::Problem), (status = 429)))]
async fn login(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    jar: CookieJar,
    ApiJson(b): ApiJson<LoginBody>,
) -> AppResult<Response> {
    let out = identity::login(&app, &ctx.0, &b.email, &b.password).await?;
    let answer = LoginAnswer::from_outcome(&out);
    let jar = login_cookies(&app, jar, &out);
    Ok((jar, ApiJson(answer)).into_response())
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204), (status = 401)))]
async fn logout(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    MaybeAuthed(s): MaybeAuthed,
    jar: CookieJar,
) -> AppResult<Response> {
    // A session still owing its second factor may give up and sign out too.
    let s = s.ok_or(AppError::Unauthenticated)?;
    identity::logout(&app, &ctx.0, &s).await?;
    Ok((jar.add(clear_cookie(&app)), StatusCode::NO_CONTENT).into_response())
}

#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = EmailBody,
    responses((status = 202, body = Accepted), (status = 429)))]
async fn request_password_reset(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    ApiJson(b): ApiJson<EmailBody>,
) -> AppResult<Response> {
    identity::request_password_reset(&app, &ctx.0, &b.email).await?;
    Ok(accepted())
}

#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", request_body = ResetConfirmBody,
    responses((status = 204), (status = 400, body = super::problem::Problem), (status = 422, body = super::problem::Problem)))]
async fn confirm_password_reset(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    ApiJson(b): ApiJson<ResetConfirmBody>,
) -> AppResult<StatusCode> {
    identity::confirm_password_reset(&app, &ctx.0, &b.token, &b.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}
