//! Server-rendered pages (minijinja, auto-escaped, no inline script) for sign-up, verification,
//! sign-in, password recovery and the account security page. Forms post back here and call the
//! same service functions as the JSON API.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{middleware as mw, Router};
use axum_extra::extract::cookie::CookieJar;
use minijinja::{context, Value};
use serde::Deserialize;

use super::middleware::{auth_rate_limit, RequestCtxExt};
use super::problem::{ApiForm, ApiPath, ApiQuery};
use super::session::{clear_cookie, login_cookies, FullSession, MaybeAuthed};
use crate::error::AppError;
use crate::identity::{self, SignupInput};
use crate::state::{App, AppState};

pub fn router(app: AppState) -> Router<AppState> {
    let public_auth = Router::new()
        .route("/signup", post(signup_submit))
        .route("/login", post(login_submit))
        .route("/forgot-password", post(forgot_submit))
        .route("/reset-password", post(reset_submit))
        .route("/verify-email", post(verify_submit))
        .merge(super::mfa_pages::public_router())
        .layer(mw::from_fn_with_state(app, auth_rate_limit));
    Router::new()
        .merge(super::home_pages::router())
        .route("/signup", get(signup_page))
        .route("/login", get(login_page))
        .route("/forgot-password", get(forgot_page))
        .route("/reset-password", get(reset_page))
        .route("/verify-email", get(verify_page))
        .route("/account", get(account_page))
        .merge(super::mfa_pages::router())
        .merge(super::org_pages::router())
        .route("/account/sessions/{id}/revoke", post(revoke_submit))
        .route(
            "/account/sessions/revoke-others",
            post(revoke_others_submit),
        )
        .route("/account/password", post(password_submit))
        .route("/account/exports", post(export_submit))
        .route("/account/deletion", post(deletion_submit))
        .route("/account/deletion/cancel", post(deletion_cancel_submit))
        .route("/logout", get(logout_page).post(logout_submit))
        .route("/static/style.css", get(stylesheet))
        .route("/static/board.js", get(board_js))
        .route("/static/documents.js", get(documents_js))
        .route("/favicon.ico", get(favicon))
        .route("/static/favicon.svg", get(favicon))
        .merge(public_auth)
        .layer(mw::from_fn(super::chrome::scope))
}

/// The page `name` (from the one template environment, `App::templates`) with `status`.
pub(super) fn render(app: &App, status: StatusCode, name: &str, ctx: Value) -> Response {
    let now_ms = app.clock.now_ms();
    let ctx = match super::chrome::current() {
        Some(chrome) => context! { chrome, now_ms, ..ctx },
        None => context! { now_ms, ..ctx },
    };
    match app.templates.render(name, ctx) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>Something went wrong.</p>".to_string()),
            )
                .into_response()
        }
    }
}

/// The words and status for an error shown on a page.
pub(super) fn page_error(e: &AppError) -> (StatusCode, String) {
    let status = match e {
        AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::Unauthenticated | AppError::InvalidCredentials | AppError::InvalidCode => {
            StatusCode::UNAUTHORIZED
        }
        AppError::EmailNotVerified | AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
        AppError::Conflict { .. } => StatusCode::CONFLICT,
        AppError::InvalidToken | AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
        AppError::NotFound => StatusCode::NOT_FOUND,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        AppError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        AppError::Corrupt(what) => {
            tracing::error!(error = %what, "stored document failed its integrity check");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        AppError::Internal(err) => {
            tracing::error!(error = %format!("{err:#}"), "internal error on a page");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Please try again.".into(),
            );
        }
    };
    (status, e.to_string())
}

/// Adds `Retry-After` to a page answering a rate-limited request.
pub(super) fn with_retry_after(mut res: Response, e: &AppError) -> Response {
    if let AppError::RateLimited { retry_after } = e {
        res.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(*retry_after));
    }
    res
}

/// The form field an error is about: by its code for the sign-up and password forms, else when
/// its message names one (`title: 1 to 300 characters.`). The page marks that field invalid, ties
/// the message to it (`aria-describedby="error"`) and focuses it (`autofocus`).
pub(crate) fn field_of(e: &AppError) -> Option<String> {
    match e {
        AppError::Invalid { code, detail } => {
            let by_code = match *code {
                "invalid_email" => Some("email"),
                "invalid_display_name" => Some("display_name"),
                "weak_password" => Some("password"),
                _ => None,
            };
            if let Some(f) = by_code {
                return Some(f.to_string());
            }
            let (field, _) = detail.split_once(':')?;
            (!field.is_empty()
                && field.len() <= 40
                && field.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .then(|| field.to_string())
        }
        _ => None,
    }
}

/// A page showing `e`, with the status it maps to (and `Retry-After` when rate limited).
pub(super) fn render_error(app: &App, e: &AppError, name: &str, ctx: Value) -> Response {
    let (status, error) = page_error(e);
    let error_field = field_of(e);
    let res = render(app, status, name, context! { error, error_field, ..ctx });
    with_retry_after(res, e)
}

pub(super) fn message(app: &App, title: &str, msg: &str, link: Option<(&str, &str)>) -> Response {
    render(
        app,
        StatusCode::OK,
        "message.html",
        context! { title, message => msg, link => link.map(|l| l.0), link_text => link.map(|l| l.1) },
    )
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/style.css"),
    )
        .into_response()
}

async fn board_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/board.js"),
    )
        .into_response()
}

async fn documents_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/documents.js"),
    )
        .into_response()
}

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../static/favicon.svg"),
    )
        .into_response()
}

/// What no route matched. A page address with a trailing slash (`/orgs/`) goes to the address
/// without it; anything else is a bare 404, which the envelope answers as an HTML page or a problem
/// document. A path that would start with `//` once trimmed is not redirected: the browser would
/// read it as another host.
pub async fn fallback(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let path = uri.path();
    let trimmed = path.trim_end_matches('/');
    let safe = !trimmed.is_empty() && !trimmed.starts_with("//") && !trimmed.contains('\\');
    if matches!(method, axum::http::Method::GET | axum::http::Method::HEAD)
        && path.len() > trimmed.len()
        && safe
        && !path.starts_with("/api/")
    {
        let target = match uri.query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        return Redirect::permanent(&target).into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

/// The page for an error answer to a browser: words for the status, the wait for a 429, the
/// request id for a 5xx.
pub(super) fn error_page(
    app: &App,
    status: StatusCode,
    retry_after: Option<u64>,
    request_id: &str,
) -> Response {
    let (title, message) = match status.as_u16() {
        404 => ("Page not found", "There is nothing at this address. Check the link, or start again from your home page.".to_string()),
        405 => ("Not available this way", "This address does not answer that kind of request. Use the buttons and links on the pages.".to_string()),
        408 => ("That took too long", "The request took too long to arrive. Please try again.".to_string()),
        413 => ("Too large", "What you sent is larger than this server accepts.".to_string()),
        429 => ("Too many requests", format!("You have made too many requests for now. {}", wait_words(retry_after))),
        s if s >= 500 => ("Something went wrong", "Something went wrong on our side. Please try again in a moment.".to_string()),
        _ => ("This request cannot be answered", "The request was not understood. Please go back and try again.".to_string()),
    };
    let request_id = (status.as_u16() >= 500).then_some(request_id);
    render(
        app,
        status,
        "error.html",
        context! { title, message, request_id },
    )
}

/// "Try again in N minutes", rounded up; under a minute, "in a minute".
pub(super) fn wait_words(retry_after: Option<u64>) -> String {
    match retry_after {
        None => "Please wait a little and try again.".into(),
        Some(s) if s <= 60 => "Try again in a minute.".into(),
        Some(s) => format!("Try again in {} minutes.", s.div_ceil(60)),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SignupForm {
    email: String,
    display_name: String,
    password: String,
}

async fn signup_page(State(app): State<AppState>) -> Response {
    render(
        &app,
        StatusCode::OK,
        "signup.html",
        context! { title => "Create your account", min_length => app.config.password.min_length },
    )
}

async fn signup_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    ApiForm(f): ApiForm<SignupForm>,
) -> Response {
    let (email, display_name) = (f.email.clone(), f.display_name.clone());
    match identity::signup(
        &app,
        &ctx.0,
        SignupInput {
            email: f.email,
            password: f.password,
            display_name: f.display_name,
        },
    )
    .await
    {
        Ok(()) => message(
            &app,
            "Check your email",
            "We sent a link to confirm your address. Open it within 24 hours to finish signing up.",
            None,
        ),
        Err(e) => render_error(
            &app,
            &e,
            "signup.html",
            context! { title => "Create your account", email, display_name,
            min_length => app.config.password.min_length },
        ),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenQuery {
    token: String,
}

async fn verify_page(State(app): State<AppState>, ApiQuery(q): ApiQuery<TokenQuery>) -> Response {
    render(
        &app,
        StatusCode::OK,
        "verify.html",
        context! { title => "Confirm your email", token => q.token },
    )
}

async fn verify_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    ApiForm(f): ApiForm<TokenQuery>,
) -> Response {
    match identity::verify_email(&app, &ctx.0, &f.token).await {
        Ok(()) => message(
            &app,
            "Email confirmed",
            "Your email address is confirmed. You can sign in now.",
            Some(("/login", "Sign in")),
        ),
        Err(e) => render_error(
            &app,
            &e,
            "message.html",
            context! { title => "Confirm your email", message => "Ask for a new link from the sign-in page if this one has expired." },
        ),
    }
}

/// Both fields are required: the sign-in form always sends them, so a post without one is
/// malformed (422), not a wrong password.
#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

async fn login_page(State(app): State<AppState>, FullSession(s): FullSession) -> Response {
    if s.is_some() {
        return Redirect::to("/").into_response();
    }
    render(
        &app,
        StatusCode::OK,
        "login.html",
        context! { title => "Sign in" },
    )
}

async fn login_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    jar: CookieJar,
    ApiForm(f): ApiForm<LoginForm>,
) -> Response {
    match identity::login(&app, &ctx.0, &f.email, &f.password).await {
        Ok(out) => {
            let next = if out.user.is_some() {
                landing(&out)
            } else {
                "/login/mfa"
            };
            (login_cookies(&app, jar, &out), Redirect::to(next)).into_response()
        }
        Err(e) => render_error(
            &app,
            &e,
            "login.html",
            context! { title => "Sign in", email => f.email },
        ),
    }
}

/// Where a sign-in lands: the account's data section when its deletion is scheduled (signing in
/// during the grace period offers the cancellation), else home.
pub(crate) fn landing(out: &identity::LoginOutcome) -> &'static str {
    if out
        .user
        .as_ref()
        .is_some_and(|u| u.deletion_scheduled_for.is_some())
    {
        "/account#your-data"
    } else {
        "/"
    }
}

async fn forgot_page(State(app): State<AppState>) -> Response {
    render(
        &app,
        StatusCode::OK,
        "forgot.html",
        context! { title => "Reset your password" },
    )
}

async fn forgot_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    ApiForm(f): ApiForm<LoginFormEmail>,
) -> Response {
    match identity::request_password_reset(&app, &ctx.0, &f.email).await {
        Ok(()) => message(
            &app,
            "Check your email",
            "If an account uses that address, we sent it a link to reset the password. The link works once, for 30 minutes.",
            None,
        ),
        Err(e) => {
            render_error(&app, &e, "forgot.html", context! { title => "Reset your password" })
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginFormEmail {
    email: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResetForm {
    token: String,
    new_password: String,
}

async fn reset_page(State(app): State<AppState>, ApiQuery(q): ApiQuery<TokenQuery>) -> Response {
    render(
        &app,
        StatusCode::OK,
        "reset.html",
        context! { title => "Choose a new password", token => q.token,
        min_length => app.config.password.min_length },
    )
}

async fn reset_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    ApiForm(f): ApiForm<ResetForm>,
) -> Response {
    match identity::confirm_password_reset(&app, &ctx.0, &f.token, &f.new_password).await {
        Ok(()) => message(
            &app,
            "Password changed",
            "Your password is changed and every session was signed out.",
            Some(("/login", "Sign in")),
        ),
        Err(e) => render_error(
            &app,
            &e,
            "reset.html",
            context! { title => "Choose a new password", token => f.token,
            min_length => app.config.password.min_length },
        ),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccountQuery {
    confirmed: Option<String>,
}

async fn account_page(
    State(app): State<AppState>,
    MaybeAuthed(s): MaybeAuthed,
    ApiQuery(q): ApiQuery<AccountQuery>,
) -> Response {
    let Some(s) = s else {
        return Redirect::to("/login").into_response();
    };
    if !s.is_full() {
        return Redirect::to("/login/mfa").into_response();
    }
    // The query only asks for the notice; whether it is true comes from the session.
    let notice = q.confirmed.and_then(|_| reauth_notice(&app, &s));
    account_view(&app, &s, StatusCode::OK, None, notice.as_deref()).await
}

/// "You can make sensitive changes…" only while the session's re-authentication is recent
/// (server state), with the minutes actually left.
fn reauth_notice(app: &AppState, s: &identity::AuthSession) -> Option<String> {
    let window_ms = app.config.session.reauth_window_secs * 1000;
    let left_ms = window_ms - (app.clock.now_ms() - s.reauth_at?);
    if left_ms <= 0 || left_ms > window_ms {
        return None;
    }
    let minutes = (left_ms + 59_999) / 60_000;
    Some(format!(
        "Confirmed. You can make sensitive changes for the next {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    ))
}

pub(super) async fn account_view(
    app: &AppState,
    s: &identity::AuthSession,
    status: StatusCode,
    error: Option<String>,
    notice: Option<&str>,
) -> Response {
    account_page_with(app, s, status, error, None, notice).await
}

/// The account page, with `error_field` (an input's id) marked invalid, tied to the error and
/// focused.
async fn account_page_with(
    app: &AppState,
    s: &identity::AuthSession,
    status: StatusCode,
    error: Option<String>,
    error_field: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let loaded = async {
        Ok::<_, AppError>((
            identity::get_me(app, s).await?,
            identity::list_sessions(app, s).await?,
            identity::passkeys::list(app, s).await?,
            crate::exports::list(app, s).await?,
        ))
    };
    match loaded.await {
        Ok((user, sessions, passkeys, exports)) => render(
            app,
            status,
            "account.html",
            context! {
                title => "Account security", signed_in => true, user => Value::from_serialize(&user),
                sessions => Value::from_serialize(&sessions), passkeys => Value::from_serialize(&passkeys),
                exports => Value::from_serialize(&exports),
                grace_days => app.config.accounts.deletion_grace_days,
                error, error_field, notice, min_length => app.config.password.min_length,
            },
        ),
        Err(e) => render_error(
            app,
            &e,
            "message.html",
            context! { title => "Account security", message => "" },
        ),
    }
}

/// The account page again, with a notice on success or the error that stopped the change.
pub(super) async fn account_outcome(
    app: &AppState,
    s: &identity::AuthSession,
    result: Result<(), AppError>,
    notice: &str,
) -> Response {
    match result {
        Ok(()) => account_view(app, s, StatusCode::OK, None, Some(notice)).await,
        Err(AppError::Forbidden {
            code: "reauthentication_required",
            ..
        }) => reauth_prompt(app),
        Err(e) => {
            let (status, error) = page_error(&e);
            // The account page's forms: the password change and the authenticator's removal.
            let field = match &e {
                AppError::Invalid {
                    code: "invalid_current_password" | "invalid_credentials",
                    ..
                } => Some("current_password"),
                AppError::Invalid {
                    code: "weak_password",
                    ..
                } => Some("new_password"),
                AppError::Invalid {
                    code: "invalid_code",
                    ..
                } => Some("disable_code"),
                _ => None,
            };
            let res = account_page_with(app, s, status, Some(error), field, None).await;
            with_retry_after(res, &e)
        }
    }
}

/// Step-up needed: ask for proof (password, code or passkey), then come back.
pub(super) fn reauth_prompt(app: &App) -> Response {
    render(
        app,
        StatusCode::FORBIDDEN,
        "reauth.html",
        context! { title => "Confirm it is you", signed_in => true },
    )
}

async fn revoke_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    ApiPath(id): ApiPath<String>,
) -> Response {
    let Some(s) = s else {
        return Redirect::to("/login").into_response();
    };
    let result = identity::revoke_session(&app, &ctx.0, &s, &id)
        .await
        .map(|_| ());
    account_outcome(&app, &s, result, "That session was signed out.").await
}

async fn revoke_others_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
) -> Response {
    let Some(s) = s else {
        return Redirect::to("/login").into_response();
    };
    let result = identity::revoke_other_sessions(&app, &ctx.0, &s)
        .await
        .map(|_| ());
    account_outcome(&app, &s, result, "All other sessions were signed out.").await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    current_password: String,
    new_password: String,
}

async fn password_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    ApiForm(f): ApiForm<PasswordForm>,
) -> Response {
    let Some(s) = s else {
        return Redirect::to("/login").into_response();
    };
    let result = identity::change_password(&app, &ctx.0, &s, &f.current_password, &f.new_password)
        .await
        .map(|_| ());
    account_outcome(
        &app,
        &s,
        result,
        "Password changed. Your other sessions were signed out.",
    )
    .await
}

async fn export_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
) -> Response {
    let Some(s) = s else {
        return Redirect::to("/login").into_response();
    };
    let result = crate::exports::request(&app, &ctx.0, &s).await.map(|_| ());
    account_outcome(
        &app,
        &s,
        result,
        "Your export is being prepared. We will email you when it is ready to download here.",
    )
    .await
}

async fn deletion_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
) -> Response {
    let Some(s) = s else {
        return Redirect::to("/login").into_response();
    };
    match identity::erasure::request_deletion(&app, &ctx.0, &s).await {
        // Erased at once (no grace period): the session went with the account.
        Ok(_) if app.config.accounts.deletion_grace_days == 0 => (
            CookieJar::new().add(clear_cookie(&app)),
            Redirect::to("/login"),
        )
            .into_response(),
        Ok(v) => {
            let when = crate::clock::parse_rfc3339(&v.scheduled_for)
                .map(identity::erasure::long_date)
                .unwrap_or(v.scheduled_for);
            let notice = format!(
                "Your account will be deleted on {when}. We sent you an email; you can cancel here until then."
            );
            account_view(&app, &s, StatusCode::OK, None, Some(&notice)).await
        }
        Err(e) => account_outcome(&app, &s, Err(e), "").await,
    }
}

async fn deletion_cancel_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
) -> Response {
    let Some(s) = s else {
        return Redirect::to("/login").into_response();
    };
    let result = identity::erasure::cancel_deletion(&app, &ctx.0, &s).await;
    account_outcome(
        &app,
        &s,
        result,
        "The deletion of your account is cancelled.",
    )
    .await
}

/// A link to /logout (typed, bookmarked) asks; only the button (a POST) signs out, so a page
/// elsewhere cannot sign anyone out with an image or a link.
async fn logout_page(State(app): State<AppState>, MaybeAuthed(s): MaybeAuthed) -> Response {
    if s.is_none() {
        return Redirect::to("/login").into_response();
    }
    render(
        &app,
        StatusCode::OK,
        "logout.html",
        context! { title => "Sign out", signed_in => true },
    )
}

async fn logout_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    MaybeAuthed(s): MaybeAuthed,
    jar: CookieJar,
) -> Response {
    if let Some(s) = s {
        if let Err(e) = identity::logout(&app, &ctx.0, &s).await {
            let (status, error) = page_error(&e);
            return render(
                &app,
                status,
                "message.html",
                context! { title => "Sign out", error, message => "" },
            );
        }
    }
    // A page remembered for after sign-in was this user's: the next one to sign in here must not
    // land on it.
    let mut next = super::session::next_cookie(&app, "");
    next.set_max_age(time::Duration::ZERO);
    (
        jar.add(clear_cookie(&app)).add(next),
        Redirect::to("/login"),
    )
        .into_response()
}

#[cfg(test)]
mod error_page_tests {
    use super::wait_words;

    #[test]
    fn the_wait_is_said_in_whole_minutes_rounded_up() {
        assert_eq!(wait_words(Some(1)), "Try again in a minute.");
        assert_eq!(wait_words(Some(60)), "Try again in a minute.");
        assert_eq!(wait_words(Some(61)), "Try again in 2 minutes.");
        assert_eq!(wait_words(Some(900)), "Try again in 15 minutes.");
        assert_eq!(wait_words(None), "Please wait a little and try again.");
    }
}
