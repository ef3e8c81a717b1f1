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
        .route("/metrics", axum::routing::get(metrics_text))
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
