//! Password-guessing budgets, after OWASP's device-cookie pattern.
//!
//! A per-account limit alone lets anyone lock an owner out by typing wrong passwords at their
//! address. So a client that has signed in to an account before carries a signed, HttpOnly device
//! cookie bound to that account; with it, wrong passwords count against that device's own small
//! budget, and the account-wide limit (for every client without such a cookie) does not stop it.
//! When the account-wide limit trips, the owner is told by email, with the masked source address.
//!
//! The cookie is bound to the account through the blind index of its email address, so it is
//! checked before the account is looked up: every branch of a login does the same work.

use super::{decrypt_user, email, RequestCtx};
use crate::config::Limit;
use crate::crypto::new_token;
use crate::error::AppResult;
use crate::state::{App, AppState};
use crate::{mail, mask, store};

/// How long a device stays known after it signed in.
pub const DEVICE_TTL_MS: i64 = 180 * 24 * 3600 * 1000;
const MAC_LABEL: &str = "device-cookie";

/// One reserved password attempt: counted before the password is checked, so parallel guesses
/// cannot all pass a check made before any of them was counted.
pub struct Attempt {
    key: String,
    /// The attempt came from a device that signed in to this account before.
    pub known_device: bool,
}

impl Attempt {
    /// The password was right: the failures before it no longer count.
    pub async fn succeeded(&self, app: &App) {
        app.limiter.reset(&self.key).await;
    }

    /// The attempt does not count after all.
    pub async fn forgive(&self, app: &App) {
        app.limiter.forgive(&self.key).await;
    }
}

/// Reserves one password attempt against the account with blind index `bidx`: from the device's
/// own budget when the client holds a valid device cookie for this account, else from the
/// account's budget for unknown clients. When that one is used up, the owner hears of it (once per
/// window, after the answer, so neither answer nor timing says whether the account exists).
pub async fn reserve(app: &AppState, ctx: &RequestCtx, bidx: &str) -> AppResult<Attempt> {
    let limits = &app.config.rate_limits;
    if let Some(device) = ctx.device.as_deref().and_then(|c| verify(app, c, bidx)) {
        let key = format!("login-dev:{device}");
        app.limiter.hit(&key, limits.login_per_device).await?;
        return Ok(Attempt {
            key,
            known_device: true,
        });
    }
    let key = format!("login-acct:{bidx}");
    if let Err(r) = app.limiter.hit(&key, limits.login_per_account).await {
        notify_owner(app, ctx, bidx, limits.login_per_account);
        return Err(r.into());
    }
    Ok(Attempt {
        key,
        known_device: false,
    })
}

/// A new device cookie value for a client that just proved the password of the account with blind
/// index `bidx`: `<id>.<issued ms>.<mac>`.
pub fn issue(app: &App, bidx: &str) -> String {
    let id = new_token();
    let issued = app.clock.now_ms();
    let mac = app
        .keyring
        .mac(MAC_LABEL, format!("{id}.{issued}.{bidx}").as_bytes());
    format!("{id}.{issued}.{mac}")
}

/// The device id of a cookie issued for this account and not yet expired.
fn verify(app: &App, cookie: &str, bidx: &str) -> Option<String> {
    if cookie.len() > 256 {
        return None;
    }
    let mut parts = cookie.splitn(3, '.');
    let (id, issued, mac) = (parts.next()?, parts.next()?, parts.next()?);
    let issued_ms: i64 = issued.parse().ok()?;
    let now = app.clock.now_ms();
    if issued_ms > now || now - issued_ms > DEVICE_TTL_MS {
        return None;
    }
    app.keyring
        .verify_mac(MAC_LABEL, format!("{id}.{issued}.{bidx}").as_bytes(), mac)
        .then(|| id.to_string())
}

/// Emails the owner of `bidx` (if there is one) that sign-in from unknown devices is paused.
fn notify_owner(app: &AppState, ctx: &RequestCtx, bidx: &str, limit: Limit) {
    let (bg, bidx, source) = (app.clone(), bidx.to_string(), mask::ip(ctx.ip));
    app.background.spawn(async move {
        let once = Limit::new(1, limit.window_secs);
        if bg
            .limiter
            .hit(&format!("lockout-notice:{bidx}"), once)
            .await
            .is_err()
        {
            return;
        }
        if let Err(e) = send_notice(&bg, &bidx, &source, limit.window_secs).await {
            tracing::error!(error = %format!("{e:#}"), "lockout notice failed");
        }
    });
}

async fn send_notice(app: &App, bidx: &str, source: &str, window_secs: u64) -> AppResult<()> {
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    let Some(u) = store::users::find_by_email_bidx(&mut tx, bidx)
        .await?
        .filter(|u| !app.keyring.account_erased(&u.id, &u.email_ct))
    else {
        return Ok(());
    };
    let (addr, _) = decrypt_user(&app.keyring, &u)?;
    let minutes = window_secs.div_ceil(60);
    let body = format!(
        "Someone typed the wrong password for your Strongroom account too many times; the last attempt came \
         from the network {source}.\n\n\
         For the next {minutes} minutes, your account can only be signed in to from devices that signed in to it \
         before. If those attempts were yours, use one of those devices or wait. If they were not, your password \
         held: nobody got in. To be safe, you can change your password at {}/account and add a second factor.\n",
        app.config.public_url()
    );
    let mail = email(&addr, "Sign-in to your Strongroom account was paused", body);
    mail::enqueue(&mut tx, &app.keyring, now, &mail).await?;
    tx.commit().await?;
    app.mailer.wake();
    Ok(())
}
