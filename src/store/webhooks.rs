//! Outbound webhooks: endpoints (sealed URL and secrets), their messages and delivery log (tenant
//! tables), and the two cross-org tables the delivery loop reads first (cursors and due messages).

use sqlx::Row;

use super::tenant::TenantTx;
use super::Conn;

pub struct HookRow {
    pub id: String,
    pub url_ct: Vec<u8>,
    pub events: String,
    pub secret_ct: Vec<u8>,
    pub old_secret_ct: Option<Vec<u8>>,
    pub old_secret_until: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
    pub failures: i64,
}

const HOOK_COLS: &str =
    "id, url_ct, events, secret_ct, old_secret_ct, old_secret_until, created_by, \
                         created_at, disabled_at, disabled_reason, failures";

fn hook(r: sqlx::any::AnyRow) -> Result<HookRow, sqlx::Error> {
    Ok(HookRow {
        id: r.try_get("id")?,
        url_ct: r.try_get("url_ct")?,
        events: r.try_get("events")?,
        secret_ct: r.try_get("secret_ct")?,
        old_secret_ct: r.try_get("old_secret_ct")?,
        old_secret_until: r.try_get("old_secret_until")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        disabled_at: r.try_get("disabled_at")?,
        disabled_reason: r.try_get("disabled_reason")?,
        failures: r.try_get("failures")?,
    })
}

pub struct NewHook<'a> {
    pub id: &'a str,
    pub url_ct: Vec<u8>,
    pub events: &'a str,
    pub secret_ct: Vec<u8>,
    pub created_by: &'a str,
    pub now: i64,
}

/// Registers an endpoint whose cursor starts at the org's chain head: it hears of what happens
/// from now on.
pub async fn insert(t: &mut TenantTx, h: NewHook<'_>) -> Result<(), sqlx::Error> {
    let chain = t.chain().to_string();
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO webhooks (id, org_id, url_ct, events, secret_ct, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(h.id)
    .bind(org_id)
    .bind(h.url_ct)
    .bind(h.events)
    .bind(h.secret_ct)
    .bind(h.created_by)
    .bind(h.now)
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO webhook_cursors (webhook_id, org_id, last_seq, enabled) \
         VALUES ($1, $2, COALESCE((SELECT last_seq FROM audit_chains WHERE chain = $3), 0), 1)",
    )
    .bind(h.id)
    .bind(org_id)
    .bind(chain)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

pub async fn list(t: &mut TenantTx, after: &str, limit: i64) -> Result<Vec<HookRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(&format!(
        "SELECT {HOOK_COLS} FROM webhooks WHERE org_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
    ))
    .bind(org_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?
    .into_iter()
    .map(hook)
    .collect()
}

pub async fn get(t: &mut TenantTx, id: &str) -> Result<Option<HookRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(&format!(
        "SELECT {HOOK_COLS} FROM webhooks WHERE org_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .map(hook)
    .transpose()
}

pub async fn delete(t: &mut TenantTx, id: &str) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    // The cross-org rows first (they name the endpoint and its messages).
    sqlx::query("DELETE FROM webhook_cursors WHERE webhook_id = $1 AND org_id = $2")
        .bind(id)
        .bind(org_id)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "DELETE FROM webhook_due WHERE org_id = $1 AND message_id IN \
         (SELECT id FROM webhook_messages WHERE org_id = $1 AND webhook_id = $2)",
    )
    .bind(org_id)
    .bind(id)
    .execute(&mut *c)
    .await?;
    let r = sqlx::query("DELETE FROM webhooks WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Turns an endpoint off (`reason` given) or on again (`None`: its failures forgotten).
pub async fn set_disabled(
    t: &mut TenantTx,
    id: &str,
    disabled: Option<(i64, &str)>,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "UPDATE webhooks SET disabled_at = $3, disabled_reason = $4, \
         failures = CASE WHEN $3 IS NULL THEN 0 ELSE failures END WHERE org_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(id)
    .bind(disabled.map(|d| d.0))
    .bind(disabled.map(|d| d.1.to_string()))
    .execute(&mut *c)
    .await?;
    sqlx::query("UPDATE webhook_cursors SET enabled = $3 WHERE webhook_id = $1 AND org_id = $2")
        .bind(id)
        .bind(org_id)
        .bind(i64::from(disabled.is_none()))
        .execute(&mut *c)
        .await
        .map(|_| ())
}

pub async fn rotate(
    t: &mut TenantTx,
    id: &str,
    secret_ct: Vec<u8>,
    old_secret_ct: Vec<u8>,
    old_until: i64,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "UPDATE webhooks SET secret_ct = $3, old_secret_ct = $4, old_secret_until = $5 \
         WHERE org_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(id)
    .bind(secret_ct)
    .bind(old_secret_ct)
    .bind(old_until)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

/// Counts a failed attempt (returns the count in a row) or forgets them after a success.
pub async fn note_result(t: &mut TenantTx, id: &str, ok: bool) -> Result<i64, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "UPDATE webhooks SET failures = CASE WHEN $3 <> 0 THEN 0 ELSE failures + 1 END \
         WHERE org_id = $1 AND id = $2 RETURNING failures",
    )
    .bind(org_id)
    .bind(id)
    .bind(i64::from(ok))
    .fetch_optional(&mut *c)
    .await?;
    Ok(r.map(|r| r.try_get("failures")).transpose()?.unwrap_or(0))
}

pub struct NewMessage<'a> {
    pub id: &'a str,
    pub webhook_id: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub payload: &'a str,
    pub now: i64,
}

/// Queues one event for one endpoint, due now (once: the same event is never queued twice).
pub async fn insert_message(t: &mut TenantTx, m: NewMessage<'_>) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "INSERT INTO webhook_messages (id, org_id, webhook_id, event_id, event_type, payload, created_at, status, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $7) ON CONFLICT (webhook_id, event_id) DO NOTHING",
    )
    .bind(m.id)
    .bind(org_id)
    .bind(m.webhook_id)
    .bind(m.event_id)
    .bind(m.event_type)
    .bind(m.payload)
    .bind(m.now)
    .execute(&mut *c)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    due(c, org_id, m.webhook_id, m.id, m.now).await?;
    Ok(true)
}

async fn due(
    c: &mut Conn,
    org_id: &str,
    webhook_id: &str,
    message_id: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_due (message_id, org_id, webhook_id, due_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (message_id) DO UPDATE SET due_at = $4, locked_until = NULL, webhook_id = $3",
    )
    .bind(message_id)
    .bind(org_id)
    .bind(webhook_id)
    .bind(at)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

/// The enabled endpoints, for one pass of the delivery loop: `(webhook_id, org_id, last_seq)`.
pub async fn enabled_cursors(c: &mut Conn) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query(
        "SELECT webhook_id, org_id, last_seq FROM webhook_cursors WHERE enabled = 1 ORDER BY webhook_id",
    )
    .fetch_all(&mut *c)
    .await?
    .into_iter()
    .map(|r| Ok((r.try_get("webhook_id")?, r.try_get("org_id")?, r.try_get("last_seq")?)))
    .collect()
}

/// Takes one endpoint's cursor until `now + lease_ms` (none if another worker holds it):
/// `(org_id, last_seq)`. `advance_cursor` lets it go.
pub async fn claim_cursor(
    c: &mut Conn,
    webhook_id: &str,
    now: i64,
    lease_ms: i64,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE webhook_cursors SET locked_until = $3 \
         WHERE webhook_id = $1 AND enabled = 1 AND (locked_until IS NULL OR locked_until <= $2) \
         RETURNING org_id, last_seq",
    )
    .bind(webhook_id)
    .bind(now)
    .bind(now + lease_ms)
    .fetch_optional(&mut *c)
    .await?;
    r.map(|r| Ok((r.try_get("org_id")?, r.try_get("last_seq")?)))
        .transpose()
}

pub async fn advance_cursor(
    t: &mut TenantTx,
    webhook_id: &str,
    seq: i64,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "UPDATE webhook_cursors SET last_seq = CASE WHEN last_seq < $3 THEN $3 ELSE last_seq END, \
         locked_until = NULL WHERE webhook_id = $1 AND org_id = $2",
    )
    .bind(webhook_id)
    .bind(org_id)
    .bind(seq)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

/// Takes a due message (until `now + lease_ms`): `(message_id, org_id)`.
pub async fn claim_due(
    c: &mut Conn,
    now: i64,
    lease_ms: i64,
    per_org: i64,
) -> Result<Option<(String, String)>, sqlx::Error> {
    // The oldest due message whose endpoint has no delivery in flight (one at a time per
    // endpoint: its messages go in order and a slow endpoint holds one slot) and whose org has
    // fewer than `per_org` in flight (an org with many slow endpoints cannot hold them all).
    let r = sqlx::query(
        "UPDATE webhook_due SET locked_until = $2 \
         WHERE message_id = (SELECT d.message_id FROM webhook_due d WHERE d.due_at <= $1 \
                               AND (d.locked_until IS NULL OR d.locked_until <= $1) \
                               AND NOT EXISTS (SELECT 1 FROM webhook_due b \
                                               WHERE b.webhook_id = d.webhook_id AND b.locked_until > $1) \
                               AND (SELECT COUNT(*) FROM webhook_due b \
                                    WHERE b.org_id = d.org_id AND b.locked_until > $1) < $3 \
                             ORDER BY d.due_at, d.message_id LIMIT 1) \
           AND due_at <= $1 AND (locked_until IS NULL OR locked_until <= $1) \
         RETURNING message_id, org_id",
    )
    .bind(now)
    .bind(now + lease_ms)
    .bind(per_org)
    .fetch_optional(&mut *c)
    .await?;
    r.map(|r| Ok((r.try_get("message_id")?, r.try_get("org_id")?)))
        .transpose()
}

pub struct MessageRow {
    pub id: String,
    pub webhook_id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: i64,
    pub attempts: i64,
    pub status: String,
}

pub async fn message(t: &mut TenantTx, id: &str) -> Result<Option<MessageRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT id, webhook_id, event_type, payload, created_at, attempts, status FROM webhook_messages \
         WHERE org_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .map(|r| {
        Ok(MessageRow {
            id: r.try_get("id")?,
            webhook_id: r.try_get("webhook_id")?,
            event_type: r.try_get("event_type")?,
            payload: r.try_get("payload")?,
            created_at: r.try_get("created_at")?,
            attempts: r.try_get("attempts")?,
            status: r.try_get("status")?,
        })
    })
    .transpose()
}

pub struct Attempt<'a> {
    pub id: &'a str,
    pub webhook_id: &'a str,
    pub message_id: &'a str,
    pub attempt: i64,
    pub at: i64,
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
    pub duration_ms: i64,
    /// `delivered`, `pending` (another attempt at `next_at`) or `failed`.
    pub status: &'a str,
    pub next_at: Option<i64>,
}

/// Logs an attempt and moves its message on: delivered or failed (no longer due), or due again.
pub async fn record_attempt(t: &mut TenantTx, a: Attempt<'_>) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, org_id, webhook_id, message_id, attempt, at, status_code, error, duration_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(a.id)
    .bind(org_id)
    .bind(a.webhook_id)
    .bind(a.message_id)
    .bind(a.attempt)
    .bind(a.at)
    .bind(a.status_code)
    .bind(a.error)
    .bind(a.duration_ms)
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "UPDATE webhook_messages SET attempts = $3, status = $4, next_attempt_at = $5 WHERE org_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(a.message_id)
    .bind(a.attempt)
    .bind(a.status)
    .bind(a.next_at)
    .execute(&mut *c)
    .await?;
    match a.next_at {
        Some(at) => due(c, org_id, a.webhook_id, a.message_id, at).await,
        None => sqlx::query("DELETE FROM webhook_due WHERE message_id = $1 AND org_id = $2")
            .bind(a.message_id)
            .bind(org_id)
            .execute(&mut *c)
            .await
            .map(|_| ()),
    }
}

/// Queues a message again, due now (a manual redelivery).
pub async fn requeue(t: &mut TenantTx, message_id: &str, now: i64) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    let r = sqlx::query(
        "UPDATE webhook_messages SET status = 'pending', next_attempt_at = $3 WHERE org_id = $1 AND id = $2 \
         RETURNING webhook_id",
    )
    .bind(org_id)
    .bind(message_id)
    .bind(now)
    .fetch_optional(&mut *c)
    .await?;
    let Some(r) = r else {
        return Ok(());
    };
    let webhook_id: String = r.try_get("webhook_id")?;
    due(c, org_id, &webhook_id, message_id, now).await
}

pub struct DeliveryRow {
    pub id: String,
    pub message_id: String,
    pub event_type: String,
    pub attempt: i64,
    pub at: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// The endpoint's attempts, newest first, after `after`.
pub async fn deliveries(
    t: &mut TenantTx,
    webhook_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT d.id AS id, d.message_id AS message_id, m.event_type AS event_type, d.attempt AS attempt, \
         d.at AS at, d.status_code AS status_code, d.error AS error, d.duration_ms AS duration_ms \
         FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_id AND m.org_id = d.org_id \
         WHERE d.org_id = $1 AND d.webhook_id = $2 AND ($3 = '' OR d.id < $3) ORDER BY d.id DESC LIMIT $4",
    )
    .bind(org_id)
    .bind(webhook_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?
    .into_iter()
    .map(|r| {
        Ok(DeliveryRow {
            id: r.try_get("id")?,
            message_id: r.try_get("message_id")?,
            event_type: r.try_get("event_type")?,
            attempt: r.try_get("attempt")?,
            at: r.try_get("at")?,
            status_code: r.try_get("status_code")?,
            error: r.try_get("error")?,
            duration_ms: r.try_get("duration_ms")?,
        })
    })
    .collect()
}

/// The message an attempt belongs to, if the attempt is the endpoint's.
pub async fn message_of_delivery(
    t: &mut TenantTx,
    webhook_id: &str,
    delivery_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let r = sqlx::query(
        "SELECT message_id FROM webhook_deliveries WHERE org_id = $1 AND webhook_id = $2 AND id = $3",
    )
    .bind(org_id)
    .bind(webhook_id)
    .bind(delivery_id)
    .fetch_optional(&mut *c)
    .await?;
    r.map(|r| r.try_get("message_id")).transpose()
}

/// The org's owners and admins: `(user_id, email_ct)`.
pub async fn admins(t: &mut TenantTx) -> Result<Vec<(String, Vec<u8>)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query(
        "SELECT u.id AS id, u.email_ct AS email_ct FROM org_members m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 AND m.role IN ('owner', 'admin') ORDER BY u.id",
    )
    .bind(org_id)
    .fetch_all(&mut *c)
    .await?
    .into_iter()
    .map(|r| Ok((r.try_get("id")?, r.try_get("email_ct")?)))
    .collect()
}

/// Disables every enabled endpoint `user_id` made in the org (the member left, was removed or is
/// no longer an admin); returns how many.
pub async fn disable_by_creator(
    t: &mut TenantTx,
    user_id: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "UPDATE webhook_cursors SET enabled = 0 WHERE org_id = $1 AND webhook_id IN \
         (SELECT id FROM webhooks WHERE org_id = $1 AND created_by = $2)",
    )
    .bind(org_id)
    .bind(user_id)
    .execute(&mut *c)
    .await?;
    let r = sqlx::query(
        "UPDATE webhooks SET disabled_at = $3, disabled_reason = 'its creator is no longer an admin' \
         WHERE org_id = $1 AND created_by = $2 AND disabled_at IS NULL",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected())
}
