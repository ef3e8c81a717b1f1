//! Cross-cutting request handling: request ids, client address, security headers, the
//! cross-origin guard, per-IP limits on auth routes, problem bodies for bare errors, one log line
//! and metrics per request.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use super::problem::{for_status, problem};
use crate::error::AppError;
use crate::identity::RequestCtx;
use crate::state::AppState;

/// The id of this request, also sent back as `X-Request-Id`.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The client address after trusted-proxy processing.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

pub const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The outermost layer: assigns the request id and client address, refuses cross-site writes,
/// logs and measures the request, turns bare or plain-text error answers (a layer's 413, 405, 408)
/// into problem documents and adds the security headers. A plain tower service rather than a
/// `from_fn` middleware: nothing is cloned or boxed per request but the one response future.
#[derive(Clone)]
pub struct EnvelopeLayer(pub AppState);

impl<S> Layer<S> for EnvelopeLayer {
    type Service = Envelope<S>;
    fn layer(&self, inner: S) -> Envelope<S> {
        Envelope {
            inner,
            app: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Envelope<S> {
    inner: S,
    app: AppState,
}

impl<S, B> Service<Request> for Envelope<S>
where
    S: Service<Request, Response = axum::http::Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let started = Instant::now();
        // Always our own id: a client-sent one would let callers write into our logs.
        let id = request_id();
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let ip = client_ip(peer, req.headers(), &self.app.trusted_proxies);
        let method = method_label(req.method());
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| "unmatched".into());
        // A browser on a page gets error pages; API clients, and anyone on the API or the
        // operations routes, get problem documents.
        let wants_html = !is_machine_path(req.uri().path())
            && req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("text/html"));
        let done = Done {
            app: self.app.clone(),
            started,
            id,
            method,
            route,
            wants_html,
        };
        if !is_safe_method(req.method()) && !same_origin(&self.app, req.headers()) {
            let refused = problem(
                StatusCode::FORBIDDEN,
                "cross_origin_request",
                Some("State-changing requests must come from this site.".into()),
            );
            return Box::pin(std::future::ready(Ok(done.finish(refused))));
        }
        req.extensions_mut().insert(RequestId(done.id.clone()));
        req.extensions_mut().insert(ClientIp(ip));
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = match fut.await {
                Ok(res) => res.map(Body::new),
                Err(never) => match never {},
            };
            Ok(done.finish(res))
        })
    }
}

/// What the envelope still has to do once the answer is there.
struct Done {
    app: AppState,
    started: Instant,
    id: String,
    method: &'static str,
    route: String,
    wants_html: bool,
}

impl Done {
    fn finish(self, mut res: Response) -> Response {
        let status = res.status();
        let is_error = status.is_client_error() || status.is_server_error();
        // Bare errors (a layer's or the router's) get a body of ours; for a browser, so does a
        // problem document from a layer (a panic's 500, a limiter's 429) on a page route.
        let replace = is_error
            && (!has_our_body(res.headers()) || (self.wants_html && is_problem(res.headers())));
        if replace {
            let extra: Vec<_> = [header::RETRY_AFTER, header::ALLOW]
                .into_iter()
                .filter_map(|h| res.headers().get(&h).cloned().map(|v| (h, v)))
                .collect();
            res = if self.wants_html {
                let retry_after = res
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                super::pages::error_page(&self.app, status, retry_after, &self.id)
            } else {
                for_status(status)
            };
            res.headers_mut().extend(extra);
        }
        security_headers(res.headers_mut(), hsts(&self.app.config));
        if let Ok(v) = HeaderValue::from_str(&self.id) {
            res.headers_mut().insert("x-request-id", v);
        }
        let elapsed = self.started.elapsed();
        let method = self.method;
        // Labelled by the route's template (or "unmatched"), never the raw path: the series stay
        // as many as the routes.
        let route = metrics::SharedString::from(self.route.clone());
        metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status_label(status))
            .increment(1);
        metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route.clone())
            .record(elapsed.as_secs_f64());
        if status == StatusCode::TOO_MANY_REQUESTS {
            metrics::counter!("strongroom_rate_limited_total", "route" => route).increment(1);
        }
        crate::logging::access(
            &self.id,
            method,
            &self.route,
            status.as_u16(),
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        );
        res
    }
}

/// The status as a metric label, without an allocation for the common ones.
fn status_label(s: StatusCode) -> metrics::SharedString {
    const COMMON: [(u16, &str); 14] = [
        (200, "200"),
        (201, "201"),
        (202, "202"),
        (204, "204"),
        (303, "303"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (409, "409"),
        (413, "413"),
        (422, "422"),
        (429, "429"),
        (500, "500"),
    ];
    match COMMON.iter().find(|(c, _)| *c == s.as_u16()) {
        Some((_, l)) => metrics::SharedString::const_str(l),
        None => s.as_u16().to_string().into(),
    }
}

fn is_safe_method(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A UUIDv7: the time in milliseconds, then 74 bits from the thread's CSPRNG (no system call per
/// request, unlike the `uuid` crate's default generator).
fn request_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let random: [u8; 10] = rand::random();
    uuid::Builder::from_unix_timestamp_millis(ms, &random)
        .into_uuid()
        .to_string()
}

/// A fixed set of labels: a client-chosen method must not create new metric series.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Whether an error answer already carries a body of ours: a problem document, JSON (readiness) or
/// an HTML page. Anything else (no body, or a layer's or the framework's `text/plain`, e.g. the
/// body limit's 413) is replaced by the problem document for its status.
fn has_our_body(h: &HeaderMap) -> bool {
    let Some(ct) = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or_default().trim();
    ["application/problem+json", "application/json", "text/html"]
        .iter()
        .any(|t| essence.eq_ignore_ascii_case(t))
}

/// The routes read by programs, never by people: the API and the operations routes.
fn is_machine_path(path: &str) -> bool {
    path.starts_with("/api/")
        || path.starts_with("/.well-known/")
        || matches!(path, "/healthz" | "/readyz" | "/metrics")
}

fn is_problem(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/problem+json"))
}

/// Strict-Transport-Security for an HTTPS site (two years, subdomains; `preload` when
/// `tls.hsts_preload` opts in); none over plain HTTP.
fn hsts(cfg: &crate::config::Config) -> Option<&'static str> {
    if !cfg.is_https() {
        None
    } else if cfg.tls.as_ref().is_some_and(|t| t.hsts_preload) {
        Some("max-age=63072000; includeSubDomains; preload")
    } else {
        Some("max-age=63072000; includeSubDomains")
    }
}

fn security_headers(h: &mut HeaderMap, hsts: Option<&'static str>) {
    const HEADERS: [(HeaderName, &str); 8] = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=(), usb=(), browsing-topics=()",
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (k, v) in HEADERS {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    }
    if let Some(v) = hsts {
        h.entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static(v));
    }
}

/// The peer address, unless the peer is a trusted proxy: then the right-most address in
/// `X-Forwarded-For` that is not itself a trusted proxy. A client-sent header is otherwise ignored.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.to_canonical());
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // Walk from the right (the entries our proxies appended) to the first untrusted address. An
    // entry that does not parse ends the walk: believe nothing left of it.
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = parse_forwarded(entry) else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_forwarded(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

/// Whether a state-changing request may proceed: not one a browser says comes from another site.
fn same_origin(app: &AppState, h: &HeaderMap) -> bool {
    let allowed = |origin: &str| {
        let ours =
            url::Url::parse(&app.config.public_url()).map(|u| u.origin().ascii_serialization());
        ours.as_deref() == Ok(origin)
            || app
                .config
                .allowed_origins
                .iter()
                .any(|o| o.trim_end_matches('/') == origin)
    };
    if let Some(origin) = h.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        return allowed(origin);
    }
    // No Origin: fall back to Fetch Metadata.
    if let Some(site) = h.get("sec-fetch-site") {
        return !matches!(site.to_str(), Ok("cross-site" | "same-site") | Err(_));
    }
    // Neither (an old browser, or a privacy setting that strips them): a Referer naming another
    // origin gives the request away. Non-browser clients send no Referer and pass.
    match h.get(header::REFERER) {
        None => true,
        Some(r) => r
            .to_str()
            .ok()
            .and_then(|r| url::Url::parse(r).ok())
            .map(|u| u.origin())
            .is_some_and(|o| o.is_tuple() && allowed(&o.ascii_serialization())),
    }
}

/// The general per-address limit on every `/api/v1` route (the per-session one is counted where
/// the session is read, see `session::MaybeAuthed`).
pub async fn api_rate_limit(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0);
    let key = format!("api-ip:{}", crate::ratelimit::ip_key(ip));
    if let Err(r) = app
        .limiter
        .hit(&key, app.config.rate_limits.api_per_ip)
        .await
    {
        return AppError::from(r).into_response();
    }
    next.run(req).await
}

/// The general per-address limit on authentication routes.
pub async fn auth_rate_limit(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0);
    if let Err(r) = app
        .limiter
        .hit(
            &format!("auth-ip:{}", crate::ratelimit::ip_key(ip)),
            app.config.rate_limits.auth_per_ip,
        )
        .await
    {
        return AppError::from(r).into_response();
    }
    next.run(req).await
}

impl FromRequestParts<AppState> for RequestCtxExt {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ClientIp>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let device = axum_extra::extract::cookie::CookieJar::from_headers(&parts.headers)
            .get(super::session::device_cookie_name(app))
            .map(|c| c.value().to_string());
        Ok(RequestCtxExt(RequestCtx {
            ip,
            user_agent,
            device,
        }))
    }
}

/// Extracts the caller's address and user agent for the services.
pub struct RequestCtxExt(pub RequestCtx);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.7, 10.0.0.2"),
        );
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let peer: IpAddr = "10.0.0.1".parse().expect("ip");
        assert_eq!(
            client_ip(Some(peer), &h, &trusted),
            "198.51.100.7".parse::<IpAddr>().expect("ip")
        );
        let outsider: IpAddr = "203.0.113.9".parse().expect("ip");
        assert_eq!(client_ip(Some(outsider), &h, &trusted), outsider);
        assert_eq!(client_ip(Some(outsider), &h, &[]), outsider);
        // Ports and brackets are stripped; a mapped IPv4 peer matches an IPv4 proxy block.
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.8:5555"),
        );
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(
            client_ip(Some(mapped), &h, &trusted),
            "198.51.100.8".parse::<IpAddr>().expect("ip")
        );
        // Garbage right of the proxy: believe nothing further left.
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.1, nonsense"),
        );
        assert_eq!(client_ip(Some(peer), &h, &trusted), peer);
    }
}
