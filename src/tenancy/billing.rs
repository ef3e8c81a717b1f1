//! Inbound billing events from Stripe: verified (`Stripe-Signature`, HMAC-SHA256 of
//! `{t}.{payload}` under `billing.stripe_webhook_secret`, five minutes' tolerance, any of several
//! `v1` signatures, compared in constant time), recorded once by event id (a duplicate is
//! acknowledged and changes nothing), and, for subscription events, setting the org's plan (an
//! audit event on the org's chain). The org comes from the event's `metadata.org_id` or, failing
//! that, from the customer id an earlier event linked to it.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::Row;

use crate::audit::{self, Action};
use crate::error::{AppError, AppResult};
use crate::state::App;
use crate::store::tenant::{Mode, TenantTx};

/// How far a signature's timestamp may be from now.
const TOLERANCE_SECS: i64 = 300;

/// The plan of an org without a subscription.
pub const FREE: &str = "free";

fn bad(code: &'static str, detail: &str) -> AppError {
    AppError::BadRequest {
        code,
        detail: detail.into(),
    }
}

/// Checks `header` (`t=...,v1=...[,v1=...]`) against `payload` at `now_secs`.
pub fn verify(secret: &str, header: &str, payload: &[u8], now_secs: i64) -> AppResult<()> {
    let mut t: Option<i64> = None;
    let mut sigs: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse().ok(),
            Some(("v1", v)) => {
                if let Ok(sig) = hex::decode(v) {
                    sigs.push(sig);
                }
            }
            _ => {}
        }
    }
    let (Some(t), false) = (t, sigs.is_empty()) else {
        return Err(bad(
            "invalid_signature",
            "Stripe-Signature: expected t=<timestamp>,v1=<signature>.",
        ));
    };
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(payload);
    let matches = sigs.iter().any(|sig| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(&signed);
        // Constant-time comparison.
        mac.verify_slice(sig).is_ok()
    });
    if !matches {
        return Err(bad("invalid_signature", "The signature does not match."));
    }
    if (now_secs - t).abs() > TOLERANCE_SECS {
        return Err(bad(
            "stale_timestamp",
            "The signature's timestamp is more than five minutes from now.",
        ));
    }
    Ok(())
}

/// What became of an event.
#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub received: bool,
    /// Seen before: acknowledged, nothing done.
    pub duplicate: bool,
    /// The org whose plan it set, if any.
    pub org_id: Option<String>,
    pub plan: Option<String>,
}

fn plan_of(sub: &Value) -> String {
    let price = &sub["items"]["data"][0]["price"];
    sub["metadata"]["plan"]
        .as_str()
        .or_else(|| price["lookup_key"].as_str())
        .or_else(|| price["nickname"].as_str())
        .or_else(|| price["id"].as_str())
        .unwrap_or("paid")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect()
}

/// Verifies and handles one delivery of the billing webhook.
pub async fn receive(app: &App, signature: Option<&str>, payload: &[u8]) -> AppResult<Outcome> {
    let Some(secret) = app
        .config
        .billing
        .stripe_webhook_secret
        .as_deref()
        .filter(|s| !s.is_empty())
    else {
        return Err(AppError::NotFound);
    };
    let now = app.clock.now_ms();
    verify(
        secret,
        signature.ok_or_else(|| bad("invalid_signature", "Stripe-Signature is missing."))?,
        payload,
        now / 1000,
    )?;
    let event: Value = serde_json::from_slice(payload)
        .map_err(|_| bad("invalid_event", "The body is not a JSON event."))?;
    let (Some(id), Some(kind)) = (event["id"].as_str(), event["type"].as_str()) else {
        return Err(bad("invalid_event", "The event has no id or type."));
    };
    if id.is_empty() || id.len() > 255 || kind.len() > 255 {
        return Err(bad("invalid_event", "The event id or type is not valid."));
    }
    let object = &event["data"]["object"];
    let customer = object["customer"].as_str().filter(|c| c.len() <= 255);
    let created = event["created"].as_i64().unwrap_or(0);
    let org_id = find_org(app, object, customer).await?;
    let subscription = matches!(
        kind,
        "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted"
    );
    let (Some(org_id), true) = (org_id.clone(), subscription) else {
        // Nothing to set: the event is only recorded (once).
        let mut tx = app.db.begin().await?;
        let fresh = record(&mut tx, id, kind, org_id.as_deref(), now).await?;
        tx.commit().await?;
        return Ok(Outcome {
            received: true,
            duplicate: !fresh,
            org_id: None,
            plan: None,
        });
    };
    // The event's record, the plan and its audit event commit together, or not at all (so a
    // retry after a failure is not taken for a duplicate of something that never happened).
    let mut t = TenantTx::for_billing(&app.db, &org_id, Mode::Write).await?;
    if !record(t.write()?.0, id, kind, Some(&org_id), now).await? {
        t.rollback().await?;
        return Ok(Outcome {
            received: true,
            duplicate: true,
            org_id: None,
            plan: None,
        });
    }
    let status = object["status"]
        .as_str()
        .unwrap_or("unknown")
        .chars()
        .take(32)
        .collect::<String>();
    let plan = if kind == "customer.subscription.deleted"
        || matches!(
            status.as_str(),
            "canceled" | "incomplete_expired" | "unpaid"
        ) {
        FREE.to_string()
    } else {
        plan_of(object)
    };
    let c = t.write()?.0;
    let before: Option<String> = sqlx::query("SELECT plan FROM billing_accounts WHERE org_id = $1")
        .bind(&org_id)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| r.try_get("plan"))
        .transpose()?;
    // Stripe does not promise order: an event older than the one that set the plan changes
    // nothing.
    let applied = sqlx::query(
        "INSERT INTO billing_accounts (org_id, customer_id, plan, status, updated_at, event_created) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (org_id) DO UPDATE SET customer_id = COALESCE($2, billing_accounts.customer_id), \
         plan = $3, status = $4, updated_at = $5, event_created = $6 \
         WHERE billing_accounts.event_created <= $6",
    )
    .bind(&org_id)
    .bind(customer)
    .bind(&plan)
    .bind(&status)
    .bind(now)
    .bind(created)
    .execute(&mut *c)
    .await?
    .rows_affected()
        == 1;
    let from = before.unwrap_or_else(|| FREE.to_string());
    if applied && from != plan {
        let ev = audit::Event {
            actor_id: None,
            action: Action::BillingPlanChanged,
            target_type: Some("org"),
            target_id: Some(&org_id),
            ip: None,
            metadata: json!({ "from": from, "to": plan, "status": status, "event_id": id }),
        };
        audit::append_org(&mut t, now, ev).await?;
    }
    t.commit().await?;
    Ok(Outcome {
        received: true,
        duplicate: false,
        org_id: Some(org_id),
        plan: applied.then_some(plan),
    })
}

/// Keeps the event's id; false when it was kept before (a duplicate).
async fn record(
    c: &mut crate::store::Conn,
    id: &str,
    kind: &str,
    org_id: Option<&str>,
    now: i64,
) -> AppResult<bool> {
    Ok(sqlx::query(
        "INSERT INTO billing_events (event_id, event_type, org_id, received_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(id)
    .bind(kind)
    .bind(org_id)
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected()
        == 1)
}

/// The org an event names: its `metadata.org_id` (if that org exists), else the org an earlier
/// event linked to its customer id.
async fn find_org(app: &App, object: &Value, customer: Option<&str>) -> AppResult<Option<String>> {
    let mut c = app.db.read().await?;
    let found = match object["metadata"]["org_id"].as_str() {
        // The org's data key names it (the orgs table itself is behind row-level security).
        Some(o) if uuid::Uuid::parse_str(o).is_ok() => {
            sqlx::query("SELECT DISTINCT id FROM data_keys WHERE id = $1")
                .bind(o)
                .fetch_optional(&mut *c)
                .await?
                .map(|r| r.try_get::<String, _>("id"))
                .transpose()?
        }
        _ => match customer {
            Some(cus) => sqlx::query("SELECT org_id FROM billing_accounts WHERE customer_id = $1")
                .bind(cus)
                .fetch_optional(&mut *c)
                .await?
                .map(|r| r.try_get::<String, _>("org_id"))
                .transpose()?,
            None => None,
        },
    };
    Ok(found)
}

/// The org's plan as the billing events set it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PlanView {
    pub plan: String,
    pub status: String,
    pub updated_at: Option<String>,
}

pub async fn plan(scope: &mut super::OrgScope) -> AppResult<PlanView> {
    scope.require(super::OrgRole::Admin)?;
    // In the request's own transaction (the table has no row-level policy: it is read by org id).
    let (c, org_id) = scope.tx().read()?;
    let row =
        sqlx::query("SELECT plan, status, updated_at FROM billing_accounts WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(c)
            .await?;
    Ok(match row {
        Some(r) => PlanView {
            plan: r.try_get("plan")?,
            status: r.try_get("status")?,
            updated_at: Some(crate::clock::rfc3339(r.try_get("updated_at")?)),
        },
        None => PlanView {
            plan: FREE.into(),
            status: "none".into(),
            updated_at: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(secret: &str, t: i64, payload: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(format!("{t}.").as_bytes());
        mac.update(payload);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_are_checked_with_tolerance_and_several_v1_values() {
        let body = br#"{"id":"evt_1"}"#;
        let good = header("whsec_test", 1_000, body);
        assert!(verify("whsec_test", &good, body, 1_000).is_ok());
        assert!(verify("whsec_test", &good, body, 1_300).is_ok());
        assert!(verify("whsec_test", &good, body, 1_301).is_err(), "stale");
        assert!(
            verify("whsec_test", &good, body, 699).is_err(),
            "from the future"
        );
        assert!(verify("whsec_other", &good, body, 1_000).is_err());
        assert!(verify("whsec_test", &good, br#"{"id":"evt_2"}"#, 1_000).is_err());
        // An old secret's signature beside the right one (Stripe's rollover) passes.
        let both = format!("{good},v1={}", "ab".repeat(32));
        assert!(verify("whsec_test", &both, body, 1_000).is_ok());
        for junk in ["", "t=1000", "v1=00", "t=x,v1=zz", "garbage"] {
            assert!(verify("whsec_test", junk, body, 1_000).is_err(), "{junk}");
        }
    }
}
