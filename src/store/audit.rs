//! The audit tables: `audit_events` (append-only, one hash chain per org and one for the
//! platform) and `audit_chains` (each chain's head). Plain rows go in and out; the chain itself
//! (hashes, canonical JSON, verification, checkpoints) is the `audit` module's.
//!
//! Reads and appends on an org's chain take the org's `TenantTx` and work on its chain
//! (`TenantTx::chain`), never on a chain the caller names; the platform chain's take a
//! connection and reach that chain only. Removing a prefix is for the retention job only
//! (`retention`, private to the crate), in the transaction it gets from `TenantTx::for_retention`.

pub(crate) mod retention;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::Row;

use super::tenant::{chain_of, TenantTx, PLATFORM_CHAIN};
use super::Conn;

/// The `prev_hash` of a chain's first event (and the hash of a chain head before any event).
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event row as stored. `metadata` is the JSON text as written (canonical when the
/// application wrote it: the `audit` module decides what any other text means).
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: String,
    pub chain: String,
    pub seq: i64,
    pub at: i64,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub metadata: String,
    pub prev_hash: String,
    pub hash: String,
}

const COLUMNS: &str =
    "id, chain, seq, at, actor_id, action, target_type, target_id, ip, metadata, prev_hash, hash";

fn event_row(r: &AnyRow) -> Result<EventRow, sqlx::Error> {
    Ok(EventRow {
        id: r.try_get("id")?,
        chain: r.try_get("chain")?,
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor_id: r.try_get("actor_id")?,
        action: r.try_get("action")?,
        target_type: r.try_get("target_type")?,
        target_id: r.try_get("target_id")?,
        ip: r.try_get("ip")?,
        metadata: r.try_get("metadata")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// Where an append lands: the chain's head moved on by one (and locked until the transaction
/// ends), with the hash and time of the event before.
#[derive(Debug)]
pub struct Head<'a> {
    pub chain: &'a str,
    pub seq: i64,
    pub prev_hash: String,
    pub last_at: i64,
}

/// Appends one event to the transaction's chain (the org's; the platform's in the retention
/// job's transaction outside any org). `seal` makes the row from the head it lands on (the
/// caller hashes it there); see `append_to`.
pub(crate) async fn append<F>(t: &mut TenantTx, seal: F) -> Result<i64, sqlx::Error>
where
    F: FnOnce(Head<'_>) -> EventRow,
{
    let (c, org_id) = t.audit()?;
    append_to(c, chain_of(org_id), seal).await
}

/// Appends one event to the platform chain inside the caller's transaction; see `append`.
pub(crate) async fn append_platform<F>(c: &mut Conn, seal: F) -> Result<i64, sqlx::Error>
where
    F: FnOnce(Head<'_>) -> EventRow,
{
    append_to(c, PLATFORM_CHAIN, seal).await
}

/// Three statements: move the head, insert the event `seal` made for it, record its hash and
/// time on the head. The event's seq.
async fn append_to<F>(c: &mut Conn, chain: &str, seal: F) -> Result<i64, sqlx::Error>
where
    F: FnOnce(Head<'_>) -> EventRow,
{
    // Creates the chain's head on its first event, else moves it on by one; either way it locks
    // the head row until the transaction ends: appends to one chain are serialized.
    let head = sqlx::query(
        "INSERT INTO audit_chains (chain, last_seq, last_hash) VALUES ($1, 1, $2) \
         ON CONFLICT (chain) DO UPDATE SET last_seq = audit_chains.last_seq + 1 \
         RETURNING last_seq, last_hash, last_at",
    )
    .bind(chain)
    .bind(GENESIS)
    .fetch_one(&mut *c)
    .await?;
    let seq: i64 = head.try_get("last_seq")?;
    let row = seal(Head {
        chain,
        seq,
        prev_hash: head.try_get("last_hash")?,
        last_at: head.try_get("last_at")?,
    });
    if row.chain != chain || row.seq != seq {
        return Err(sqlx::Error::Protocol(
            "an audit event was sealed for another place than its chain's head".into(),
        ));
    }
    sqlx::query(
        "INSERT INTO audit_events (id, chain, seq, at, actor_id, action, target_type, target_id, ip, metadata, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&row.id)
    .bind(chain)
    .bind(seq)
    .bind(row.at)
    .bind(&row.actor_id)
    .bind(&row.action)
    .bind(&row.target_type)
    .bind(&row.target_id)
    .bind(&row.ip)
    .bind(&row.metadata)
    .bind(&row.prev_hash)
    .bind(&row.hash)
    .execute(&mut *c)
    .await?;
    sqlx::query("UPDATE audit_chains SET last_hash = $2, last_at = $3 WHERE chain = $1")
        .bind(chain)
        .bind(&row.hash)
        .bind(row.at)
        .execute(&mut *c)
        .await?;
    Ok(seq)
}

/// The transaction's chain head as the database records it: `(last_seq, last_hash)`.
pub async fn head(t: &mut TenantTx) -> Result<Option<(i64, String)>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    head_of(c, chain_of(org_id)).await
}

async fn head_of(c: &mut Conn, chain: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
    let row = sqlx::query("SELECT last_seq, last_hash FROM audit_chains WHERE chain = $1")
        .bind(chain)
        .fetch_optional(&mut *c)
        .await?;
    row.map(|r| Ok((r.try_get("last_seq")?, r.try_get("last_hash")?)))
        .transpose()
}

/// Events of the transaction's chain in order, after `after_seq`, at most `limit`.
pub async fn batch(
    t: &mut TenantTx,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    batch_of(c, chain_of(org_id), after_seq, limit).await
}

/// Events of the platform chain in order, after `after_seq`, at most `limit`.
pub async fn platform_batch(
    c: &mut Conn,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    batch_of(c, PLATFORM_CHAIN, after_seq, limit).await
}

async fn batch_of(
    c: &mut Conn,
    chain: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    ))
    .bind(chain)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(event_row).collect()
}

/// Events of `chain` whose actor or target is `user_id`, by seq after `after` (a person's export).
pub async fn about(
    c: &mut Conn,
    chain: &str,
    user_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE chain = $1 AND seq > $2 \
         AND (actor_id = $3 OR target_id = $3) ORDER BY seq LIMIT $4"
    ))
    .bind(chain)
    .bind(after)
    .bind(user_id)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(event_row).collect()
}

/// What a filtered read wants; every field optional (the `audit` module checks the values).
#[derive(Debug, Clone, Copy, Default)]
pub struct Match<'a> {
    pub action: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub target_id: Option<&'a str>,
    /// Unix milliseconds, inclusive.
    pub since: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub until: Option<i64>,
}

/// The order of a filtered read, by seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

enum Bind<'a> {
    I(i64),
    S(&'a str),
}

/// A WHERE clause over one chain, with its values.
struct Where<'a> {
    sql: String,
    binds: Vec<Bind<'a>>,
}

impl<'a> Where<'a> {
    fn new(chain: &'a str) -> Self {
        Self {
            sql: "chain = $1".into(),
            binds: vec![Bind::S(chain)],
        }
    }
    fn and(&mut self, cond: &str, b: Bind<'a>) {
        self.binds.push(b);
        self.sql
            .push_str(&format!(" AND {cond} ${}", self.binds.len()));
    }
    fn query<'q>(&'q self, sql: &'q str) -> sqlx::query::Query<'q, sqlx::Any, AnyArguments<'q>> {
        let mut q = sqlx::query(sql);
        for b in &self.binds {
            q = match b {
                Bind::I(i) => q.bind(*i),
                Bind::S(s) => q.bind(*s),
            };
        }
        q
    }
}

/// The sequence range `[lo, hi]` a time range covers; None when it holds no event.
async fn seq_bounds(
    c: &mut Conn,
    chain: &str,
    m: &Match<'_>,
) -> Result<Option<(i64, i64)>, sqlx::Error> {
    let mut lo = 1;
    let mut hi = i64::MAX;
    if let Some(since) = m.since {
        let r = sqlx::query(
            "SELECT seq FROM audit_events WHERE chain = $1 AND at >= $2 ORDER BY at, seq LIMIT 1",
        )
        .bind(chain)
        .bind(since)
        .fetch_optional(&mut *c)
        .await?;
        match r {
            Some(r) => lo = r.try_get("seq")?,
            None => return Ok(None),
        }
    }
    if let Some(until) = m.until {
        let r = sqlx::query("SELECT seq FROM audit_events WHERE chain = $1 AND at < $2 ORDER BY at DESC, seq DESC LIMIT 1")
            .bind(chain)
            .bind(until)
            .fetch_optional(&mut *c)
            .await?;
        match r {
            Some(r) => hi = r.try_get("seq")?,
            None => return Ok(None),
        }
    }
    Ok((lo <= hi).then_some((lo, hi)))
}

/// The clause for `m` within the seq range `[lo, hi]`.
fn clause<'a>(chain: &'a str, m: &Match<'a>, lo: i64, hi: i64) -> Where<'a> {
    let mut w = Where::new(chain);
    if lo > 1 {
        w.and("seq >=", Bind::I(lo));
    }
    if hi < i64::MAX {
        w.and("seq <=", Bind::I(hi));
    }
    if let Some(a) = m.action {
        w.and("action =", Bind::S(a));
    }
    if let Some(a) = m.actor_id {
        w.and("actor_id =", Bind::S(a));
    }
    if let Some(t) = m.target_id {
        w.and("target_id =", Bind::S(t));
    }
    // Exact even for events written before times were kept monotonic. `at + 0` matches no index
    // on purpose: the seq bounds already narrow the walk; an index on `at` would make PostgreSQL
    // read and sort the whole range before the LIMIT (measured: 1-year range, p99 318 ms -> 10 ms).
    if let Some(s) = m.since {
        w.and("at + 0 >=", Bind::I(s));
    }
    if let Some(u) = m.until {
        w.and("at + 0 <", Bind::I(u));
    }
    w
}

/// Events of the transaction's chain matching `m` with a seq in `(after, upto]`, in `order`, at
/// most `limit`. Time bounds become seq bounds first (times never go backwards along a chain), so
/// a time range costs two index probes whatever the size of the chain.
pub async fn select(
    t: &mut TenantTx,
    m: &Match<'_>,
    (after, upto): (i64, i64),
    limit: i64,
    order: Order,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let (c, org_id) = t.read()?;
    let chain = chain_of(org_id);
    let Some((lo, hi)) = seq_bounds(c, chain, m).await? else {
        return Ok(Vec::new());
    };
    let mut w = clause(chain, m, lo.max(after + 1), hi.min(upto));
    w.binds.push(Bind::I(limit));
    let order = match order {
        Order::NewestFirst => "DESC",
        Order::OldestFirst => "ASC",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events WHERE {} ORDER BY seq {order} LIMIT ${}",
        w.sql,
        w.binds.len()
    );
    let rows = w.query(&sql).fetch_all(&mut *c).await?;
    rows.iter().map(event_row).collect()
}
