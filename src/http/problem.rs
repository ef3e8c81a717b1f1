//! Error policy: every error leaves as an RFC 9457 problem document with a stable `code`. Client
//! mistakes say what to fix; server faults are logged with their cause and answered with a generic
//! 500 naming only the request id. No SQL, paths, stack traces or secrets ever reach a response.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::AppError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A problem+json response.
pub fn problem(status: StatusCode, code: &str, detail: Option<String>) -> Response {
    let body = Problem {
        kind: format!("urn:strongroom:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        code: code.to_string(),
        detail,
    };
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

/// The problem for a bare status produced by a layer (404 route, 405, 408, 413, ...).
pub fn for_status(status: StatusCode) -> Response {
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal_error",
        _ => "error",
    };
    problem(status, code, None)
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let detail = Some(self.to_string());
        match self {
            AppError::Invalid { code, .. } => {
                problem(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
            }
            AppError::Unauthenticated => {
                problem(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
            }
            AppError::InvalidCredentials => {
                problem(StatusCode::UNAUTHORIZED, "invalid_credentials", detail)
            }
            AppError::EmailNotVerified => {
                problem(StatusCode::FORBIDDEN, "email_not_verified", detail)
            }
            AppError::InvalidToken => problem(StatusCode::BAD_REQUEST, "invalid_token", detail),
            AppError::InvalidCode => problem(StatusCode::UNAUTHORIZED, "invalid_code", detail),
            AppError::NotFound => problem(StatusCode::NOT_FOUND, "not_found", None),
            AppError::Forbidden { code, .. } => problem(StatusCode::FORBIDDEN, code, detail),
            AppError::RateLimited { retry_after } => {
                let mut r = problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                r
            }
            AppError::Unavailable => {
                let mut r = problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    detail,
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(1));
                r
            }
            AppError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    Some("Something went wrong on our side; it has been logged.".into()),
                )
            }
        }
    }
}

/// JSON body extractor whose rejections are problem documents: malformed JSON, wrong types and
/// unknown fields are 422 `invalid_body`, a missing JSON content type 415, an oversized body 413.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

fn json_rejection(rej: JsonRejection) -> Response {
    match rej {
        JsonRejection::MissingJsonContentType(_) => problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            Some("Send the body as application/json.".into()),
        ),
        JsonRejection::JsonDataError(e) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            Some(clean_serde_message(&e.body_text())),
        ),
        JsonRejection::JsonSyntaxError(_) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            Some("The body is not valid JSON.".into()),
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            for_status(StatusCode::PAYLOAD_TOO_LARGE)
        }
        _ => problem(
            StatusCode::BAD_REQUEST,
            "bad_request",
            Some("The request body could not be read.".into()),
        ),
    }
}

/// Serde's messages name fields and expected types, which helps the caller; keep only that part.
fn clean_serde_message(s: &str) -> String {
    let msg = s.split_once(": ").map_or(s, |(_, m)| m);
    format!("The body does not match the expected shape: {msg}")
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
