//! The email outbox: rows written in the same transaction as the change that caused them, then
//! claimed and delivered by the job loop. Payloads are encrypted (they hold links with tokens).

use sqlx::Row;

use super::Conn;

pub struct OutboxRow {
    pub id: String,
    pub payload_ct: Vec<u8>,
    pub attempts: i64,
}

pub async fn insert(
    c: &mut Conn,
    id: &str,
    payload_ct: Vec<u8>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO email_outbox (id, created_at, payload_ct, attempts, next_attempt_at) VALUES ($1, $2, $3, 0, $2)")
        .bind(id)
        .bind(now)
        .bind(payload_ct)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

/// Claims the oldest due message for `lease_ms`. The conditions are repeated outside the subquery
/// so that on PostgreSQL a second worker racing for the same row re-checks them after the row lock
/// and finds nothing: no message is sent twice by two replicas.
pub async fn claim(
    c: &mut Conn,
    now: i64,
    lease_ms: i64,
) -> Result<Option<OutboxRow>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE email_outbox SET locked_until = $2, attempts = attempts + 1 \
         WHERE id = (SELECT id FROM email_outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 \
                     AND (locked_until IS NULL OR locked_until < $1) ORDER BY created_at, id LIMIT 1) \
           AND sent_at IS NULL AND (locked_until IS NULL OR locked_until < $1) \
         RETURNING id, payload_ct, attempts",
    )
    .bind(now)
    .bind(now + lease_ms)
    .fetch_optional(&mut *c)
    .await?;
    row.map(|r| {
        Ok(OutboxRow {
            id: r.try_get("id")?,
            payload_ct: r.try_get("payload_ct")?,
            attempts: r.try_get("attempts")?,
        })
    })
    .transpose()
}

pub async fn mark_sent(c: &mut Conn, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE email_outbox SET sent_at = $2, locked_until = NULL WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

pub async fn mark_failed(
    c: &mut Conn,
    id: &str,
    next_attempt_at: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE email_outbox SET next_attempt_at = $2, locked_until = NULL, last_error = $3 WHERE id = $1")
        .bind(id)
        .bind(next_attempt_at)
        .bind(error)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

/// Every message's id and sealed payload (the outbox holds a few days of mail: sent messages are
/// purged after `retention.sent_emails_days`).
pub async fn all(c: &mut Conn) -> Result<Vec<(String, Vec<u8>)>, sqlx::Error> {
    sqlx::query("SELECT id, payload_ct FROM email_outbox ORDER BY id")
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("payload_ct")?)))
        .collect()
}

pub async fn delete(c: &mut Conn, id: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM email_outbox WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?
        .rows_affected())
}
