//! HTTP: routers, extractors, middleware and pages. Thin: parse, call one service function, render.

pub mod audit_api;
pub mod auth_api;
pub mod billing_api;
pub mod body;
pub mod chrome;
pub mod documents_api;
pub mod home_pages;
pub mod integrations_api;
pub mod me_api;
pub mod mfa_api;
pub mod mfa_pages;
pub mod middleware;
pub mod ops;
pub mod org_api;
pub mod org_pages;
pub mod pages;
pub mod passkey_api;
pub mod problem;
pub mod session;
pub mod share_pages;
pub mod work_api;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::{middleware as mw, Extension, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Strongroom API", version = "1", description = "The Strongroom HTTP contract (v1)."),
    tags((name = "auth"), (name = "me"), (name = "orgs"), (name = "work"), (name = "documents"), (name = "integrations"), (name = "admin"), (name = "meta"))
)]
struct ApiDoc;

/// The `/api/v1` routes with their OpenAPI document.
pub fn api(app: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let auth = auth_api::router()
        .merge(mfa_api::login_router())
        .merge(passkey_api::login_router())
        .layer(mw::from_fn_with_state(
            app.clone(),
            middleware::auth_rate_limit,
        ));
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth)
        .merge(me_api::router())
        .merge(mfa_api::me_router())
        .merge(passkey_api::me_router())
        .merge(org_api::router())
        .merge(work_api::router())
        .merge(documents_api::router())
        .merge(audit_api::router())
        .merge(integrations_api::router())
        .merge(billing_api::router())
        .merge(ops::api_router())
        .split_for_parts();
    // The upload routes are in the document too (they are served by `uploads`).
    doc.merge(documents_api::upload_router().split_for_parts().1);
    let api = api.layer(mw::from_fn_with_state(
        app.clone(),
        middleware::api_rate_limit,
    ));
    (api, doc)
}

/// The streaming upload routes: their bodies are not read first, but flow to the object store
/// under their own size limit (`documents.max_upload_bytes` and room for the multipart framing)
/// and timeout (`documents.upload_timeout_secs`). They run to their end if the client leaves, so a
/// half-written object is always removed.
fn uploads(app: &AppState) -> Router<AppState> {
    let cfg = &app.config.documents;
    let limit =
        usize::try_from(cfg.max_upload_bytes.saturating_add(1024 * 1024)).unwrap_or(usize::MAX);
    let (routes, _) = documents_api::upload_router().split_for_parts();
    routes
        .merge(org_pages::upload_routes())
        .layer(mw::from_fn(body::run_to_completion))
        .layer(
            ServiceBuilder::new()
                .layer(mw::from_fn_with_state(
                    app.clone(),
                    middleware::api_rate_limit,
                ))
                .layer(RequestBodyLimitLayer::new(limit))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    Duration::from_secs(cfg.upload_timeout_secs),
                ))
                .layer(DefaultBodyLimit::disable()),
        )
}

/// The whole application.
pub fn router(app: AppState) -> Router {
    let _ = ops::metrics_handle();
    let (api, doc) = api(&app);
    let doc = Arc::new(doc.to_json().unwrap_or_else(|_| "{}".into()));
    let cfg = &app.config;
    // The routes that reach the database read their body first and run to their end; the
    // operations routes (health, readiness, metrics) take no body and open no transaction.
    // (Two layers: the body limit hands on a body type of its own, which a route accepts but the
    // middleware functions do not.)
    let read_first = ServiceBuilder::new()
        .layer(mw::from_fn(body::read_first))
        .layer(mw::from_fn(body::run_to_completion));
    let limits = ServiceBuilder::new()
        .layer(RequestBodyLimitLayer::new(cfg.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(cfg.request_timeout_secs),
        ))
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes));
    let routes = Router::new()
        .merge(api)
        .merge(pages::router(app.clone()))
        .merge(share_pages::router(app.clone()))
        .fallback(pages::fallback)
        .layer(read_first)
        .layer(limits)
        .merge(uploads(&app))
        .merge(ops::router());
    // Every other layer in one stack, outermost first: one boxed service per route, not one per
    // layer.
    let cors = (!cfg.allowed_origins.is_empty()).then(|| {
        let origins: Vec<HeaderValue> = cfg
            .allowed_origins
            .iter()
            .filter_map(|o| o.trim_end_matches('/').parse().ok())
            .collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
    });
    let stack = ServiceBuilder::new()
        .layer(middleware::EnvelopeLayer(app.clone()))
        .layer(CatchPanicLayer::custom(|_| {
            problem::for_status(StatusCode::INTERNAL_SERVER_ERROR)
        }))
        .option_layer(cors)
        .layer(Extension(doc));
    routes.layer(stack).with_state(app)
}
