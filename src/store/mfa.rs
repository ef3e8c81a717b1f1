//! Second factors: the TOTP secret (encrypted), recovery codes (keyed hashes), passkeys
//! (encrypted credential), and short-lived WebAuthn ceremony state.

use sqlx::Row;

use super::Conn;

pub struct TotpRow {
    pub secret_ct: Vec<u8>,
    pub confirmed: bool,
    pub last_step: i64,
}

pub async fn get_totp(c: &mut Conn, user_id: &str) -> Result<Option<TotpRow>, sqlx::Error> {
    let row =
        sqlx::query("SELECT secret_ct, confirmed_at, last_step FROM mfa_totp WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *c)
            .await?;
    row.map(|r| {
        Ok(TotpRow {
            secret_ct: r.try_get("secret_ct")?,
            confirmed: r.try_get::<Option<i64>, _>("confirmed_at")?.is_some(),
            last_step: r.try_get("last_step")?,
        })
    })
    .transpose()
}

/// Stores a new, unconfirmed secret, replacing an unconfirmed one (a confirmed one stays).
pub async fn put_pending_totp(
    c: &mut Conn,
    user_id: &str,
    secret_ct: Vec<u8>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NULL")
        .bind(user_id)
        .execute(&mut *c)
        .await?;
    let r = sqlx::query(
        "INSERT INTO mfa_totp (user_id, secret_ct, last_step, created_at) VALUES ($1, $2, 0, $3) ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(secret_ct)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records that `step` was used, only if it is newer than every step used before: a code is
/// accepted once, even by two requests racing with it.
pub async fn use_totp_step(c: &mut Conn, user_id: &str, step: i64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE mfa_totp SET last_step = $2 WHERE user_id = $1 AND last_step < $2")
        .bind(user_id)
        .bind(step)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Confirms the pending secret; false when there was none to confirm (a concurrent confirm won).
pub async fn confirm_totp(c: &mut Conn, user_id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE mfa_totp SET confirmed_at = $2 WHERE user_id = $1 AND confirmed_at IS NULL",
    )
    .bind(user_id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn delete_totp(c: &mut Conn, user_id: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL")
        .bind(user_id)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Replaces the user's recovery codes with these hashes.
pub async fn replace_recovery_codes(
    c: &mut Conn,
    user_id: &str,
    hashes: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    delete_recovery_codes(c, user_id).await?;
    for h in hashes {
        sqlx::query("INSERT INTO recovery_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(user_id)
            .bind(h)
            .bind(now)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

pub async fn delete_recovery_codes(c: &mut Conn, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

/// Burns an unused code of this user; false when there is none.
pub async fn use_recovery_code(
    c: &mut Conn,
    user_id: &str,
    code_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL")
        .bind(user_id)
        .bind(code_hash)
        .bind(now)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn count_recovery_codes(c: &mut Conn, user_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .fetch_one(&mut *c)
        .await?
        .try_get("n")
}

pub struct PasskeyRow {
    pub id: String,
    pub credential_id: String,
    pub name: String,
    pub credential_ct: Vec<u8>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

fn passkey_from(r: sqlx::any::AnyRow) -> Result<PasskeyRow, sqlx::Error> {
    Ok(PasskeyRow {
        id: r.try_get("id")?,
        credential_id: r.try_get("credential_id")?,
        name: r.try_get("name")?,
        credential_ct: r.try_get("credential_ct")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

const PASSKEY_COLS: &str = "id, credential_id, name, credential_ct, created_at, last_used_at";

pub async fn list_passkeys(c: &mut Conn, user_id: &str) -> Result<Vec<PasskeyRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {PASSKEY_COLS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id"
    ))
    .bind(user_id)
    .fetch_all(&mut *c)
    .await?
    .into_iter()
    .map(passkey_from)
    .collect()
}

pub async fn count_passkeys(c: &mut Conn, user_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM passkeys WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut *c)
        .await?
        .try_get("n")
}

pub struct NewPasskey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub credential_id: &'a str,
    pub name: &'a str,
    pub credential_ct: Vec<u8>,
    pub now: i64,
}

pub async fn insert_passkey(c: &mut Conn, p: NewPasskey<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO passkeys (id, user_id, credential_id, name, credential_ct, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(p.id)
    .bind(p.user_id)
    .bind(p.credential_id)
    .bind(p.name)
    .bind(p.credential_ct)
    .bind(p.now)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

pub async fn update_passkey_use(
    c: &mut Conn,
    id: &str,
    credential_ct: Vec<u8>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE passkeys SET credential_ct = $2, last_used_at = $3 WHERE id = $1")
        .bind(id)
        .bind(credential_ct)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
}

pub async fn rename_passkey(
    c: &mut Conn,
    user_id: &str,
    id: &str,
    name: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE passkeys SET name = $3 WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .bind(name)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn delete_passkey(c: &mut Conn, user_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// The owner of a credential id, with the stored row.
pub async fn find_passkey_by_credential(
    c: &mut Conn,
    credential_id: &str,
) -> Result<Option<(String, PasskeyRow)>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT user_id, {PASSKEY_COLS} FROM passkeys WHERE credential_id = $1"
    ))
    .bind(credential_id)
    .fetch_optional(&mut *c)
    .await?;
    match row {
        Some(r) => {
            let uid: String = r.try_get("user_id")?;
            Ok(Some((uid, passkey_from(r)?)))
        }
        None => Ok(None),
    }
}

pub async fn put_webauthn_state(
    c: &mut Conn,
    id: &str,
    kind: &str,
    owner: &str,
    state_ct: Vec<u8>,
    expires_at: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    // Expired ceremonies are swept as new ones start; one live ceremony per owner and kind.
    sqlx::query("DELETE FROM webauthn_states WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO webauthn_states (id, kind, owner, state_ct, expires_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (owner, kind) DO UPDATE SET id = excluded.id, state_ct = excluded.state_ct, expires_at = excluded.expires_at",
    )
    .bind(id)
    .bind(kind)
    .bind(owner)
    .bind(state_ct)
    .bind(expires_at)
    .execute(&mut *c)
    .await
    .map(|_| ())
}

/// Takes (and deletes) a live ceremony state: each challenge is answered once.
pub async fn take_webauthn_state(
    c: &mut Conn,
    kind: &str,
    owner: &str,
    now: i64,
) -> Result<Option<(String, Vec<u8>)>, sqlx::Error> {
    let row = sqlx::query("DELETE FROM webauthn_states WHERE owner = $1 AND kind = $2 AND expires_at > $3 RETURNING id, state_ct")
        .bind(owner)
        .bind(kind)
        .bind(now)
        .fetch_optional(&mut *c)
        .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("state_ct")?)))
        .transpose()
}
