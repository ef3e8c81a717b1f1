//! The session cookie and the extractor that turns it into an authenticated session.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use crate::error::AppError;
use crate::identity::{self, AuthSession};
use crate::state::AppState;

/// `__Host-` prefixed (and `Secure`) when the public URL is https.
pub fn cookie_name(app: &AppState) -> &'static str {
    if app.config.is_https() {
        "__Host-strongroom_session"
    } else {
        "strongroom_session"
    }
}

/// The cookie carrying a new session token: HttpOnly, SameSite=Lax, Path=/, no Domain.
pub fn session_cookie(app: &AppState, token: String) -> Cookie<'static> {
    let mut c = Cookie::new(cookie_name(app), token);
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path("/");
    c.set_secure(app.config.is_https());
    c.set_max_age(time::Duration::seconds(
        app.config.session.absolute_timeout_secs,
    ));
    c
}

/// The device cookie (see `identity::lockout`), `__Host-` prefixed when the public URL is https.
pub fn device_cookie_name(app: &AppState) -> &'static str {
    if app.config.is_https() {
        "__Host-strongroom_device"
    } else {
        "strongroom_device"
    }
}

/// The cookie that makes this client a known device of the account it just signed in to:
/// HttpOnly, SameSite=Strict, lives as long as the device stays known.
pub fn device_cookie(app: &AppState, value: String) -> Cookie<'static> {
    let mut c = Cookie::new(device_cookie_name(app), value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Strict);
    c.set_path("/");
    c.set_secure(app.config.is_https());
    c.set_max_age(time::Duration::milliseconds(
        identity::lockout::DEVICE_TTL_MS,
    ));
    c
}

/// The cookies a login answer sets: the session, and the device cookie when one was issued.
pub fn login_cookies(app: &AppState, jar: CookieJar, out: &identity::LoginOutcome) -> CookieJar {
    let jar = jar.add(session_cookie(app, out.token.clone()));
    match &out.device_cookie {
        Some(v) => jar.add(device_cookie(app, v.clone())),
        None => jar,
    }
}

/// A cookie that deletes the session cookie.
pub fn clear_cookie(app: &AppState) -> Cookie<'static> {
    let mut c = session_cookie(app, String::new());
    c.set_max_age(time::Duration::ZERO);
    c
}

/// A request with a live, fully authenticated session; anything else (no session, or one that
/// still owes its second factor) is 401.
pub struct Authed(pub AuthSession);

impl FromRequestParts<AppState> for Authed {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match MaybeAuthed::from_request_parts(parts, app).await?.0 {
            Some(s) if s.is_full() => Ok(Authed(s)),
            _ => Err(AppError::Unauthenticated),
        }
    }
}

/// For pages: the session if it is fully authenticated, else None.
pub struct FullSession(pub Option<AuthSession>);

impl FromRequestParts<AppState> for FullSession {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let s = MaybeAuthed::from_request_parts(parts, app)
            .await?
            .0
            .filter(AuthSession::is_full);
        // A page shown to a signed-in user carries its header (org switcher, bell).
        if let Some(s) = &s {
            if parts.method == axum::http::Method::GET {
                super::chrome::load(app, s).await;
            }
        }
        Ok(FullSession(s))
    }
}

/// A session that has passed the password and owes its second factor: the only thing it can do.
pub struct PendingMfa(pub AuthSession);

impl FromRequestParts<AppState> for PendingMfa {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match MaybeAuthed::from_request_parts(parts, app).await?.0 {
            Some(s) if !s.is_full() => Ok(PendingMfa(s)),
            _ => Err(AppError::Unauthenticated),
        }
    }
}

/// The one session token the request carries. Two or more session cookies with different values
/// (say, a cookie planted for a sibling domain or path next to the real one) give none: which one
/// a server would pick is not something the client should get to decide. The same value twice is
/// still that one token.
fn session_token(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    let mut found: Option<&str> = None;
    for header in headers.get_all(axum::http::header::COOKIE) {
        let Ok(header) = header.to_str() else {
            return None;
        };
        for pair in header.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if k.trim() != name {
                continue;
            }
            let v = v.trim();
            match found {
                Some(prev) if prev != v => return None,
                _ => found = Some(v),
            }
        }
    }
    found.filter(|v| !v.is_empty()).map(str::to_string)
}

/// The bearer credential of the `Authorization` header, if there is one. A header with another
/// scheme is not ours and is ignored; two headers, or one that is not text, are refused.
fn bearer(headers: &axum::http::HeaderMap) -> Result<Option<String>, AppError> {
    let mut all = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    let Some(h) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(AppError::Unauthenticated);
    }
    let h = h.to_str().map_err(|_| AppError::Unauthenticated)?;
    match h.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Ok(Some(token.trim().to_string()))
        }
        _ => Ok(None),
    }
}

/// A request that may carry a live session.
pub struct MaybeAuthed(pub Option<AuthSession>);

impl FromRequestParts<AppState> for MaybeAuthed {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(s) = parts.extensions.get::<AuthSession>() {
            return Ok(MaybeAuthed(Some(s.clone())));
        }
        // An API key, when the request presents one, is the only credential looked at.
        if let Some(key) = bearer(&parts.headers)? {
            let ip = parts
                .extensions
                .get::<super::middleware::ClientIp>()
                .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |c| {
                    c.0
                });
            let route = parts
                .extensions
                .get::<axum::extract::MatchedPath>()
                .map(|m| m.as_str().to_string());
            let to = crate::tenancy::api_keys::Destination {
                method: &parts.method,
                route: route.as_deref(),
                path: parts.uri.path(),
            };
            let s = crate::tenancy::api_keys::authenticate(app, &key, ip, to).await?;
            parts.extensions.insert(s.clone());
            return Ok(MaybeAuthed(Some(s)));
        }
        let Some(token) = session_token(&parts.headers, cookie_name(app)) else {
            return Ok(MaybeAuthed(None));
        };
        let s = identity::authenticate(app, &token).await?;
        if let Some(s) = &s {
            // Every API request made with a session counts against that session's budget
            // (read once per request: the session is cached in the request below).
            if parts.uri.path().starts_with("/api/") {
                let key = format!("api-session:{}", s.session_id);
                app.limiter
                    .hit(&key, app.config.rate_limits.api_per_session)
                    .await?;
            }
            parts.extensions.insert(s.clone());
        }
        Ok(MaybeAuthed(s))
    }
}

/// Where to go after signing in (a page that needed it, e.g. an invitation's acceptance), kept
/// for a day in an HttpOnly, SameSite=Lax cookie; `/` forwards to it once signed in.
pub fn next_cookie_name(app: &AppState) -> &'static str {
    if app.config.is_https() {
        "__Host-strongroom_next"
    } else {
        "strongroom_next"
    }
}

/// The cookie remembering `path` (a local path: anything else is refused by `safe_next`).
pub fn next_cookie(app: &AppState, path: &str) -> Cookie<'static> {
    let mut c = Cookie::new(next_cookie_name(app), path.to_string());
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path("/");
    c.set_secure(app.config.is_https());
    c.set_max_age(time::Duration::days(1));
    c
}

/// A path this site may send someone to after sign-in: local (`/…`, never `//…` or `/\…`, which
/// browsers read as another host), printable, and short.
pub fn safe_next(path: &str) -> Option<&str> {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.len() <= 512
        && path.chars().all(|c| c.is_ascii_graphic());
    ok.then_some(path)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(
            safe_next("/invitations/accept?token=abc"),
            Some("/invitations/accept?token=abc")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "/a b",
            "",
        ] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
    }
}
