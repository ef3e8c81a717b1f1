//! Error policy: every error leaves as an RFC 9457 problem document with a stable `code`. Client
//! mistakes say what to fix; server faults are logged with their cause and answered with a generic
//! 500 naming only the request id. No SQL, paths, stack traces or secrets ever reach a response.
//! Requests the framework refuses are problems too, in the API's words (never a Rust type): the
//! extractors here (`ApiJson`, `ApiQuery`, `ApiForm`, `ApiPath`) replace axum's, and the outermost
//! middleware (`envelope`) turns any other bare or plain-text error (a layer's 413, 405, 408)
//! into the problem for its status.

use std::sync::LazyLock;

use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use regex::Regex;
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
            AppError::Conflict { code, .. } => problem(StatusCode::CONFLICT, code, detail),
            AppError::BadRequest { code, .. } => problem(StatusCode::BAD_REQUEST, code, detail),
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
            AppError::TooLarge { .. } => {
                problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", detail)
            }
            AppError::Corrupt(what) => {
                tracing::error!(error = %what, "stored document failed its integrity check");
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "document_corrupt",
                    detail,
                )
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
            Some(body_shape_message(&cause(&e))),
        ),
        JsonRejection::JsonSyntaxError(e) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            Some(format!(
                "The body is not valid JSON: {}",
                clean_serde_message(&cause(&e))
            )),
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

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// The words of a rejection's cause (the deserializer's message, led by the path to the offending
/// field), without the framework's preamble.
fn cause(e: &dyn std::error::Error) -> String {
    e.source()
        .map_or_else(|| e.to_string(), ToString::to_string)
}

/// The detail for a body that is well-formed but does not fit the route's shape.
pub(crate) fn body_shape_message(raw: &str) -> String {
    format!(
        "The body does not match the expected shape: {}",
        clean_serde_message(raw)
    )
}

fn invalid_query(raw: &str) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        Some(format!(
            "The query string is not valid: {}",
            clean_serde_message(raw)
        )),
    )
}

/// Query string extractor whose rejections are problem documents: a value of the wrong type, a
/// repeated parameter or (where the route refuses them) an unknown one is 400 `invalid_query`,
/// naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rej) => Err(invalid_query(&cause(&rej))),
        }
    }
}

/// Form extractor (`application/x-www-form-urlencoded`, for the pages) whose rejections are
/// problem documents: another content type is 415, a repeated or mistyped field 422
/// `invalid_body`, an oversized body 413.
pub struct ApiForm<T>(pub T);

impl<S, T> FromRequest<S> for ApiForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(ApiForm(v)),
            Err(rej) => Err(form_rejection(rej)),
        }
    }
}

fn form_rejection(rej: FormRejection) -> Response {
    match rej {
        FormRejection::InvalidFormContentType(_) => problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            Some("Send the form as application/x-www-form-urlencoded.".into()),
        ),
        FormRejection::FailedToDeserializeFormBody(e) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            Some(format!(
                "The form is not valid: {}",
                clean_serde_message(&cause(&e))
            )),
        ),
        // A GET form is read from the query string.
        FormRejection::FailedToDeserializeForm(e) => invalid_query(&cause(&e)),
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

/// Path parameter extractor: a parameter that cannot be read (not UTF-8, not the expected type)
/// names a resource that does not exist, so it is the same 404 `not_found` as an unknown id.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            // No parameters for the matched route: a wiring mistake of ours, not the caller's.
            Err(rej) if rej.status().is_server_error() => {
                Err(AppError::Internal(anyhow::anyhow!("path parameters: {rej}")).into_response())
            }
            Err(_) => Err(AppError::NotFound.into_response()),
        }
    }
}

/// Rewrites of serde's words into the API's: Rust types (`u32`, `struct ItemBody`, `enum OrgRole`,
/// module paths) become what a JSON or form caller knows; field names and values stay.
static REWRITES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (
            r"data did not match any variant of (?:untagged |internally tagged |adjacently tagged )?enum [\w:]+",
            "the value has none of the accepted forms",
        ),
        (r"\btuple (?:struct|variant) [\w:]+", "a list"),
        (r"\bunit struct [\w:]+", "null"),
        (
            r"\b(?:struct variant|newtype struct|struct) [\w:]+",
            "an object",
        ),
        (
            r"\b(?:newtype variant|unit variant|enum) [\w:]+|\bvariant identifier\b",
            "one of the allowed values",
        ),
        (
            r"invalid length \d+, expected an object with \d+ elements?",
            "invalid type: list, expected an object",
        ),
        (r"\bfield identifier\b", "a field name"),
        (r"\bexpected u(?:8|16|32|64|128|size)\b", "expected a whole number of 0 or more"),
        (r"\bexpected i(?:8|16|32|64|128|size)\b", "expected a whole number"),
        (r"\bexpected f(?:32|64)\b", "expected a number"),
        (r"\bexpected char\b", "expected a single character"),
        (r"\bexpected option\b", "expected a value or null"),
        (r"\bexpected unit\b|\bunit value\b", "null"),
        (r"\bexpected a sequence\b", "expected a list"),
        (r"\bexpected a map\b", "expected an object"),
        (r"\binvalid type: sequence\b", "invalid type: list"),
        (r"\binvalid type: map\b", "invalid type: object"),
        (r"\b(?:[A-Za-z_]\w*::)+[A-Za-z_]\w*(?:<[^>]*>)?", "a value"),
        (r"duplicate field (`[^`]*`)", "$1 is given more than once"),
        (r"invalid digit found in string", "not a whole number"),
        (
            r"cannot parse integer from empty string",
            "empty where a whole number is expected",
        ),
        (r"number too large to fit in target type", "too large"),
        (r"number too small to fit in target type", "too small"),
        (r"invalid float literal", "not a number"),
        (
            r"provided string was not `true` or `false`",
            "expected `true` or `false`",
        ),
    ]
    .into_iter()
    .map(|(re, to)| (Regex::new(re).expect("a valid static pattern"), to))
    .collect()
});

/// Serde's messages name the field and say what was expected, which helps the caller; keep that
/// and put what was expected in the API's words (see `REWRITES`).
pub(crate) fn clean_serde_message(raw: &str) -> String {
    REWRITES.iter().fold(raw.to_string(), |msg, (re, to)| {
        re.replace_all(&msg, *to).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Role {
        Owner,
        Admin,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct ItemBody {
        title: String,
        n: i64,
        role: Role,
        #[serde(default)]
        limit: Option<u32>,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct ListQuery {
        since: Option<String>,
        limit: Option<i64>,
        ok: Option<bool>,
    }

    async fn json_detail(body: &str) -> String {
        match axum::Json::<ItemBody>::from_bytes(body.as_bytes()) {
            Err(rej @ (JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_))) => {
                let res = json_rejection(rej);
                assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
                let p = res.into_body();
                let bytes = axum::body::to_bytes(p, 4096).await.expect("body");
                let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
                v["detail"].as_str().expect("detail").to_string()
            }
            other => panic!("{body}: expected a data error, got {other:?}"),
        }
    }

    fn query_detail(q: &str) -> String {
        let uri: axum::http::Uri = format!("/x?{q}").parse().expect("uri");
        match axum::extract::Query::<ListQuery>::try_from_uri(&uri) {
            Err(e) => clean_serde_message(&cause(&e)),
            Ok(v) => panic!("{q}: accepted as {v:?}"),
        }
    }

    fn assert_api_words(detail: &str) {
        for word in [
            "struct",
            "enum ",
            "ItemBody",
            "ListQuery",
            "Role",
            "u32",
            "i64",
            "bool",
            "serde",
            "axum",
            "::",
            "Failed to",
        ] {
            assert!(!detail.contains(word), "{word:?} in {detail:?}");
        }
    }

    #[tokio::test]
    async fn body_errors_name_the_field_in_the_words_of_the_api() {
        let valid = r#""title": "a", "n": 1, "role": "owner""#;
        for (body, expect) in [
            ("[]".to_string(), "invalid type: list, expected an object"),
            (
                r#"{"title": "a","#.into(),
                "The body is not valid JSON: EOF while parsing",
            ),
            ("7".to_string(), "expected an object"),
            (
                r#"{"title": 7, "n": 1, "role": "owner"}"#.into(),
                "title: invalid type: integer `7`, expected a string",
            ),
            (
                r#"{"title": "a", "n": "x", "role": "owner"}"#.into(),
                "n: invalid type: string \"x\", expected a whole number",
            ),
            (
                format!(r#"{{{valid}, "limit": -1}}"#),
                "limit: invalid value: integer `-1`, expected a whole number of 0 or more",
            ),
            (
                format!(r#"{{{valid}, "is_admin": true}}"#),
                "unknown field `is_admin`, expected one of `title`",
            ),
            (
                r#"{"title": "a", "n": 1, "role": "boss"}"#.into(),
                "role: unknown variant `boss`, expected `owner` or `admin`",
            ),
            (
                r#"{"title": "a", "n": 1, "role": 5}"#.into(),
                "The body is not valid JSON: role: expected value",
            ),
            (
                format!(r#"{{{valid}, "tags": {{}}}}"#),
                "tags: invalid type: object, expected a list",
            ),
            (r#"{"title": "a", "n": 1}"#.into(), "missing field `role`"),
            (
                format!(r#"{{{valid}, "title": "b"}}"#),
                "`title` is given more than once",
            ),
        ] {
            let detail = json_detail(&body).await;
            assert!(detail.contains(expect), "{body}: {detail}");
            assert_api_words(&detail);
        }
    }

    #[test]
    fn query_errors_name_the_parameter_in_the_words_of_the_api() {
        for (q, expect) in [
            ("limit=abc", "limit: not a whole number"),
            ("limit=", "limit: empty where a whole number is expected"),
            ("limit=99999999999999999999", "limit: too large"),
            ("since=a&since=b", "`since` is given more than once"),
            ("ok=maybe", "ok: expected `true` or `false`"),
            ("other=1", "unknown field `other`, expected one of `since`"),
        ] {
            let detail = query_detail(q);
            assert!(detail.contains(expect), "{q}: {detail}");
            assert_api_words(&detail);
        }
    }

    #[test]
    fn rust_paths_and_generic_types_do_not_survive() {
        let d = clean_serde_message(
            "invalid type: unit value, expected newtype struct strongroom::tenancy::OrgId",
        );
        assert_eq!(d, "invalid type: null, expected an object");
        let d = clean_serde_message("data did not match any variant of untagged enum Input");
        assert_eq!(d, "the value has none of the accepted forms");
        let d = clean_serde_message("expected alloc::string::String");
        assert_api_words(&d);
    }
}
