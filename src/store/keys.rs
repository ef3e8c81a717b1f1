//! The rows key rotation works on: the wrapped data keys, and every column sealed under an org's
//! data key, read in id order a batch at a time and replaced only where unchanged meanwhile.

use sqlx::Row;

use super::tenant::TenantTx;
use super::Conn;

/// Every stored data key: `(id, version)`.
pub async fn all_data_keys(c: &mut Conn) -> Result<Vec<(String, u32)>, sqlx::Error> {
    sqlx::query("SELECT id, version FROM data_keys ORDER BY id, version")
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| {
            let v: i64 = r.try_get("version")?;
            Ok((r.try_get("id")?, u32::try_from(v).unwrap_or(0)))
        })
        .collect()
}

/// One stored data key's wrapped bytes.
pub async fn wrapped(c: &mut Conn, id: &str, version: u32) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query("SELECT wrapped FROM data_keys WHERE id = $1 AND version = $2")
        .bind(id)
        .bind(i64::from(version))
        .fetch_optional(&mut *c)
        .await?
        .map(|r| r.try_get("wrapped"))
        .transpose()
}

/// Replaces a wrapped key if it is still `old`; whether it was.
pub async fn replace_wrapped(
    c: &mut Conn,
    id: &str,
    version: u32,
    old: &[u8],
    new: &[u8],
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE data_keys SET wrapped = $1 WHERE id = $2 AND version = $3 AND wrapped = $4",
    )
    .bind(new.to_vec())
    .bind(id)
    .bind(i64::from(version))
    .bind(old.to_vec())
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The versions of this org's key below `version` (dropped when a rotation ends).
pub async fn drop_versions_below(t: &mut TenantTx, version: u32) -> Result<u64, sqlx::Error> {
    let (c, org_id) = t.write()?;
    sqlx::query("DELETE FROM data_keys WHERE id = $1 AND version < $2")
        .bind(org_id)
        .bind(i64::from(version))
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected())
}

/// How a sealed column stores its ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// The ciphertext bytes.
    Blob,
    /// `sealed:` and the ciphertext in base64 (status names kept in text columns).
    Text,
}

/// A column sealed under the org key: where it is (`table`.`column`, the org in `org_column`, the
/// row in `id`) and what its ciphertexts are bound to (`ad_table`, `ad_column`, the row id after
/// `ad_row_prefix`).
#[derive(Clone, Copy, Debug)]
pub struct SealedColumn {
    pub table: &'static str,
    pub org_column: &'static str,
    pub column: &'static str,
    pub stored: Stored,
    pub ad_table: &'static str,
    pub ad_column: &'static str,
    pub ad_row_prefix: &'static str,
    /// A table whose rows only their user may change (notifications, on PostgreSQL its row-level
    /// security): the column naming that user; each user's rows are re-sealed in their context.
    pub per_user: Option<&'static str>,
}

/// A stored value of a sealed column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Blob(Vec<u8>),
    Text(String),
}

/// Rows of this org in `table` after `after` (by id), with the columns asked for: `(id, values)`
/// (a missing value is `None`).
pub async fn batch(
    t: &mut TenantTx,
    table: &'static str,
    org_column: &'static str,
    columns: &[(&'static str, Stored)],
    user: Option<(&'static str, &str)>,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, Vec<Option<Value>>)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let list: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
    // Names from the static table of sealed columns, never from input.
    let (user_column, user_id) = user.unwrap_or(("''", ""));
    let sql = format!(
        "SELECT id, {} FROM {table} WHERE {org_column} = $1 AND {user_column} = $4 AND id > $2 ORDER BY id LIMIT $3",
        list.join(", ")
    );
    let rows = sqlx::query(&sql)
        .bind(org_id)
        .bind(after)
        .bind(limit)
        .bind(user_id)
        .fetch_all(&mut *c)
        .await?;
    rows.iter()
        .map(|r| {
            let id: String = r.try_get("id")?;
            let values = columns
                .iter()
                .map(|(name, stored)| {
                    Ok(match stored {
                        Stored::Blob => r.try_get::<Option<Vec<u8>>, _>(*name)?.map(Value::Blob),
                        Stored::Text => r.try_get::<Option<String>, _>(*name)?.map(Value::Text),
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            Ok((id, values))
        })
        .collect()
}

/// Replaces one sealed value if it is still `old`; whether it was (a request that changed it
/// meanwhile sealed its own value under the current key).
pub async fn replace(
    t: &mut TenantTx,
    table: &'static str,
    org_column: &'static str,
    column: &'static str,
    id: &str,
    old: &Value,
    new: &Value,
) -> Result<bool, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let sql = format!(
        "UPDATE {table} SET {column} = $1 WHERE {org_column} = $2 AND id = $3 AND {column} = $4"
    );
    let q = sqlx::query(&sql);
    let q = match new {
        Value::Blob(b) => q.bind(b.clone()),
        Value::Text(s) => q.bind(s.clone()),
    };
    let q = q.bind(org_id).bind(id);
    let q = match old {
        Value::Blob(b) => q.bind(b.clone()),
        Value::Text(s) => q.bind(s.clone()),
    };
    Ok(q.execute(&mut *c).await?.rows_affected() == 1)
}

/// Rows of this org in `table`: the size of a rotation's work.
pub async fn count(
    t: &mut TenantTx,
    table: &'static str,
    org_column: &'static str,
) -> Result<u64, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {org_column} = $1");
    let n: i64 = sqlx::query(&sql)
        .bind(org_id)
        .fetch_one(&mut *c)
        .await?
        .try_get("n")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// An item's or comment's workspace and item: `(workspace_id, item_id)`.
pub async fn text_place(
    t: &mut TenantTx,
    table: &'static str,
    id: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let item_col = if table == "items" { "id" } else { "item_id" };
    let sql = format!(
        "SELECT workspace_id, {item_col} AS item_id FROM {table} WHERE org_id = $1 AND id = $2"
    );
    sqlx::query(&sql)
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| Ok((r.try_get("workspace_id")?, r.try_get("item_id")?)))
        .transpose()
}

/// When this org's key `version` was stored (a rotation's start).
pub async fn key_created_at(t: &mut TenantTx, version: u32) -> Result<Option<i64>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    sqlx::query("SELECT created_at FROM data_keys WHERE id = $1 AND version = $2")
        .bind(org_id)
        .bind(i64::from(version))
        .fetch_optional(&mut *c)
        .await?
        .map(|r| r.try_get("created_at"))
        .transpose()
}

/// The users who own rows of this org in `table` (by `user_column`).
pub async fn users_with_rows(
    t: &mut TenantTx,
    table: &'static str,
    user_column: &'static str,
) -> Result<Vec<String>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let sql = format!(
        "SELECT DISTINCT {user_column} AS u FROM {table} WHERE org_id = $1 ORDER BY {user_column}"
    );
    sqlx::query(&sql)
        .bind(org_id)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| r.try_get("u"))
        .collect()
}
