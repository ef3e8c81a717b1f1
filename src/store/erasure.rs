//! Account deletion: the request and its grace period, and the erasure's statements. The account's
//! row stays (what it wrote names it, and the audit trail keeps its id) with its personal data
//! replaced; everything else that is only about the person goes.

use sqlx::Row;

use super::tenant::TenantTx;
use super::Conn;

/// Schedules the erasure of a live account at `due`. False when the account is gone or erased.
pub async fn schedule(
    c: &mut Conn,
    user_id: &str,
    due: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE users SET deletion_due_at = $2, updated_at = $3 WHERE id = $1 AND erased_at IS NULL",
    )
    .bind(user_id)
    .bind(due)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Cancels a scheduled erasure. False when none was scheduled.
pub async fn cancel(c: &mut Conn, user_id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE users SET deletion_due_at = NULL, updated_at = $2 \
         WHERE id = $1 AND deletion_due_at IS NOT NULL AND erased_at IS NULL",
    )
    .bind(user_id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// When the account's erasure is due, if it is scheduled.
pub async fn due_at(c: &mut Conn, user_id: &str) -> Result<Option<i64>, sqlx::Error> {
    Ok(
        sqlx::query("SELECT deletion_due_at FROM users WHERE id = $1 AND erased_at IS NULL")
            .bind(user_id)
            .fetch_optional(&mut *c)
            .await?
            .map(|r| r.try_get::<Option<i64>, _>("deletion_due_at"))
            .transpose()?
            .flatten(),
    )
}

/// Accounts whose erasure is due, oldest first.
pub async fn due(c: &mut Conn, now: i64, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query(
        "SELECT id FROM users WHERE deletion_due_at <= $1 AND erased_at IS NULL \
         ORDER BY deletion_due_at, id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| r.try_get("id"))
    .collect()
}

/// The orgs the user belongs to, with their role (in the user's own context).
pub async fn memberships(
    c: &mut Conn,
    user_id: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query("SELECT org_id, role FROM org_members WHERE user_id = $1 ORDER BY org_id")
        .bind(user_id)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("org_id")?, r.try_get("role")?)))
        .collect()
}

/// In an org the user leaves for good: items assigned to them are unassigned, and the
/// invitations they sent that are still pending are withdrawn (with their tokens). Returns
/// `(unassigned, invitations)`.
pub async fn leave_org(
    t: &mut TenantTx,
    user_id: &str,
    now: i64,
) -> Result<(u64, u64), sqlx::Error> {
    let (c, org_id) = t.write()?;
    let unassigned = sqlx::query(
        "UPDATE items SET assignee_id = NULL, updated_at = $3 WHERE org_id = $1 AND assignee_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected();
    let invitations = sqlx::query(
        "DELETE FROM invitations WHERE org_id = $1 AND invited_by = $2 AND accepted_at IS NULL",
    )
    .bind(org_id)
    .bind(user_id)
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok((unassigned, invitations))
}

/// In any org: invitations addressed to the email (by its blind index) and the address's
/// opt-outs. Returns how many rows went.
pub async fn forget_address(t: &mut TenantTx, email_bidx: &str) -> Result<u64, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let a = sqlx::query("DELETE FROM invitations WHERE org_id = $1 AND email_bidx = $2")
        .bind(org_id)
        .bind(email_bidx)
        .execute(&mut *c)
        .await?
        .rows_affected();
    let b = sqlx::query("DELETE FROM invitation_optouts WHERE org_id = $1 AND email_bidx = $2")
        .bind(org_id)
        .bind(email_bidx)
        .execute(&mut *c)
        .await?
        .rows_affected();
    Ok(a + b)
}

/// In the user's own context: their notifications (from every org) and notification settings.
pub async fn forget_own(c: &mut Conn, user_id: &str) -> Result<(), sqlx::Error> {
    for table in ["notifications", "notification_settings"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
            .bind(user_id)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// What replaces the account's personal data.
pub struct Pseudonym {
    pub email_bidx: String,
    pub email_ct: Vec<u8>,
    pub display_name_ct: Vec<u8>,
}

/// The platform's part: sessions, tokens, second factors and ceremonies go; the row keeps its id
/// with a pseudonymous email index (the address is free to sign up again), sealed placeholders
/// for email and name, no usable password and no privileges.
pub async fn erase_account(
    c: &mut Conn,
    user_id: &str,
    p: Pseudonym,
    now: i64,
) -> Result<bool, sqlx::Error> {
    for (table, column) in [
        ("sessions", "user_id"),
        ("user_tokens", "user_id"),
        ("mfa_totp", "user_id"),
        ("recovery_codes", "user_id"),
        ("passkeys", "user_id"),
        ("webauthn_states", "owner"),
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1"))
            .bind(user_id)
            .execute(&mut *c)
            .await?;
    }
    let r = sqlx::query(
        "UPDATE users SET email_bidx = $2, email_ct = $3, display_name_ct = $4, password_hash = '!', \
         email_verified_at = NULL, superadmin = 0, deletion_due_at = NULL, erased_at = $5, updated_at = $5, \
         account_sealed = 0 \
         WHERE id = $1 AND erased_at IS NULL",
    )
    .bind(user_id)
    .bind(p.email_bidx)
    .bind(p.email_ct)
    .bind(p.display_name_ct)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}
