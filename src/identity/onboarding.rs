//! Signup, email verification and resending it.
//!
//! Validation and the password hash happen before the answer; everything that depends on whether
//! the address is taken happens after it, in the background, so neither the answer nor its timing
//! tells. Each verification link carries the password hash of the signup that sent it: confirming
//! the address activates that signup's password, so a stranger who signed up first with someone
//! else's address cannot keep the account once its owner signs up and confirms (pre-hijacking).

use serde_json::json;

use super::{
    email, email_ad, link, name_ad, new_id, normalize_email, validate_display_name, RequestCtx,
    VERIFY_TTL_MS,
};
use crate::audit::{self, Action, Event};
use crate::crypto::{new_token, password::check_policy};
use crate::error::{AppError, AppResult};
use crate::state::{App, AppState};
use crate::store::tokens::{NewToken, Purpose};
use crate::store::{self, Conn};
use crate::{mail, mask};

pub struct SignupInput {
    pub email: String,
    pub password: String,
    pub display_name: String,
}

/// Creates an unverified account and emails a verification link. When the address is taken, the
/// caller gets the same answer and the owner gets an email instead.
pub async fn signup(app: &AppState, ctx: &RequestCtx, input: SignupInput) -> AppResult<()> {
    let ip = crate::ratelimit::ip_key(ctx.ip);
    app.limiter
        .hit(
            &format!("signup-ip:{ip}"),
            app.config.rate_limits.signup_per_ip,
        )
        .await?;
    let addr = normalize_email(&input.email)?;
    let name = validate_display_name(&input.display_name)?;
    check_policy(&app.config.password, &input.password, &addr, &name)
        .map_err(|d| AppError::invalid("weak_password", d))?;
    let hash = app.hasher.hash(&input.password).await?;
    let (bg, ctx) = (app.clone(), ctx.clone());
    app.background.spawn(async move {
        if let Err(e) = record_signup(&bg, &ctx, &addr, &name, &hash).await {
            tracing::error!(error = %format!("{e:#}"), "signup failed after the answer");
        }
    });
    Ok(())
}

async fn record_signup(
    app: &App,
    ctx: &RequestCtx,
    addr: &str,
    name: &str,
    hash: &str,
) -> anyhow::Result<()> {
    let bidx = app.keyring.blind_index(addr);
    let now = app.clock.now_ms();
    // The owner of a taken address hears of it at most as often as recovery mail allows.
    let may_mail = app
        .limiter
        .hit(
            &format!("signup-email:{bidx}"),
            app.config.rate_limits.recovery_per_email,
        )
        .await
        .is_ok();
    let mut tx = app.db.begin().await?;
    match store::users::find_by_email_bidx(&mut tx, &bidx).await? {
        Some(u) if u.email_verified_at.is_none() => {
            // Another signup for an unconfirmed address: a link bound to *this* signup's password.
            let token = bound_token(app, &mut tx, &u.id, Purpose::VerifyEmail, hash, now).await?;
            if may_mail {
                mail::enqueue(
                    &mut tx,
                    &app.keyring,
                    now,
                    &verification_email(app, addr, &token),
                )
                .await?;
            }
        }
        Some(u) => {
            // Kept (never sent) so that logging in with this password answers "not verified", as
            // it would for a new account.
            bound_token(app, &mut tx, &u.id, Purpose::PendingSignup, hash, now).await?;
            if may_mail {
                mail::enqueue(&mut tx, &app.keyring, now, &taken_email(app, addr)).await?;
            }
        }
        None => {
            let id = new_id();
            app.keyring.new_account_secret(&id)?;
            let new = store::users::NewUser {
                id: &id,
                email_bidx: &bidx,
                email_ct: app.keyring.seal_field(&email_ad(&id), addr.as_bytes())?,
                display_name_ct: app.keyring.seal_field(&name_ad(&id), name.as_bytes())?,
                password_hash: hash,
                now,
            };
            match store::users::insert(&mut tx, new).await {
                Ok(()) => {}
                // A concurrent signup took the address between our lookup and insert.
                Err(e) if store::is_unique_violation(&e) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            let token = bound_token(app, &mut tx, &id, Purpose::VerifyEmail, hash, now).await?;
            mail::enqueue(
                &mut tx,
                &app.keyring,
                now,
                &verification_email(app, addr, &token),
            )
            .await?;
            let ev = Event {
                actor_id: Some(&id),
                action: Action::UserSignup,
                target_type: Some("user"),
                target_id: Some(&id),
                ip: Some(ctx.ip),
                metadata: json!({ "email": mask::email(addr) }),
            };
            audit::append_platform(&mut tx, now, ev).await?;
        }
    }
    tx.commit().await?;
    app.mailer.wake();
    Ok(())
}

/// Stores a new token carrying `password_hash`; returns the secret to email.
async fn bound_token(
    app: &App,
    c: &mut Conn,
    user_id: &str,
    purpose: Purpose,
    password_hash: &str,
    now: i64,
) -> anyhow::Result<String> {
    let token = new_token();
    let t = NewToken {
        id: &new_id(),
        user_id,
        purpose,
        token_hash: &app.keyring.hash_token(&token),
        password_hash: Some(password_hash),
        now,
        expires_at: now + VERIFY_TTL_MS,
    };
    store::tokens::insert(c, t).await?;
    Ok(token)
}

fn verification_email(app: &App, addr: &str, token: &str) -> mail::Email {
    let body = format!(
        "Welcome to Strongroom.\n\nConfirm your email address by opening this link within 24 hours:\n\n{}\n\n\
         If you did not sign up just now, ignore this message: do not open the link.\n",
        link(app, "/verify-email", token)
    );
    email(addr, "Confirm your email address", body)
}

fn taken_email(app: &App, addr: &str) -> mail::Email {
    let base = app.config.public_url();
    let body = format!(
        "Someone tried to create a Strongroom account with this email address, which already has one.\n\n\
         If it was you, sign in at {base}/login or reset your password at {base}/forgot-password.\n\
         If it was not you, you can ignore this message: nothing was changed.\n"
    );
    email(addr, "Your Strongroom account", body)
}

/// Burns a verification token, activates the password of the signup that sent it and marks the
/// address verified; every other pending link of the account dies with it.
pub async fn verify_email(app: &App, ctx: &RequestCtx, token: &str) -> AppResult<()> {
    let now = app.clock.now_ms();
    let hash = app.keyring.hash_token(token);
    let mut tx = app.db.begin().await?;
    let used = store::tokens::consume(&mut tx, Purpose::VerifyEmail, &hash, now)
        .await?
        .ok_or(AppError::InvalidToken)?;
    let uid = used.user_id;
    if let Some(pw) = &used.password_hash {
        store::users::set_password_hash(&mut tx, &uid, pw, now).await?;
    }
    store::users::mark_verified(&mut tx, &uid, now).await?;
    store::tokens::void_all(&mut tx, &uid, Purpose::VerifyEmail, now).await?;
    store::sessions::revoke_all(&mut tx, &uid, None, now, "email_verified").await?;
    let ev = Event {
        actor_id: Some(&uid),
        action: Action::UserEmailVerified,
        target_type: Some("user"),
        target_id: Some(&uid),
        ip: Some(ctx.ip),
        metadata: json!({}),
    };
    audit::append_platform(&mut tx, now, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// Sends a new verification link to an unverified account; the same answer in every case.
pub async fn resend_verification(
    app: &AppState,
    ctx: &RequestCtx,
    raw_email: &str,
) -> AppResult<()> {
    let addr = normalize_email(raw_email)?;
    super::recovery::throttle_recovery(app, ctx, &addr).await?;
    let bg = app.clone();
    app.background.spawn(async move {
        if let Err(e) = resend(&bg, &addr).await {
            tracing::error!(error = %format!("{e:#}"), "resend failed after the answer");
        }
    });
    Ok(())
}

async fn resend(app: &App, addr: &str) -> anyhow::Result<()> {
    let now = app.clock.now_ms();
    let bidx = app.keyring.blind_index(addr);
    let mut tx = app.db.begin().await?;
    if let Some(u) = store::users::find_by_email_bidx(&mut tx, &bidx).await? {
        if u.email_verified_at.is_none() {
            // Bound to the latest signup's password (the one its owner most likely just chose).
            let pw = store::tokens::latest_signup_hash(&mut tx, &u.id, now)
                .await?
                .unwrap_or(u.password_hash.clone());
            let token = bound_token(app, &mut tx, &u.id, Purpose::VerifyEmail, &pw, now).await?;
            mail::enqueue(
                &mut tx,
                &app.keyring,
                now,
                &verification_email(app, addr, &token),
            )
            .await?;
        }
    }
    tx.commit().await?;
    app.mailer.wake();
    Ok(())
}
