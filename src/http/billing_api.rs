//! `POST /api/v1/billing/stripe-webhook` (Stripe, verified by signature; no session) and the
//! org's plan for its admins.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::org_api::Org;
use super::problem::ApiJson;
use crate::error::AppResult;
use crate::state::AppState;
use crate::tenancy::billing::{self, PlanView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stripe_webhook))
        .routes(routes!(org_plan))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Received {
    received: bool,
    duplicate: bool,
}

#[utoipa::path(post, path = "/api/v1/billing/stripe-webhook", tag = "integrations",
    request_body(content = String, description = "A Stripe event, signed in `Stripe-Signature`", content_type = "application/json"),
    responses((status = 200, body = Received, description = "handled, or a duplicate acknowledged and ignored"),
        (status = 400, description = "`invalid_signature`, `stale_timestamp` or `invalid_event`"),
        (status = 404, description = "billing is not configured")))]
async fn stripe_webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<ApiJson<Received>> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let out = billing::receive(&app, signature, &body).await?;
    Ok(ApiJson(Received {
        received: out.received,
        duplicate: out.duplicate,
    }))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/billing", tag = "integrations", params(("org_id" = String, Path)),
    responses((status = 200, body = PlanView), (status = 403), (status = 404)))]
async fn org_plan(Org(mut scope, _): Org) -> AppResult<ApiJson<PlanView>> {
    Ok(ApiJson(billing::plan(&mut scope).await?))
}
