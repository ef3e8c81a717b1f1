//! Single-use emailed tokens (email verification, password reset). Only the keyed hash is stored.

use sqlx::Row;

use super::Conn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }
}

pub async fn insert(
    c: &mut Conn,
    id: &str,
    user_id: &str,
    purpose: Purpose,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO user_tokens (id, user_id, purpose, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(token_hash)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

/// Burns an unused, unexpired token of this purpose and returns its user. The conditional UPDATE
/// makes a replay, even a concurrent one, find nothing.
pub async fn consume(
    c: &mut Conn,
    purpose: Purpose,
    token_hash: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE user_tokens SET used_at = $3 WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
         RETURNING user_id",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(&mut *c)
    .await?;
    row.map(|r| r.try_get("user_id")).transpose()
}

/// Voids every outstanding token of this purpose for the user (a new one replaces them).
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
