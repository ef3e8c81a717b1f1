//! Self-service password reset by single-use, 30-minute emailed links, with generic answers.

use serde_json::json;

use super::{decrypt_user, email, link, new_id, normalize_email, RequestCtx, RESET_TTL_MS};
use crate::audit::{self, Action, Event};
use crate::crypto::{new_token, password::check_policy};
use crate::error::{AppError, AppResult};
use crate::state::{App, AppState};
use crate::store::tokens::{NewToken, Purpose};
use crate::{mail, store};

/// Per-address and per-email throttle for reset and resend requests. The email key is the blind
/// index, whether or not an account has it, so the limit itself reveals nothing.
pub(super) async fn throttle_recovery(app: &App, ctx: &RequestCtx, addr: &str) -> AppResult<()> {
    let rl = &app.config.rate_limits;
    let ip = crate::ratelimit::ip_key(ctx.ip);
    app.limiter
        .hit(&format!("recovery-ip:{ip}"), rl.recovery_per_ip)
        .await?;
    app.limiter
        .hit(
            &format!("recovery-email:{}", app.keyring.blind_index(addr)),
            rl.recovery_per_email,
        )
        .await?;
    Ok(())
}

/// Emails a reset link when the account exists; the same answer, at the same moment, either way:
/// the lookup and the writes happen after the answer.
pub async fn request_password_reset(
    app: &AppState,
    ctx: &RequestCtx,
    raw_email: &str,
) -> AppResult<()> {
    let addr = normalize_email(raw_email)?;
    throttle_recovery(app, ctx, &addr).await?;
    let (bg, ctx) = (app.clone(), ctx.clone());
    app.background.spawn(async move {
        if let Err(e) = send_reset(&bg, &ctx, &addr).await {
            tracing::error!(error = %format!("{e:#}"), "password reset request failed after the answer");
        }
    });
    Ok(())
}

async fn send_reset(app: &App, ctx: &RequestCtx, addr: &str) -> anyhow::Result<()> {
    let now = app.clock.now_ms();
    let bidx = app.keyring.blind_index(addr);
    let mut tx = app.db.begin().await?;
    // No link for an account erased after the backup this database came from.
    if let Some(u) = store::users::find_by_email_bidx(&mut tx, &bidx)
        .await?
        .filter(|u| !app.keyring.account_erased(&u.id, &u.email_ct))
    {
        store::tokens::void_all(&mut tx, &u.id, Purpose::ResetPassword, now).await?;
        let token = new_token();
        let t = NewToken {
            id: &new_id(),
            user_id: &u.id,
            purpose: Purpose::ResetPassword,
            token_hash: &app.keyring.hash_token(&token),
            password_hash: None,
            now,
            expires_at: now + RESET_TTL_MS,
        };
        store::tokens::insert(&mut tx, t).await?;
        let body = format!(
            "Someone asked to reset the password of your Strongroom account.\n\n\
             To choose a new password, open this link within 30 minutes (it works once):\n\n{}\n\n\
             If it was not you, ignore this message: your password has not changed.\n",
            link(app, "/reset-password", &token)
        );
        mail::enqueue(
            &mut tx,
            &app.keyring,
            now,
            &email(addr, "Reset your Strongroom password", body),
        )
        .await?;
        let ev = Event {
            actor_id: Some(&u.id),
            action: Action::PasswordResetRequested,
            target_type: Some("user"),
            target_id: Some(&u.id),
            ip: Some(ctx.ip),
            metadata: json!({}),
        };
        audit::append_platform(&mut tx, now, ev).await?;
    }
    tx.commit().await?;
    app.mailer.wake();
    Ok(())
}

/// Sets a new password with a reset token; the token is burned and every session revoked.
pub async fn confirm_password_reset(
    app: &App,
    ctx: &RequestCtx,
    token: &str,
    new_password: &str,
) -> AppResult<()> {
    let hash = app.keyring.hash_token(token);
    let now = app.clock.now_ms();
    // Look first (without burning) so a password refused by the policy does not waste the link.
    let user = {
        let mut conn = app.db.acquire().await?;
        let uid = store::tokens::peek(&mut conn, Purpose::ResetPassword, &hash, now)
            .await?
            .ok_or(AppError::InvalidToken)?;
        store::users::find_by_id(&mut conn, &uid)
            .await?
            .ok_or(AppError::InvalidToken)?
    };
    let (addr, name) = decrypt_user(&app.keyring, &user)?;
    check_policy(&app.config.password, new_password, &addr, &name)
        .map_err(|d| AppError::invalid("weak_password", d))?;
    let new_hash = app.hasher.hash(new_password).await?;
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    let uid = store::tokens::consume(&mut tx, Purpose::ResetPassword, &hash, now)
        .await?
        .ok_or(AppError::InvalidToken)?
        .user_id;
    if uid != user.id {
        return Err(AppError::InvalidToken);
    }
    store::users::set_password_hash(&mut tx, &uid, &new_hash, now).await?;
    // Following the emailed link proves control of the address.
    store::users::mark_verified(&mut tx, &uid, now).await?;
    for purpose in [Purpose::VerifyEmail, Purpose::PendingSignup] {
        store::tokens::void_all(&mut tx, &uid, purpose, now).await?;
    }
    let revoked = store::sessions::revoke_all(&mut tx, &uid, None, now, "password_reset").await?;
    let ev = Event {
        actor_id: Some(&uid),
        action: Action::PasswordResetCompleted,
        target_type: Some("user"),
        target_id: Some(&uid),
        ip: Some(ctx.ip),
        metadata: json!({ "sessions_revoked": revoked }),
    };
    audit::append_platform(&mut tx, now, ev).await?;
    mail::enqueue(
        &mut tx,
        &app.keyring,
        now,
        &super::account::password_changed_email(app, &addr),
    )
    .await?;
    tx.commit().await?;
    app.mailer.wake();
    app.limiter
        .reset(&format!("login-acct:{}", app.keyring.blind_index(&addr)))
        .await;
    Ok(())
}
