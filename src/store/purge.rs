//! The deletes of the retention purge (`crate::purge`): each returns the rows removed.

use super::tenant::TenantTx;
use super::Conn;

async fn run(c: &mut Conn, sql: &str, binds: &[i64]) -> Result<u64, sqlx::Error> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    Ok(q.execute(&mut *c).await?.rows_affected())
}

/// Sessions that ended (expired, idle past `idle_before` or revoked) before `ended`.
pub async fn sessions(c: &mut Conn, ended: i64, idle_before: i64) -> Result<u64, sqlx::Error> {
    run(
        c,
        "DELETE FROM sessions WHERE expires_at < $1 OR last_seen_at < $2 \
         OR (revoked_at IS NOT NULL AND revoked_at < $1)",
        &[ended, idle_before],
    )
    .await
}

/// Verification and reset tokens used or expired before `ended`.
pub async fn user_tokens(c: &mut Conn, ended: i64) -> Result<u64, sqlx::Error> {
    run(
        c,
        "DELETE FROM user_tokens WHERE expires_at < $1 OR (used_at IS NOT NULL AND used_at < $1)",
        &[ended],
    )
    .await
}

/// Passkey registration and sign-in ceremonies that expired.
pub async fn webauthn_states(c: &mut Conn, now: i64) -> Result<u64, sqlx::Error> {
    run(
        c,
        "DELETE FROM webauthn_states WHERE expires_at <= $1",
        &[now],
    )
    .await
}

/// Mail sent before `before` (a mail not sent yet stays, whatever its age).
pub async fn sent_emails(c: &mut Conn, before: i64) -> Result<u64, sqlx::Error> {
    run(
        c,
        "DELETE FROM email_outbox WHERE sent_at IS NOT NULL AND sent_at < $1",
        &[before],
    )
    .await
}

/// The org's invitations that ended (accepted, revoked or expired) before `ended` (their
/// tokens go with them).
pub async fn invitations(t: &mut TenantTx, ended: i64) -> Result<u64, sqlx::Error> {
    let (c, org) = t.write()?;
    let r = sqlx::query(
        "DELETE FROM invitations WHERE org_id = $1 AND (expires_at < $2 \
         OR (accepted_at IS NOT NULL AND accepted_at < $2) \
         OR (revoked_at IS NOT NULL AND revoked_at < $2))",
    )
    .bind(org)
    .bind(ended)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected())
}

/// The org's share-link codes used or expired before `ended`.
pub async fn link_codes(t: &mut TenantTx, ended: i64) -> Result<u64, sqlx::Error> {
    let (c, org) = t.write()?;
    let r = sqlx::query(
        "DELETE FROM link_codes WHERE org_id = $1 AND (expires_at < $2 \
         OR (used_at IS NOT NULL AND used_at < $2))",
    )
    .bind(org)
    .bind(ended)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected())
}

/// The org's notifications read before `read_before`, and any older than `before`.
pub async fn notifications(
    t: &mut TenantTx,
    read_before: i64,
    before: i64,
) -> Result<u64, sqlx::Error> {
    let (c, org) = t.write()?;
    let r = sqlx::query(
        "DELETE FROM notifications WHERE org_id = $1 AND (created_at < $3 \
         OR (read_at IS NOT NULL AND read_at < $2))",
    )
    .bind(org)
    .bind(read_before)
    .bind(before)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected())
}

/// The org's webhook messages (payloads and delivery logs) older than `before` that are no longer
/// pending.
pub async fn webhook_messages(t: &mut TenantTx, before: i64) -> Result<u64, sqlx::Error> {
    let (c, org) = t.write()?;
    let r = sqlx::query(
        "DELETE FROM webhook_messages WHERE org_id = $1 AND created_at < $2 AND status <> 'pending'",
    )
    .bind(org)
    .bind(before)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected())
}
