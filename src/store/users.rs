//! Accounts. Email and display name are stored only as ciphertexts; the email is found through its
//! blind index.

use sqlx::Row;

use super::Conn;

pub struct UserRow {
    pub id: String,
    pub email_ct: Vec<u8>,
    pub display_name_ct: Vec<u8>,
    pub password_hash: String,
    pub email_verified_at: Option<i64>,
    pub created_at: i64,
    /// When the account is to be erased, if its owner asked for that.
    pub deletion_due_at: Option<i64>,
}

const COLS: &str =
    "id, email_ct, display_name_ct, password_hash, email_verified_at, created_at, deletion_due_at";

fn from_row(r: sqlx::any::AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: r.try_get("id")?,
        email_ct: r.try_get("email_ct")?,
        display_name_ct: r.try_get("display_name_ct")?,
        password_hash: r.try_get("password_hash")?,
        email_verified_at: r.try_get("email_verified_at")?,
        created_at: r.try_get("created_at")?,
        deletion_due_at: r.try_get("deletion_due_at")?,
    })
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email_bidx: &'a str,
    pub email_ct: Vec<u8>,
    pub display_name_ct: Vec<u8>,
    pub password_hash: &'a str,
    pub now: i64,
}

pub async fn insert(c: &mut Conn, u: NewUser<'_>) -> Result<(), sqlx::Error> {
    let sealed = i64::from(crate::crypto::sealed_for_account(&u.email_ct));
    sqlx::query(
        "INSERT INTO users (id, email_bidx, email_ct, display_name_ct, password_hash, created_at, updated_at, account_sealed) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
    )
    .bind(u.id)
    .bind(u.email_bidx)
    .bind(u.email_ct)
    .bind(u.display_name_ct)
    .bind(u.password_hash)
    .bind(u.now)
    .bind(sealed)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

pub async fn find_by_email_bidx(c: &mut Conn, bidx: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLS} FROM users WHERE email_bidx = $1"))
        .bind(bidx)
        .fetch_optional(&mut *c)
        .await?
        .map(from_row)
        .transpose()
}

/// What a login needs, in one query whatever the account's state: the account with this email
/// blind index, if any, and the password hash of its latest pending signup, if any. Every login
/// makes exactly this one query, so an unknown address costs what a known one does.
pub async fn login_candidate(
    c: &mut Conn,
    bidx: &str,
    now: i64,
) -> Result<(Option<UserRow>, Option<String>), sqlx::Error> {
    let Some(r) = sqlx::query(&format!(
        "SELECT {COLS}, (SELECT t.password_hash FROM user_tokens t WHERE t.user_id = users.id \
           AND t.purpose IN ('verify_email', 'pending_signup') AND t.used_at IS NULL AND t.expires_at > $2 \
           AND t.password_hash IS NOT NULL ORDER BY t.created_at DESC, t.id DESC LIMIT 1) AS signup_hash \
         FROM users WHERE email_bidx = $1"
    ))
    .bind(bidx)
    .bind(now)
    .fetch_optional(&mut *c)
    .await?
    else {
        return Ok((None, None));
    };
    let signup_hash: Option<String> = r.try_get("signup_hash")?;
    Ok((Some(from_row(r)?), signup_hash))
}

pub async fn find_by_id(c: &mut Conn, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .map(from_row)
        .transpose()
}

/// The account with its second factors in one query: whether a confirmed authenticator app is
/// enrolled and how many passkeys are registered (what `/me` answers).
pub async fn find_with_factors(
    c: &mut Conn,
    id: &str,
) -> Result<Option<(UserRow, bool, i64)>, sqlx::Error> {
    let Some(r) = sqlx::query(&format!(
        "SELECT {COLS}, \
         (SELECT COUNT(*) FROM mfa_totp t WHERE t.user_id = users.id AND t.confirmed_at IS NOT NULL) AS totp, \
         (SELECT COUNT(*) FROM passkeys p WHERE p.user_id = users.id) AS passkeys \
         FROM users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    else {
        return Ok(None);
    };
    let totp: i64 = r.try_get("totp")?;
    let passkeys: i64 = r.try_get("passkeys")?;
    Ok(Some((from_row(r)?, totp > 0, passkeys)))
}

pub async fn mark_verified(c: &mut Conn, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET email_verified_at = $2, updated_at = $2 WHERE id = $1 AND email_verified_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

pub async fn set_password_hash(
    c: &mut Conn,
    id: &str,
    hash: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

pub async fn set_display_name(
    c: &mut Conn,
    id: &str,
    ct: Vec<u8>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET display_name_ct = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(ct)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

/// Replaces the password hash only if it is still `expected`; false when it changed meanwhile.
/// On PostgreSQL the row lock it takes also orders a login against a concurrent reset: whichever
/// commits second sees the other's change.
pub async fn swap_password_hash(
    c: &mut Conn,
    id: &str,
    expected: &str,
    new: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE users SET password_hash = $3, updated_at = $4 WHERE id = $1 AND password_hash = $2",
    )
    .bind(id)
    .bind(expected)
    .bind(new)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Takes the user's row lock for the rest of the transaction (PostgreSQL; SQLite serializes
/// writers anyway), so that two requests changing the same account's factors run one after the
/// other.
pub async fn lock(c: &mut Conn, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

pub async fn is_superadmin(c: &mut Conn, id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("SELECT superadmin FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| r.try_get::<i64, _>("superadmin"))
        .transpose()?
        .unwrap_or(0)
        != 0)
}

/// Marks a verified account as platform superadmin; false when there is no such account.
pub async fn make_superadmin(
    c: &mut Conn,
    email_bidx: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query("UPDATE users SET superadmin = 1 WHERE email_bidx = $1 AND email_verified_at IS NOT NULL RETURNING id")
        .bind(email_bidx)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| r.try_get("id"))
        .transpose()
}

/// Which of `ids` are erased accounts.
pub async fn erased_among(
    c: &mut Conn,
    ids: &[&str],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let mut out = std::collections::HashSet::new();
    for chunk in ids.chunks(100) {
        let marks = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT id FROM users WHERE erased_at IS NOT NULL AND id IN ({marks})");
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *c).await? {
            out.insert(r.try_get("id")?);
        }
    }
    Ok(out)
}

/// Accounts (not erased) whose fields are not yet sealed with their shred secrets, after `after`
/// in id order: at most `limit`.
pub async fn unsealed_accounts(
    c: &mut Conn,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query(
        "SELECT id FROM users WHERE account_sealed = 0 AND erased_at IS NULL AND id > $1 \
         ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?
    .into_iter()
    .map(|r| r.try_get("id"))
    .collect()
}

/// A session's id and its sealed IP address and user agent.
pub type SessionFields = (String, Option<Vec<u8>>, Option<Vec<u8>>);

/// One account's sealed fields and its sessions', to be re-sealed.
pub struct AccountFields {
    pub email_ct: Vec<u8>,
    pub display_name_ct: Vec<u8>,
    pub sessions: Vec<SessionFields>,
}

pub async fn account_fields(c: &mut Conn, id: &str) -> Result<Option<AccountFields>, sqlx::Error> {
    let Some(r) = sqlx::query(
        "SELECT email_ct, display_name_ct FROM users WHERE id = $1 AND account_sealed = 0 \
         AND erased_at IS NULL",
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    else {
        return Ok(None);
    };
    let sessions = sqlx::query("SELECT id, ip_ct, user_agent_ct FROM sessions WHERE user_id = $1")
        .bind(id)
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(|s| {
            Ok((
                s.try_get("id")?,
                s.try_get("ip_ct")?,
                s.try_get("user_agent_ct")?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Some(AccountFields {
        email_ct: r.try_get("email_ct")?,
        display_name_ct: r.try_get("display_name_ct")?,
        sessions,
    }))
}

/// Replaces an account's fields read as `old` by `new` and marks it sealed; each row only if it
/// still holds what was read (compare-and-set). False when the account changed meanwhile.
pub async fn replace_account_fields(
    c: &mut Conn,
    id: &str,
    old: &AccountFields,
    new: &AccountFields,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE users SET email_ct = $2, display_name_ct = $3, account_sealed = 1 \
         WHERE id = $1 AND account_sealed = 0 AND erased_at IS NULL AND email_ct = $4 AND display_name_ct = $5",
    )
    .bind(id)
    .bind(&new.email_ct)
    .bind(&new.display_name_ct)
    .bind(&old.email_ct)
    .bind(&old.display_name_ct)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if done != 1 {
        return Ok(false);
    }
    for ((sid, ip, ua), (_, old_ip, old_ua)) in new.sessions.iter().zip(&old.sessions) {
        if ip == old_ip && ua == old_ua {
            continue;
        }
        sqlx::query(
            "UPDATE sessions SET ip_ct = $2, user_agent_ct = $3 WHERE id = $1 \
             AND ip_ct IS NOT DISTINCT FROM $4 AND user_agent_ct IS NOT DISTINCT FROM $5",
        )
        .bind(sid)
        .bind(ip)
        .bind(ua)
        .bind(old_ip)
        .bind(old_ua)
        .execute(&mut *c)
        .await?;
    }
    Ok(true)
}

/// The ids of every account not erased (whose shred secrets the purge keeps).
pub async fn live_ids(c: &mut Conn) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query("SELECT id FROM users WHERE erased_at IS NULL")
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(|r| r.try_get("id"))
        .collect()
}
