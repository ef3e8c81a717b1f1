//! Pages for second factors: the MFA step of sign-in, TOTP set-up with its QR code and one-time
//! recovery codes, step-up prompts, and passkey management forms. Passkey ceremonies themselves
//! run in `/static/passkeys.js` (served as a file, so the CSP needs no inline script).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use minijinja::context;
use serde::Deserialize;

use super::middleware::RequestCtxExt;
use super::pages::{
    account_outcome, page_error, reauth_prompt, render, render_error, with_retry_after,
};
use super::problem::{ApiForm, ApiPath};
use super::session::{session_cookie, FullSession, MaybeAuthed};
use crate::error::AppError;
use crate::identity::mfa::{self, SecondFactor};
use crate::identity::{passkeys, AuthSession};
use crate::state::{App, AppState};

/// Sign-in steps (behind the auth rate limit).
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route("/login/mfa/totp", post(mfa_totp_submit))
        .route("/login/mfa/recovery", post(mfa_recovery_submit))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login/mfa", get(mfa_page))
        .route("/account/mfa/totp", post(totp_start_submit))
        .route("/account/mfa/totp/confirm", post(totp_confirm_submit))
        .route("/account/mfa/totp/disable", post(totp_disable_submit))
        .route("/account/mfa/recovery-codes", post(recovery_codes_submit))
        .route("/account/reauthenticate", post(reauth_submit))
        .route("/account/passkeys/{id}/rename", post(passkey_rename_submit))
        .route("/account/passkeys/{id}/delete", post(passkey_delete_submit))
        .route("/static/passkeys.js", get(passkeys_js))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodeForm {
    code: String,
}

fn pending(s: Option<AuthSession>) -> Option<AuthSession> {
    s.filter(|s| !s.is_full())
}

/// Whether the account behind a pending session can finish with a passkey.
async fn has_passkeys(app: &AppState, p: &AuthSession) -> bool {
    match app.db.acquire().await {
        Ok(mut c) => {
            crate::store::mfa::count_passkeys(&mut c, &p.user_id)
                .await
                .unwrap_or(0)
                > 0
        }
        Err(_) => false,
    }
}

async fn mfa_page(State(app): State<AppState>, MaybeAuthed(s): MaybeAuthed) -> Response {
    let Some(p) = pending(s) else {
        return Redirect::to("/login").into_response();
    };
    let passkeys = has_passkeys(&app, &p).await;
    render(
        &app,
        StatusCode::OK,
        "mfa_login.html",
        context! { title => "Two-step sign-in", passkeys },
    )
}

async fn finish(
    app: &AppState,
    ctx: &RequestCtxExt,
    s: Option<AuthSession>,
    jar: CookieJar,
    factor: SecondFactor<'_>,
) -> Response {
    let Some(p) = pending(s) else {
        return Redirect::to("/login").into_response();
    };
    match mfa::complete_mfa(app, &ctx.0, &p, factor).await {
        Ok(out) => {
            let next = super::pages::landing(&out);
            (jar.add(session_cookie(app, out.token)), Redirect::to(next)).into_response()
        }
        Err(e) => {
            let passkeys = has_passkeys(app, &p).await;
            render_error(
                app,
                &e,
                "mfa_login.html",
                context! { title => "Two-step sign-in", passkeys },
            )
        }
    }
}

async fn mfa_totp_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    MaybeAuthed(s): MaybeAuthed,
    jar: CookieJar,
    ApiForm(f): ApiForm<CodeForm>,
) -> Response {
    finish(&app, &ctx, s, jar, SecondFactor::Totp(&f.code)).await
}

async fn mfa_recovery_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    MaybeAuthed(s): MaybeAuthed,
    jar: CookieJar,
    ApiForm(f): ApiForm<CodeForm>,
) -> Response {
    finish(&app, &ctx, s, jar, SecondFactor::RecoveryCode(&f.code)).await
}

fn needs_reauth(e: &AppError) -> bool {
    matches!(
        e,
        AppError::Forbidden {
            code: "reauthentication_required",
            ..
        }
    )
}

async fn totp_start_submit(State(app): State<AppState>, FullSession(s): FullSession) -> Response {
    let Some(s) = s else {
        return Redirect::to("/login").into_response();
    };
    match mfa::start_totp(&app, &s).await {
        Ok(e) => totp_setup(&app, StatusCode::OK, &e, None),
        Err(e) if needs_reauth(&e) => reauth_prompt(&app),
        Err(e) => account_outcome(&app, &s, Err(e), "").await,
    }
}

/// The setup page: the secret as a QR code and as text, and the form for the first code. With an
/// error (a wrong code) it is tied to the code field.
fn totp_setup(
    app: &App,
    status: StatusCode,
    e: &mfa::TotpEnrolment,
    code_error: Option<String>,
) -> Response {
    let qr_b64 = base64::engine::general_purpose::STANDARD.encode(e.qr_svg.as_bytes());
    render(
        app,
        status,
        "totp_setup.html",
        context! { title => "Set up an authenticator app", signed_in => true, secret => e.secret, qr_b64, code_error },
    )
}

fn show_codes(app: &App, title: &str, codes: Vec<String>) -> Response {
    let download = urlencoding::encode(&(codes.join("\n") + "\n")).into_owned();
    render(
        app,
        StatusCode::OK,
        "recovery_codes.html",
        context! { title, signed_in => true, codes, download },
    )
}

async fn totp_confirm_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    ApiForm(f): ApiForm<CodeForm>,
) -> Response {
    let Some(s) = s else {
        return Redirect::to("/login").into_response();
    };
    match mfa::confirm_totp(&app, &ctx.0, &s, &f.code).await {
        Ok(codes) => show_codes(&app, "Authenticator app is on", codes),
        Err(e) if needs_reauth(&e) => reauth_prompt(&app),
        // A wrong code: the same secret again (the user has scanned it), not a new one.
        Err(
            e @ AppError::Invalid {
                code: "invalid_code",
                ..
            },
        ) => match mfa::pending_totp(&app, &s).await {
            Ok(Some(pending)) => totp_setup(
                &app,
                StatusCode::UNPROCESSABLE_ENTITY,
                &pending,
                Some(e.to_string()),
            ),
            Ok(None) => account_outcome(&app, &s, Err(e), "").await,
            Err(other) => account_outcome(&app, &s, Err(other), "").await,
        },
        Err(e) => account_outcome(&app, &s, Err(e), "").await,
    }
}

async fn totp_disable_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    ApiForm(f): ApiForm<CodeForm>,
) -> Response {
    let Some(s) = s else {
        return Redirect::to("/login").into_response();
    };
    let code = Some(f.code.trim()).filter(|c| !c.is_empty());
    match mfa::disable_totp(&app, &ctx.0, &s, code).await {
        Err(e) if needs_reauth(&e) => reauth_prompt(&app),
        r => {
            account_outcome(
                &app,
                &s,
                r,
                "The authenticator app was removed and your other sessions were signed out.",
            )
            .await
        }
    }
}

async fn recovery_codes_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
) -> Response {
    let Some(s) = s else {
        return Redirect::to("/login").into_response();
    };
    match mfa::regenerate_recovery_codes(&app, &ctx.0, &s).await {
        Ok(codes) => show_codes(&app, "New recovery codes", codes),
        Err(e) if needs_reauth(&e) => reauth_prompt(&app),
        Err(e) => account_outcome(&app, &s, Err(e), "").await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReauthForm {
    password: String,
    code: String,
}

async fn reauth_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    jar: axum_extra::extract::cookie::CookieJar,
    FullSession(s): FullSession,
    ApiForm(f): ApiForm<ReauthForm>,
) -> Response {
    let Some(s) = s else {
        return Redirect::to("/login").into_response();
    };
    let (password, code) = if f.code.trim().is_empty() {
        (Some(f.password.as_str()), None)
    } else {
        (None, Some(f.code.as_str()))
    };
    match mfa::reauthenticate(&app, &ctx.0, &s, password, code).await {
        // Back to the page that asked for it (the `next` cookie, followed by `/`), else the
        // account page.
        Ok(()) if jar.get(super::session::next_cookie_name(&app)).is_some() => {
            Redirect::to("/").into_response()
        }
        Ok(()) => Redirect::to("/account?confirmed=1").into_response(),
        Err(e) => {
            let (status, error) = page_error(&e);
            let r = render(
                &app,
                status,
                "reauth.html",
                context! { title => "Confirm it is you", signed_in => true, error },
            );
            with_retry_after(r, &e)
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NameForm {
    name: String,
}

async fn passkey_rename_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    ApiPath(id): ApiPath<String>,
    ApiForm(f): ApiForm<NameForm>,
) -> Response {
    let Some(s) = s else {
        return Redirect::to("/login").into_response();
    };
    let r = passkeys::rename(&app, &ctx.0, &s, &id, &f.name).await;
    account_outcome(&app, &s, r, "The passkey was renamed.").await
}

async fn passkey_delete_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    ApiPath(id): ApiPath<String>,
) -> Response {
    let Some(s) = s else {
        return Redirect::to("/login").into_response();
    };
    match passkeys::remove(&app, &ctx.0, &s, &id).await {
        Err(e) if needs_reauth(&e) => reauth_prompt(&app),
        r => {
            account_outcome(
                &app,
                &s,
                r,
                "The passkey was removed and your other sessions were signed out.",
            )
            .await
        }
    }
}

async fn passkeys_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/passkeys.js"),
    )
        .into_response()
}
