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
    HANDLE.get_or_init(|| {
        // Histograms with buckets (quantiles can then be aggregated across replicas).
        const SECONDS: [f64; 14] = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                &SECONDS,
            )
            .ok()?
            .install_recorder()
            .ok()
    })
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
pub fn admin_router(app: AppState) -> axum::Router {
    let _ = metrics_handle();
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(
                |State(app): State<AppState>| async move { metrics_text(&app).await },
            ),
        )
        .with_state(app)
}

/// Gauges read at scrape time: database pools, queues.
async fn sample(app: &AppState) {
    for (pool, open, idle, max) in app.db.pool_stats() {
        metrics::gauge!("strongroom_db_pool_connections", "pool" => pool, "state" => "open")
            .set(f64::from(open));
        metrics::gauge!("strongroom_db_pool_connections", "pool" => pool, "state" => "idle")
            .set(idle as f64);
        metrics::gauge!("strongroom_db_pool_connections", "pool" => pool, "state" => "max")
            .set(f64::from(max));
    }
    match app.db.queue_depths().await {
        Ok((pending, dead, hooks)) => {
            metrics::gauge!("strongroom_email_queue", "state" => "pending").set(pending as f64);
            metrics::gauge!("strongroom_email_queue", "state" => "given_up").set(dead as f64);
            metrics::gauge!("strongroom_webhook_queue_due").set(hooks as f64);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: queue depths unavailable"),
    }
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
    metrics_text(&app).await
}

async fn metrics_text(app: &AppState) -> Response {
    sample(app).await;
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
