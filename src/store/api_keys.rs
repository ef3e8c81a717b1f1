//! API keys: looked up by the keyed hash of their secret (before any tenant is known, like a
//! session), managed per org.

use sqlx::Row;

use super::tenant::TenantTx;
use super::Conn;

pub struct KeyRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub rate_limit_per_minute: i64,
    pub allowed_networks: String,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
}

const COLS: &str =
    "id, org_id, name, prefix, scopes, created_by, created_at, expires_at, revoked_at, \
                    rate_limit_per_minute, allowed_networks, last_used_at, last_used_ip";

fn from_row(r: sqlx::any::AnyRow) -> Result<KeyRow, sqlx::Error> {
    Ok(KeyRow {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        scopes: r.try_get("scopes")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        rate_limit_per_minute: r.try_get("rate_limit_per_minute")?,
        allowed_networks: r.try_get("allowed_networks")?,
        last_used_at: r.try_get("last_used_at")?,
        last_used_ip: r.try_get("last_used_ip")?,
    })
}

pub struct NewKey<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub prefix: &'a str,
    pub secret_hash: &'a str,
    pub scopes: &'a str,
    pub created_by: &'a str,
    pub now: i64,
    pub expires_at: Option<i64>,
    pub rate_limit_per_minute: i64,
    pub allowed_networks: &'a str,
}

pub async fn insert(t: &mut TenantTx, k: NewKey<'_>) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, name, prefix, secret_hash, scopes, created_by, created_at, \
         expires_at, rate_limit_per_minute, allowed_networks) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(k.id)
    .bind(org_id)
    .bind(k.name)
    .bind(k.prefix)
    .bind(k.secret_hash)
    .bind(k.scopes)
    .bind(k.created_by)
    .bind(k.now)
    .bind(k.expires_at)
    .bind(k.rate_limit_per_minute)
    .bind(k.allowed_networks)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

/// The key whose secret hashes to `secret_hash`, if it is neither revoked nor expired.
pub async fn find_live(
    c: &mut Conn,
    secret_hash: &str,
    now: i64,
) -> Result<Option<KeyRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLS} FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $2)"
    ))
    .bind(secret_hash)
    .bind(now)
    .fetch_optional(&mut *c)
    .await?
    .map(from_row)
    .transpose()
}

/// The org's keys, newest first, revoked ones included (their history matters), after `after`.
pub async fn list(t: &mut TenantTx, after: &str, limit: i64) -> Result<Vec<KeyRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(&format!(
        "SELECT {COLS} FROM api_keys WHERE org_id = $1 AND ($2 = '' OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(org_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?
    .into_iter()
    .map(from_row)
    .collect()
}

pub async fn get(t: &mut TenantTx, id: &str) -> Result<Option<KeyRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(&format!(
        "SELECT {COLS} FROM api_keys WHERE org_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .map(from_row)
    .transpose()
}

/// Revokes a live key of the org; false when there is none (unknown, or revoked already).
pub async fn revoke(t: &mut TenantTx, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "UPDATE api_keys SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL",
    )
    .bind(org_id)
    .bind(id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Revokes every live key `user_id` made in the org (the member left or was removed).
pub async fn revoke_by_creator(
    t: &mut TenantTx,
    user_id: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "UPDATE api_keys SET revoked_at = $3 WHERE org_id = $1 AND created_by = $2 AND revoked_at IS NULL",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected())
}

/// Records a use; never moves `last_used_at` back.
pub async fn touch(c: &mut Conn, id: &str, now: i64, masked_ip: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = $2, last_used_ip = $3 \
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
    )
    .bind(id)
    .bind(now)
    .bind(masked_ip)
    .execute(&mut *c)
    .await
    .map(|_| ())
}
