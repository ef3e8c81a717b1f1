//! The org audit trail as its admins see it: filtered pages, exports and verification. Owners and
//! admins only; to anyone else in the org the trail does not exist (404). An org feature built on
//! the audit core (`audit::query`), with actors named through identity.

use bytes::Bytes;
use futures_util::Stream;
use serde_json::json;

use super::{OrgRole, OrgScope, Page};
use crate::audit::query::{self, EventView, Filter, Viewer};
use crate::audit::{self, Action, Report};
use crate::crypto::Keyring;
use crate::error::{AppError, AppResult};
use crate::identity::RequestCtx;
use crate::state::AppState;
use crate::store::tenant::{Mode, TenantTx};
use crate::store::users::UserRow;

/// Rows read per query when exporting.
const EXPORT_BATCH: i64 = 500;

/// A viewer that names actors by their (masked) email and display name.
pub fn viewer() -> Viewer {
    Viewer::new(open_actor)
}

fn open_actor(keyring: &Keyring, u: &UserRow) -> Option<(String, String)> {
    crate::identity::decrypt_user(keyring, u).ok()
}

/// Owners and admins; anyone else in the org meets a trail that does not exist.
pub fn require_auditor(scope: &OrgScope) -> AppResult<()> {
    if scope.role() >= OrgRole::Admin {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// Exports and verifications read the whole chain: a budget per org keeps them from being a
/// lever against the database.
async fn limit_scans(app: &AppState, org_id: &str) -> AppResult<()> {
    app.limiter
        .hit(
            &format!("audit-scan:{org_id}"),
            app.config.rate_limits.audit_scans_per_org,
        )
        .await?;
    Ok(())
}

/// A page of the org's events matching `f`, newest first.
pub async fn list(
    app: &AppState,
    scope: &mut OrgScope,
    f: &Filter,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Page<EventView>> {
    require_auditor(scope)?;
    let before = query::decode_cursor(cursor)?;
    let limit = super::page_limit(limit)?;
    let events = query::page(scope.tx(), f, before, limit + 1).await?;
    let more = events.len() as i64 > limit;
    let mut viewer = viewer();
    let mut items = Vec::with_capacity(events.len());
    for e in events.into_iter().take(usize::try_from(limit).unwrap_or(0)) {
        items.push(viewer.view(scope.tx(), &app.keyring, e).await?);
    }
    let next_cursor = if more {
        items.last().map(|e| query::encode_cursor(e.seq))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// Recomputes the org's chain.
pub async fn verify(app: &AppState, scope: &mut OrgScope) -> AppResult<Report> {
    require_auditor(scope)?;
    limit_scans(app, scope.org_id()).await?;
    let (org, user) = (scope.org_id().to_string(), scope.user_id().to_string());
    // Each batch in a read transaction of its own, entered as the caller again (a member removed
    // meanwhile reads no further).
    let begin = || reenter(app, &org, &user);
    Ok(query::verify_chain(begin, Some(&app.keyring)).await?)
}

/// A read transaction on the org for a long read (verification, export) that runs in batches,
/// after the membership and auditor check again: a member removed or demoted meanwhile reads no
/// further.
async fn reenter(app: &AppState, org: &str, user: &str) -> Result<TenantTx, sqlx::Error> {
    match TenantTx::enter(&app.db, org, user, None, Mode::Read).await? {
        Some((tx, access)) if OrgRole::parse(&access.role).is_some_and(|r| r >= OrgRole::Admin) => {
            Ok(tx)
        }
        _ => Err(sqlx::Error::RowNotFound),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv,
}

struct Export {
    app: AppState,
    org: String,
    user: String,
    filter: Filter,
    format: Format,
    after: i64,
    upto: i64,
    viewer: Viewer,
    header: bool,
    done: bool,
}

const CSV_HEADER: [&str; 12] = [
    "seq",
    "id",
    "at",
    "actor_id",
    "actor_display",
    "action",
    "target_type",
    "target_id",
    "ip",
    "metadata",
    "prev_hash",
    "hash",
];

/// A spreadsheet must not run a cell as a formula: text that starts like one is quoted.
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn csv_bytes(rows: &[Vec<String>]) -> Result<Vec<u8>, std::io::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(r.iter().map(|c| cell(c)))
            .map_err(std::io::Error::other)?;
    }
    w.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

impl Export {
    /// The next chunk of the body; None at the end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, anyhow::Error> {
        if self.done {
            return Ok(None);
        }
        let mut out = Vec::new();
        if !self.header && self.format == Format::Csv {
            self.header = true;
            out.extend(csv_bytes(&[CSV_HEADER
                .iter()
                .map(|s| s.to_string())
                .collect()])?);
        }
        let mut tx = reenter(&self.app, &self.org, &self.user).await?;
        let batch =
            query::batch_ascending(&mut tx, &self.filter, self.after, self.upto, EXPORT_BATCH)
                .await?;
        if (batch.len() as i64) < EXPORT_BATCH {
            self.done = true;
        }
        let mut rows = Vec::new();
        for e in batch {
            self.after = e.seq;
            let v = self.viewer.view(&mut tx, &self.app.keyring, e).await?;
            match self.format {
                Format::JsonLines => {
                    serde_json::to_writer(&mut out, &v)?;
                    out.push(b'\n');
                }
                Format::Csv => rows.push(vec![
                    v.seq.to_string(),
                    v.id,
                    v.at,
                    v.actor.as_ref().map(|a| a.id.clone()).unwrap_or_default(),
                    v.actor.and_then(|a| a.display).unwrap_or_default(),
                    v.action,
                    v.target
                        .as_ref()
                        .and_then(|t| t.kind.clone())
                        .unwrap_or_default(),
                    v.target.and_then(|t| t.id).unwrap_or_default(),
                    v.ip.unwrap_or_default(),
                    audit::canonical(&v.metadata),
                    v.prev_hash,
                    v.hash,
                ]),
            }
        }
        tx.commit().await?;
        if !rows.is_empty() {
            out.extend(csv_bytes(&rows)?);
        }
        Ok(Some(Bytes::from(out)))
    }
}

/// The org's whole chain up to seq `upto` as JSON Lines (what `strongroom audit verify --file`
/// reads), a batch at a time, read as `user` (an owner's org export).
pub(crate) struct ChainLines(Export);

impl ChainLines {
    pub(crate) fn new(app: &AppState, org: &str, user: &str, upto: i64) -> Self {
        ChainLines(Export {
            app: app.clone(),
            org: org.to_string(),
            user: user.to_string(),
            filter: Filter::default(),
            format: Format::JsonLines,
            after: 0,
            upto,
            viewer: viewer(),
            header: false,
            done: false,
        })
    }

    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, anyhow::Error> {
        self.0.next_chunk().await
    }
}

/// The org's events matching `f`, oldest first, as a stream of body chunks read in batches (so
/// memory stays flat whatever the size of the trail). The export itself is audited first; the
/// export covers the chain as it stood at that moment.
pub async fn export(
    app: &AppState,
    scope: &mut OrgScope,
    ctx: &RequestCtx,
    f: Filter,
    format: Format,
) -> AppResult<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static> {
    require_auditor(scope)?;
    limit_scans(app, scope.org_id()).await?;
    let org_id = scope.org_id().to_string();
    let upto = audit::head(scope.tx()).await?.map_or(0, |h| h.0);
    let fmt = match format {
        Format::JsonLines => "jsonl",
        Format::Csv => "csv",
    };
    super::audit_org(
        scope,
        ctx,
        Action::AuditExported,
        ("org", &org_id),
        json!({ "format": fmt, "filters": f, "through_seq": upto }),
        app.clock.now_ms(),
    )
    .await?;
    scope.commit().await?;
    let state = Export {
        app: app.clone(),
        org: scope.org_id().to_string(),
        user: scope.user_id().to_string(),
        filter: f,
        format,
        after: 0,
        upto,
        viewer: viewer(),
        header: false,
        done: false,
    };
    Ok(futures_util::stream::unfold(state, |mut st| async move {
        match st.next_chunk().await {
            Ok(Some(b)) => Some((Ok(b), st)),
            Ok(None) => None,
            Err(e) => {
                // The body ends short of its end; the client sees a broken transfer.
                tracing::error!(error = %format!("{e:#}"), "audit export failed");
                st.done = true;
                Some((Err(std::io::Error::other("export failed")), st))
            }
        }
    }))
}
