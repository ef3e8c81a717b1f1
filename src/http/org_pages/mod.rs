//! Pages for organizations and their work: the org switcher, an org with its members, invitations
//! and workspaces, a workspace as a board (status columns) or a list, an item with its comments,
//! and invitation acceptance. Forms post back here and call the same service functions as the JSON
//! API. A change that works redirects (303) to the page to show next with a fixed notice; one that
//! fails shows the same page again with the service's error and the status it maps to. Anything
//! the caller may not see is a 404 page, as the services answer `NotFound`.
//!
//! Handlers take their org or workspace as the API does, by the names of the route's parameters
//! (`OrgPage`, `WsPage` in `scope.rs`: the API's own checks with a page's answers), in the
//! request's one transaction; other ids come by name from `PathParams`.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use minijinja::{context, Value};
use serde::Deserialize;

use super::pages::{page_error, render, with_retry_after};
use crate::error::{AppError, AppResult};
use crate::identity::AuthSession;
use crate::state::{App, AppState};
use crate::tenancy::items::{self, ItemInput};
use crate::tenancy::workspaces::{self, WorkspaceInput, WorkspaceScope, WsRole};
use crate::tenancy::{self, MemberView, OrgRole, OrgScope};

/// The document page forms that upload (served with the streaming upload routes).
pub fn upload_routes() -> Router<AppState> {
    documents::upload_routes()
}

pub fn router() -> Router<AppState> {
    let ws = "/orgs/{org_id}/workspaces/{ws_id}";
    Router::new()
        .route("/orgs", get(orgs_page).post(create_org_submit))
        .route("/orgs/{org_id}", get(org_page))
        .route("/orgs/{org_id}/invitations", post(invite_submit))
        .route(
            "/orgs/{org_id}/invitations/{id}/revoke",
            post(revoke_invitation_submit),
        )
        .route("/orgs/{org_id}/members/{user_id}/role", post(role_submit))
        .route(
            "/orgs/{org_id}/members/{user_id}/remove",
            post(remove_member_submit),
        )
        .route("/orgs/{org_id}/workspaces", post(create_workspace_submit))
        .route(ws, get(workspace_page))
        .route(&format!("{ws}/members"), post(grant_access_submit))
        .route(
            &format!("{ws}/members/{{user_id}}/remove"),
            post(remove_access_submit),
        )
        .route(&format!("{ws}/items"), post(create_item_submit))
        .route(
            &format!("{ws}/items/{{item_id}}"),
            get(item_page).post(update_item_submit),
        )
        .route(
            &format!("{ws}/items/{{item_id}}/comments"),
            post(comment_submit),
        )
        .route(&format!("{ws}/items/{{item_id}}/move"), post(move_submit))
        .route(
            &format!("{ws}/items/{{item_id}}/delete"),
            get(delete_item_page).post(delete_item_submit),
        )
        .route(&format!("{ws}/statuses"), post(statuses_submit))
        .route("/orgs/{org_id}/search", get(search_page))
        .route("/orgs/{org_id}/settings", get(settings_page))
        .route("/orgs/{org_id}/settings/name", post(rename_submit))
        .route("/orgs/{org_id}/settings/mfa", post(require_mfa_submit))
        .route("/orgs/{org_id}/settings/export", post(export_submit))
        .route("/orgs/{org_id}/delete", post(delete_org_submit))
        .route("/invitations/accept", get(accept_page).post(accept_submit))
        .route("/invitations/opt-out", get(optout_page).post(optout_submit))
        .merge(audit::routes())
        .merge(documents::routes())
        .merge(integrations::routes())
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// What a page shows above its content: the error that stopped a change, or a notice after one
/// that worked.
#[derive(Default)]
struct Outcome<'a> {
    error: Option<&'a AppError>,
    notice: Option<&'static str>,
}

impl<'a> Outcome<'a> {
    fn failed(e: &'a AppError) -> Self {
        Outcome {
            error: Some(e),
            notice: None,
        }
    }
    fn done(q: &DoneQuery) -> Self {
        Outcome {
            error: None,
            notice: notice(&q.done),
        }
    }
}

/// A page for a signed-in user, with the status of the error it shows (if any).
fn show(app: &App, out: &Outcome<'_>, name: &str, ctx: Value) -> Response {
    let (status, error) = match out.error {
        Some(e) => {
            let (status, msg) = page_error(e);
            (status, Some(msg))
        }
        None => (StatusCode::OK, None),
    };
    let res = render(
        app,
        status,
        name,
        context! { error, error_field => out.error.and_then(super::pages::field_of), notice => out.notice, signed_in => true, ..ctx },
    );
    match out.error {
        Some(e) => with_retry_after(res, e),
        None => res,
    }
}

/// The page for an org, workspace or item the caller cannot open: 404 for anything they may not
/// see (the services never say whether it exists), else the reason (e.g. the org's MFA policy).
fn denied(app: &App, e: &AppError) -> Response {
    let (status, msg) = page_error(e);
    let (title, message, link, link_text, error) = match e {
        AppError::NotFound => (
            "Not found",
            "There is nothing here, or you do not have access to it.",
            "/orgs",
            "Your organizations",
            None,
        ),
        AppError::Forbidden {
            code: "mfa_required",
            ..
        } => (
            "Two-factor sign-in required",
            "",
            "/account",
            "Security settings",
            Some(msg),
        ),
        _ => ("Organization", "", "/orgs", "Your organizations", Some(msg)),
    };
    let res = render(
        app,
        status,
        "message.html",
        context! { title, message, link, link_text, error, signed_in => true },
    );
    with_retry_after(res, e)
}

/// The step-up prompt, which comes back to `back` once the user has confirmed it is them.
fn step_up(app: &AppState, jar: CookieJar, back: &str) -> Response {
    (
        jar.add(crate::http::session::next_cookie(app, back)),
        super::pages::reauth_prompt(app),
    )
        .into_response()
}

/// Whether a change was refused for want of a recent step-up.
fn is_step_up(e: &AppError) -> bool {
    matches!(
        e,
        AppError::Forbidden {
            code: "reauthentication_required",
            ..
        }
    )
}

pub(super) fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// Fixed notices after a change, named in the `done` query parameter of the redirect (so no
/// user-supplied text is ever reflected from the URL).
fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "org_created" => "The organization was created. You are its owner.",
        "joined" => "You joined the organization.",
        "invited" => "The invitation was sent.",
        "revoked" => "The invitation was revoked.",
        "role" => "The role was changed.",
        "removed" => "The member was removed.",
        "left" => "You left the organization.",
        "ws_created" => "The workspace was created.",
        "access" => "Access to the workspace was updated.",
        "access_removed" => "Access to the workspace was removed.",
        "item_created" => "The item was added.",
        "saved" => "The item was saved.",
        "commented" => "Your comment was added.",
        "moved" => "The item was moved.",
        "statuses" => "The statuses were saved.",
        "item_deleted" => "The item was deleted.",
        "renamed" => "The organization was renamed.",
        "mfa_policy" => "The two-factor policy was saved.",
        "export_requested" => "The export is being prepared; it appears below when it is ready.",
        "org_deleted" => "The organization was deleted, with everything in it.",
        _ => return None,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DoneQuery {
    done: String,
}

/// The value in `Ok`, else a return from the enclosing handler with the page for the error in
/// `Err` (`denied`): `or_page!(app, result)`.
macro_rules! or_page {
    ($app:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return denied($app, &e),
        }
    };
}

const PAGE: i64 = 200;
const MAX_ROWS: usize = 1000;

/// The rows of a paginated service list, up to `MAX_ROWS`, and whether there were more:
/// `all!(|cursor| call(.., cursor.as_deref(), ..))` evaluates to `AppResult<(Vec<T>, bool)>`.
/// (A macro, not a function taking a closure: the calls borrow the request's scope mutably.)
macro_rules! all {
    (|$c:ident| $call:expr) => {
        async {
            let mut rows = Vec::new();
            let mut $c: Option<String> = None;
            loop {
                let p = $call.await?;
                rows.extend(p.items);
                match p.next_cursor {
                    None => break Ok::<_, AppError>((rows, false)),
                    Some(_) if rows.len() >= MAX_ROWS => break Ok((rows, true)),
                    next => $c = next,
                }
            }
        }
        .await
    };
}

async fn org_members(app: &AppState, scope: &mut OrgScope) -> AppResult<(Vec<MemberView>, bool)> {
    all!(|c| tenancy::list_members(app, scope, c.as_deref(), Some(PAGE)))
}

/// Display names by user id, for assignees, authors and workspace access.
fn names(members: &[MemberView]) -> HashMap<&str, &str> {
    members
        .iter()
        .map(|m| (m.user_id.as_str(), m.display_name.as_str()))
        .collect()
}

const UNKNOWN_MEMBER: &str = "Former member";

fn name_of<'a>(names: &HashMap<&str, &'a str>, id: &str) -> &'a str {
    names.get(id).copied().unwrap_or(UNKNOWN_MEMBER)
}

/// `None` for an empty form value.
fn non_empty(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

// ---------------------------------------------------------------------------------------------

mod audit;
mod documents;
mod integrations;
mod invitations;
mod orgs;
mod scope;
mod settings;
mod work;

use invitations::*;
use orgs::*;
use scope::*;
use settings::*;
use work::*;
