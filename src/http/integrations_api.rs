//! `/api/v1/orgs/{org_id}/api-keys` and `/webhooks`: the org's API keys and webhook endpoints,
//! for its admins (sessions only: keys never reach these routes, see
//! `tenancy::api_keys::access_for`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::middleware::RequestCtxExt;
use super::org_api::{List, Org, PageQuery};
use super::problem::{ApiJson, ApiPath, ApiQuery};
use super::session::Authed;
use crate::error::AppResult;
use crate::state::AppState;
use crate::tenancy::api_keys::{self, ApiKeyView, KeyInput, NewApiKey};
use crate::tenancy::webhooks::{self, DeliveryView, WebhookSecret, WebhookView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(test_webhook))
        .routes(routes!(redeliver))
        .routes(routes!(rotate_secret))
        .routes(routes!(enable_webhook))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    name: String,
    /// Among `workspaces:read`, `workspaces:write`, `items:read`, `items:write`, `updates:read`,
    /// `updates:write`, `documents:read`, `documents:write`, `audit:read`.
    scopes: Vec<String>,
    /// RFC 3339; none: the key does not expire.
    #[serde(default)]
    expires_at: Option<String>,
    /// Requests per minute (default `rate_limits.api_per_key`).
    #[serde(default)]
    rate_limit_per_minute: Option<i64>,
    /// Addresses or CIDR networks the key may be used from (none: anywhere).
    #[serde(default)]
    allowed_networks: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/api-keys", tag = "integrations", params(("org_id" = String, Path)),
    request_body = KeyBody,
    responses((status = 201, body = NewApiKey, description = "`key` is shown this once"), (status = 403), (status = 404), (status = 422)))]
async fn create_key(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, s): Org,
    ApiJson(b): ApiJson<KeyBody>,
) -> AppResult<Response> {
    let input = KeyInput {
        name: b.name,
        scopes: b.scopes,
        expires_at: b.expires_at,
        rate_limit_per_minute: b.rate_limit_per_minute,
        allowed_networks: b.allowed_networks,
    };
    let key = api_keys::create_key(&app, &ctx.0, &s, &mut scope, input).await?;
    Ok((StatusCode::CREATED, ApiJson(key)).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/api-keys", tag = "integrations", params(("org_id" = String, Path), PageQuery),
    responses((status = 200, body = List<ApiKeyView>), (status = 403), (status = 404)))]
async fn list_keys(
    State(app): State<AppState>,
    Org(mut scope, _): Org,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<ApiJson<List<ApiKeyView>>> {
    Ok(ApiJson(
        api_keys::list_keys(&app, &mut scope, q.cursor.as_deref(), q.limit)
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/api-keys/{id}", tag = "integrations",
    params(("org_id" = String, Path), ("id" = String, Path)), responses((status = 204), (status = 403), (status = 404)))]
async fn revoke_key(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, _): Org,
    ApiPath(ids): ApiPath<(String, String)>,
) -> AppResult<StatusCode> {
    api_keys::revoke_key(&app, &ctx.0, &mut scope, &ids.1).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// A public HTTPS URL (checked by the SSRF guard now and before every delivery).
    url: String,
    /// Among `item.created`, `item.updated`, `item.deleted`, `comment.created`,
    /// `document.uploaded`, `document.deleted`, `member.added`, `member.removed`; or `["*"]`.
    events: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/webhooks", tag = "integrations", params(("org_id" = String, Path)),
    request_body = WebhookBody,
    responses((status = 201, body = WebhookSecret, description = "`secret` is shown this once"), (status = 403), (status = 404),
        (status = 422, description = "`unsafe_url`: not a public HTTP(S) URL")))]
async fn create_webhook(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Authed(s): Authed,
    ApiPath(org_id): ApiPath<String>,
    ApiJson(b): ApiJson<WebhookBody>,
) -> AppResult<Response> {
    // Not `Org`: the service opens the org itself, so that no transaction waits on the URL's DNS.
    let hook = webhooks::create(&app, &ctx.0, &s, &org_id, &b.url, &b.events).await?;
    Ok((StatusCode::CREATED, ApiJson(hook)).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/webhooks", tag = "integrations", params(("org_id" = String, Path), PageQuery),
    responses((status = 200, body = List<WebhookView>), (status = 403), (status = 404)))]
async fn list_webhooks(
    State(app): State<AppState>,
    Org(mut scope, _): Org,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<ApiJson<List<WebhookView>>> {
    Ok(ApiJson(
        webhooks::list(&app, &mut scope, q.cursor.as_deref(), q.limit)
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/webhooks/{id}", tag = "integrations",
    params(("org_id" = String, Path), ("id" = String, Path)), responses((status = 204), (status = 403), (status = 404)))]
async fn delete_webhook(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, _): Org,
    ApiPath(ids): ApiPath<(String, String)>,
) -> AppResult<StatusCode> {
    webhooks::delete(&app, &ctx.0, &mut scope, &ids.1).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/webhooks/{id}/deliveries", tag = "integrations",
    params(("org_id" = String, Path), ("id" = String, Path), PageQuery),
    responses((status = 200, body = List<DeliveryView>), (status = 403), (status = 404)))]
async fn list_deliveries(
    Org(mut scope, _): Org,
    ApiPath(ids): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<ApiJson<List<DeliveryView>>> {
    Ok(ApiJson(
        webhooks::deliveries(&mut scope, &ids.1, q.cursor.as_deref(), q.limit)
            .await?
            .into(),
    ))
}

#[derive(serde::Serialize, ToSchema)]
pub struct Queued {
    message_id: String,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/webhooks/{id}/test", tag = "integrations",
    params(("org_id" = String, Path), ("id" = String, Path)),
    responses((status = 202, body = Queued), (status = 403), (status = 404)))]
async fn test_webhook(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, _): Org,
    ApiPath(ids): ApiPath<(String, String)>,
) -> AppResult<Response> {
    let message_id = webhooks::send_test(&app, &ctx.0, &mut scope, &ids.1).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(Queued { message_id })).into_response())
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "integrations",
    params(("org_id" = String, Path), ("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202), (status = 403), (status = 404)))]
async fn redeliver(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, _): Org,
    ApiPath(ids): ApiPath<(String, String, String)>,
) -> AppResult<StatusCode> {
    webhooks::redeliver(&app, &ctx.0, &mut scope, &ids.1, &ids.2).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/webhooks/{id}/rotate-secret", tag = "integrations",
    params(("org_id" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = WebhookSecret, description = "the new `secret`, shown this once; the previous one signs too for a while"),
        (status = 403), (status = 404)))]
async fn rotate_secret(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, s): Org,
    ApiPath(ids): ApiPath<(String, String)>,
) -> AppResult<ApiJson<WebhookSecret>> {
    Ok(ApiJson(
        webhooks::rotate_secret(&app, &ctx.0, &s, &mut scope, &ids.1).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/webhooks/{id}/enable", tag = "integrations",
    params(("org_id" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 403), (status = 404)))]
async fn enable_webhook(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    Org(mut scope, _): Org,
    ApiPath(ids): ApiPath<(String, String)>,
) -> AppResult<ApiJson<WebhookView>> {
    Ok(ApiJson(
        webhooks::enable(&app, &ctx.0, &mut scope, &ids.1).await?,
    ))
}
