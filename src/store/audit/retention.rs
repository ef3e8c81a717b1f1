//! The audit tables as the retention job sees them: the list of chains, a chain's expired
//! prefix, and its removal through the retention gate. Each works in the transaction the job
//! gets from `TenantTx::for_retention` (on that transaction's chain).

use sqlx::Row;

use super::head_of;
use crate::store::tenant::{chain_of, TenantTx};
use crate::store::{Db, Dialect};

/// Every chain that has a head, for the retention job (on PostgreSQL the heads are behind
/// row-level security; a definer function lists them).
pub async fn chain_names(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    let mut c = db.acquire().await?;
    let sql = match db.dialect {
        Dialect::Postgres => "SELECT audit_chain_names() AS chain",
        Dialect::Sqlite => "SELECT chain FROM audit_chains ORDER BY chain",
    };
    sqlx::query(sql)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| r.try_get("chain"))
        .collect()
}

/// The prefix of the retention transaction's chain older than `cutoff`: `(first seq, last seq,
/// hash of the last)`, None when nothing has expired. The prefix ends before the first event
/// that has not expired (exact even if times were ever out of order: nothing younger than the
/// cutoff goes).
pub async fn expired_prefix(
    t: &mut TenantTx,
    cutoff: i64,
) -> Result<Option<(i64, i64, String)>, sqlx::Error> {
    let (c, org_id) = t.write()?;
    let chain = chain_of(org_id);
    let first_kept = sqlx::query(
        "SELECT seq FROM audit_events WHERE chain = $1 AND at >= $2 ORDER BY seq LIMIT 1",
    )
    .bind(chain)
    .bind(cutoff)
    .fetch_optional(&mut *c)
    .await?;
    let through_seq = match first_kept {
        Some(r) => r.try_get::<i64, _>("seq")? - 1,
        None => head_of(&mut *c, chain).await?.map_or(0, |h| h.0),
    };
    let first = sqlx::query("SELECT MIN(seq) AS s FROM audit_events WHERE chain = $1")
        .bind(chain)
        .fetch_one(&mut *c)
        .await?
        .try_get::<Option<i64>, _>("s")?;
    let Some(first) = first.filter(|f| *f <= through_seq) else {
        return Ok(None);
    };
    let through_hash: String =
        sqlx::query("SELECT hash FROM audit_events WHERE chain = $1 AND seq = $2")
            .bind(chain)
            .bind(through_seq)
            .fetch_one(&mut *c)
            .await?
            .try_get("hash")?;
    Ok(Some((first, through_seq, through_hash)))
}

/// Removes the retention transaction's chain through `through_seq`; the number of events
/// removed. The database lets the prefix go only while the retention gate names it: on
/// PostgreSQL through the `audit_remove_prefix` function (the application role has no DELETE on
/// the table), on SQLite by writing the gate row in the same transaction. This is the one
/// dialect branch of the audit tables outside the migrations, because SQLite has no stored
/// functions.
pub async fn remove_prefix(t: &mut TenantTx, through_seq: i64) -> Result<i64, sqlx::Error> {
    let dialect = t.dialect();
    let (c, org_id) = t.write()?;
    let chain = chain_of(org_id);
    match dialect {
        Dialect::Postgres => {
            let row = sqlx::query("SELECT audit_remove_prefix($1, $2) AS removed")
                .bind(chain)
                .bind(through_seq)
                .fetch_one(&mut *c)
                .await?;
            row.try_get("removed")
        }
        Dialect::Sqlite => {
            sqlx::query("INSERT INTO audit_retention_gate (chain, through_seq) VALUES ($1, $2)")
                .bind(chain)
                .bind(through_seq)
                .execute(&mut *c)
                .await?;
            let removed = sqlx::query("DELETE FROM audit_events WHERE chain = $1 AND seq <= $2")
                .bind(chain)
                .bind(through_seq)
                .execute(&mut *c)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM audit_retention_gate WHERE chain = $1")
                .bind(chain)
                .execute(&mut *c)
                .await?;
            i64::try_from(removed).map_err(|e| sqlx::Error::Decode(Box::new(e)))
        }
    }
}
