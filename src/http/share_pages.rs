//! `/s/{token}`: a share link, for whoever holds it. A link with nothing to prove downloads at
//! once; one with a password or a recipient shows its form first, and a right answer is kept for
//! an hour in a cookie scoped to `/s/` (a grant: see `tenancy::share_links::Grant`). An unknown,
//! expired, revoked or used-up link gets the same 404 page, whatever the reason.
//!
//! Limits: every request from one address (`link_requests_per_ip`); wrong passwords and codes and
//! code requests, per link from anywhere (`link_attempts_per_link`) and per address
//! (`link_attempts_per_ip`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use minijinja::context;
use serde::Deserialize;

use super::documents_api::serve;
use super::middleware::RequestCtxExt;
use super::pages::{page_error, render};
use super::problem::{ApiForm, ApiPath};
use crate::error::AppError;
use crate::state::{App, AppState};
use crate::tenancy::share_links::{self, Grant, LiveLink, GRANT_TTL_MS};

pub fn router(_app: AppState) -> Router<AppState> {
    Router::new().route("/s/{token}", get(open).post(submit))
}

const GRANT_COOKIE: &str = "strongroom_link";

fn grant_cookie(app: &App, value: String) -> Cookie<'static> {
    let mut c = Cookie::new(GRANT_COOKIE, value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path("/s/");
    c.set_secure(app.config.is_https());
    c.set_max_age(time::Duration::milliseconds(GRANT_TTL_MS));
    c
}

/// The one page every unusable link gets.
fn gone(app: &App) -> Response {
    render(
        app,
        StatusCode::NOT_FOUND,
        "share_gone.html",
        context! { title => "This link does not work" },
    )
}

fn failed(app: &App, e: &AppError) -> Response {
    match e {
        AppError::NotFound => gone(app),
        e => {
            let (status, message) = page_error(e);
            let res = render(
                app,
                status,
                "message.html",
                context! { title => "This link cannot be opened now", message },
            );
            super::pages::with_retry_after(res, e)
        }
    }
}

async fn limit(
    app: &App,
    key: String,
    l: crate::config::Limit,
    record: bool,
) -> Result<(), AppError> {
    let r = if record {
        app.limiter.hit(&key, l).await
    } else {
        app.limiter.check(&key, l).await
    };
    r.map_err(AppError::from)
}

fn ip_key(ctx: &crate::identity::RequestCtx) -> String {
    crate::ratelimit::ip_key(ctx.ip)
}

/// Whether this client's grant satisfies what the link asks.
fn granted(link: &LiveLink, grant: Option<&Grant>) -> bool {
    let password = !link.needs_password || grant.is_some_and(|g| g.password);
    let recipient = !link.needs_recipient || grant.is_some_and(|g| g.email.is_some());
    password && recipient
}

fn grant_of(app: &App, jar: &CookieJar, link_id: &str) -> Option<Grant> {
    jar.get(GRANT_COOKIE)
        .and_then(|c| Grant::open(app, c.value()))
        .filter(|g| g.link_id == link_id)
}

fn form_page(
    app: &App,
    status: StatusCode,
    token: &str,
    link: &LiveLink,
    grant: Option<&Grant>,
    extra: minijinja::Value,
) -> Response {
    let step = if link.needs_password && grant.is_none_or(|g| !g.password) {
        "password"
    } else if link.needs_recipient && grant.is_none_or(|g| g.email.is_none()) {
        "email"
    } else {
        "ready"
    };
    render(
        app,
        status,
        "share.html",
        context! {
            title => "A file shared with you",
            token,
            step,
            filename => link.filename,
            size => link.size,
            expires_at => crate::clock::rfc3339(link.expires_at),
            watermark => link.watermark,
            ..extra
        },
    )
}

/// A right password or code: the grant in its cookie, and the page with what comes next.
fn granted_page(app: &App, jar: CookieJar, token: &str, link: &LiveLink, g: &Grant) -> Response {
    let jar = jar.add(grant_cookie(app, g.seal(app)));
    (
        jar,
        form_page(app, StatusCode::OK, token, link, Some(g), context! {}),
    )
        .into_response()
}

async fn open(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    jar: CookieJar,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> Response {
    let rl = &app.config.rate_limits;
    if let Err(e) = limit(
        &app,
        format!("link-ip:{}", ip_key(&ctx.0)),
        rl.link_requests_per_ip,
        true,
    )
    .await
    {
        return failed(&app, &e);
    }
    let link = match share_links::open(&app, &ctx.0, &token).await {
        Ok(l) => l,
        Err(e) => return failed(&app, &e),
    };
    let grant = grant_of(&app, &jar, &link.link_id);
    if !granted(&link, grant.as_ref()) {
        return form_page(
            &app,
            StatusCode::OK,
            &token,
            &link,
            grant.as_ref(),
            context! {},
        );
    }
    let recipient = grant.as_ref().and_then(|g| g.email.clone());
    match share_links::download(&app, &ctx.0, &token, recipient.as_deref()).await {
        Ok((ticket, how)) => {
            let res = if how.watermark && ticket.content_type == "application/pdf" {
                super::documents_api::serve_watermarked(&app, ticket, recipient.as_deref(), how.at)
                    .await
            } else {
                serve(&app, ticket, &headers, false).await
            };
            res.unwrap_or_else(|e| failed(&app, &e))
        }
        Err(e) => failed(&app, &e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareForm {
    step: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    code_id: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

async fn submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    jar: CookieJar,
    ApiPath(token): ApiPath<String>,
    ApiForm(f): ApiForm<ShareForm>,
) -> Response {
    let rl = &app.config.rate_limits;
    if let Err(e) = limit(
        &app,
        format!("link-ip:{}", ip_key(&ctx.0)),
        rl.link_requests_per_ip,
        true,
    )
    .await
    {
        return failed(&app, &e);
    }
    let link = match share_links::open(&app, &ctx.0, &token).await {
        Ok(l) => l,
        Err(e) => return failed(&app, &e),
    };
    let per_link = format!("link-fail:{}", link.link_id);
    let per_ip = format!("link-fail-ip:{}", ip_key(&ctx.0));
    // Attempts are refused once either budget is spent, before any check is made.
    for (key, l) in [
        (&per_link, rl.link_attempts_per_link),
        (&per_ip, rl.link_attempts_per_ip),
    ] {
        if let Err(e) = limit(&app, key.clone(), l, false).await {
            return failed(&app, &e);
        }
    }
    let spend = || async {
        let _ = app.limiter.hit(&per_link, rl.link_attempts_per_link).await;
        let _ = app.limiter.hit(&per_ip, rl.link_attempts_per_ip).await;
    };
    let grant = grant_of(&app, &jar, &link.link_id);
    let now = app.clock.now_ms();
    let base = grant.clone().unwrap_or(Grant {
        link_id: link.link_id.clone(),
        expires_at: now + GRANT_TTL_MS,
        password: false,
        email: None,
    });
    match f.step.as_str() {
        "password" => {
            let pw = f.password.unwrap_or_default();
            match share_links::check_password(&app, &ctx.0, &token, &pw).await {
                Ok(true) => {
                    let g = Grant {
                        password: true,
                        expires_at: now + GRANT_TTL_MS,
                        ..base
                    };
                    granted_page(&app, jar, &token, &link, &g)
                }
                Ok(false) => {
                    spend().await;
                    form_page(
                        &app,
                        StatusCode::UNAUTHORIZED,
                        &token,
                        &link,
                        grant.as_ref(),
                        context! { error => "That password is not right.", error_field => "password" },
                    )
                }
                Err(e) => failed(&app, &e),
            }
        }
        "email" => {
            spend().await;
            let email = f.email.unwrap_or_default();
            match share_links::send_code(&app, &ctx.0, &token, &email).await {
                Ok(code_id) => form_page(
                    &app,
                    StatusCode::OK,
                    &token,
                    &link,
                    grant.as_ref(),
                    context! { code_id, sent_to => email },
                ),
                Err(e) => failed(&app, &e),
            }
        }
        "code" => {
            let code_id = f.code_id.unwrap_or_default();
            let code = f.code.unwrap_or_default();
            match share_links::check_code(&app, &ctx.0, &token, &code_id, &code).await {
                Ok(Some(email)) => {
                    let g = Grant {
                        email: Some(email),
                        expires_at: now + GRANT_TTL_MS,
                        ..base
                    };
                    granted_page(&app, jar, &token, &link, &g)
                }
                Ok(None) => {
                    spend().await;
                    form_page(
                        &app,
                        StatusCode::UNAUTHORIZED,
                        &token,
                        &link,
                        grant.as_ref(),
                        context! {
                            code_id,
                            error => "That code is not right, has expired, or was tried too often. Ask for a new one.",
                            error_field => "code",
                        },
                    )
                }
                Err(e) => failed(&app, &e),
            }
        }
        _ => failed(
            &app,
            &AppError::invalid("invalid_step", "The form was not one this page sends."),
        ),
    }
}
