//! The signed-in user's own account: profile and password change.

use serde_json::json;

use super::{decrypt_user, email, name_ad, validate_display_name, AuthSession, RequestCtx};
use crate::audit::{self, Action, Event};
use crate::crypto::password::check_policy;
use crate::error::{AppError, AppResult};
use crate::mail;
use crate::state::{App, AppState};
use crate::store::{self, users::UserRow};

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub email_verified: bool,
    pub mfa: MfaView,
    pub created_at: String,
    /// When the account will be erased, if its deletion was asked for (cancel with
    /// `DELETE /api/v1/me/deletion`).
    pub deletion_scheduled_for: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MfaView {
    pub totp: bool,
    pub passkeys: u32,
}

impl UserView {
    pub(crate) fn from_row(u: &UserRow, email: String, display_name: String) -> Self {
        Self {
            id: u.id.clone(),
            email,
            display_name,
            email_verified: u.email_verified_at.is_some(),
            mfa: MfaView {
                totp: false,
                passkeys: 0,
            },
            created_at: crate::clock::rfc3339(u.created_at),
            deletion_scheduled_for: u.deletion_due_at.map(crate::clock::rfc3339),
        }
    }
}

async fn load_user(app: &App, user_id: &str) -> AppResult<UserRow> {
    let mut conn = app.db.read().await?;
    store::users::find_by_id(&mut conn, user_id)
        .await?
        .ok_or(AppError::Unauthenticated)
}

pub async fn get_me(app: &App, s: &AuthSession) -> AppResult<UserView> {
    let (u, totp, passkeys) = {
        let mut conn = app.db.read().await?;
        store::users::find_with_factors(&mut conn, &s.user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?
    };
    let (e, n) = decrypt_user(&app.keyring, &u)?;
    let mut view = UserView::from_row(&u, e, n);
    view.mfa.totp = totp;
    view.mfa.passkeys = u32::try_from(passkeys).unwrap_or(0);
    Ok(view)
}

pub async fn update_me(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    display_name: &str,
) -> AppResult<UserView> {
    let name = validate_display_name(display_name)?;
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    store::users::set_display_name(
        &mut tx,
        &s.user_id,
        app.keyring
            .seal_field(&name_ad(&s.user_id), name.as_bytes())?,
        now,
    )
    .await?;
    let ev = Event {
        actor_id: Some(&s.user_id),
        action: Action::UserProfileUpdated,
        target_type: Some("user"),
        target_id: Some(&s.user_id),
        ip: Some(ctx.ip),
        metadata: json!({ "fields": ["display_name"] }),
    };
    audit::append_platform(&mut tx, now, ev).await?;
    tx.commit().await?;
    get_me(app, s).await
}

/// Changes the password after checking the current one; every other session is revoked and the
/// owner is told by email.
pub async fn change_password(
    app: &AppState,
    ctx: &RequestCtx,
    s: &AuthSession,
    current: &str,
    new: &str,
) -> AppResult<()> {
    // A sensitive action: a recent sign-in or step-up, on top of the current password.
    super::mfa::require_recent_auth(app, s)?;
    let u = load_user(app, &s.user_id).await?;
    let (addr, name) = decrypt_user(&app.keyring, &u)?;
    // Wrong current passwords count against the same per-account limit as failed logins, so a
    // stolen session cannot be used to guess the password; reserved first, as for login.
    let attempt = super::lockout::reserve(app, ctx, &app.keyring.blind_index(&addr)).await?;
    if !app.hasher.verify(current, Some(&u.password_hash)).await?.ok {
        return Err(AppError::invalid(
            "invalid_current_password",
            "The current password is not correct.",
        ));
    }
    attempt.forgive(app).await;
    check_policy(&app.config.password, new, &addr, &name)
        .map_err(|d| AppError::invalid("weak_password", d))?;
    let hash = app.hasher.hash(new).await?;
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    // Only if nobody changed it meanwhile (a concurrent reset wins; this change then fails).
    if !store::users::swap_password_hash(&mut tx, &u.id, &u.password_hash, &hash, now).await? {
        return Err(AppError::invalid(
            "invalid_current_password",
            "The password was changed meanwhile; sign in again.",
        ));
    }
    // A reset link asked for earlier must not undo this change.
    store::tokens::void_all(&mut tx, &u.id, store::tokens::Purpose::ResetPassword, now).await?;
    let revoked =
        store::sessions::revoke_all(&mut tx, &u.id, Some(&s.session_id), now, "password_changed")
            .await?;
    let ev = Event {
        actor_id: Some(&u.id),
        action: Action::UserPasswordChanged,
        target_type: Some("user"),
        target_id: Some(&u.id),
        ip: Some(ctx.ip),
        metadata: json!({ "sessions_revoked": revoked }),
    };
    audit::append_platform(&mut tx, now, ev).await?;
    mail::enqueue(
        &mut tx,
        &app.keyring,
        now,
        &password_changed_email(app, &addr),
    )
    .await?;
    tx.commit().await?;
    app.mailer.wake();
    Ok(())
}

pub(crate) fn password_changed_email(app: &App, addr: &str) -> mail::Email {
    let body = format!(
        "The password of your Strongroom account was just changed, and your other sessions were signed out.\n\n\
         If this was not you, reset your password now at {}/forgot-password and review your sessions.\n",
        app.config.public_url()
    );
    email(addr, "Your Strongroom password was changed", body)
}
