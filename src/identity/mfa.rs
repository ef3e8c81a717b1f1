//! Second factors: TOTP (RFC 6238 through totp-rs: SHA-1, 6 digits, 30 s, ±1 step, each step
//! accepted once), single-use recovery codes, finishing a pending login, and step-up
//! (re-authentication) for sensitive actions.

use rand::RngCore;
use serde_json::json;
use totp_rs::{Algorithm, Totp};

use super::sessions::{create_session, LEVEL_FULL};
use super::{decrypt_user, email, AuthSession, LoginOutcome, RequestCtx, UserView};
use crate::audit::{self, Action, Event};
use crate::crypto::FieldAd;
use crate::error::{AppError, AppResult};
use crate::mail;
use crate::state::{App, AppState};
use crate::store::{self, Conn};

pub const RECOVERY_CODES: usize = 10;
const ISSUER: &str = "Strongroom";

/// What the user needs to add the TOTP secret to an authenticator app.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TotpEnrolment {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

fn secret_ad(user_id: &str) -> FieldAd<'_> {
    FieldAd {
        scope: "platform",
        table: "mfa_totp",
        column: "secret",
        row: user_id,
        account: None,
    }
}

fn totp(secret: &[u8], account: &str) -> AppResult<Totp> {
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .with_issuer(Some(ISSUER))
        .with_account_name(account.replace(':', ""))
        .build()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("totp: {e:?}")))
}

/// The second factors a user can finish a login with (empty: none enrolled).
pub async fn methods(app: &App, c: &mut Conn, user_id: &str) -> AppResult<Vec<&'static str>> {
    let mut m = Vec::new();
    if store::mfa::get_totp(c, user_id)
        .await?
        .is_some_and(|t| t.confirmed)
    {
        m.push("totp");
        if store::mfa::count_recovery_codes(c, user_id).await? > 0 {
            m.push("recovery_code");
        }
    }
    // Offered only while the server can run WebAuthn ceremonies, so a passkey-only account is
    // never left with a second step it cannot finish.
    if app.webauthn.is_some() && store::mfa::count_passkeys(c, user_id).await? > 0 {
        m.push("passkey");
    }
    Ok(m)
}

/// Refuses unless the session re-authenticated within the step-up window.
pub fn require_recent_auth(app: &App, s: &AuthSession) -> AppResult<()> {
    let window = app.config.session.reauth_window_secs * 1000;
    match s.reauth_at {
        Some(t) if app.clock.now_ms() - t <= window => Ok(()),
        _ => Err(AppError::Forbidden {
            code: "reauthentication_required",
            detail: "Confirm it is you first: re-enter your password or a code (POST /api/v1/me/reauthenticate).".into(),
        }),
    }
}

async fn user_email(
    app: &App,
    user_id: &str,
) -> AppResult<(store::users::UserRow, String, String)> {
    let mut c = app.db.acquire().await?;
    let u = store::users::find_by_id(&mut c, user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let (e, n) = decrypt_user(&app.keyring, &u)?;
    Ok((u, e, n))
}

/// Starts TOTP enrolment: a fresh secret, pending until a code confirms it.
pub async fn start_totp(app: &App, s: &AuthSession) -> AppResult<TotpEnrolment> {
    require_recent_auth(app, s)?;
    let limit = app.config.rate_limits.totp_enrolments_per_account;
    crate::ratelimit::creation(&*app.limiter, "totp-enrolment", &s.user_id, limit).await?;
    let (_, addr, _) = user_email(app, &s.user_id).await?;
    let mut secret = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let t = totp(&secret, &addr)?;
    let uri = t
        .to_url()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("totp url: {e:?}")))?;
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    store::users::lock(&mut tx, &s.user_id).await?;
    let ct = app
        .keyring
        .seal_platform_field(&secret_ad(&s.user_id), &secret);
    if !store::mfa::put_pending_totp(&mut tx, &s.user_id, ct, now).await? {
        return Err(AppError::Forbidden {
            code: "totp_already_enabled",
            detail: "An authenticator app is already set up; remove it first to replace it.".into(),
        });
    }
    tx.commit().await?;
    enrolment(&secret, uri)
}

/// The enrolment still waiting for its first code, shown again with the same secret (the one the
/// user may already have scanned) after a wrong code. None when nothing is pending.
pub async fn pending_totp(app: &App, s: &AuthSession) -> AppResult<Option<TotpEnrolment>> {
    let (_, addr, _) = user_email(app, &s.user_id).await?;
    let row = {
        let mut c = app.db.read().await?;
        store::mfa::get_totp(&mut c, &s.user_id).await?
    };
    let Some(row) = row.filter(|r| !r.confirmed) else {
        return Ok(None);
    };
    let secret = app
        .keyring
        .open_field(&secret_ad(&s.user_id), &row.secret_ct)?;
    let uri = totp(&secret, &addr)?
        .to_url()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("totp url: {e:?}")))?;
    enrolment(&secret, uri).map(Some)
}

fn enrolment(secret: &[u8], uri: String) -> AppResult<TotpEnrolment> {
    let qr = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("qr: {e}")))?;
    let qr_svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(TotpEnrolment {
        secret: base32_secret(secret),
        otpauth_uri: uri,
        qr_svg,
    })
}

fn base32_secret(secret: &[u8]) -> String {
    totp_rs::Secret::from(secret.to_vec()).to_base32()
}

/// Checks `code` against the user's secret and burns its time step. `confirmed` selects the
/// active secret (login, step-up) or the pending one (enrolment).
async fn check_totp(
    app: &App,
    c: &mut Conn,
    user_id: &str,
    code: &str,
    confirmed: bool,
) -> AppResult<bool> {
    let Some(row) = store::mfa::get_totp(c, user_id).await? else {
        return Ok(false);
    };
    if row.confirmed != confirmed {
        return Ok(false);
    }
    let secret = app
        .keyring
        .open_field(&secret_ad(user_id), &row.secret_ct)?;
    let t = totp(&secret, "")?;
    let now_secs = u64::try_from(app.clock.now_ms() / 1000).unwrap_or(0);
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(step) = t.check(&code, now_secs) else {
        return Ok(false);
    };
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    Ok(step > row.last_step && store::mfa::use_totp_step(c, user_id, step).await?)
}

/// Confirms enrolment with a first code; returns the recovery codes (shown once).
pub async fn confirm_totp(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    code: &str,
) -> AppResult<Vec<String>> {
    require_recent_auth(app, s)?;
    let (_, addr, _) = user_email(app, &s.user_id).await?;
    let key = mfa_key(s, ctx);
    app.limiter
        .hit(&key, app.config.rate_limits.mfa_per_account)
        .await?;
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    store::users::lock(&mut tx, &s.user_id).await?;
    if !check_totp(app, &mut tx, &s.user_id, code, false).await?
        || !store::mfa::confirm_totp(&mut tx, &s.user_id, now).await?
    {
        return Err(AppError::wrong_code());
    }
    app.limiter.forgive(&key).await;
    let codes = new_recovery_codes(app, &mut tx, &s.user_id, now).await?;
    // A correct code proved the factor in this session.
    store::sessions::set_mfa(&mut tx, &s.session_id, now).await?;
    audit_event(&mut tx, s, ctx, now, Action::MfaTotpEnabled, json!({})).await?;
    let body = "An authenticator app was added to your Strongroom account as a second factor.\n\n\
                If this was not you, reset your password now and review your sessions.\n";
    mail::enqueue(
        &mut tx,
        &app.keyring,
        now,
        &email(&addr, "Two-factor sign-in turned on", body.into()),
    )
    .await?;
    tx.commit().await?;
    app.mailer.wake();
    Ok(codes)
}

/// The rate-limit key for second-factor guesses: per account and client network, so an attacker
/// who knows the password cannot lock the owner out from elsewhere.
fn mfa_key(s: &AuthSession, ctx: &RequestCtx) -> String {
    format!("mfa:{}:{}", s.user_id, crate::ratelimit::ip_key(ctx.ip))
}

/// Both second-factor limits: per account and network, and a wider one per account.
async fn reserve_mfa_guess(app: &App, s: &AuthSession, ctx: &RequestCtx) -> AppResult<()> {
    let rl = &app.config.rate_limits;
    app.limiter
        .hit(&mfa_key(s, ctx), rl.mfa_per_account)
        .await?;
    if let Err(r) = app
        .limiter
        .hit(&format!("mfa-acct:{}", s.user_id), rl.mfa_per_account_total)
        .await
    {
        app.limiter.forgive(&mfa_key(s, ctx)).await;
        return Err(r.into());
    }
    Ok(())
}

async fn forgive_mfa_guess(app: &App, s: &AuthSession, ctx: &RequestCtx) {
    app.limiter.forgive(&mfa_key(s, ctx)).await;
    app.limiter
        .forgive(&format!("mfa-acct:{}", s.user_id))
        .await;
}

/// Removes TOTP (and its recovery codes). Needs a current code or a recent re-authentication;
/// every other session is signed out and the user is told by email.
pub async fn disable_totp(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    code: Option<&str>,
) -> AppResult<()> {
    let (_, addr, _) = user_email(app, &s.user_id).await?;
    if code.is_some() {
        // A current code is a step-up of its own, so it is limited and audited like one.
        reserve_mfa_guess(app, s, ctx).await?;
    }
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    store::users::lock(&mut tx, &s.user_id).await?;
    match code {
        Some(code) => {
            if !check_totp(app, &mut tx, &s.user_id, code, true).await? {
                audit_event(
                    &mut tx,
                    s,
                    ctx,
                    now,
                    Action::AuthMfaFailed,
                    json!({ "method": "totp", "purpose": "remove_totp" }),
                )
                .await?;
                tx.commit().await?;
                return Err(AppError::wrong_code());
            }
            forgive_mfa_guess(app, s, ctx).await;
        }
        None => require_recent_auth(app, s)?,
    }
    if !store::mfa::delete_totp(&mut tx, &s.user_id).await? {
        return Err(AppError::NotFound);
    }
    store::mfa::delete_recovery_codes(&mut tx, &s.user_id).await?;
    let revoked =
        store::sessions::revoke_all(&mut tx, &s.user_id, Some(&s.session_id), now, "mfa_removed")
            .await?;
    audit_event(
        &mut tx,
        s,
        ctx,
        now,
        Action::MfaTotpDisabled,
        json!({ "sessions_revoked": revoked }),
    )
    .await?;
    let body = "The authenticator app was removed from your Strongroom account, and your other sessions were signed out.\n\n\
                If this was not you, reset your password now.\n";
    mail::enqueue(
        &mut tx,
        &app.keyring,
        now,
        &email(&addr, "Two-factor sign-in turned off", body.into()),
    )
    .await?;
    tx.commit().await?;
    app.mailer.wake();
    Ok(())
}

/// A new set of recovery codes; the old set stops working.
pub async fn regenerate_recovery_codes(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
) -> AppResult<Vec<String>> {
    require_recent_auth(app, s)?;
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    store::users::lock(&mut tx, &s.user_id).await?;
    if !store::mfa::get_totp(&mut tx, &s.user_id)
        .await?
        .is_some_and(|t| t.confirmed)
    {
        return Err(AppError::Forbidden {
            code: "mfa_not_enabled",
            detail: "Set up an authenticator app first.".into(),
        });
    }
    let codes = new_recovery_codes(app, &mut tx, &s.user_id, now).await?;
    audit_event(
        &mut tx,
        s,
        ctx,
        now,
        Action::MfaRecoveryCodesRegenerated,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(codes)
}

/// Ten codes of 80 random bits each, `XXXX-XXXX-XXXX-XXXX`; only their keyed hashes are stored.
async fn new_recovery_codes(
    app: &App,
    c: &mut Conn,
    user_id: &str,
    now: i64,
) -> AppResult<Vec<String>> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut b = [0u8; 10];
        rand::rngs::OsRng.fill_bytes(&mut b);
        let raw = base32_secret(&b);
        let code = raw
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-");
        hashes.push(recovery_hash(app, user_id, &code));
        codes.push(code);
    }
    store::mfa::replace_recovery_codes(c, user_id, &hashes, now).await?;
    Ok(codes)
}

fn recovery_hash(app: &App, user_id: &str, code: &str) -> String {
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    app.keyring
        .hash_token(&format!("recovery:{user_id}:{norm}"))
}

/// Which second factor a pending login is finished with.
pub enum SecondFactor<'a> {
    Totp(&'a str),
    RecoveryCode(&'a str),
}

/// Finishes a pending login with a second factor. Success replaces the pending session with a
/// full one under a new token; wrong codes count against the pending session (revoked after 5)
/// and the account.
pub async fn complete_mfa(
    app: &App,
    ctx: &RequestCtx,
    pending: &AuthSession,
    factor: SecondFactor<'_>,
) -> AppResult<LoginOutcome> {
    reserve_mfa_guess(app, pending, ctx).await?;
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    // The attempt is counted before the code is checked: parallel guesses cannot exceed five.
    let Some(attempt) =
        store::sessions::reserve_mfa_attempt(&mut tx, &pending.session_id, MAX_MFA_ATTEMPTS)
            .await?
    else {
        store::sessions::revoke_one(
            &mut tx,
            &pending.user_id,
            &pending.session_id,
            now,
            "mfa_attempts_exhausted",
        )
        .await?;
        tx.commit().await?;
        return Err(AppError::Unauthenticated);
    };
    let (ok, method) = match factor {
        SecondFactor::Totp(code) => (
            check_totp(app, &mut tx, &pending.user_id, code, true).await?,
            "totp",
        ),
        SecondFactor::RecoveryCode(code) => {
            let h = recovery_hash(app, &pending.user_id, code);
            (
                store::mfa::use_recovery_code(&mut tx, &pending.user_id, &h, now).await?,
                "recovery_code",
            )
        }
    };
    if !ok {
        record_mfa_failure(&mut tx, pending, ctx, now, method, attempt).await?;
        tx.commit().await?;
        return Err(AppError::InvalidCode);
    }
    forgive_mfa_guess(app, pending, ctx).await;
    let out = upgrade_session(app, &mut tx, ctx, pending, method, now).await?;
    if method == "recovery_code" {
        audit_event(
            &mut tx,
            pending,
            ctx,
            now,
            Action::MfaRecoveryCodeUsed,
            json!({}),
        )
        .await?;
        let left = store::mfa::count_recovery_codes(&mut tx, &pending.user_id).await?;
        if let Some(u) = &out.user {
            let body = format!(
                "A recovery code was used to sign in to your Strongroom account. {left} unused codes remain.\n\n\
                 If this was not you, reset your password now and review your sessions.\n"
            );
            mail::enqueue(
                &mut tx,
                &app.keyring,
                now,
                &email(&u.email, "A recovery code was used", body),
            )
            .await?;
        }
    }
    tx.commit().await?;
    app.mailer.wake();
    Ok(out)
}

/// Wrong second factors a pending session may present before it is revoked.
pub const MAX_MFA_ATTEMPTS: i64 = 5;

/// Audits a wrong second factor, and revokes the pending session at the last allowed attempt.
pub(crate) async fn record_mfa_failure(
    c: &mut Conn,
    pending: &AuthSession,
    ctx: &RequestCtx,
    now: i64,
    method: &str,
    attempt: i64,
) -> AppResult<()> {
    if attempt >= MAX_MFA_ATTEMPTS {
        store::sessions::revoke_one(
            c,
            &pending.user_id,
            &pending.session_id,
            now,
            "mfa_attempts_exhausted",
        )
        .await?;
    }
    audit_event(
        c,
        pending,
        ctx,
        now,
        Action::AuthMfaFailed,
        json!({ "method": method, "attempts": attempt }),
    )
    .await
}

/// Revokes the pending session and opens a full one (new token: no fixation across the step).
pub(crate) async fn upgrade_session(
    app: &App,
    c: &mut Conn,
    ctx: &RequestCtx,
    pending: &AuthSession,
    method: &str,
    now: i64,
) -> AppResult<LoginOutcome> {
    if !store::sessions::revoke_one(
        c,
        &pending.user_id,
        &pending.session_id,
        now,
        "mfa_completed",
    )
    .await?
    {
        return Err(AppError::Unauthenticated);
    }
    let (token, session_id) =
        create_session(app, c, &pending.user_id, ctx, now, LEVEL_FULL).await?;
    store::sessions::set_mfa(c, &session_id, now).await?;
    let ev = Event {
        actor_id: Some(&pending.user_id),
        action: Action::AuthMfaSucceeded,
        target_type: Some("session"),
        target_id: Some(&session_id),
        ip: Some(ctx.ip),
        metadata: json!({ "method": method }),
    };
    audit::append_platform(c, now, ev).await?;
    let u = store::users::find_by_id(c, &pending.user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let (e, n) = decrypt_user(&app.keyring, &u)?;
    Ok(LoginOutcome {
        token,
        session_id,
        user: Some(UserView::from_row(&u, e, n)),
        methods: Vec::new(),
        device_cookie: None,
    })
}

/// Step-up: proves again who is at the keyboard, with the password or a TOTP code.
pub async fn reauthenticate(
    app: &AppState,
    ctx: &RequestCtx,
    s: &AuthSession,
    password: Option<&str>,
    code: Option<&str>,
) -> AppResult<()> {
    let (u, addr, _) = user_email(app, &s.user_id).await?;
    // Verify before opening a transaction: an Argon2 hash must not hold a connection.
    let (ok, method) = match (password, code) {
        (Some(pw), None) => {
            let attempt =
                super::lockout::reserve(app, ctx, &app.keyring.blind_index(&addr)).await?;
            let ok = app.hasher.verify(pw, Some(&u.password_hash)).await?.ok;
            if ok {
                attempt.forgive(app).await;
            }
            (ok, "password")
        }
        (None, Some(code)) => {
            reserve_mfa_guess(app, s, ctx).await?;
            let mut c = app.db.acquire().await?;
            let ok = check_totp(app, &mut c, &s.user_id, code, true).await?;
            if ok {
                forgive_mfa_guess(app, s, ctx).await;
            }
            (ok, "totp")
        }
        _ => {
            return Err(AppError::invalid(
                "invalid_body",
                "Send either a password or a code.",
            ))
        }
    };
    finish_reauthentication(app, ctx, s, ok, method).await?;
    if ok {
        Ok(())
    } else if method == "password" {
        Err(AppError::wrong_password())
    } else {
        Err(AppError::wrong_code())
    }
}

/// Records a step-up attempt: success opens the window, failure is audited.
pub(crate) async fn finish_reauthentication(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    ok: bool,
    method: &str,
) -> AppResult<()> {
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    if ok {
        store::sessions::set_reauth(&mut tx, &s.session_id, now).await?;
        if method != "password" {
            store::sessions::set_mfa(&mut tx, &s.session_id, now).await?;
        }
        audit_event(
            &mut tx,
            s,
            ctx,
            now,
            Action::AuthReauthenticated,
            json!({ "method": method }),
        )
        .await?;
    } else {
        audit_event(
            &mut tx,
            s,
            ctx,
            now,
            Action::AuthReauthenticationFailed,
            json!({ "method": method }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn audit_event(
    c: &mut Conn,
    s: &AuthSession,
    ctx: &RequestCtx,
    now: i64,
    action: Action,
    metadata: serde_json::Value,
) -> AppResult<()> {
    let ev = Event {
        actor_id: Some(&s.user_id),
        action,
        target_type: Some("user"),
        target_id: Some(&s.user_id),
        ip: Some(ctx.ip),
        metadata,
    };
    audit::append_platform(c, now, ev).await?;
    Ok(())
}
