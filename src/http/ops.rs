//! Operations and well-known routes: liveness, readiness, metrics, security.txt, OpenAPI.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .route("/metrics", axum::routing::get(metrics_on_main))
        .route(
            "/.well-known/security.txt",
            axum::routing::get(security_txt),
        )
}

pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// The process-wide Prometheus recorder (installed once, shared by every app in the process).
pub fn metrics_handle() -> &'static Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(app): State<AppState>) -> Response {
    let db = app.db.ping().await.is_ok();
    let store = app.blobs.ping().await.is_ok();
    let body = json!({
        "status": if db && store { "ok" } else { "unavailable" },
        "checks": { "database": if db { "ok" } else { "failed" }, "object_store": if store { "ok" } else { "failed" } },
    });
    let status = if db && store {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut res = (status, Json(body)).into_response();
    if status != StatusCode::OK {
        // A JSON body that says which dependency failed, not a generic problem.
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
    }
    res
}

/// The router of the admin listener (`metrics_listen`): `/metrics` only, without a token (the
/// address itself is the protection: keep it off the public network).
pub fn admin_router() -> axum::Router {
    let _ = metrics_handle();
    axum::Router::new().route("/metrics", axum::routing::get(metrics_text))
}

/// `/metrics` on the main listener: only with `metrics_token` configured and presented as
/// `Authorization: Bearer <token>`; anything else is the same 404 as an unknown URL, so the
/// public port does not even say that metrics exist.
async fn metrics_on_main(State(app): State<AppState>, headers: header::HeaderMap) -> Response {
    use subtle::ConstantTimeEq;
    let Some(expected) = app.config.metrics_token.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare fixed-size digests, so neither the content nor the length of the token leaks
    // through timing.
    let digest = |t: &str| <sha2::Sha256 as sha2::Digest>::digest(t.as_bytes());
    if expected.is_empty() || !bool::from(digest(presented).ct_eq(&digest(expected))) {
        return StatusCode::NOT_FOUND.into_response();
    }
    metrics_text().await
}

async fn metrics_text() -> Response {
    let text = metrics_handle()
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// RFC 9116, with an expiry a year ahead.
async fn security_txt(State(app): State<AppState>) -> Response {
    let expires = crate::clock::rfc3339(app.clock.now_ms() + 365 * 86_400_000);
    let base = app.config.public_url();
    let body = format!(
        "Contact: {}\nExpires: {expires}\nPreferred-Languages: en\nCanonical: {base}/.well-known/security.txt\n",
        app.config.security_contact
    );
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// This API's OpenAPI 3.1 document, generated from the handlers' annotations.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI document")))]
async fn openapi_json(Extension(doc): Extension<Arc<String>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.as_ref().clone(),
    )
        .into_response()
}
