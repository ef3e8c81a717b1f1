//! The pages' extractors: the API's checks, answered the way a page answers. `OrgPage` and
//! `WsPage` resolve `{org_id}` and `{ws_id}` by name and open the request's one transaction with
//! the same functions as the API's `Org` and `Ws` (`org_api::open_org`, `work_api::open_workspace`),
//! read for a `GET` and written for a form that changes something (`org_api::mode_of`). They
//! differ from the API only in their answers: signed out (or still owing a second factor), the
//! sign-in page instead of a 401; refused, the 404 (or 403) page instead of a problem document.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::{denied, to_login};
use crate::http::org_api::{mode_of, open_org};
use crate::http::session::FullSession;
use crate::http::work_api::open_workspace;
use crate::identity::AuthSession;
use crate::state::AppState;
use crate::store::tenant::Mode;
use crate::tenancy::workspaces::WorkspaceScope;
use crate::tenancy::OrgScope;

/// The signed-in caller's scope in the org named by `{org_id}`, with their session.
pub(super) struct OrgPage(pub OrgScope, pub AuthSession);

impl OrgPage {
    /// `OrgPage` in `mode` whatever the method: for a form that only reads (the audit trail's
    /// verification).
    pub(super) async fn open(
        parts: &mut Parts,
        app: &AppState,
        mode: Mode,
    ) -> Result<Self, Response> {
        let s = signed_in(parts, app).await?;
        match open_org(parts, app, &s, mode).await {
            Ok(scope) => Ok(OrgPage(scope, s)),
            Err(e) => Err(denied(app, &e)),
        }
    }
}

impl FromRequestParts<AppState> for OrgPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let mode = mode_of(parts);
        Self::open(parts, app, mode).await
    }
}

/// The signed-in caller's scope in the workspace named by `{ws_id}` of the org named by
/// `{org_id}`, with their session.
pub(super) struct WsPage(pub WorkspaceScope, pub AuthSession);

impl FromRequestParts<AppState> for WsPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let s = signed_in(parts, app).await?;
        let mode = mode_of(parts);
        match open_workspace(parts, app, &s, mode).await {
            Ok(ws) => Ok(WsPage(ws, s)),
            Err(e) => Err(denied(app, &e)),
        }
    }
}

/// The fully authenticated session, else the sign-in page. A session lookup that fails answers
/// as it always did (`FullSession`'s own rejection).
async fn signed_in(parts: &mut Parts, app: &AppState) -> Result<AuthSession, Response> {
    match FullSession::from_request_parts(parts, app).await {
        Ok(FullSession(Some(s))) => Ok(s),
        Ok(FullSession(None)) => Err(to_login()),
        Err(e) => Err(e.into_response()),
    }
}
