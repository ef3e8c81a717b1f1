//! Request bodies are read in full (within `max_body_bytes`) before any handler runs. A handler
//! opens its one database transaction while its extractors run, before it reads the body; were the
//! body still arriving then, a slow client would hold that transaction (on SQLite, the one writer)
//! for as long as it cares to trickle bytes. Read first, no client can. Then the handler runs to
//! its end whatever the client does (`run_to_completion`).

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use http_body::Body as _;

use super::problem;

pub async fn read_first(req: Request, next: Next) -> Response {
    if req.body().size_hint().exact() == Some(0) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    // The limit is the body-limit layer's, outside this one: it ends the stream with an error.
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => {
            let too_large =
                std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| e.is::<http_body_util::LengthLimitError>());
            problem::for_status(if too_large {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            })
        }
    }
}

/// Runs the rest of the request (its handler and every database call in it) in a task of its
/// own, awaited here. A client that hangs up, or the request timeout, drops only this wait: the
/// work runs to its end, so a transaction is never abandoned half-begun on a pooled connection
/// (a connection left inside a `BEGIN READ ONLY` would refuse the next request's writes).
pub async fn run_to_completion(req: Request, next: Next) -> Response {
    match tokio::spawn(next.run(req)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "request task failed");
            problem::for_status(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}
