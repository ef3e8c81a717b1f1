//! Single-use emailed tokens (email verification, password reset) and pending signups. Only the
//! keyed hash of a token is stored; verification and pending-signup rows carry the password hash of
//! the signup that made them.

use sqlx::Row;

use super::Conn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
    /// A signup for an address that already has a verified account: never emailed, only kept so
    /// that logging in with that signup's password answers like any unverified account.
    PendingSignup,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
            Purpose::PendingSignup => "pending_signup",
        }
    }
}

pub struct NewToken<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub purpose: Purpose,
    pub token_hash: &'a str,
    pub password_hash: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

pub async fn insert(c: &mut Conn, t: NewToken<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO user_tokens (id, user_id, purpose, token_hash, password_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(t.id)
    .bind(t.user_id)
    .bind(t.purpose.as_str())
    .bind(t.token_hash)
    .bind(t.password_hash)
    .bind(t.now)
    .bind(t.expires_at)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

/// A burned token: its user and the password hash it carries, if any.
pub struct Consumed {
    pub user_id: String,
    pub password_hash: Option<String>,
}

/// Burns an unused, unexpired token of this purpose. The conditional UPDATE makes a replay, even a
/// concurrent one, find nothing.
pub async fn consume(
    c: &mut Conn,
    purpose: Purpose,
    token_hash: &str,
    now: i64,
) -> Result<Option<Consumed>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE user_tokens SET used_at = $3 WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
         RETURNING user_id, password_hash",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(&mut *c)
    .await?;
    row.map(|r| {
        Ok(Consumed {
            user_id: r.try_get("user_id")?,
            password_hash: r.try_get("password_hash")?,
        })
    })
    .transpose()
}

/// The user of an unused, unexpired token, without burning it.
pub async fn peek(
    c: &mut Conn,
    purpose: Purpose,
    token_hash: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT user_id FROM user_tokens WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(&mut *c)
    .await?;
    row.map(|r| r.try_get("user_id")).transpose()
}

/// The password hash of the most recent live signup (verification or pending) for the user.
pub async fn latest_signup_hash(
    c: &mut Conn,
    user_id: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT password_hash FROM user_tokens WHERE user_id = $1 AND purpose IN ('verify_email', 'pending_signup') \
         AND used_at IS NULL AND expires_at > $2 AND password_hash IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(user_id)
    .bind(now)
    .fetch_optional(&mut *c)
    .await?;
    row.map(|r| r.try_get("password_hash")).transpose()
}

/// Voids every outstanding token of this purpose for the user.
pub async fn void_all(
    c: &mut Conn,
    user_id: &str,
    purpose: Purpose,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE user_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL")
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
}
