//! Login, logout and server-side sessions: 256-bit random tokens of which only a keyed hash is
//! stored, idle and absolute timeouts, listing and revocation.

use serde_json::json;

use super::{decrypt_user, new_id, normalize_email, RequestCtx, UserView};
use crate::audit::{self, Action, Event, PLATFORM_CHAIN};
use crate::crypto::{new_token, FieldAd};
use crate::error::{AppError, AppResult};
use crate::mask;
use crate::state::App;
use crate::store::{self, Conn};

/// An authenticated request's session.
#[derive(Debug, Clone)]
pub struct AuthSession {
    pub session_id: String,
    pub user_id: String,
    pub auth_level: String,
    pub reauth_at: Option<i64>,
}

pub struct LoginOutcome {
    /// The bearer secret for the cookie; never stored, never logged.
    pub token: String,
    pub session_id: String,
    pub user: UserView,
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

fn ip_ad(id: &str) -> FieldAd<'_> {
    FieldAd {
        scope: "platform",
        table: "sessions",
        column: "ip",
        row: id,
    }
}
fn ua_ad(id: &str) -> FieldAd<'_> {
    FieldAd {
        scope: "platform",
        table: "sessions",
        column: "user_agent",
        row: id,
    }
}

/// Verifies email and password. Unknown addresses cost the same hash work and get the same answer.
pub async fn login(
    app: &App,
    ctx: &RequestCtx,
    raw_email: &str,
    password: &str,
) -> AppResult<LoginOutcome> {
    let limits = &app.config.rate_limits;
    // A malformed address is just an unknown account: same work, same answer.
    let addr = normalize_email(raw_email).unwrap_or_else(|_| raw_email.trim().to_lowercase());
    let bidx = app.keyring.blind_index(&addr);
    let acct_key = format!("login-acct:{bidx}");
    let ip_key = format!("login-ip:{}", ctx.ip);
    app.limiter
        .check(&acct_key, limits.login_per_account)
        .await?;
    app.limiter.check(&ip_key, limits.login_per_ip).await?;

    let user = {
        let mut conn = app.db.pool.acquire().await?;
        store::users::find_by_email_bidx(&mut conn, &bidx).await?
    };
    let verified = app
        .hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?;
    let now = app.clock.now_ms();
    let user = match user {
        Some(u) if verified.ok => u,
        other => {
            // Record the failure against both keys; whichever is full, the next try is refused.
            let _ = app.limiter.hit(&acct_key, limits.login_per_account).await;
            let _ = app.limiter.hit(&ip_key, limits.login_per_ip).await;
            let mut tx = app.db.pool.begin().await?;
            let uid = other.as_ref().map(|u| u.id.clone());
            let ev = Event {
                actor_id: uid.as_deref(),
                action: Action::AuthLoginFailed,
                target_type: Some("user"),
                target_id: uid.as_deref(),
                ip: Some(ctx.ip),
                metadata: json!({ "email": mask::email(&addr), "reason": "invalid_credentials" }),
            };
            audit::append(&mut tx, PLATFORM_CHAIN, now, ev).await?;
            tx.commit().await?;
            return Err(AppError::InvalidCredentials);
        }
    };
    if user.email_verified_at.is_none() {
        let mut tx = app.db.pool.begin().await?;
        let ev = Event {
            actor_id: Some(&user.id),
            action: Action::AuthLoginFailed,
            target_type: Some("user"),
            target_id: Some(&user.id),
            ip: Some(ctx.ip),
            metadata: json!({ "email": mask::email(&addr), "reason": "email_not_verified" }),
        };
        audit::append(&mut tx, PLATFORM_CHAIN, now, ev).await?;
        tx.commit().await?;
        return Err(AppError::EmailNotVerified);
    }
    app.limiter.reset(&acct_key).await;
    let mut tx = app.db.pool.begin().await?;
    if verified.needs_rehash {
        let new_hash = app.hasher.hash(password).await?;
        store::users::set_password_hash(&mut tx, &user.id, &new_hash, now).await?;
    }
    let (token, session_id) = create_session(app, &mut tx, &user.id, ctx, now).await?;
    let ev = Event {
        actor_id: Some(&user.id),
        action: Action::AuthLoginSucceeded,
        target_type: Some("session"),
        target_id: Some(&session_id),
        ip: Some(ctx.ip),
        metadata: json!({ "method": "password" }),
    };
    audit::append(&mut tx, PLATFORM_CHAIN, now, ev).await?;
    tx.commit().await?;
    let (email, display_name) = decrypt_user(&app.keyring, &user)?;
    let user = UserView::from_row(&user, email, display_name);
    Ok(LoginOutcome {
        token,
        session_id,
        user,
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
) -> AppResult<(String, String)> {
    let token = new_token();
    let id = new_id();
    let ua: String = ctx.user_agent.chars().take(512).collect();
    let s = store::sessions::NewSession {
        id: &id,
        user_id,
        token_hash: &app.keyring.hash_token(&token),
        auth_level: "full",
        now,
        expires_at: now + app.config.session.absolute_timeout_secs * 1000,
        ip_ct: app
            .keyring
            .seal_field(&ip_ad(&id), ctx.ip.to_string().as_bytes()),
        user_agent_ct: app.keyring.seal_field(&ua_ad(&id), ua.as_bytes()),
    };
    store::sessions::insert(c, s).await?;
    Ok((token, id))
}

/// The live session behind a cookie token, refreshing its last-seen time.
pub async fn authenticate(app: &App, token: &str) -> AppResult<Option<AuthSession>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let now = app.clock.now_ms();
    let idle_ms = app.config.session.idle_timeout_secs * 1000;
    let mut conn = app.db.pool.acquire().await?;
    let Some(s) =
        store::sessions::find_live(&mut conn, &app.keyring.hash_token(token), now, idle_ms).await?
    else {
        return Ok(None);
    };
    if now - s.last_seen_at > 5_000 {
        store::sessions::touch(&mut conn, &s.id, now).await?;
    }
    Ok(Some(AuthSession {
        session_id: s.id,
        user_id: s.user_id,
        auth_level: s.auth_level,
        reauth_at: s.reauth_at,
    }))
}

/// Revokes the current session server-side.
pub async fn logout(app: &App, ctx: &RequestCtx, s: &AuthSession) -> AppResult<()> {
    let now = app.clock.now_ms();
    let mut tx = app.db.pool.begin().await?;
    store::sessions::revoke_one(&mut tx, &s.user_id, &s.session_id, now, "logout").await?;
    let ev = Event {
        actor_id: Some(&s.user_id),
        action: Action::AuthLogout,
        target_type: Some("session"),
        target_id: Some(&s.session_id),
        ip: Some(ctx.ip),
        metadata: json!({}),
    };
    audit::append(&mut tx, PLATFORM_CHAIN, now, ev).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list_sessions(app: &App, s: &AuthSession) -> AppResult<Vec<SessionView>> {
    let now = app.clock.now_ms();
    let mut conn = app.db.pool.acquire().await?;
    let rows = store::sessions::list_live_for_user(
        &mut conn,
        &s.user_id,
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
                .and_then(|c| k.open_field_string(&ip_ad(&r.id), c).ok()),
            user_agent: r
                .user_agent_ct
                .as_deref()
                .and_then(|c| k.open_field_string(&ua_ad(&r.id), c).ok()),
            current: r.id == s.session_id,
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
    let now = app.clock.now_ms();
    let mut tx = app.db.pool.begin().await?;
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
    let mut tx = app.db.pool.begin().await?;
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
    audit::append(c, PLATFORM_CHAIN, now, ev).await?;
    Ok(())
}
