//! Passkeys (WebAuthn, through webauthn-rs): register several named passkeys, list, rename and
//! remove them, and use one as a second factor or for passwordless sign-in (discoverable
//! credential). Challenge, origin, RP ID, signature and counter checks are the library's; the RP ID
//! and origin follow the configured public URL. Ceremony state is kept server-side, encrypted, and
//! answered once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;
use webauthn_rs::prelude::*;

use super::mfa::{require_recent_auth, upgrade_session};
use super::sessions::{create_session, LEVEL_FULL};
use super::{decrypt_user, email, new_id, AuthSession, LoginOutcome, RequestCtx, UserView};
use crate::audit::{self, Action, Event};
use crate::crypto::FieldAd;
use crate::error::{AppError, AppResult};
use crate::mail;
use crate::state::App;
use crate::store::{self, Conn};

const CEREMONY_TTL_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

fn webauthn(app: &App) -> AppResult<&Webauthn> {
    app.webauthn.as_deref().ok_or_else(|| AppError::Forbidden {
        code: "passkeys_unavailable",
        detail: "Passkeys need the server's public URL to use a domain name.".into(),
    })
}

fn cred_ad<'a>(id: &'a str) -> FieldAd<'a> {
    FieldAd {
        scope: "platform",
        table: "passkeys",
        column: "credential",
        row: id,
        account: None,
    }
}

fn state_ad<'a>(id: &'a str) -> FieldAd<'a> {
    FieldAd {
        scope: "platform",
        table: "webauthn_states",
        column: "state",
        row: id,
        account: None,
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("{e}"))
}

async fn save_state<T: serde::Serialize>(
    app: &App,
    c: &mut Conn,
    kind: &str,
    owner: &str,
    state: &T,
) -> AppResult<()> {
    let id = new_id();
    let bytes = serde_json::to_vec(state).map_err(internal)?;
    let ct = app.keyring.seal_platform_field(&state_ad(&id), &bytes);
    let now = app.clock.now_ms();
    store::mfa::put_webauthn_state(c, &id, kind, owner, ct, now + CEREMONY_TTL_MS, now).await?;
    Ok(())
}

async fn take_state<T: serde::de::DeserializeOwned>(
    app: &App,
    kind: &str,
    owner: &str,
) -> AppResult<T> {
    // Outside the caller's transaction: a ceremony is spent even when its answer is refused.
    let mut c = app.db.acquire().await?;
    let (id, ct) = store::mfa::take_webauthn_state(&mut c, kind, owner, app.clock.now_ms())
        .await?
        .ok_or_else(|| {
            AppError::invalid(
                "ceremony_expired",
                "Start again: the passkey request expired or was already used.",
            )
        })?;
    let bytes = app.keyring.open_field(&state_ad(&id), &ct)?;
    serde_json::from_slice(&bytes).map_err(internal)
}

fn load_passkey(app: &App, row: &store::mfa::PasskeyRow) -> AppResult<Passkey> {
    let bytes = app
        .keyring
        .open_field(&cred_ad(&row.id), &row.credential_ct)?;
    serde_json::from_slice(&bytes).map_err(internal)
}

fn validate_name(name: &str) -> AppResult<String> {
    crate::text::check_name("name", name)?;
    let n = name.trim().to_string();
    if n.is_empty() || n.chars().count() > 64 || n.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "invalid_name",
            "Name the passkey with 1 to 64 characters.",
        ));
    }
    Ok(n)
}

pub async fn list(app: &App, s: &AuthSession) -> AppResult<Vec<PasskeyView>> {
    let mut c = app.db.acquire().await?;
    Ok(store::mfa::list_passkeys(&mut c, &s.user_id)
        .await?
        .into_iter()
        .map(|p| PasskeyView {
            id: p.id,
            name: p.name,
            created_at: crate::clock::rfc3339(p.created_at),
            last_used_at: p.last_used_at.map(crate::clock::rfc3339),
        })
        .collect())
}

/// Starts registering a passkey (needs a recent re-authentication).
pub async fn start_registration(
    app: &App,
    s: &AuthSession,
) -> AppResult<CreationChallengeResponse> {
    require_recent_auth(app, s)?;
    let wa = webauthn(app)?;
    let mut c = app.db.acquire().await?;
    let u = store::users::find_by_id(&mut c, &s.user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let (addr, name) = decrypt_user(&app.keyring, &u)?;
    let mut exclude = Vec::new();
    for row in store::mfa::list_passkeys(&mut c, &s.user_id).await? {
        exclude.push(load_passkey(app, &row)?.cred_id().clone());
    }
    let uid = Uuid::parse_str(&u.id).map_err(internal)?;
    let (mut ccr, state) = wa
        .start_passkey_registration(uid, &addr, &name, Some(exclude))
        .map_err(internal)?;
    // Ask for a discoverable credential, so the passkey also works for passwordless sign-in.
    if let Some(sel) = ccr.public_key.authenticator_selection.as_mut() {
        sel.require_resident_key = true;
        sel.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Required);
    }
    save_state(app, &mut c, "register", &s.session_id, &state).await?;
    Ok(ccr)
}

/// Finishes registration; the passkey is stored under `name`.
pub async fn finish_registration(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    name: &str,
    credential: serde_json::Value,
) -> AppResult<PasskeyView> {
    require_recent_auth(app, s)?;
    let name = validate_name(name)?;
    let wa = webauthn(app)?;
    let cred: RegisterPublicKeyCredential = serde_json::from_value(credential).map_err(|_| {
        AppError::invalid(
            "invalid_credential",
            "The body does not hold a WebAuthn registration.",
        )
    })?;
    let state: PasskeyRegistration = take_state(app, "register", &s.session_id).await?;
    let rejected = || AppError::invalid("passkey_rejected", "The passkey could not be verified.");
    let passkey = wa.finish_passkey_registration(&cred, &state).map_err(|e| {
        tracing::info!(error = %e, "passkey registration refused");
        rejected()
    })?;
    // The browser's (unsigned) word that no discoverable credential was made: such a passkey
    // could not sign in without a password, so refuse it rather than fail later.
    if cred.extensions.cred_props.as_ref().and_then(|p| p.rk) == Some(false) {
        return Err(AppError::invalid(
            "passkey_not_discoverable",
            "This authenticator did not store a discoverable passkey.",
        ));
    }
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    let id = new_id();
    let cred_id = URL_SAFE_NO_PAD.encode(passkey.cred_id());
    let ct = app.keyring.seal_platform_field(
        &cred_ad(&id),
        &serde_json::to_vec(&passkey).map_err(internal)?,
    );
    let row = store::mfa::NewPasskey {
        id: &id,
        user_id: &s.user_id,
        credential_id: &cred_id,
        name: &name,
        credential_ct: ct,
        now,
    };
    match store::mfa::insert_passkey(&mut tx, row).await {
        Ok(()) => {}
        Err(e) if store::is_unique_violation(&e) => {
            return Err(AppError::invalid(
                "passkey_exists",
                "This passkey is already registered.",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    audit_passkey(&mut tx, s, ctx, now, Action::PasskeyAdded, &id).await?;
    notify(
        app,
        &mut tx,
        &s.user_id,
        "A passkey was added",
        &format!("A passkey named \"{name}\" was added to your Strongroom account."),
        now,
    )
    .await?;
    tx.commit().await?;
    app.mailer.wake();
    Ok(PasskeyView {
        id,
        name,
        created_at: crate::clock::rfc3339(now),
        last_used_at: None,
    })
}

pub async fn rename(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    id: &str,
    name: &str,
) -> AppResult<()> {
    let name = validate_name(name)?;
    if Uuid::parse_str(id).is_err() {
        return Err(AppError::NotFound);
    }
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    if !store::mfa::rename_passkey(&mut tx, &s.user_id, id, &name).await? {
        return Err(AppError::NotFound);
    }
    audit_passkey(&mut tx, s, ctx, now, Action::PasskeyRenamed, id).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes a passkey: needs a recent re-authentication, signs out every other session and emails.
pub async fn remove(app: &App, ctx: &RequestCtx, s: &AuthSession, id: &str) -> AppResult<()> {
    if Uuid::parse_str(id).is_err() {
        return Err(AppError::NotFound);
    }
    require_recent_auth(app, s)?;
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    if !store::mfa::delete_passkey(&mut tx, &s.user_id, id).await? {
        return Err(AppError::NotFound);
    }
    store::sessions::revoke_all(&mut tx, &s.user_id, Some(&s.session_id), now, "mfa_removed")
        .await?;
    audit_passkey(&mut tx, s, ctx, now, Action::PasskeyRemoved, id).await?;
    notify(app, &mut tx, &s.user_id, "A passkey was removed", "A passkey was removed from your Strongroom account and your other sessions were signed out.", now).await?;
    tx.commit().await?;
    app.mailer.wake();
    Ok(())
}

/// The options for `navigator.credentials.get`, and the ceremony id to send back.
#[derive(serde::Serialize)]
pub struct AuthChallenge {
    pub ceremony_id: String,
    #[serde(flatten)]
    pub options: RequestChallengeResponse,
}

/// Starts a passkey sign-in: the second factor of `pending`, or passwordless when there is none.
pub async fn start_authentication(
    app: &App,
    pending: Option<&AuthSession>,
) -> AppResult<AuthChallenge> {
    match pending {
        Some(p) => start_for_user(app, p, "second_factor").await,
        None => {
            let wa = webauthn(app)?;
            let (mut options, state) = wa.start_discoverable_authentication().map_err(internal)?;
            // A button press, not the browser's autofill UI.
            options.mediation = None;
            let ceremony = new_id();
            let mut c = app.db.acquire().await?;
            save_state(app, &mut c, "passwordless", &ceremony, &state).await?;
            Ok(AuthChallenge {
                ceremony_id: ceremony,
                options,
            })
        }
    }
}

/// A challenge for one of the user's own passkeys, kept under the session (`kind` tells a
/// second factor from a step-up, so one cannot be answered for the other).
async fn start_for_user(app: &App, s: &AuthSession, kind: &str) -> AppResult<AuthChallenge> {
    let wa = webauthn(app)?;
    let mut c = app.db.acquire().await?;
    let mut keys = Vec::new();
    for row in store::mfa::list_passkeys(&mut c, &s.user_id).await? {
        keys.push(load_passkey(app, &row)?);
    }
    if keys.is_empty() {
        return Err(AppError::Forbidden {
            code: "no_passkeys",
            detail: "This account has no passkey.".into(),
        });
    }
    let (options, state) = wa.start_passkey_authentication(&keys).map_err(internal)?;
    save_state(app, &mut c, kind, &s.session_id, &state).await?;
    // The state is found by the session; the id only names this ceremony to the client.
    Ok(AuthChallenge {
        ceremony_id: new_id(),
        options,
    })
}

/// Starts a step-up with a passkey.
pub async fn start_reauthentication(app: &App, s: &AuthSession) -> AppResult<AuthChallenge> {
    start_for_user(app, s, "reauth").await
}

/// Finishes a step-up with a passkey.
pub async fn finish_reauthentication(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    credential: serde_json::Value,
) -> AppResult<()> {
    let wa = webauthn(app)?;
    let cred = parse_assertion(credential)?;
    let state: PasskeyAuthentication = take_state(app, "reauth", &s.session_id).await?;
    let verified = async {
        let mut c = app.db.acquire().await?;
        let (owner, row) = find_credential(&mut c, &cred).await?;
        if owner != s.user_id {
            return Err(AppError::InvalidCode);
        }
        let res = wa
            .finish_passkey_authentication(&cred, &state)
            .map_err(|_| AppError::InvalidCode)?;
        record_use(app, &mut c, &row, &res).await
    }
    .await;
    let ok = verified.is_ok();
    super::mfa::finish_reauthentication(app, ctx, s, ok, "passkey").await?;
    // The session stays valid: a passkey that does not verify is a 422, not a 401.
    verified.map_err(|e| match e {
        AppError::InvalidCode => AppError::wrong_code(),
        e => e,
    })
}

fn parse_assertion(credential: serde_json::Value) -> AppResult<PublicKeyCredential> {
    serde_json::from_value(credential).map_err(|_| {
        AppError::invalid(
            "invalid_credential",
            "The body does not hold a WebAuthn assertion.",
        )
    })
}

async fn find_credential(
    c: &mut Conn,
    cred: &PublicKeyCredential,
) -> AppResult<(String, store::mfa::PasskeyRow)> {
    let cred_id = URL_SAFE_NO_PAD.encode(cred.get_credential_id());
    store::mfa::find_passkey_by_credential(c, &cred_id)
        .await?
        .ok_or(AppError::InvalidCode)
}

/// Stores the passkey's new counter and last use.
async fn record_use(
    app: &App,
    c: &mut Conn,
    row: &store::mfa::PasskeyRow,
    res: &AuthenticationResult,
) -> AppResult<()> {
    let mut key = load_passkey(app, row)?;
    key.update_credential(res);
    let ct = app.keyring.seal_platform_field(
        &cred_ad(&row.id),
        &serde_json::to_vec(&key).map_err(internal)?,
    );
    store::mfa::update_passkey_use(c, &row.id, ct, app.clock.now_ms()).await?;
    Ok(())
}

/// Finishes a passkey sign-in and returns the full session.
pub async fn finish_authentication(
    app: &App,
    ctx: &RequestCtx,
    pending: Option<&AuthSession>,
    ceremony_id: &str,
    credential: serde_json::Value,
) -> AppResult<LoginOutcome> {
    let wa = webauthn(app)?;
    let cred = parse_assertion(credential)?;
    match pending {
        Some(p) => {
            let state: PasskeyAuthentication =
                take_state(app, "second_factor", &p.session_id).await?;
            let now = app.clock.now_ms();
            let mut tx = app.db.begin().await?;
            let Some(attempt) = store::sessions::reserve_mfa_attempt(
                &mut tx,
                &p.session_id,
                super::mfa::MAX_MFA_ATTEMPTS,
            )
            .await?
            else {
                store::sessions::revoke_one(
                    &mut tx,
                    &p.user_id,
                    &p.session_id,
                    now,
                    "mfa_attempts_exhausted",
                )
                .await?;
                tx.commit().await?;
                return Err(AppError::Unauthenticated);
            };
            let verified = async {
                let (owner, row) = find_credential(&mut tx, &cred).await?;
                if owner != p.user_id {
                    return Err(AppError::InvalidCode);
                }
                let res = wa
                    .finish_passkey_authentication(&cred, &state)
                    .map_err(|_| AppError::InvalidCode)?;
                record_use(app, &mut tx, &row, &res).await
            }
            .await;
            if let Err(e) = verified {
                super::mfa::record_mfa_failure(&mut tx, p, ctx, now, "passkey", attempt).await?;
                tx.commit().await?;
                return Err(e);
            }
            let out = upgrade_session(app, &mut tx, ctx, p, "passkey", now).await?;
            tx.commit().await?;
            Ok(out)
        }
        None => {
            let state: DiscoverableAuthentication =
                take_state(app, "passwordless", ceremony_id).await?;
            let now = app.clock.now_ms();
            let mut tx = app.db.begin().await?;
            let verified = async {
                let (uid, _) = wa
                    .identify_discoverable_authentication(&cred)
                    .map_err(|_| AppError::InvalidCode)?;
                let (owner, row) = find_credential(&mut tx, &cred).await?;
                // The user handle the authenticator returned must be the credential's owner.
                if Uuid::parse_str(&owner).ok() != Some(uid) {
                    return Err(AppError::InvalidCode);
                }
                let key = load_passkey(app, &row)?;
                let res = wa
                    .finish_discoverable_authentication_v2(&cred, state, &key)
                    .map_err(|_| AppError::InvalidCode)?;
                record_use(app, &mut tx, &row, &res).await?;
                Ok(owner)
            }
            .await;
            let owner = match verified {
                Ok(owner) => owner,
                Err(e) => {
                    let ev = Event {
                        actor_id: None,
                        action: Action::AuthLoginFailed,
                        target_type: Some("user"),
                        target_id: None,
                        ip: Some(ctx.ip),
                        metadata: json!({ "method": "passkey", "reason": "passkey_rejected" }),
                    };
                    audit::append_platform(&mut tx, now, ev).await?;
                    tx.commit().await?;
                    return Err(e);
                }
            };
            let out = passwordless_session(app, &mut tx, ctx, &owner, now).await?;
            tx.commit().await?;
            Ok(out)
        }
    }
}

async fn passwordless_session(
    app: &App,
    c: &mut Conn,
    ctx: &RequestCtx,
    user_id: &str,
    now: i64,
) -> AppResult<LoginOutcome> {
    let u = store::users::find_by_id(c, user_id)
        .await?
        .ok_or(AppError::InvalidCode)?;
    if u.email_verified_at.is_none() {
        return Err(AppError::EmailNotVerified);
    }
    let (token, session_id) = create_session(app, c, user_id, ctx, now, LEVEL_FULL).await?;
    // A user-verified passkey is two factors in one.
    store::sessions::set_mfa(c, &session_id, now).await?;
    let ev = Event {
        actor_id: Some(user_id),
        action: Action::AuthLoginSucceeded,
        target_type: Some("session"),
        target_id: Some(&session_id),
        ip: Some(ctx.ip),
        metadata: json!({ "method": "passkey" }),
    };
    audit::append_platform(c, now, ev).await?;
    let (e, n) = decrypt_user(&app.keyring, &u)?;
    Ok(LoginOutcome {
        token,
        session_id,
        user: Some(UserView::from_row(&u, e, n)),
        methods: Vec::new(),
        device_cookie: None,
    })
}

async fn audit_passkey(
    c: &mut Conn,
    s: &AuthSession,
    ctx: &RequestCtx,
    now: i64,
    action: Action,
    id: &str,
) -> AppResult<()> {
    let ev = Event {
        actor_id: Some(&s.user_id),
        action,
        target_type: Some("passkey"),
        target_id: Some(id),
        ip: Some(ctx.ip),
        metadata: json!({}),
    };
    audit::append_platform(c, now, ev).await?;
    Ok(())
}

async fn notify(
    app: &App,
    c: &mut Conn,
    user_id: &str,
    subject: &str,
    text: &str,
    now: i64,
) -> AppResult<()> {
    let u = store::users::find_by_id(c, user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let (addr, _) = decrypt_user(&app.keyring, &u)?;
    let body = format!(
        "{text}\n\nIf this was not you, reset your password now and review your sessions.\n"
    );
    mail::enqueue(c, &app.keyring, now, &email(&addr, subject, body)).await?;
    Ok(())
}
