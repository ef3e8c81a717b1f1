//! Notifications and their per-user settings. A notification is written in the transaction of the
//! org whose action caused it (`TenantTx`), and read or marked read by its recipient alone, in a
//! transaction with only that user's context (on PostgreSQL, row-level security lets a user see
//! their own notifications and nothing else).

use sqlx::Row;

use super::tenant::TenantTx;
use super::Conn;

pub struct NewNotification<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub kind: &'a str,
    pub actor_id: &'a str,
    pub workspace_id: Option<&'a str>,
    pub item_id: Option<&'a str>,
    pub target: &'a str,
    pub text_ct: Vec<u8>,
    pub now: i64,
}

pub async fn insert(t: &mut TenantTx, n: NewNotification<'_>) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "INSERT INTO notifications (id, user_id, org_id, kind, actor_id, target, text_ct, created_at, workspace_id, item_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(n.id)
    .bind(n.user_id)
    .bind(org_id)
    .bind(n.kind)
    .bind(n.actor_id)
    .bind(n.target)
    .bind(n.text_ct)
    .bind(n.now)
    .bind(n.workspace_id)
    .bind(n.item_id)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

/// Deletes the org's notifications about an item, a workspace (`item_id` None), or to a user who
/// left (`forget_user`): what they were about is gone, or no longer theirs to see.
pub async fn forget(
    t: &mut TenantTx,
    workspace_id: Option<&str>,
    item_id: Option<&str>,
    forget_user: Option<&str>,
) -> Result<(), sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query(
        "DELETE FROM notifications WHERE org_id = $1 AND ($2 = '' OR workspace_id = $2) \
         AND ($3 = '' OR item_id = $3) AND ($4 = '' OR user_id = $4)",
    )
    .bind(org_id)
    .bind(workspace_id.unwrap_or(""))
    .bind(item_id.unwrap_or(""))
    .bind(forget_user.unwrap_or(""))
    .execute(&mut *c)
    .await
    .map(|_| ())
}

/// Which of a user's notifications they may still see: from an org they belong to (an
/// invitation's also from one they have not joined) whose two-factor policy the session meets
/// (`$mfa` = 1 when it proved a second factor), about a workspace they still hold a role in (any,
/// for org owners and admins).
const VISIBLE: &str = "(n.kind = 'invited' OR EXISTS (SELECT 1 FROM org_members m JOIN orgs o ON o.id = m.org_id \
     WHERE m.org_id = n.org_id AND m.user_id = n.user_id AND (o.require_mfa = 0 OR $MFA = 1) \
     AND (n.workspace_id IS NULL OR m.role IN ('owner', 'admin') OR EXISTS (SELECT 1 FROM workspace_members wm \
       WHERE wm.org_id = n.org_id AND wm.workspace_id = n.workspace_id AND wm.user_id = n.user_id))))";

/// A user's setting for one kind: `(in_app, email)`, or None for the defaults.
pub async fn setting(
    c: &mut Conn,
    user_id: &str,
    kind: &str,
) -> Result<Option<(bool, bool)>, sqlx::Error> {
    sqlx::query("SELECT in_app, email FROM notification_settings WHERE user_id = $1 AND kind = $2")
        .bind(user_id)
        .bind(kind)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| {
            Ok((
                r.try_get::<i64, _>("in_app")? != 0,
                r.try_get::<i64, _>("email")? != 0,
            ))
        })
        .transpose()
}

/// Every setting a user changed: `(kind, in_app, email)`.
pub async fn settings(
    c: &mut Conn,
    user_id: &str,
) -> Result<Vec<(String, bool, bool)>, sqlx::Error> {
    sqlx::query("SELECT kind, in_app, email FROM notification_settings WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("kind")?,
                r.try_get::<i64, _>("in_app")? != 0,
                r.try_get::<i64, _>("email")? != 0,
            ))
        })
        .collect()
}

pub async fn put_setting(
    c: &mut Conn,
    user_id: &str,
    kind: &str,
    in_app: bool,
    email: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notification_settings (user_id, kind, in_app, email) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, kind) DO UPDATE SET in_app = excluded.in_app, email = excluded.email",
    )
    .bind(user_id)
    .bind(kind)
    .bind(i64::from(in_app))
    .bind(i64::from(email))
    .execute(&mut *c)
    .await
    .map(|_| ())
}

pub struct NotificationRow {
    pub id: String,
    pub org_id: String,
    pub kind: String,
    pub actor_id: Option<String>,
    pub target: String,
    pub text_ct: Vec<u8>,
    pub read_at: Option<i64>,
    pub created_at: i64,
    /// The org's current data key, wrapped.
    pub key_version: i64,
    pub key_wrapped: Vec<u8>,
    /// The actor's display name, sealed (None: the account is gone).
    pub actor_name_ct: Option<Vec<u8>>,
}

/// A user's notifications, newest first, from orgs they still belong to (an invitation's also
/// from an org they have not joined), with what opens them.
/// With `only`, that one notification (if it is the user's).
pub async fn list(
    c: &mut Conn,
    user_id: &str,
    mfa: bool,
    before: &str,
    only: Option<&str>,
    limit: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT n.id, n.org_id, n.kind, n.actor_id, n.target, n.text_ct, n.read_at, n.created_at, \
         k.version, k.wrapped, u.display_name_ct \
         FROM notifications n \
         JOIN data_keys k ON k.id = n.org_id AND k.version = (SELECT MAX(k2.version) FROM data_keys k2 WHERE k2.id = n.org_id) \
         LEFT JOIN users u ON u.id = n.actor_id \
         WHERE n.user_id = $1 AND ($2 = '' OR n.id < $2) AND ($4 = '' OR n.id = $4) AND {} \
         ORDER BY n.id DESC LIMIT $3",
        VISIBLE.replace("$MFA", "$5")
    ))
    .bind(user_id)
    .bind(before)
    .bind(limit)
    .bind(only.unwrap_or(""))
    .bind(i64::from(mfa))
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| {
        Ok(NotificationRow {
            id: r.try_get("id")?,
            org_id: r.try_get("org_id")?,
            kind: r.try_get("kind")?,
            actor_id: r.try_get("actor_id")?,
            target: r.try_get("target")?,
            text_ct: r.try_get("text_ct")?,
            read_at: r.try_get("read_at")?,
            created_at: r.try_get("created_at")?,
            key_version: r.try_get("version")?,
            key_wrapped: r.try_get("wrapped")?,
            actor_name_ct: r.try_get("display_name_ct")?,
        })
    })
    .collect()
}

/// How many of a user's notifications are unread (those `list` would show).
pub async fn unread_count(c: &mut Conn, user_id: &str, mfa: bool) -> Result<i64, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM notifications n WHERE n.user_id = $1 AND n.read_at IS NULL AND {}",
        VISIBLE.replace("$MFA", "$2")
    ))
    .bind(user_id)
    .bind(i64::from(mfa))
    .fetch_one(&mut *c)
    .await?
    .try_get("n")
}

/// Marks some (or all, with `ids` None) of a user's notifications read.
pub async fn mark_read(
    c: &mut Conn,
    user_id: &str,
    ids: Option<&[String]>,
    now: i64,
) -> Result<(), sqlx::Error> {
    match ids {
        None => {
            sqlx::query(
                "UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL",
            )
            .bind(user_id)
            .bind(now)
            .execute(&mut *c)
            .await?;
        }
        Some(ids) => {
            for id in ids {
                sqlx::query(
                    "UPDATE notifications SET read_at = $3 WHERE user_id = $1 AND id = $2 AND read_at IS NULL",
                )
                .bind(user_id)
                .bind(id)
                .bind(now)
                .execute(&mut *c)
                .await?;
            }
        }
    }
    Ok(())
}
