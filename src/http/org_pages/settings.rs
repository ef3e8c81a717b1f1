//! An org's settings page (rename, the require-MFA policy, deletion with step-up and a typed
//! confirmation) and its search page. The changes call the same services as the API.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use minijinja::{context, Value};
use serde::Deserialize;

use super::*;
use crate::http::middleware::RequestCtxExt;
use crate::http::problem::{ApiForm, ApiQuery};
use crate::state::AppState;

pub(super) async fn settings_page(
    State(app): State<AppState>,
    OrgPage(mut scope, s): OrgPage,
    ApiQuery(q): ApiQuery<DoneQuery>,
) -> Response {
    settings_view(&app, &s, &mut scope, Outcome::done(&q), context! {}).await
}

async fn settings_view(
    app: &AppState,
    s: &AuthSession,
    scope: &mut OrgScope,
    out: Outcome<'_>,
    form: Value,
) -> Response {
    if let Err(e) = scope.require(OrgRole::Admin) {
        return denied(app, &e);
    }
    let org = match tenancy::get_org(app, scope).await {
        Ok(o) => o,
        Err(e) => return denied(app, &e),
    };
    let exports = if scope.role() == OrgRole::Owner {
        match crate::exports::list_org(app, scope).await {
            Ok(x) => x,
            Err(e) => return denied(app, &e),
        }
    } else {
        Vec::new()
    };
    let window = app.config.session.reauth_window_secs * 1000;
    let confirmed = s
        .reauth_at
        .is_some_and(|t| app.clock.now_ms() - t <= window);
    show(
        app,
        &out,
        "org_settings.html",
        context! {
            title => "Organization settings", org => Value::from_serialize(&org),
            is_owner => scope.role() == OrgRole::Owner, confirmed, form,
            exports => Value::from_serialize(&exports),
        },
    )
}

/// The settings page after a change that failed, in a read scope of its own.
async fn settings_again(
    app: &AppState,
    s: &AuthSession,
    failed: OrgScope,
    e: &AppError,
    form: Value,
) -> Response {
    let org_id = failed.org_id().to_string();
    drop(failed);
    let mut scope =
        match tenancy::authorize(app, s, &org_id, crate::store::tenant::Mode::Read).await {
            Ok(sc) => sc,
            Err(e) => return denied(app, &e),
        };
    settings_view(app, s, &mut scope, Outcome::failed(e), form).await
}

fn settings_done(scope: &OrgScope, done: &str) -> Response {
    Redirect::to(&format!("/orgs/{}/settings?done={done}", scope.org_id())).into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RenameForm {
    name: String,
}

pub(super) async fn rename_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    OrgPage(mut scope, s): OrgPage,
    ApiForm(f): ApiForm<RenameForm>,
) -> Response {
    match tenancy::update_org(&app, &ctx.0, &mut scope, Some(&f.name), None).await {
        Ok(_) => settings_done(&scope, "renamed"),
        Err(e) => settings_again(&app, &s, scope, &e, context! { name => f.name }).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct MfaForm {
    require_mfa: String,
}

pub(super) async fn require_mfa_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    OrgPage(mut scope, s): OrgPage,
    ApiForm(f): ApiForm<MfaForm>,
) -> Response {
    let on = f.require_mfa == "on";
    match tenancy::update_org(&app, &ctx.0, &mut scope, None, Some(on)).await {
        Ok(_) => settings_done(&scope, "mfa_policy"),
        Err(e) => settings_again(&app, &s, scope, &e, context! {}).await,
    }
}

/// An owner's export of the whole org (after a step-up: without one, the prompt, which comes back
/// here).
pub(super) async fn export_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    jar: CookieJar,
    OrgPage(mut scope, s): OrgPage,
) -> Response {
    match crate::exports::request_org(&app, &ctx.0, &s, &mut scope).await {
        Ok(_) => settings_done(&scope, "export_requested"),
        Err(e) if is_step_up(&e) => {
            step_up(&app, jar, &format!("/orgs/{}/settings", scope.org_id()))
        }
        Err(e) => settings_again(&app, &s, scope, &e, context! {}).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct DeleteForm {
    confirm_name: String,
}

/// Deletes the org (owners, after step-up), once its name was typed to confirm. Without a recent
/// step-up, the confirmation prompt, which comes back here (the `next` cookie).
pub(super) async fn delete_org_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    jar: CookieJar,
    OrgPage(mut scope, s): OrgPage,
    ApiForm(f): ApiForm<DeleteForm>,
) -> Response {
    let typed = async {
        scope.require(OrgRole::Owner)?;
        let org = tenancy::get_org(&app, &mut scope).await?;
        if f.confirm_name.trim() != org.name {
            return Err(AppError::invalid(
                "confirm_name",
                "confirm_name: type the organization's name exactly to delete it.",
            ));
        }
        Ok(())
    };
    if let Err(e) = typed.await {
        return settings_again(&app, &s, scope, &e, context! {}).await;
    }
    match tenancy::delete_org(&app, &ctx.0, &s, &mut scope).await {
        Ok(()) => Redirect::to("/orgs?done=org_deleted").into_response(),
        Err(e) if is_step_up(&e) => {
            step_up(&app, jar, &format!("/orgs/{}/settings", scope.org_id()))
        }
        Err(e) => settings_again(&app, &s, scope, &e, context! {}).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct SearchQuery {
    q: String,
}

pub(super) async fn search_page(
    State(app): State<AppState>,
    OrgPage(mut scope, _): OrgPage,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Response {
    let org = match tenancy::get_org(&app, &mut scope).await {
        Ok(o) => o,
        Err(e) => return denied(&app, &e),
    };
    let (hits, error) = if q.q.trim().is_empty() {
        (Vec::new(), None)
    } else {
        match tenancy::search::search(&app, &mut scope, &q.q).await {
            Ok(r) => (r.items, None),
            Err(e @ AppError::Invalid { .. }) => (Vec::new(), Some(e)),
            Err(e) => return denied(&app, &e),
        }
    };
    let out = match &error {
        Some(e) => Outcome::failed(e),
        None => Outcome::default(),
    };
    show(
        &app,
        &out,
        "search.html",
        context! {
            title => "Search", org => Value::from_serialize(&org), q => q.q.clone(),
            searched => !q.q.trim().is_empty(), hits => Value::from_serialize(&hits),
        },
    )
}
