//! Server-side sessions keyed by the keyed hash of their token.

use sqlx::Row;

use super::Conn;

pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub auth_level: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub ip_ct: Option<Vec<u8>>,
    pub user_agent_ct: Option<Vec<u8>>,
    pub reauth_at: Option<i64>,
    pub mfa_at: Option<i64>,
}

const COLS: &str = "id, user_id, auth_level, created_at, last_seen_at, expires_at, ip_ct, user_agent_ct, reauth_at, mfa_at";

fn from_row(r: sqlx::any::AnyRow) -> Result<SessionRow, sqlx::Error> {
    Ok(SessionRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        auth_level: r.try_get("auth_level")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        expires_at: r.try_get("expires_at")?,
        ip_ct: r.try_get("ip_ct")?,
        user_agent_ct: r.try_get("user_agent_ct")?,
        reauth_at: r.try_get("reauth_at")?,
        mfa_at: r.try_get("mfa_at")?,
    })
}

pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub token_hash: &'a str,
    pub auth_level: &'a str,
    pub now: i64,
    pub expires_at: i64,
    pub ip_ct: Vec<u8>,
    pub user_agent_ct: Vec<u8>,
}

pub async fn insert(c: &mut Conn, s: NewSession<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, token_hash, auth_level, created_at, last_seen_at, expires_at, ip_ct, user_agent_ct, reauth_at) \
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $5)",
    )
    .bind(s.id)
    .bind(s.user_id)
    .bind(s.token_hash)
    .bind(s.auth_level)
    .bind(s.now)
    .bind(s.expires_at)
    .bind(s.ip_ct)
    .bind(s.user_agent_ct)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

/// A live (not revoked, not past its absolute or idle limit) session with this token hash.
pub async fn find_live(
    c: &mut Conn,
    token_hash: &str,
    now: i64,
    idle_ms: i64,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLS} FROM sessions WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3"
    ))
    .bind(token_hash)
    .bind(now)
    .bind(now - idle_ms)
    .fetch_optional(&mut *c)
    .await?
    .map(from_row)
    .transpose()
}

/// Records activity; never moves `last_seen_at` back (touches may land out of order).
pub async fn touch(c: &mut Conn, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2")
        .bind(id)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

pub async fn list_live_for_user(
    c: &mut Conn,
    user_id: &str,
    now: i64,
    idle_ms: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3 \
         ORDER BY created_at DESC, id DESC"
    ))
    .bind(user_id)
    .bind(now)
    .bind(now - idle_ms)
    .fetch_all(&mut *c)
    .await?
    .into_iter()
    .map(from_row)
    .collect()
}

/// Revokes one session of this user; false when there was no such live session.
pub async fn revoke_one(
    c: &mut Conn,
    user_id: &str,
    id: &str,
    now: i64,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(user_id)
    .bind(now)
    .bind(reason)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Revokes every live session of the user except `keep`; returns how many.
pub async fn revoke_all(
    c: &mut Conn,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 WHERE user_id = $1 AND revoked_at IS NULL AND id <> $2",
    )
    .bind(user_id)
    .bind(keep.unwrap_or(""))
    .bind(now)
    .bind(reason)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected())
}

/// Reserves one second-factor attempt on a pending session, before the code is checked, so that
/// parallel guesses cannot exceed `max`; None when the session has no attempt left.
pub async fn reserve_mfa_attempt(
    c: &mut Conn,
    id: &str,
    max: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query("UPDATE sessions SET mfa_attempts = mfa_attempts + 1 WHERE id = $1 AND mfa_attempts < $2 RETURNING mfa_attempts")
        .bind(id)
        .bind(max)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| r.try_get("mfa_attempts"))
        .transpose()
}

/// Marks the session as freshly re-authenticated (step-up).
pub async fn set_reauth(c: &mut Conn, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET reauth_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

/// Records that the session just proved a second factor.
pub async fn set_mfa(c: &mut Conn, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET mfa_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
}
