//! API keys: `srk_<prefix>_<secret>` credentials an org's admins give to their own tools.
//!
//! A key acts for its org only, as the admin who made it, and only within its scopes: the scope a
//! route needs comes from the route's template (`access_for`), and a route not named there is
//! refused to every key (the management of keys, webhooks, members and invitations, `/me`, the
//! sessions and the second factors among them). Only a keyed hash of the secret is stored; the
//! prefix identifies a key in lists. Revocation, expiry and the client networks are checked on
//! every request; the key's own rate limit too. A key found by its hash costs one indexed read,
//! as a session does, and the request then runs in the same one transaction.

use std::net::IpAddr;

use axum::http::Method;
use serde_json::json;

use super::{audit_org, decode_cursor, page, page_limit, OrgRole, OrgScope, Page};
use crate::audit::{self, Action};
use crate::config::Limit;
use crate::error::{AppError, AppResult};
use crate::identity::{AuthSession, RequestCtx};
use crate::state::App;
use crate::store;
use crate::store::tenant::TenantTx;

/// What a key may be given. Reads are `GET`/`HEAD`; everything else on a route is a write.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
pub enum Scope {
    #[serde(rename = "workspaces:read")]
    WorkspacesRead,
    #[serde(rename = "workspaces:write")]
    WorkspacesWrite,
    #[serde(rename = "items:read")]
    ItemsRead,
    #[serde(rename = "items:write")]
    ItemsWrite,
    #[serde(rename = "updates:read")]
    UpdatesRead,
    #[serde(rename = "updates:write")]
    UpdatesWrite,
    #[serde(rename = "documents:read")]
    DocumentsRead,
    #[serde(rename = "documents:write")]
    DocumentsWrite,
    #[serde(rename = "audit:read")]
    AuditRead,
}

impl Scope {
    pub const ALL: [Scope; 9] = [
        Scope::WorkspacesRead,
        Scope::WorkspacesWrite,
        Scope::ItemsRead,
        Scope::ItemsWrite,
        Scope::UpdatesRead,
        Scope::UpdatesWrite,
        Scope::DocumentsRead,
        Scope::DocumentsWrite,
        Scope::AuditRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::WorkspacesRead => "workspaces:read",
            Scope::WorkspacesWrite => "workspaces:write",
            Scope::ItemsRead => "items:read",
            Scope::ItemsWrite => "items:write",
            Scope::UpdatesRead => "updates:read",
            Scope::UpdatesWrite => "updates:write",
            Scope::DocumentsRead => "documents:read",
            Scope::DocumentsWrite => "documents:write",
            Scope::AuditRead => "audit:read",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// What a key presents on a request once it checked out: it stands for its creator, in its org,
/// within its scopes.
#[derive(Debug, Clone)]
pub struct ApiKeyGrant {
    pub key_id: String,
    pub org_id: String,
    pub scopes: Vec<Scope>,
}

/// What a route asks of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAccess {
    /// Never for keys: account, session and second-factor routes, and the org's management.
    Refused,
    Needs(Scope),
    /// Both scopes: search finds items and comments alike.
    NeedsBoth(Scope, Scope),
}

/// The scope the route with template `route` needs for `method`. Only the org's content is open
/// to keys; any route not named here (including routes added later) is refused until it is.
pub fn access_for(method: &Method, route: &str) -> KeyAccess {
    use KeyAccess::{Needs, NeedsBoth, Refused};
    use Scope::*;
    let Some(rest) = route.strip_prefix("/api/v1/orgs/{org_id}") else {
        return Refused;
    };
    let read = method == Method::GET || method == Method::HEAD;
    let pick = |r: Scope, w: Scope| Needs(if read { r } else { w });
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        // The org and its member list may be read; changing them is the admins' own business.
        [] | ["members"] if read => Needs(WorkspacesRead),
        ["search"] if read => NeedsBoth(ItemsRead, UpdatesRead),
        ["audit-events", ..] if read => Needs(AuditRead),
        ["workspaces"] | ["workspaces", "{ws_id}"] | ["workspaces", "{ws_id}", "members", ..] => {
            pick(WorkspacesRead, WorkspacesWrite)
        }
        ["workspaces", "{ws_id}", "items", "{item_id}", "updates"] => {
            pick(UpdatesRead, UpdatesWrite)
        }
        ["workspaces", "{ws_id}", "items" | "statuses", ..] => pick(ItemsRead, ItemsWrite),
        ["workspaces", "{ws_id}", "documents" | "folders", ..] => {
            pick(DocumentsRead, DocumentsWrite)
        }
        _ => Refused,
    }
}

const KEY_PREFIX: &str = "srk_";
/// Hex characters of a key's public prefix.
const PREFIX_LEN: usize = 12;

/// A new key: its public prefix and the whole key to hand over once.
fn new_key() -> (String, String, String) {
    use rand::RngCore;
    let mut p = [0u8; PREFIX_LEN / 2];
    rand::rngs::OsRng.fill_bytes(&mut p);
    let prefix = hex::encode(p);
    let secret = crate::crypto::new_token();
    let key = format!("{KEY_PREFIX}{prefix}_{secret}");
    (prefix, secret, key)
}

/// `(prefix, secret)` of a presented key, if it has the shape of one.
fn split_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (prefix, secret) = rest.split_once('_')?;
    let ok_prefix = prefix.len() == PREFIX_LEN
        && prefix
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    let ok_secret = (32..=128).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (ok_prefix && ok_secret).then_some((prefix, secret))
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub rate_limit_per_minute: i64,
    pub allowed_networks: Vec<String>,
    pub last_used_at: Option<String>,
    /// Masked (the last octet, or all but the /48, zeroed).
    pub last_used_ip: Option<String>,
    /// `active`, `revoked` or `expired`.
    pub status: &'static str,
}

/// A key just made: the whole key is in `key`, shown this once.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NewApiKey {
    pub id: String,
    pub prefix: String,
    pub key: String,
    #[serde(flatten)]
    pub view: ApiKeyView,
}

pub struct KeyInput {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub rate_limit_per_minute: Option<i64>,
    pub allowed_networks: Vec<String>,
}

fn parse_scopes(raw: &str) -> Vec<Scope> {
    raw.split(' ').filter_map(Scope::parse).collect()
}

fn view(r: &store::api_keys::KeyRow, now: i64) -> ApiKeyView {
    let rfc = crate::clock::rfc3339;
    let status = if r.revoked_at.is_some() {
        "revoked"
    } else if r.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    };
    ApiKeyView {
        id: r.id.clone(),
        name: r.name.clone(),
        prefix: format!("{KEY_PREFIX}{}", r.prefix),
        scopes: parse_scopes(&r.scopes),
        created_by: r.created_by.clone(),
        created_at: rfc(r.created_at),
        expires_at: r.expires_at.map(rfc),
        revoked_at: r.revoked_at.map(rfc),
        rate_limit_per_minute: r.rate_limit_per_minute,
        allowed_networks: networks(&r.allowed_networks)
            .iter()
            .map(ToString::to_string)
            .collect(),
        last_used_at: r.last_used_at.map(rfc),
        last_used_ip: r.last_used_ip.clone(),
        status,
    }
}

fn networks(stored: &str) -> Vec<ipnet::IpNet> {
    stored
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

fn invalid(code: &'static str, detail: &str) -> AppError {
    AppError::invalid(code, detail)
}

/// The most a key may be allowed per minute.
const MAX_RATE_PER_MINUTE: i64 = 100_000;
/// Client networks one key may name.
const MAX_NETWORKS: usize = 50;

/// Makes a key (org admins, after a recent step-up).
pub async fn create_key(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    scope: &mut OrgScope,
    input: KeyInput,
) -> AppResult<NewApiKey> {
    scope.require(OrgRole::Admin)?;
    crate::identity::mfa::require_recent_auth(app, s)?;
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(invalid(
            "invalid_name",
            "name: 1 to 100 characters, no control characters.",
        ));
    }
    let mut scopes = Vec::new();
    for raw in &input.scopes {
        let sc = Scope::parse(raw).ok_or_else(|| {
            invalid(
                "invalid_scope",
                "scopes: each one of workspaces:read, workspaces:write, items:read, items:write, updates:read, updates:write, documents:read, documents:write, audit:read.",
            )
        })?;
        if !scopes.contains(&sc) {
            scopes.push(sc);
        }
    }
    if scopes.is_empty() {
        return Err(invalid("invalid_scope", "scopes: give at least one."));
    }
    scopes.sort();
    let now = app.clock.now_ms();
    let expires_at = match input.expires_at.as_deref() {
        None => None,
        Some(t) => {
            let at = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|_| invalid("invalid_expiry", "expires_at: an RFC 3339 time."))?;
            let ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
                .map_err(|_| invalid("invalid_expiry", "expires_at: out of range."))?;
            if ms <= now {
                return Err(invalid(
                    "invalid_expiry",
                    "expires_at: a time in the future.",
                ));
            }
            Some(ms)
        }
    };
    let rate = match input.rate_limit_per_minute {
        None => {
            // The configured default, per minute.
            let l = app.config.rate_limits.api_per_key;
            let window = i64::try_from(l.window_secs).unwrap_or(60).max(1);
            (i64::from(l.max) * 60 / window).clamp(1, MAX_RATE_PER_MINUTE)
        }
        Some(n) if (1..=MAX_RATE_PER_MINUTE).contains(&n) => n,
        Some(_) => {
            return Err(invalid(
                "invalid_rate_limit",
                "rate_limit_per_minute: between 1 and 100000.",
            ))
        }
    };
    if input.allowed_networks.len() > MAX_NETWORKS {
        return Err(invalid(
            "invalid_network",
            "allowed_networks: at most 50 networks.",
        ));
    }
    let mut nets: Vec<ipnet::IpNet> = Vec::new();
    for n in &input.allowed_networks {
        let net = n
            .trim()
            .parse::<ipnet::IpNet>()
            .or_else(|_| n.trim().parse::<IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                invalid(
                    "invalid_network",
                    "allowed_networks: each an address or a CIDR network (203.0.113.0/24, 2001:db8::/48).",
                )
            })?;
        nets.push(net.trunc());
    }
    crate::ratelimit::creation(
        &*app.limiter,
        "api-key",
        scope.org_id(),
        app.config.rate_limits.api_keys_per_org,
    )
    .await?;
    let id = uuid::Uuid::now_v7().to_string();
    let (prefix, secret, key) = new_key();
    let scopes_s = scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let nets_s = nets
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let user = scope.user_id().to_string();
    store::api_keys::insert(
        scope.tx(),
        store::api_keys::NewKey {
            id: &id,
            name,
            prefix: &prefix,
            secret_hash: &app.keyring.hash_token(&secret),
            scopes: &scopes_s,
            created_by: &user,
            now,
            expires_at,
            rate_limit_per_minute: rate,
            allowed_networks: &nets_s,
        },
    )
    .await?;
    audit_org(
        scope,
        ctx,
        Action::ApiKeyCreated,
        ("api_key", &id),
        json!({
            "name": name,
            "prefix": format!("{KEY_PREFIX}{prefix}"),
            "scopes": scopes_s,
            "expires_at": expires_at.map(crate::clock::rfc3339),
            "rate_limit_per_minute": rate,
            "allowed_networks": nets_s,
        }),
        now,
    )
    .await?;
    let row = store::api_keys::get(scope.tx(), &id)
        .await?
        .ok_or(AppError::NotFound)?;
    scope.commit().await?;
    Ok(NewApiKey {
        id,
        prefix: format!("{KEY_PREFIX}{prefix}"),
        key,
        view: view(&row, now),
    })
}

pub async fn list_keys(
    app: &App,
    scope: &mut OrgScope,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Page<ApiKeyView>> {
    scope.require(OrgRole::Admin)?;
    let limit = page_limit(limit)?;
    let after = decode_cursor(cursor)?;
    let now = app.clock.now_ms();
    let rows = store::api_keys::list(scope.tx(), &after, limit + 1).await?;
    let views = rows.iter().map(|r| view(r, now)).collect();
    Ok(page(views, limit, |v: &ApiKeyView| v.id.clone()))
}

/// Revokes a key at once: its next request is refused.
pub async fn revoke_key(
    app: &App,
    ctx: &RequestCtx,
    scope: &mut OrgScope,
    id: &str,
) -> AppResult<()> {
    scope.require(OrgRole::Admin)?;
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(AppError::NotFound);
    }
    let now = app.clock.now_ms();
    let row = store::api_keys::get(scope.tx(), id)
        .await?
        .ok_or(AppError::NotFound)?;
    if store::api_keys::revoke(scope.tx(), id, now).await? {
        audit_org(
            scope,
            ctx,
            Action::ApiKeyRevoked,
            ("api_key", id),
            json!({ "name": row.name, "prefix": format!("{KEY_PREFIX}{}", row.prefix) }),
            now,
        )
        .await?;
    }
    scope.commit().await?;
    Ok(())
}

/// Where a request with a key is going: the route's template, its method and the org its path
/// names (the `{org_id}` segment), if any.
pub struct Destination<'a> {
    pub method: &'a Method,
    pub route: Option<&'a str>,
    pub path: &'a str,
}

impl Destination<'_> {
    fn org(&self) -> Option<&str> {
        self.path
            .strip_prefix("/api/v1/orgs/")
            .and_then(|rest| rest.split('/').next())
            .filter(|o| !o.is_empty())
    }
}

fn unauthenticated() -> AppError {
    AppError::Unauthenticated
}

/// The principal behind `Authorization: Bearer <key>`: the key's creator, bound to the key's org
/// and scopes. 401 for anything but a live key used from an allowed network; 403 for a route no
/// key may use or that needs another scope; 404 for another org; 429 past the key's rate.
pub async fn authenticate(
    app: &crate::state::AppState,
    key: &str,
    ip: IpAddr,
    to: Destination<'_>,
) -> AppResult<AuthSession> {
    let Some((prefix, secret)) = split_key(key) else {
        return Err(unauthenticated());
    };
    let now = app.clock.now_ms();
    let row = {
        let mut conn = app.db.read().await?;
        store::api_keys::find_live(&mut conn, &app.keyring.hash_token(secret), now).await?
    };
    let Some(row) = row.filter(|r| r.prefix == prefix) else {
        return Err(unauthenticated());
    };
    // A key whose creator was erased after the backup this database came from is revoked.
    if app.keyring.account_shredded(&row.created_by) {
        return Err(unauthenticated());
    }
    let nets = networks(&row.allowed_networks);
    if !nets.is_empty() && !nets.iter().any(|n| n.contains(&ip)) {
        // Recorded on the org's trail, but not without bound: a leaked key tried from many
        // addresses must not flood the chain (past the limit the refusal stands, unrecorded).
        let key = format!("api-key-refused:{}", row.id);
        if app.limiter.hit(&key, Limit::new(10, 3600)).await.is_ok() {
            refuse(app, &row, ip, now).await;
        }
        return Err(unauthenticated());
    }
    let access = to
        .route
        .map_or(KeyAccess::Refused, |r| access_for(to.method, r));
    if to.org().is_some_and(|o| o != row.org_id) && access != KeyAccess::Refused {
        return Err(AppError::NotFound);
    }
    let scopes = parse_scopes(&row.scopes);
    let lacking = match access {
        KeyAccess::Needs(a) => [Some(a), None],
        KeyAccess::NeedsBoth(a, b) => [Some(a), Some(b)],
        KeyAccess::Refused => [None, None],
    }
    .into_iter()
    .flatten()
    .find(|sc| !scopes.contains(sc));
    match access {
        KeyAccess::Needs(_) | KeyAccess::NeedsBoth(..) => {
            if let Some(sc) = lacking {
                return Err(AppError::Forbidden {
                    code: "insufficient_scope",
                    detail: format!("This API key lacks the {} scope.", sc.as_str()),
                });
            }
        }
        KeyAccess::Refused => {
            return Err(AppError::Forbidden {
                code: "api_key_not_allowed",
                detail: "API keys cannot use this route: sign in instead.".into(),
            })
        }
    }
    let limit = Limit::new(
        u32::try_from(row.rate_limit_per_minute).unwrap_or(u32::MAX),
        60,
    );
    app.limiter
        .hit(&format!("api-key:{}", row.id), limit)
        .await?;
    // Last use, at most once a minute per key, after the answer: no write on the request's path.
    if row.last_used_at.is_none_or(|t| now - t >= 60_000) {
        let (bg, id, masked) = (app.clone(), row.id.clone(), crate::mask::ip(ip));
        app.background.spawn(async move {
            let touched = match bg.db.acquire().await {
                Ok(mut c) => store::api_keys::touch(&mut c, &id, now, &masked).await,
                Err(e) => Err(e),
            };
            if let Err(e) = touched {
                tracing::warn!(error = %e, "could not record an API key's use");
            }
        });
    }
    Ok(AuthSession {
        session_id: format!("api-key:{}", row.id),
        user_id: row.created_by,
        auth_level: crate::identity::sessions::LEVEL_FULL.to_string(),
        reauth_at: None,
        // A key is a credential of its own, made by an admin after a step-up: an org that
        // requires a second factor of its members' sessions does not refuse it for want of one.
        mfa: true,
        api_key: Some(ApiKeyGrant {
            key_id: row.id,
            org_id: row.org_id,
            scopes,
        }),
    })
}

/// Records a key used from outside its networks on its org's trail (best effort: the refusal
/// stands whether or not the record could be written).
async fn refuse(app: &App, row: &store::api_keys::KeyRow, ip: IpAddr, now: i64) {
    let write = async {
        let mut tx = TenantTx::for_api_key_refusal(&app.db, &row.org_id).await?;
        let ev = audit::Event {
            actor_id: None,
            action: Action::ApiKeyRefused,
            target_type: Some("api_key"),
            target_id: Some(&row.id),
            ip: Some(ip),
            metadata: json!({ "reason": "network", "prefix": format!("{KEY_PREFIX}{}", row.prefix) }),
        };
        audit::append_org(&mut tx, now, ev).await?;
        tx.commit().await
    };
    if let Err(e) = write.await {
        tracing::warn!(error = %e, "could not record a refused API key");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_their_shape_and_nothing_else_passes() {
        let (prefix, secret, key) = new_key();
        assert_eq!(split_key(&key), Some((prefix.as_str(), secret.as_str())));
        assert!(key.starts_with("srk_"));
        for bad in [
            "",
            "srk_",
            "srk__",
            &key.replacen("srk_", "srx_", 1),
            // Upper-case hex (a prefix of digits alone has no case to change: one is set).
            &format!("srk_A{}_{secret}", &prefix[1..]),
            &format!("srk_{prefix}x_{secret}"),
            &format!("srk_{prefix}_short"),
            &format!("srk_{prefix}_{secret}!"),
            &format!("{key}{}", "a".repeat(100)),
        ] {
            assert_eq!(split_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn routes_need_the_scope_of_what_they_touch_and_management_is_refused() {
        use KeyAccess::*;
        let o = "/api/v1/orgs/{org_id}";
        let w = "/api/v1/orgs/{org_id}/workspaces/{ws_id}";
        let get = Method::GET;
        let post = Method::POST;
        let cases = [
            (&get, format!("{w}/items"), Needs(Scope::ItemsRead)),
            (&post, format!("{w}/items"), Needs(Scope::ItemsWrite)),
            (
                &post,
                format!("{w}/items/{{item_id}}/move"),
                Needs(Scope::ItemsWrite),
            ),
            (
                &get,
                format!("{w}/items/{{item_id}}/updates"),
                Needs(Scope::UpdatesRead),
            ),
            (
                &post,
                format!("{w}/items/{{item_id}}/updates"),
                Needs(Scope::UpdatesWrite),
            ),
            (
                &get,
                format!("{w}/documents/{{doc_id}}/content"),
                Needs(Scope::DocumentsRead),
            ),
            (
                &post,
                format!("{w}/documents/{{doc_id}}/links"),
                Needs(Scope::DocumentsWrite),
            ),
            (
                &Method::DELETE,
                w.to_string(),
                Needs(Scope::WorkspacesWrite),
            ),
            (
                &get,
                format!("{o}/audit-events/export"),
                Needs(Scope::AuditRead),
            ),
            (&get, o.to_string(), Needs(Scope::WorkspacesRead)),
            (&Method::PATCH, o.to_string(), Refused),
            (&Method::DELETE, o.to_string(), Refused),
            (&Method::PATCH, format!("{o}/members/{{user_id}}"), Refused),
            (&post, format!("{o}/invitations"), Refused),
            (&get, format!("{o}/api-keys"), Refused),
            (&post, format!("{o}/webhooks"), Refused),
            (&get, "/api/v1/me".to_string(), Refused),
            (&get, "/api/v1/me/sessions".to_string(), Refused),
            (&post, "/api/v1/orgs".to_string(), Refused),
            (&get, format!("{w}/something-new"), Refused),
        ];
        for (m, route, want) in cases {
            assert_eq!(access_for(m, &route), want, "{m} {route}");
        }
    }
}
