//! Login, logout and server-side sessions: 256-bit random tokens of which only a keyed hash is
//! stored, idle and absolute timeouts, listing and revocation.

use serde_json::json;

use super::{decrypt_user, new_id, normalize_email, RequestCtx, UserView};
use crate::audit::{self, Action, Event};
use crate::crypto::{new_token, FieldAd};
use crate::error::{AppError, AppResult};
use crate::mask;
use crate::state::{App, AppState};
use crate::store::{self, Conn};

/// An authenticated request's session.
#[derive(Debug, Clone)]
pub struct AuthSession {
    pub session_id: String,
    pub user_id: String,
    pub auth_level: String,
    pub reauth_at: Option<i64>,
    /// The session proved a second factor (at sign-in, enrolment or step-up).
    pub mfa: bool,
    /// Set when the caller is an API key, not a session: the key's org and scopes bound it.
    pub api_key: Option<crate::tenancy::api_keys::ApiKeyGrant>,
}

/// Session levels: a full session, or one that may only finish a second factor.
pub const LEVEL_FULL: &str = "full";
pub const LEVEL_PENDING_MFA: &str = "pending_mfa";
/// How long a password-verified session may take to present its second factor.
pub const PENDING_MFA_TTL_MS: i64 = 5 * 60 * 1000;

impl AuthSession {
    pub fn is_full(&self) -> bool {
        self.auth_level == LEVEL_FULL
    }
}

pub struct LoginOutcome {
    /// The bearer secret for the cookie; never stored, never logged.
    pub token: String,
    pub session_id: String,
    /// None while a second factor is still owed.
    pub user: Option<UserView>,
    /// The second factors the user can finish with, when one is owed.
    pub methods: Vec<&'static str>,
    /// A new device cookie value, after the password was proved (see `lockout`).
    pub device_cookie: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub current: bool,
}

/// A session's ip: sealed under its account's shred secret.
pub fn ip_ad<'a>(id: &'a str, user_id: &'a str) -> FieldAd<'a> {
    FieldAd {
        scope: "platform",
        table: "sessions",
        column: "ip",
        row: id,
        account: Some(user_id),
    }
}
/// A session's user agent: sealed under its account's shred secret.
pub fn ua_ad<'a>(id: &'a str, user_id: &'a str) -> FieldAd<'a> {
    FieldAd {
        scope: "platform",
        table: "sessions",
        column: "user_agent",
        row: id,
        account: Some(user_id),
    }
}

/// Verifies email and password. Every answer but success costs the same work whatever the
/// account's state (unknown, verified, unverified, verified with a pending signup): one lookup
/// query, two password hashes, one audit append. So neither answer nor timing tells them apart.
/// Only the right password of a verified account stops after the first hash: whoever sends it
/// learns nothing from the timing that the session it gets does not already say.
///
/// The attempt is reserved before the password is checked (from the device's own budget when the
/// client signed in to this account before, else from the account's), with the per-address limit.
pub async fn login(
    app: &AppState,
    ctx: &RequestCtx,
    raw_email: &str,
    password: &str,
) -> AppResult<LoginOutcome> {
    // A malformed address is just an unknown account: same work, same answer.
    let addr = normalize_email(raw_email).unwrap_or_else(|_| raw_email.trim().to_lowercase());
    let bidx = app.keyring.blind_index(&addr);
    let attempt = super::lockout::reserve(app, ctx, &bidx).await?;
    let ip_key = format!("login-ip:{}", crate::ratelimit::ip_key(ctx.ip));
    if let Err(r) = app
        .limiter
        .hit(&ip_key, app.config.rate_limits.login_per_ip)
        .await
    {
        attempt.forgive(app).await;
        return Err(r.into());
    }

    let now = app.clock.now_ms();
    let (user, signup_hash) = {
        let mut conn = app.db.read().await?;
        store::users::login_candidate(&mut conn, &bidx, now).await?
    };
    // Against the account's password (or a dummy); then, unless that opened a verified account,
    // against the password of a pending signup for this address (or a dummy), so every failure
    // and the "not verified" answer cost two hashes.
    let account = app
        .hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?;
    // An account erased after the backup this database came from (its shred secret is gone) is
    // no account: its password may still match, but it answers as a wrong one.
    let gone = user
        .as_ref()
        .is_some_and(|u| app.keyring.account_erased(&u.id, &u.email_ct));
    let verified_ok =
        account.ok && !gone && user.as_ref().is_some_and(|u| u.email_verified_at.is_some());
    let signup_ok = if verified_ok {
        false
    } else {
        app.hasher
            .verify(password, signup_hash.as_deref())
            .await?
            .ok
    };
    let uid = user.as_ref().map(|u| u.id.clone());
    match user {
        Some(u) if verified_ok => {
            let mut out = start_session(app, ctx, u, password, account.needs_rehash).await;
            if let Ok(o) = &mut out {
                attempt.succeeded(app).await;
                app.limiter.forgive(&ip_key).await;
                o.device_cookie = Some(super::lockout::issue(app, &bidx));
            }
            out
        }
        // The right password of an unverified account, or the password of a signup made for
        // this (taken) address: both answer "not verified", so signup-then-login tells nothing.
        Some(_) if !gone && (account.ok || signup_ok) => {
            login_failed(app, ctx, uid.as_deref(), &addr, "email_not_verified", now).await?;
            Err(AppError::EmailNotVerified)
        }
        _ => {
            login_failed(app, ctx, uid.as_deref(), &addr, "invalid_credentials", now).await?;
            Err(AppError::InvalidCredentials)
        }
    }
}

async fn login_failed(
    app: &App,
    ctx: &RequestCtx,
    uid: Option<&str>,
    addr: &str,
    reason: &str,
    now: i64,
) -> AppResult<()> {
    metrics::counter!("strongroom_login_failures_total", "reason" => reason.to_string())
        .increment(1);
    let mut tx = app.db.begin().await?;
    let ev = Event {
        actor_id: uid,
        action: Action::AuthLoginFailed,
        target_type: Some("user"),
        target_id: uid,
        ip: Some(ctx.ip),
        metadata: json!({ "email": mask::email(addr), "reason": reason }),
    };
    audit::append_platform(&mut tx, now, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// Creates the session for a verified password, upgrading the stored hash when its parameters are
/// below the configured ones. The swap only succeeds if the hash is still the one just verified,
/// so a login racing a password reset or change cannot outlive it.
async fn start_session(
    app: &App,
    ctx: &RequestCtx,
    user: store::users::UserRow,
    password: &str,
    needs_rehash: bool,
) -> AppResult<LoginOutcome> {
    let new_hash = if needs_rehash {
        app.hasher.hash(password).await?
    } else {
        user.password_hash.clone()
    };
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    if !store::users::swap_password_hash(&mut tx, &user.id, &user.password_hash, &new_hash, now)
        .await?
    {
        return Err(AppError::InvalidCredentials);
    }
    // With a second factor enrolled, the password only opens a pending session.
    let methods = super::mfa::methods(app, &mut tx, &user.id).await?;
    let level = if methods.is_empty() {
        LEVEL_FULL
    } else {
        LEVEL_PENDING_MFA
    };
    let (token, session_id) = create_session(app, &mut tx, &user.id, ctx, now, level).await?;
    let ev = if methods.is_empty() {
        Event {
            actor_id: Some(&user.id),
            action: Action::AuthLoginSucceeded,
            target_type: Some("session"),
            target_id: Some(&session_id),
            ip: Some(ctx.ip),
            metadata: json!({ "method": "password" }),
        }
    } else {
        Event {
            actor_id: Some(&user.id),
            action: Action::AuthPasswordVerified,
            target_type: Some("session"),
            target_id: Some(&session_id),
            ip: Some(ctx.ip),
            metadata: json!({ "mfa_required": true }),
        }
    };
    audit::append_platform(&mut tx, now, ev).await?;
    tx.commit().await?;
    if !methods.is_empty() {
        return Ok(LoginOutcome {
            token,
            session_id,
            user: None,
            methods,
            device_cookie: None,
        });
    }
    let (email, display_name) = decrypt_user(&app.keyring, &user)?;
    let view = UserView::from_row(&user, email, display_name);
    Ok(LoginOutcome {
        token,
        session_id,
        user: Some(view),
        methods,
        device_cookie: None,
    })
}

/// A new session row; returns (token, session id). The token is always fresh, so a cookie planted
/// before login never becomes the session (no fixation).
pub(crate) async fn create_session(
    app: &App,
    c: &mut Conn,
    user_id: &str,
    ctx: &RequestCtx,
    now: i64,
    level: &str,
) -> AppResult<(String, String)> {
    let token = new_token();
    let id = new_id();
    let ua: String = ctx.user_agent.chars().take(512).collect();
    let s = store::sessions::NewSession {
        id: &id,
        user_id,
        token_hash: &app.keyring.hash_token(&token),
        auth_level: level,
        now,
        expires_at: if level == LEVEL_FULL {
            now + app.config.session.absolute_timeout_secs * 1000
        } else {
            now + PENDING_MFA_TTL_MS
        },
        ip_ct: app
            .keyring
            .seal_field(&ip_ad(&id, user_id), ctx.ip.to_string().as_bytes())?,
        user_agent_ct: app
            .keyring
            .seal_field(&ua_ad(&id, user_id), ua.as_bytes())?,
    };
    store::sessions::insert(c, s).await?;
    Ok((token, id))
}

/// How stale `last_seen_at` may get before a request refreshes it: a minute, or half the idle
/// timeout when that is shorter, so a session in use never idles out.
fn touch_every_ms(app: &App) -> i64 {
    (app.config.session.idle_timeout_secs * 1000 / 2).clamp(1, 60_000)
}

/// The live session behind a cookie token: one indexed read. Its last-seen time is refreshed at
/// most once a minute, after the answer (a revocation still counts on the very next request: the
/// read checks it every time).
pub async fn authenticate(app: &AppState, token: &str) -> AppResult<Option<AuthSession>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let now = app.clock.now_ms();
    let idle_ms = app.config.session.idle_timeout_secs * 1000;
    let found = {
        let mut conn = app.db.read().await?;
        store::sessions::find_live(&mut conn, &app.keyring.hash_token(token), now, idle_ms).await?
    };
    let Some(s) = found else {
        return Ok(None);
    };
    if s.ip_ct
        .as_deref()
        .is_some_and(|c| app.keyring.account_erased(&s.user_id, c))
    {
        return Ok(None);
    }
    if now - s.last_seen_at >= touch_every_ms(app) {
        let (bg, id) = (app.clone(), s.id.clone());
        app.background.spawn(async move {
            let touched = match bg.db.acquire().await {
                Ok(mut c) => store::sessions::touch(&mut c, &id, now).await,
                Err(e) => Err(e),
            };
            if let Err(e) = touched {
                tracing::warn!(error = %e, "could not record session activity");
            }
        });
    }
    Ok(Some(AuthSession {
        session_id: s.id,
        user_id: s.user_id,
        auth_level: s.auth_level,
        reauth_at: s.reauth_at,
        mfa: s.mfa_at.is_some(),
        api_key: None,
    }))
}

/// Revokes the current session server-side.
pub async fn logout(app: &App, ctx: &RequestCtx, s: &AuthSession) -> AppResult<()> {
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    store::sessions::revoke_one(&mut tx, &s.user_id, &s.session_id, now, "logout").await?;
    let ev = Event {
        actor_id: Some(&s.user_id),
        action: Action::AuthLogout,
        target_type: Some("session"),
        target_id: Some(&s.session_id),
        ip: Some(ctx.ip),
        metadata: json!({}),
    };
    audit::append_platform(&mut tx, now, ev).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list_sessions(app: &App, s: &AuthSession) -> AppResult<Vec<SessionView>> {
    sessions_of(app, &s.user_id, &s.session_id).await
}

/// The live sessions of `user_id`; `current` marks one of them.
pub async fn sessions_of(app: &App, user_id: &str, current: &str) -> AppResult<Vec<SessionView>> {
    let now = app.clock.now_ms();
    let mut conn = app.db.read().await?;
    let rows = store::sessions::list_live_for_user(
        &mut conn,
        user_id,
        now,
        app.config.session.idle_timeout_secs * 1000,
    )
    .await?;
    let k = &app.keyring;
    Ok(rows
        .into_iter()
        .map(|r| SessionView {
            ip: r
                .ip_ct
                .as_deref()
                .and_then(|c| k.open_field_string(&ip_ad(&r.id, user_id), c).ok()),
            user_agent: r
                .user_agent_ct
                .as_deref()
                .and_then(|c| k.open_field_string(&ua_ad(&r.id, user_id), c).ok()),
            current: r.id == current,
            created_at: crate::clock::rfc3339(r.created_at),
            last_seen_at: crate::clock::rfc3339(r.last_seen_at),
            id: r.id,
        })
        .collect())
}

/// Revokes one of the caller's own sessions; someone else's id is simply not found.
pub async fn revoke_session(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    id: &str,
) -> AppResult<()> {
    // Session ids are UUIDs; anything else (including bytes a database would reject) is not found.
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(AppError::NotFound);
    }
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    if !store::sessions::revoke_one(&mut tx, &s.user_id, id, now, "revoked_by_user").await? {
        return Err(AppError::NotFound);
    }
    audit_revoked(&mut tx, s, ctx, now, Some(id), 1).await?;
    tx.commit().await?;
    Ok(())
}

/// Revokes every session of the caller except the current one.
pub async fn revoke_other_sessions(app: &App, ctx: &RequestCtx, s: &AuthSession) -> AppResult<u64> {
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    let n = store::sessions::revoke_all(
        &mut tx,
        &s.user_id,
        Some(&s.session_id),
        now,
        "revoked_by_user",
    )
    .await?;
    audit_revoked(&mut tx, s, ctx, now, None, n).await?;
    tx.commit().await?;
    Ok(n)
}

async fn audit_revoked(
    c: &mut Conn,
    s: &AuthSession,
    ctx: &RequestCtx,
    now: i64,
    target: Option<&str>,
    count: u64,
) -> AppResult<()> {
    let ev = Event {
        actor_id: Some(&s.user_id),
        action: Action::SessionRevoked,
        target_type: Some("session"),
        target_id: target,
        ip: Some(ctx.ip),
        metadata: json!({ "count": count, "scope": if target.is_some() { "one" } else { "others" } }),
    };
    audit::append_platform(c, now, ev).await?;
    Ok(())
}
