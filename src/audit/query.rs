//! Reading the trail: filtered pages (newest first), exports (oldest first, in batches, constant
//! memory) and verification from the database.
//!
//! A page is a range of sequence numbers walked through an index: the cursor is the last seq
//! handed out, so events appended meanwhile (always at the top) never shift a later page. Time
//! bounds are turned into sequence bounds first (times never go backwards along a chain), so a
//! time range costs two index probes, whatever the size of the chain (`store::audit::select`).

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{StoredEvent, Verifier};
use crate::crypto::Keyring;
use crate::error::{AppError, AppResult};
use crate::store;
use crate::store::audit::{Match, Order};
use crate::store::tenant::TenantTx;
use crate::store::users::UserRow;

/// Filters on the trail; every one optional.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Filter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Unix milliseconds, inclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// Unix milliseconds, exclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

fn invalid(detail: &str) -> AppError {
    AppError::invalid("invalid_filter", detail)
}

fn some(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// A time given as RFC 3339 (`2026-01-31T12:00:00Z`), as unix milliseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Unix milliseconds as RFC 3339 with milliseconds, UTC.
pub fn format_time(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

impl Filter {
    /// Checks the raw query values; anything malformed is a 422 naming the parameter.
    pub fn parse(
        action: Option<&str>,
        actor_id: Option<&str>,
        target_id: Option<&str>,
        since: Option<&str>,
        until: Option<&str>,
    ) -> AppResult<Filter> {
        let action = match some(action) {
            None => None,
            Some(a) => Some(
                super::Action::parse(a)
                    .ok_or_else(|| invalid("action is not an action this server records."))?
                    .as_str()
                    .to_string(),
            ),
        };
        let actor_id = match some(actor_id) {
            None => None,
            Some(a) => Some(
                uuid::Uuid::parse_str(a)
                    .map_err(|_| invalid("actor_id must be a user id."))?
                    .to_string(),
            ),
        };
        let target_id = match some(target_id) {
            None => None,
            Some(t)
                if t.len() <= 100
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
            {
                Some(t.to_string())
            }
            Some(_) => return Err(invalid("target_id is not an id.")),
        };
        let time = |v: Option<&str>, name: &str| -> AppResult<Option<i64>> {
            match some(v) {
                None => Ok(None),
                Some(s) => parse_time(s).map(Some).ok_or_else(|| {
                    invalid(&format!(
                        "{name} must be an RFC 3339 time such as 2026-01-31T12:00:00Z."
                    ))
                }),
            }
        };
        let since = time(since, "since")?;
        let until = time(until, "until")?;
        if let (Some(s), Some(u)) = (since, until) {
            if s >= u {
                return Err(invalid("since must be earlier than until."));
            }
        }
        Ok(Filter {
            action,
            actor_id,
            target_id,
            since,
            until,
        })
    }
}

/// Page cursors: the last sequence number handed out.
pub fn encode_cursor(seq: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("seq:{seq}"))
}

pub fn decode_cursor(c: Option<&str>) -> AppResult<Option<i64>> {
    use base64::Engine;
    let Some(c) = c.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("seq:")?.parse::<i64>().ok())
        .filter(|s| *s > 0)
        .map(Some)
        .ok_or_else(|| {
            AppError::invalid(
                "invalid_cursor",
                "The cursor is not one this server gave out.",
            )
        })
}

impl Filter {
    /// The filter as the store reads it.
    fn as_match(&self) -> Match<'_> {
        Match {
            action: self.action.as_deref(),
            actor_id: self.actor_id.as_deref(),
            target_id: self.target_id.as_deref(),
            since: self.since,
            until: self.until,
        }
    }
}

/// Up to `limit` events matching `f`, newest first, below the seq `before` (a cursor).
pub async fn page(
    t: &mut TenantTx,
    f: &Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let upto = before.map_or(i64::MAX, |b| b - 1);
    let rows = store::audit::select(t, &f.as_match(), (0, upto), limit, Order::NewestFirst).await?;
    Ok(rows.into_iter().map(StoredEvent::from).collect())
}

/// Up to `limit` events matching `f`, oldest first, after the seq `after` and up to `upto`.
pub async fn batch_ascending(
    t: &mut TenantTx,
    f: &Filter,
    after: i64,
    upto: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let m = f.as_match();
    let rows = store::audit::select(t, &m, (after, upto), limit, Order::OldestFirst).await?;
    Ok(rows.into_iter().map(StoredEvent::from).collect())
}

/// Who acted, as the trail shows it: the user id and a masked name and email.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActorView {
    pub id: String,
    pub display: Option<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetView {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub id: Option<String>,
}

/// An event as the API, the page and exports show it. Every field the hash covers is here, so an
/// export verifies on its own (`strongroom audit verify --file`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventView {
    pub id: String,
    pub chain: String,
    pub seq: i64,
    /// RFC 3339, milliseconds, UTC.
    pub at: String,
    pub actor: Option<ActorView>,
    pub action: String,
    pub target: Option<TargetView>,
    /// Masked when written (IPv4 /24, IPv6 /48).
    pub ip: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl EventView {
    /// The stored event this view shows (for verifying an export).
    pub fn to_stored(&self) -> Option<StoredEvent> {
        Some(StoredEvent {
            id: self.id.clone(),
            chain: self.chain.clone(),
            seq: self.seq,
            at: parse_time(&self.at)?,
            actor_id: self.actor.as_ref().map(|a| a.id.clone()),
            action: self.action.clone(),
            target_type: self.target.as_ref().and_then(|t| t.kind.clone()),
            target_id: self.target.as_ref().and_then(|t| t.id.clone()),
            ip: self.ip.clone(),
            metadata: self.metadata.clone(),
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        })
    }
}

/// How a viewer names an actor: the account's email and display name in clear, if it can be
/// read (the viewer masks them). Accounts are identity's business, so the caller supplies it.
pub type OpenActor = fn(&Keyring, &UserRow) -> Option<(String, String)>;

/// Turns stored events into views, looking actors up once each (a bounded cache).
pub struct Viewer {
    names: HashMap<String, Option<String>>,
    open: OpenActor,
}

impl Viewer {
    /// A viewer that names actors with `open`.
    pub fn new(open: OpenActor) -> Self {
        Self {
            names: HashMap::new(),
            open,
        }
    }

    pub async fn view(
        &mut self,
        t: &mut TenantTx,
        keyring: &Keyring,
        e: StoredEvent,
    ) -> Result<EventView, sqlx::Error> {
        let actor = match &e.actor_id {
            None => None,
            Some(id) => {
                if !self.names.contains_key(id) {
                    if self.names.len() >= 10_000 {
                        self.names.clear();
                    }
                    let display = store::users::find_by_id(t.conn()?, id)
                        .await?
                        .and_then(|u| (self.open)(keyring, &u))
                        .map(|(email, name)| {
                            format!(
                                "{} <{}>",
                                crate::mask::name(&name),
                                crate::mask::email(&email)
                            )
                        });
                    self.names.insert(id.clone(), display);
                }
                Some(ActorView {
                    id: id.clone(),
                    display: self.names.get(id).cloned().flatten(),
                })
            }
        };
        let target = (e.target_type.is_some() || e.target_id.is_some()).then(|| TargetView {
            kind: e.target_type.clone(),
            id: e.target_id.clone(),
        });
        Ok(EventView {
            at: format_time(e.at),
            id: e.id,
            chain: e.chain,
            seq: e.seq,
            actor,
            action: e.action,
            target,
            ip: e.ip,
            metadata: e.metadata,
            prev_hash: e.prev_hash,
            hash: e.hash,
        })
    }
}

/// Verifies a chain in the database, batch by batch, against its recorded head: every event is
/// read, also past the head (a rewound head shows). An empty chain does not verify (an org's
/// chain always holds at least its creation, and retention always leaves its checkpoint). A
/// chain that fails is read once more, so a retention run between two batches cannot make an
/// intact chain look broken. `begin` opens a read transaction on the chain (each batch in a
/// transaction of its own, so a long verification holds no snapshot open).
pub async fn verify_chain<F, Fut>(
    begin: F,
    keyring: Option<&Keyring>,
) -> Result<super::Report, sqlx::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<TenantTx, sqlx::Error>>,
{
    let first = verify_once(&begin, keyring).await?;
    if first.valid {
        return Ok(first);
    }
    verify_once(&begin, keyring).await
}

async fn verify_once<F, Fut>(
    begin: &F,
    keyring: Option<&Keyring>,
) -> Result<super::Report, sqlx::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<TenantTx, sqlx::Error>>,
{
    let mut tx = begin().await?;
    let chain = tx.chain().to_string();
    let chain = chain.as_str();
    // No head row at all reads as an empty head: any event then shows as beyond it.
    let head = super::head(&mut tx)
        .await?
        .unwrap_or((0, super::GENESIS.to_string()));
    tx.commit().await?;
    let upto = i64::MAX;
    let mut v = Verifier::new(chain, keyring);
    let mut after = 0;
    loop {
        let mut tx = begin().await?;
        let batch = batch_ascending(&mut tx, &Filter::default(), after, upto, 1000).await?;
        tx.commit().await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for e in &batch {
            v.feed(e);
        }
    }
    let mut report = v.finish(Some(head));
    if report.events == 0 {
        report.valid = false;
        report.first_bad_seq = Some(1);
    }
    Ok(report)
}
