//! Signup, email verification and resending it.

use serde_json::json;

use super::{
    email, email_ad, link, name_ad, new_id, normalize_email, validate_display_name, RequestCtx,
    VERIFY_TTL_MS,
};
use crate::audit::{self, Action, Event, PLATFORM_CHAIN};
use crate::crypto::{new_token, password::check_policy};
use crate::error::{AppError, AppResult};
use crate::state::App;
use crate::store::tokens::Purpose;
use crate::store::{self, Conn};
use crate::{mail, mask};

pub struct SignupInput {
    pub email: String,
    pub password: String,
    pub display_name: String,
}

/// Creates an unverified account and emails a verification link. When the address is taken, the
/// caller gets the same answer and the owner gets an email instead.
pub async fn signup(app: &App, ctx: &RequestCtx, input: SignupInput) -> AppResult<()> {
    app.limiter
        .hit(
            &format!("signup-ip:{}", ctx.ip),
            app.config.rate_limits.signup_per_ip,
        )
        .await?;
    let addr = normalize_email(&input.email)?;
    let name = validate_display_name(&input.display_name)?;
    check_policy(&app.config.password, &input.password, &addr, &name)
        .map_err(|d| AppError::invalid("weak_password", d))?;
    // Hash before looking the address up: both paths cost the same.
    let hash = app.hasher.hash(&input.password).await?;
    let bidx = app.keyring.blind_index(&addr);
    let now = app.clock.now_ms();

    let mut tx = app.db.pool.begin().await?;
    match store::users::find_by_email_bidx(&mut tx, &bidx).await? {
        Some(existing) => notify_taken(app, &mut tx, &existing, &addr, now).await?,
        None => {
            let id = new_id();
            let new = store::users::NewUser {
                id: &id,
                email_bidx: &bidx,
                email_ct: app.keyring.seal_field(&email_ad(&id), addr.as_bytes()),
                display_name_ct: app.keyring.seal_field(&name_ad(&id), name.as_bytes()),
                password_hash: &hash,
                now,
            };
            match store::users::insert(&mut tx, new).await {
                Ok(()) => {}
                // A concurrent signup took the address between our lookup and insert.
                Err(e) if store::is_unique_violation(&e) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            send_verification(app, &mut tx, &id, &addr, now).await?;
            let ev = Event {
                actor_id: Some(&id),
                action: Action::UserSignup,
                target_type: Some("user"),
                target_id: Some(&id),
                ip: Some(ctx.ip),
                metadata: json!({ "email": mask::email(&addr) }),
            };
            audit::append(&mut tx, PLATFORM_CHAIN, now, ev).await?;
        }
    }
    tx.commit().await?;
    app.mailer.wake();
    Ok(())
}

async fn notify_taken(
    app: &App,
    c: &mut Conn,
    existing: &store::users::UserRow,
    addr: &str,
    now: i64,
) -> AppResult<()> {
    if existing.email_verified_at.is_none() {
        // The owner never confirmed: a fresh verification link is the useful answer.
        return send_verification(app, c, &existing.id, addr, now).await;
    }
    let body = format!(
        "Someone tried to create a Strongroom account with this email address, which already has one.\n\n\
         If it was you, sign in at {}/login or reset your password at {}/forgot-password.\n\
         If it was not you, you can ignore this message: nothing was changed.\n",
        app.config.public_url(),
        app.config.public_url()
    );
    mail::enqueue(
        c,
        &app.keyring,
        now,
        &email(addr, "Your Strongroom account", body),
    )
    .await?;
    Ok(())
}

async fn send_verification(
    app: &App,
    c: &mut Conn,
    user_id: &str,
    addr: &str,
    now: i64,
) -> AppResult<()> {
    store::tokens::void_all(c, user_id, Purpose::VerifyEmail, now).await?;
    let token = new_token();
    let hash = app.keyring.hash_token(&token);
    store::tokens::insert(
        c,
        &new_id(),
        user_id,
        Purpose::VerifyEmail,
        &hash,
        now,
        now + VERIFY_TTL_MS,
    )
    .await?;
    let body = format!(
        "Welcome to Strongroom.\n\nConfirm your email address by opening this link within 24 hours:\n\n{}\n\n\
         If you did not sign up, ignore this message.\n",
        link(app, "/verify-email", &token)
    );
    mail::enqueue(
        c,
        &app.keyring,
        now,
        &email(addr, "Confirm your email address", body),
    )
    .await?;
    Ok(())
}

/// Burns a verification token and marks the address verified.
pub async fn verify_email(app: &App, ctx: &RequestCtx, token: &str) -> AppResult<()> {
    let now = app.clock.now_ms();
    let hash = app.keyring.hash_token(token);
    let mut tx = app.db.pool.begin().await?;
    let user_id = store::tokens::consume(&mut tx, Purpose::VerifyEmail, &hash, now)
        .await?
        .ok_or(AppError::InvalidToken)?;
    store::users::mark_verified(&mut tx, &user_id, now).await?;
    let ev = Event {
        actor_id: Some(&user_id),
        action: Action::UserEmailVerified,
        target_type: Some("user"),
        target_id: Some(&user_id),
        ip: Some(ctx.ip),
        metadata: json!({}),
    };
    audit::append(&mut tx, PLATFORM_CHAIN, now, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// Sends a new verification link to an unverified account; the same answer in every case.
pub async fn resend_verification(app: &App, ctx: &RequestCtx, raw_email: &str) -> AppResult<()> {
    let addr = normalize_email(raw_email)?;
    super::recovery::throttle_recovery(app, ctx, &addr).await?;
    let now = app.clock.now_ms();
    let bidx = app.keyring.blind_index(&addr);
    let mut tx = app.db.pool.begin().await?;
    if let Some(u) = store::users::find_by_email_bidx(&mut tx, &bidx).await? {
        if u.email_verified_at.is_none() {
            send_verification(app, &mut tx, &u.id, &addr, now).await?;
        }
    }
    tx.commit().await?;
    app.mailer.wake();
    Ok(())
}
