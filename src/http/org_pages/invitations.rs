//! Accepting an invitation from its emailed link.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

use super::*;
use crate::error::AppError;
use crate::http::middleware::RequestCtxExt;
use crate::http::problem::{ApiForm, ApiQuery};
use crate::http::session::FullSession;
use crate::state::AppState;

// Invitations

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct TokenForm {
    token: String,
}

pub(super) const ACCEPT_TITLE: &str = "Join an organization";

/// The link in the invitation email. Opening it changes nothing (mail scanners prefetch links):
/// the button posts the token.
pub(super) async fn accept_page(
    State(app): State<AppState>,
    jar: axum_extra::extract::cookie::CookieJar,
    FullSession(s): FullSession,
    ApiQuery(q): ApiQuery<TokenForm>,
) -> Response {
    // Who invited you to what, as role: for the signed-out invitee too (the token is the secret).
    let preview = match tenancy::preview_invitation(&app, &q.token).await {
        Ok(p) => p,
        Err(e) => return denied(&app, &e),
    };
    let invitation = preview.as_ref().map(|p| {
        context! { org => p.org_name, role => p.role.as_str(), inviter => p.inviter }
    });
    if s.is_none() {
        let page = render(
            &app,
            StatusCode::OK,
            "invitation_accept.html",
            context! { title => ACCEPT_TITLE, signed_in => false, invitation },
        );
        // A live invitation brings its invitee back here once signed in (or signed up, verified
        // and signed in) in this browser.
        if preview.is_some() {
            let back = format!(
                "/invitations/accept?token={}",
                url::form_urlencoded::byte_serialize(q.token.as_bytes()).collect::<String>()
            );
            let jar = jar.add(crate::http::session::next_cookie(&app, &back));
            return (jar, page).into_response();
        }
        return page;
    }
    if preview.is_none() {
        return show(
            &app,
            &Outcome::failed(&AppError::InvalidToken),
            "invitation_accept.html",
            context! { title => ACCEPT_TITLE },
        );
    }
    show(
        &app,
        &Outcome::default(),
        "invitation_accept.html",
        context! { title => ACCEPT_TITLE, token => q.token, invitation },
    )
}

pub(super) async fn accept_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    FullSession(s): FullSession,
    ApiForm(f): ApiForm<TokenForm>,
) -> Response {
    let Some(s) = s else { return to_login() };
    match tenancy::accept_invitation(&app, &ctx.0, &s, &f.token).await {
        Ok(org) => Redirect::to(&format!("/orgs/{}?done=joined", org.id)).into_response(),
        Err(e) => {
            // A refused token will not work on a second try: no button for it.
            let token = if matches!(e, AppError::InvalidToken) {
                String::new()
            } else {
                f.token
            };
            show(
                &app,
                &Outcome::failed(&e),
                "invitation_accept.html",
                context! { title => ACCEPT_TITLE, token },
            )
        }
    }
}

pub(super) const OPTOUT_TITLE: &str = "Stop invitations";

/// The opt-out link in every invitation email. Opening it changes nothing (mail scanners prefetch
/// links): one click on its button does it.
pub(super) async fn optout_page(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<TokenForm>,
) -> Response {
    if !tenancy::optout_token_is_valid(&app, &q.token) {
        return optout_failed(&app);
    }
    render(
        &app,
        StatusCode::OK,
        "invitation_optout.html",
        context! { title => OPTOUT_TITLE, token => q.token },
    )
}

/// The button on that page, and the one-click POST of RFC 8058 that mail clients send to the
/// `List-Unsubscribe` URL (its body, `List-Unsubscribe=One-Click`, needs no reading): the token
/// travels in the query string either way.
pub(super) async fn optout_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    ApiQuery(q): ApiQuery<TokenForm>,
) -> Response {
    match tenancy::opt_out_of_invitations(&app, &ctx.0, &q.token).await {
        Ok(()) => render(
            &app,
            StatusCode::OK,
            "invitation_optout.html",
            context! { title => OPTOUT_TITLE, done => true },
        ),
        Err(AppError::InvalidToken) => optout_failed(&app),
        Err(e) => show(
            &app,
            &Outcome::failed(&e),
            "invitation_optout.html",
            context! { title => OPTOUT_TITLE },
        ),
    }
}

fn optout_failed(app: &App) -> Response {
    show(
        app,
        &Outcome::failed(&AppError::InvalidToken),
        "invitation_optout.html",
        context! { title => OPTOUT_TITLE },
    )
}
