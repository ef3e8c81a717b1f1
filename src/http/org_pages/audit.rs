//! The org's audit trail as a page for its owners and admins: a filter form (GET, so a filtered
//! view is a link), a page of events newest first with a link to older ones, a button that
//! re-verifies the hash chain, and links to the API's exports with the same filters.
//!
//! Anyone else in the org, and anyone outside it, gets the same 404 page as for an org they cannot
//! see; the services refuse them too (`trail::list` and `trail::verify` answer `NotFound`).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::PrimitiveDateTime;

use super::*;
use crate::audit::query::{self, EventView, Filter};
use crate::audit::{Action, Report};
use crate::error::AppError;
use crate::http::problem::{ApiForm, ApiQuery};
use crate::state::AppState;
use crate::store::tenant::Mode;
use crate::tenancy::audit_trail as trail;

/// Events per page.
const AUDIT_PAGE: i64 = 50;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org_id}/audit", get(audit_page))
        .route("/orgs/{org_id}/audit/verify", post(verify_audit_submit))
}

/// The filter form as typed. Every field is optional; an empty one does not filter.
#[derive(Deserialize, Serialize, Default, Clone)]
#[serde(default)]
pub(super) struct AuditFilters {
    action: String,
    actor_id: String,
    target_id: String,
    since: String,
    until: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct AuditQuery {
    #[serde(flatten)]
    filters: AuditFilters,
    cursor: String,
}

/// A browser's `datetime-local` value (`2026-01-31T12:00`, seconds and milliseconds optional) read
/// as UTC, as RFC 3339. Anything else is passed on unchanged for `Filter::parse` to accept (full
/// RFC 3339) or refuse with its message.
fn rfc3339_time(v: &str) -> String {
    let v = v.trim();
    if v.is_empty() || time::OffsetDateTime::parse(v, &Rfc3339).is_ok() {
        return v.to_string();
    }
    let local = [
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"),
    ];
    local
        .iter()
        .find_map(|f| PrimitiveDateTime::parse(v, f).ok())
        .and_then(|t| t.assume_utc().format(&Rfc3339).ok())
        .unwrap_or_else(|| v.to_string())
}

/// A time for a `datetime-local` input: UTC without the zone.
fn local_input(ms: i64) -> String {
    query::format_time(ms).trim_end_matches('Z').to_string()
}

impl AuditFilters {
    /// The filters as the API takes them: trimmed, "any" action as none, times in RFC 3339.
    fn normalized(&self) -> AuditFilters {
        let action = self.action.trim();
        AuditFilters {
            action: if action == "any" { "" } else { action }.to_string(),
            actor_id: self.actor_id.trim().to_string(),
            target_id: self.target_id.trim().to_string(),
            since: rfc3339_time(&self.since),
            until: rfc3339_time(&self.until),
        }
    }

    fn parse(&self) -> AppResult<Filter> {
        let some = |v: &str| Some(v.to_string()).filter(|v| !v.is_empty());
        Filter::parse(
            some(&self.action).as_deref(),
            some(&self.actor_id).as_deref(),
            some(&self.target_id).as_deref(),
            some(&self.since).as_deref(),
            some(&self.until).as_deref(),
        )
    }

    /// The form as shown again: the normalized values, times as a `datetime-local` input takes
    /// them when they parsed (else as `typed`).
    fn refill(&self, typed: &AuditFilters, parsed: Option<&Filter>) -> Value {
        let time = |ms: Option<i64>, typed: &str| ms.map_or(typed.trim().to_string(), local_input);
        context! {
            action => self.action, actor_id => self.actor_id, target_id => self.target_id,
            since => time(parsed.and_then(|p| p.since), &typed.since),
            until => time(parsed.and_then(|p| p.until), &typed.until),
        }
    }

    /// The filters that are set, as query pairs (for links), plus `extra` first.
    fn query(&self, extra: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, &str)> = extra.to_vec();
        for (k, v) in [
            ("action", &self.action),
            ("actor_id", &self.actor_id),
            ("target_id", &self.target_id),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }
}

/// One row of the table.
#[derive(Serialize)]
pub(super) struct EventRow<'a> {
    seq: i64,
    at: &'a str,
    actor_id: Option<&'a str>,
    actor: Option<&'a str>,
    action: &'a str,
    target_type: Option<&'a str>,
    target_id: Option<&'a str>,
    ip: Option<&'a str>,
    hash: &'a str,
    short_hash: &'a str,
}

impl<'a> From<&'a EventView> for EventRow<'a> {
    fn from(e: &'a EventView) -> Self {
        EventRow {
            seq: e.seq,
            at: &e.at,
            actor_id: e.actor.as_ref().map(|a| a.id.as_str()),
            actor: e.actor.as_ref().and_then(|a| a.display.as_deref()),
            action: &e.action,
            target_type: e.target.as_ref().and_then(|t| t.kind.as_deref()),
            target_id: e.target.as_ref().and_then(|t| t.id.as_deref()),
            ip: e.ip.as_deref(),
            hash: &e.hash,
            short_hash: e.hash.get(..12).unwrap_or(&e.hash),
        }
    }
}

/// The org named by `{org_id}` for the trail's pages (`OrgPage`, in a read transaction also for
/// the verification form: it writes nothing): owners and admins only, everyone else the 404 page.
/// Checked before the filters are read so that nobody else learns the page exists from a 422.
pub(super) struct Auditor(OrgScope);

impl FromRequestParts<AppState> for Auditor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let OrgPage(scope, _) = OrgPage::open(parts, app, Mode::Read).await?;
        if scope.role() >= OrgRole::Admin {
            Ok(Auditor(scope))
        } else {
            Err(denied(app, &AppError::NotFound))
        }
    }
}

pub(super) async fn audit_page(
    State(app): State<AppState>,
    Auditor(mut scope): Auditor,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Response {
    audit_view(&app, &mut scope, &q.filters, non_empty(&q.cursor), None).await
}

/// Recomputes the whole chain and shows the result above the (first page of the) filtered trail.
/// A POST behind the cross-origin guard: it reads every event, so no link elsewhere can start it.
/// A verification refused (the org's budget of whole-trail scans) shows why on the same page.
pub(super) async fn verify_audit_submit(
    State(app): State<AppState>,
    Auditor(mut scope): Auditor,
    ApiForm(f): ApiForm<AuditFilters>,
) -> Response {
    let verified = trail::verify(&app, &mut scope).await;
    audit_view(&app, &mut scope, &f, None, Some(verified)).await
}

/// The trail page for `filters` from `cursor` on, with the outcome of a verification if one ran.
/// Filters that do not parse show their message (422) with the form refilled and no table; a
/// verification that failed shows its error (and status) above the table.
async fn audit_view(
    app: &AppState,
    scope: &mut OrgScope,
    filters: &AuditFilters,
    cursor: Option<String>,
    verified: Option<AppResult<Report>>,
) -> Response {
    let (report, verify_error) = match verified {
        None => (None, None),
        Some(Ok(r)) => (Some(r), None),
        Some(Err(AppError::NotFound)) => return denied(app, &AppError::NotFound),
        Some(Err(e)) => (None, Some(e)),
    };
    let org = match tenancy::get_org(app, scope).await {
        Ok(org) => org,
        Err(e) => return denied(app, &e),
    };
    let f = filters.normalized();
    let listed = async {
        let filter = f.parse()?;
        let page = trail::list(app, scope, &filter, cursor.as_deref(), Some(AUDIT_PAGE)).await?;
        Ok::<_, AppError>((filter, page))
    };
    let (list_error, filter, page) = match listed.await {
        Ok((filter, page)) => (None, Some(filter), Some(page)),
        Err(AppError::NotFound) => return denied(app, &AppError::NotFound),
        Err(e) => (Some(e), None, None),
    };
    let form = f.refill(filters, filter.as_ref());
    let rows: Vec<EventRow<'_>> = page
        .as_ref()
        .map(|p| p.items.iter().map(EventRow::from).collect())
        .unwrap_or_default();
    let older = page
        .as_ref()
        .and_then(|p| p.next_cursor.as_deref())
        .map(|c| f.query(&[("cursor", c)]));
    let actions: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    let ctx = context! {
        title => "Audit log", org => Value::from_serialize(&org), form, actions,
        hidden => Value::from_serialize(&f),
        listed => page.is_some(), events => Value::from_serialize(&rows), older,
        paged => cursor.is_some(), newest => f.query(&[]),
        export_jsonl => f.query(&[("format", "jsonl")]),
        export_csv => f.query(&[("format", "csv")]),
        report => report.map(|r| context! {
            valid => r.valid, events => r.events, first_bad_seq => r.first_bad_seq,
            last_seq => r.last_seq, last_hash => r.last_hash,
        }),
    };
    match verify_error.as_ref().or(list_error.as_ref()) {
        Some(e) => show(app, &Outcome::failed(e), "audit.html", ctx),
        None => show(app, &Outcome::default(), "audit.html", ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::rfc3339_time;

    #[test]
    fn datetime_local_values_are_read_as_utc() {
        assert_eq!(rfc3339_time("2026-01-31T12:00"), "2026-01-31T12:00:00Z");
        assert_eq!(
            rfc3339_time(" 2026-01-31T12:00:05 "),
            "2026-01-31T12:00:05Z"
        );
        assert_eq!(
            rfc3339_time("2026-01-31T12:00:05.250"),
            "2026-01-31T12:00:05.25Z"
        );
        // Full RFC 3339 passes unchanged; anything else is left for Filter::parse to refuse.
        assert_eq!(
            rfc3339_time("2026-01-31T12:00:00+02:00"),
            "2026-01-31T12:00:00+02:00"
        );
        assert_eq!(rfc3339_time("2026-02-30T12:00"), "2026-02-30T12:00");
        assert_eq!(rfc3339_time("yesterday"), "yesterday");
        assert_eq!(rfc3339_time(""), "");
    }
}
