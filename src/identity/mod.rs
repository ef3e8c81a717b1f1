//! Identity: signup and verified onboarding, login, sessions, password change and recovery.
//! Every answer that could reveal whether an account exists is the same for both cases, and costs
//! the same password-hash work.

mod account;
pub mod erasure;
pub mod lockout;
pub mod mfa;
mod onboarding;
pub mod passkeys;
mod recovery;
pub mod sessions;

use std::net::IpAddr;

use unicode_normalization::UnicodeNormalization;

pub use account::{change_password, get_me, update_me, UserView};
pub use onboarding::{resend_verification, signup, verify_email, SignupInput};
pub use recovery::{confirm_password_reset, request_password_reset};
pub use sessions::{
    authenticate, list_sessions, login, logout, revoke_other_sessions, revoke_session, AuthSession,
    LoginOutcome, SessionView,
};

use crate::crypto::{FieldAd, Keyring};
use crate::error::{AppError, AppResult};
use crate::mail::Email;
use crate::state::App;

/// Who is asking, as far as the transport can tell.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub ip: IpAddr,
    pub user_agent: String,
    /// The device cookie the client sent, unverified: `lockout` checks it against the account.
    pub device: Option<String>,
}

pub const VERIFY_TTL_MS: i64 = 24 * 3600 * 1000;
pub const RESET_TTL_MS: i64 = 30 * 60 * 1000;

/// Trimmed, NFKC, lower-cased; refused unless it looks like a deliverable address.
pub fn normalize_email(raw: &str) -> AppResult<String> {
    let e: String = raw.trim().nfkc().collect::<String>().to_lowercase();
    let bad = || {
        AppError::invalid(
            "invalid_email",
            "Enter an email address like name@example.com.",
        )
    };
    if e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = e.rsplit_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || local.len() > 64
        || local.contains('@')
        || domain.len() < 3
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
        || !domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
    {
        return Err(bad());
    }
    Ok(e)
}

/// Trimmed, 1–100 characters, no control, invisible or direction-changing characters.
pub fn validate_display_name(raw: &str) -> AppResult<String> {
    crate::text::check_name("display_name", raw)?;
    let n = raw.trim().to_string();
    let len = n.chars().count();
    if len == 0 || len > 100 || n.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "invalid_display_name",
            "Enter a name of 1 to 100 characters.",
        ));
    }
    Ok(n)
}

pub fn email_ad(user_id: &str) -> FieldAd<'_> {
    FieldAd {
        scope: "platform",
        table: "users",
        column: "email",
        row: user_id,
        account: Some(user_id),
    }
}

pub fn name_ad(user_id: &str) -> FieldAd<'_> {
    FieldAd {
        scope: "platform",
        table: "users",
        column: "display_name",
        row: user_id,
        account: Some(user_id),
    }
}

/// Account `user_id`'s name as others see it: "Deleted user" for an account erased after the
/// backup this database came from (its shred secret is gone).
pub(crate) fn shown_name(k: &Keyring, user_id: &str, ct: &[u8]) -> AppResult<String> {
    match k.open_field_string(&name_ad(user_id), ct) {
        Err(crate::crypto::CryptoError::Shredded) => Ok(erasure::DELETED_USER.to_string()),
        other => Ok(other?),
    }
}

/// Account `user_id`'s address, to show to admins or to write to: None for an account erased
/// after the backup this database came from.
pub(crate) fn address(k: &Keyring, user_id: &str, ct: &[u8]) -> AppResult<Option<String>> {
    match k.open_field_string(&email_ad(user_id), ct) {
        Err(crate::crypto::CryptoError::Shredded) => Ok(None),
        other => Ok(Some(other?)),
    }
}

pub(crate) fn decrypt_user(
    k: &Keyring,
    u: &crate::store::users::UserRow,
) -> AppResult<(String, String)> {
    Ok((
        k.open_field_string(&email_ad(&u.id), &u.email_ct)?,
        k.open_field_string(&name_ad(&u.id), &u.display_name_ct)?,
    ))
}

pub(crate) fn link(app: &App, path: &str, token: &str) -> String {
    format!("{}{path}?token={token}", app.config.public_url())
}

pub(crate) fn email(to: &str, subject: &str, body: String) -> Email {
    Email {
        to: to.to_string(),
        subject: subject.to_string(),
        body,
        unsubscribe: None,
    }
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email("  Alice@Example.COM ").expect("ok"),
            "alice@example.com"
        );
        for bad in [
            "", "a", "a@b", "a@@b.co", "a b@c.co", "a@.co", "a@b..co", "@b.co", "a@b.co.",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
