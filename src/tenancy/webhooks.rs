//! Outbound webhooks: org admins register an endpoint and the events it wants; the delivery loop
//! sends each event signed per the Standard Webhooks spec, through the SSRF guard, with retries.
//!
//! The org's audit chain is the outbox: every change that a webhook announces is already an audit
//! event written in the change's own transaction, so the loop reads the events after each
//! endpoint's cursor (`dispatch`) and queues one message per event and endpoint; no write path
//! does anything for webhooks. Payloads are thin: the event's type, its object's id and type, the
//! acting user's id and the event's (already masked) audit metadata, never names or content; a
//! receiver fetches what it needs with an API key.
//!
//! Delivery (`deliver_due`): the URL is checked again by the guard (its name resolved again, every
//! address judged) and the request goes only to the checked addresses, with a 10 s timeout and no
//! redirects. 2xx is delivered; anything else is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h
//! and 10 h (about 28 hours in all, past the 24 the contract asks), then failed. After
//! `webhooks.disable_after_failures` failed attempts in a row the endpoint is disabled and the
//! org's admins are emailed. Deliveries run concurrently (`webhooks.max_in_flight`), one at a
//! time per endpoint so that its messages keep their order, and at most
//! `webhooks.max_in_flight_per_org` for one org, so that no endpoint or org holds up the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::{audit_org, decode_cursor, page, page_limit, OrgRole, OrgScope, Page};
use crate::audit::Action;
use crate::crypto::TenantKey;
use crate::error::{AppError, AppResult};
use crate::identity::{AuthSession, RequestCtx};
use crate::mail;
use crate::net_guard::NetGuard;
use crate::state::{App, AppState};
use crate::store;
use crate::store::tenant::{Mode, TenantTx};
use crate::store::webhooks as db;

/// The events an endpoint may ask for (`*`: all of them).
pub const EVENTS: [&str; 8] = [
    "item.created",
    "item.updated",
    "item.deleted",
    "comment.created",
    "document.uploaded",
    "document.deleted",
    "member.added",
    "member.removed",
];

/// The webhook event an audit action announces, if any.
fn event_of(action: &str) -> Option<&'static str> {
    match action {
        "invitation.accepted" => Some("member.added"),
        a => EVENTS.into_iter().find(|e| *e == a),
    }
}

/// Seconds to wait before each retry.
const BACKOFF_SECS: [i64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];

const SECRET_PREFIX: &str = "whsec_";

fn new_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(b)
    )
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed by the secret's base64 part.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX)?)
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{msg_id}.{timestamp}.{body}").as_bytes());
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// What the loop needs beyond the app: the guard and the client built around it.
pub struct Sender {
    pub guard: NetGuard,
    pub client: reqwest13::Client,
}

impl Sender {
    pub fn new(cfg: &crate::config::WebhooksConfig) -> anyhow::Result<Self> {
        let guard = NetGuard::new(&cfg.allow_networks, cfg.allow_http)?;
        let client = guard.client(Duration::from_secs(cfg.timeout_secs))?;
        Ok(Sender { guard, client })
    }
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_by: String,
    pub created_at: String,
    /// `active` or `disabled`.
    pub status: &'static str,
    pub disabled_at: Option<String>,
    pub disabled_reason: Option<String>,
    /// Failed attempts in a row.
    pub failures: i64,
    /// Until when the previous secret still signs deliveries, after a rotation.
    pub previous_secret_until: Option<String>,
}

/// A new endpoint or a rotated secret: `secret` is shown this once.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookSecret {
    pub id: String,
    pub secret: String,
    #[serde(flatten)]
    pub view: WebhookView,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub message_id: String,
    pub event: String,
    pub attempt: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub at: String,
}

fn url_ad(id: &str) -> (&'static str, &'static str, &str) {
    ("webhooks", "url", id)
}

fn view(key: &TenantKey, h: &db::HookRow, now: i64) -> AppResult<WebhookView> {
    let (t, c, r) = url_ad(&h.id);
    let rfc = crate::clock::rfc3339;
    Ok(WebhookView {
        id: h.id.clone(),
        url: key.open_string(t, c, r, &h.url_ct)?,
        events: h.events.split(' ').map(str::to_string).collect(),
        created_by: h.created_by.clone(),
        created_at: rfc(h.created_at),
        status: if h.disabled_at.is_some() {
            "disabled"
        } else {
            "active"
        },
        disabled_at: h.disabled_at.map(rfc),
        disabled_reason: h.disabled_reason.clone(),
        failures: h.failures,
        previous_secret_until: h.old_secret_until.filter(|u| *u > now).map(rfc),
    })
}

fn unsafe_url(e: &crate::net_guard::UnsafeUrl) -> AppError {
    AppError::invalid(
        "unsafe_url",
        format!("url: {e}. Webhooks go to public HTTPS endpoints only."),
    )
}

fn parse_events(raw: &[String]) -> AppResult<String> {
    let bad = || {
        AppError::invalid(
            "invalid_events",
            "events: one or more of item.created, item.updated, item.deleted, comment.created, document.uploaded, document.deleted, member.added, member.removed, or \"*\".",
        )
    };
    if raw.is_empty() {
        return Err(bad());
    }
    if raw.iter().any(|e| e == "*") {
        return if raw.len() == 1 {
            Ok("*".into())
        } else {
            Err(bad())
        };
    }
    let mut out: Vec<&str> = Vec::new();
    for e in raw {
        let known = EVENTS.into_iter().find(|k| k == e).ok_or_else(bad)?;
        if !out.contains(&known) {
            out.push(known);
        }
    }
    Ok(out.join(" "))
}

/// Registers an endpoint (org admins, after a recent step-up): the URL must pass the SSRF guard.
pub async fn create(
    app: &AppState,
    ctx: &RequestCtx,
    s: &AuthSession,
    org_id: &str,
    url: &str,
    events: &[String],
) -> AppResult<WebhookSecret> {
    // Who may, checked in a read transaction that ends before the URL's name is resolved: no
    // transaction (on SQLite, the one writer) waits on DNS.
    super::authorize(app, s, org_id, Mode::Read)
        .await?
        .require(OrgRole::Admin)?;
    crate::identity::mfa::require_recent_auth(app, s)?;
    let events = parse_events(events)?;
    if url.len() > 2000 {
        return Err(AppError::invalid(
            "unsafe_url",
            "url: at most 2000 characters.",
        ));
    }
    crate::ratelimit::creation(
        &*app.limiter,
        "webhook",
        org_id,
        app.config.rate_limits.api_keys_per_org,
    )
    .await?;
    let checked = app
        .webhooks
        .guard
        .check_url(url)
        .await
        .map_err(|e| unsafe_url(&e))?;
    let mut scope = super::authorize(app, s, org_id, Mode::Write).await?;
    let scope = &mut scope;
    scope.require(OrgRole::Admin)?;
    let now = app.clock.now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    let secret = new_secret();
    let url = checked.to_string();
    let (t, c, r) = url_ad(&id);
    let url_ct = scope.key().seal(t, c, r, url.as_bytes());
    let secret_ct = scope
        .key()
        .seal("webhooks", "secret", &id, secret.as_bytes());
    let user = scope.user_id().to_string();
    db::insert(
        scope.tx(),
        db::NewHook {
            id: &id,
            url_ct,
            events: &events,
            secret_ct,
            created_by: &user,
            now,
        },
    )
    .await?;
    audit_org(
        scope,
        ctx,
        Action::WebhookCreated,
        ("webhook", &id),
        json!({ "host": checked.host_str(), "events": events }),
        now,
    )
    .await?;
    let row = db::get(scope.tx(), &id).await?.ok_or(AppError::NotFound)?;
    let view = view(scope.key(), &row, now)?;
    scope.commit().await?;
    Ok(WebhookSecret { id, secret, view })
}

pub async fn list(
    app: &App,
    scope: &mut OrgScope,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Page<WebhookView>> {
    scope.require(OrgRole::Admin)?;
    let limit = page_limit(limit)?;
    let after = decode_cursor(cursor)?;
    let now = app.clock.now_ms();
    let rows = db::list(scope.tx(), &after, limit + 1).await?;
    let views = rows
        .iter()
        .map(|h| view(scope.key(), h, now))
        .collect::<AppResult<Vec<_>>>()?;
    Ok(page(views, limit, |v: &WebhookView| v.id.clone()))
}

async fn existing(scope: &mut OrgScope, id: &str) -> AppResult<db::HookRow> {
    scope.require(OrgRole::Admin)?;
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(AppError::NotFound);
    }
    db::get(scope.tx(), id).await?.ok_or(AppError::NotFound)
}

/// One endpoint (org admins).
pub async fn get(app: &App, scope: &mut OrgScope, id: &str) -> AppResult<WebhookView> {
    let row = existing(scope, id).await?;
    view(scope.key(), &row, app.clock.now_ms())
}

pub async fn delete(app: &App, ctx: &RequestCtx, scope: &mut OrgScope, id: &str) -> AppResult<()> {
    existing(scope, id).await?;
    let now = app.clock.now_ms();
    db::delete(scope.tx(), id).await?;
    audit_org(
        scope,
        ctx,
        Action::WebhookDeleted,
        ("webhook", id),
        json!({}),
        now,
    )
    .await?;
    scope.commit().await?;
    Ok(())
}

/// A new secret, shown once; the previous one keeps signing too for
/// `webhooks.rotation_overlap_secs`, so receivers can switch without missing a delivery.
pub async fn rotate_secret(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    scope: &mut OrgScope,
    id: &str,
) -> AppResult<WebhookSecret> {
    let h = existing(scope, id).await?;
    crate::identity::mfa::require_recent_auth(app, s)?;
    let now = app.clock.now_ms();
    let until = now + i64::try_from(app.config.webhooks.rotation_overlap_secs * 1000).unwrap_or(0);
    let secret = new_secret();
    let secret_ct = scope
        .key()
        .seal("webhooks", "secret", id, secret.as_bytes());
    db::rotate(scope.tx(), id, secret_ct, h.secret_ct, until).await?;
    audit_org(
        scope,
        ctx,
        Action::WebhookSecretRotated,
        ("webhook", id),
        json!({ "previous_valid_until": crate::clock::rfc3339(until) }),
        now,
    )
    .await?;
    let row = db::get(scope.tx(), id).await?.ok_or(AppError::NotFound)?;
    let view = view(scope.key(), &row, now)?;
    scope.commit().await?;
    Ok(WebhookSecret {
        id: id.to_string(),
        secret,
        view,
    })
}

/// Turns a disabled endpoint on again (its failures forgotten; events since it was disabled
/// are not sent: its cursor moves on to now).
pub async fn enable(
    app: &App,
    ctx: &RequestCtx,
    scope: &mut OrgScope,
    id: &str,
) -> AppResult<WebhookView> {
    existing(scope, id).await?;
    let now = app.clock.now_ms();
    db::set_disabled(scope.tx(), id, None).await?;
    audit_org(
        scope,
        ctx,
        Action::WebhookEnabled,
        ("webhook", id),
        json!({}),
        now,
    )
    .await?;
    let head = store::audit::head(scope.tx()).await?.map_or(0, |h| h.0);
    db::advance_cursor(scope.tx(), id, head).await?;
    let row = db::get(scope.tx(), id).await?.ok_or(AppError::NotFound)?;
    let view = view(scope.key(), &row, now)?;
    scope.commit().await?;
    Ok(view)
}

/// Test events and redeliveries one endpoint may be sent per hour (each may hold the delivery
/// loop for up to the timeout).
const MANUAL_SENDS: crate::config::Limit = crate::config::Limit::new(60, 3600);

/// Queues a `webhook.test` event for the endpoint, due now.
pub async fn send_test(
    app: &App,
    ctx: &RequestCtx,
    scope: &mut OrgScope,
    id: &str,
) -> AppResult<String> {
    existing(scope, id).await?;
    crate::ratelimit::creation(&*app.limiter, "webhook-send", id, MANUAL_SENDS).await?;
    let now = app.clock.now_ms();
    let msg = uuid::Uuid::now_v7().to_string();
    let payload = json!({
        "type": "webhook.test",
        "timestamp": crate::clock::rfc3339(now),
        "data": { "org_id": scope.org_id(), "webhook_id": id },
    })
    .to_string();
    db::insert_message(
        scope.tx(),
        db::NewMessage {
            id: &msg,
            webhook_id: id,
            event_id: &msg,
            event_type: "webhook.test",
            payload: &payload,
            now,
        },
    )
    .await?;
    audit_org(
        scope,
        ctx,
        Action::WebhookTested,
        ("webhook", id),
        json!({}),
        now,
    )
    .await?;
    scope.commit().await?;
    Ok(msg)
}

/// Sends the message of one logged attempt again, now.
pub async fn redeliver(
    app: &App,
    ctx: &RequestCtx,
    scope: &mut OrgScope,
    id: &str,
    delivery_id: &str,
) -> AppResult<()> {
    existing(scope, id).await?;
    if uuid::Uuid::parse_str(delivery_id).is_err() {
        return Err(AppError::NotFound);
    }
    let msg = db::message_of_delivery(scope.tx(), id, delivery_id)
        .await?
        .ok_or(AppError::NotFound)?;
    crate::ratelimit::creation(&*app.limiter, "webhook-send", id, MANUAL_SENDS).await?;
    let now = app.clock.now_ms();
    db::requeue(scope.tx(), &msg, now).await?;
    audit_org(
        scope,
        ctx,
        Action::WebhookRedelivered,
        ("webhook", id),
        json!({ "message_id": msg }),
        now,
    )
    .await?;
    scope.commit().await?;
    Ok(())
}

pub async fn deliveries(
    scope: &mut OrgScope,
    id: &str,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Page<DeliveryView>> {
    existing(scope, id).await?;
    let limit = page_limit(limit)?;
    let after = decode_cursor(cursor)?;
    let rows = db::deliveries(scope.tx(), id, &after, limit + 1).await?;
    let views = rows
        .into_iter()
        .map(|d| DeliveryView {
            id: d.id,
            message_id: d.message_id,
            event: d.event_type,
            attempt: d.attempt,
            status_code: d.status_code,
            error: d.error,
            duration_ms: d.duration_ms,
            at: crate::clock::rfc3339(d.at),
        })
        .collect();
    Ok(page(views, limit, |v: &DeliveryView| v.id.clone()))
}

/// Turns new audit events into messages for every enabled endpoint that asked for them. Returns
/// how many messages were queued.
pub async fn dispatch(app: &App) -> AppResult<usize> {
    let now = app.clock.now_ms();
    let lease = i64::try_from(app.config.webhooks.timeout_secs * 1000 + 30_000).unwrap_or(60_000);
    let mut queued = 0;
    let hooks = {
        let mut c = app.db.acquire().await?;
        db::enabled_cursors(&mut c).await?
    };
    for (hook_id, org_id, seen) in hooks {
        // Nothing new in the org's chain: no claim, no write transaction (a read only).
        match moved(app, &org_id, seen).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(webhook = %hook_id, error = %e, "webhook dispatch");
                continue;
            }
        }
        // One org's trouble (say, a key that does not open) is logged and skipped: the others'
        // events still go out; the failed cursor is taken again once its lease ends.
        match dispatch_one(app, &hook_id, now, lease).await {
            Ok(n) => queued += n,
            Err(e) => tracing::warn!(webhook = %hook_id, error = %e, "webhook dispatch"),
        }
    }
    Ok(queued)
}

/// Whether the org's chain has events after `seq`.
async fn moved(app: &App, org_id: &str, seq: i64) -> AppResult<bool> {
    let mut tx = TenantTx::for_webhooks(&app.db, org_id, Mode::Read).await?;
    let head = store::audit::head(&mut tx).await?.map_or(0, |h| h.0);
    Ok(head > seq)
}

/// `dispatch` for one endpoint.
async fn dispatch_one(app: &App, hook_id: &str, now: i64, lease: i64) -> AppResult<usize> {
    let hook_id = hook_id.to_string();
    let mut queued = 0;
    {
        let claimed = {
            let mut c = app.db.acquire().await?;
            db::claim_cursor(&mut c, &hook_id, now, lease).await?
        };
        let Some((org_id, last_seq)) = claimed else {
            return Ok(0);
        };
        let mut tx = TenantTx::for_webhooks(&app.db, &org_id, Mode::Write).await?;
        let Some(hook) = db::get(&mut tx, &hook_id).await? else {
            return Ok(0);
        };
        let wanted: Vec<&str> = hook.events.split(' ').collect();
        let events = store::audit::batch(&mut tx, last_seq, 500).await?;
        let last = events.last().map_or(last_seq, |e| e.seq);
        for e in &events {
            let Some(kind) = event_of(&e.action) else {
                continue;
            };
            if !wanted.contains(&"*") && !wanted.contains(&kind) {
                continue;
            }
            let metadata: Value = serde_json::from_str(&e.metadata).unwrap_or(Value::Null);
            let mut data = json!({
                "org_id": org_id,
                "object": e.target_type,
                "id": e.target_id,
                "actor_id": e.actor_id,
                "metadata": metadata,
            });
            if kind == "member.added" {
                // An accepted invitation: the new member is whoever accepted it.
                data["object"] = json!("user");
                data["id"] = json!(e.actor_id);
            }
            let payload = json!({
                "type": kind,
                "timestamp": crate::clock::rfc3339(e.at),
                "data": data,
            })
            .to_string();
            let msg = uuid::Uuid::now_v7().to_string();
            let new = db::insert_message(
                &mut tx,
                db::NewMessage {
                    id: &msg,
                    webhook_id: &hook_id,
                    event_id: &e.id,
                    event_type: kind,
                    payload: &payload,
                    now,
                },
            )
            .await?;
            queued += usize::from(new);
        }
        db::advance_cursor(&mut tx, &hook_id, last).await?;
        tx.commit().await?;
    }
    Ok(queued)
}

/// Deliveries under way, a task each.
type InFlight = tokio::task::JoinSet<(String, AppResult<()>)>;

/// Sends every due message once, several at a time (`webhooks.max_in_flight`, one per endpoint,
/// `webhooks.max_in_flight_per_org` per org), and waits for them. Returns how many attempts were
/// made.
pub async fn deliver_due(app: &AppState) -> AppResult<usize> {
    let mut in_flight = InFlight::new();
    let mut attempts = top_up(app, &mut in_flight).await?;
    while let Some(done) = in_flight.join_next().await {
        finished(done);
        // A slot is free, and the endpoint whose delivery ended may have another message due.
        attempts += top_up(app, &mut in_flight).await?;
    }
    Ok(attempts)
}

/// Claims due messages and starts their deliveries until `webhooks.max_in_flight` are under way
/// or nothing more may start now. Returns how many it started.
async fn top_up(app: &AppState, in_flight: &mut InFlight) -> AppResult<usize> {
    let lease = i64::try_from(app.config.webhooks.timeout_secs * 1000 + 30_000).unwrap_or(60_000);
    let cap = usize::try_from(app.config.webhooks.max_in_flight).unwrap_or(1);
    let per_org = i64::from(app.config.webhooks.max_in_flight_per_org);
    let mut started = 0;
    while in_flight.len() < cap {
        let now = app.clock.now_ms();
        let claimed = {
            let mut c = app.db.acquire().await?;
            db::claim_due(&mut c, now, lease, per_org).await?
        };
        let Some((msg_id, org_id)) = claimed else {
            break;
        };
        let app = Arc::clone(app);
        in_flight.spawn(async move {
            let r = attempt(&app, &org_id, &msg_id).await;
            (msg_id, r)
        });
        started += 1;
    }
    Ok(started)
}

/// Logs a delivery task that went wrong. Its message stays claimed until the lease ends, then is
/// tried again (a receiver may see it twice, with the same `webhook-id`).
fn finished(done: Result<(String, AppResult<()>), tokio::task::JoinError>) {
    match done {
        Ok((_, Ok(()))) => {}
        Ok((msg, Err(e))) => tracing::warn!(message = %msg, error = %e, "webhook delivery"),
        Err(e) => tracing::error!(error = %e, "webhook delivery task"),
    }
}

async fn attempt(app: &AppState, org_id: &str, msg_id: &str) -> AppResult<()> {
    // Read what to send, then let the transaction go before the network is touched.
    let (msg, hook, url, secrets) = {
        let mut tx = TenantTx::for_webhooks(&app.db, org_id, Mode::Read).await?;
        let Some(msg) = db::message(&mut tx, msg_id).await? else {
            return Ok(());
        };
        let Some(hook) = db::get(&mut tx, &msg.webhook_id).await? else {
            return Ok(());
        };
        let key = super::org_key(app, &mut tx)
            .await?
            .ok_or(AppError::NotFound)?;
        let (t, c, r) = url_ad(&hook.id);
        let url = key.open_string(t, c, r, &hook.url_ct)?;
        let now = app.clock.now_ms();
        let mut secrets = vec![key.open_string("webhooks", "secret", &hook.id, &hook.secret_ct)?];
        if let (Some(old), Some(until)) = (&hook.old_secret_ct, hook.old_secret_until) {
            if until > now {
                secrets.push(key.open_string("webhooks", "secret", &hook.id, old)?);
            }
        }
        (msg, hook, url, secrets)
    };
    let now = app.clock.now_ms();
    let attempt_no = msg.attempts + 1;
    let started = Instant::now();
    let outcome = if hook.disabled_at.is_some() {
        Err("the endpoint is disabled".to_string())
    } else {
        send(app, &url, &msg, &secrets, now / 1000).await
    };
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status_code, error) = match &outcome {
        Ok(code) => (Some(i64::from(*code)), None),
        Err(e) => (None, Some(e.clone())),
    };
    let ok = matches!(outcome, Ok(code) if (200..300).contains(&code));
    metrics::counter!("strongroom_webhook_deliveries_total", "result" => if ok { "ok" } else { "failed" })
        .increment(1);
    let gave_up = msg.created_at + 24 * 3600 * 1000 < now && attempt_no > BACKOFF_SECS.len() as i64;
    let next_at = match usize::try_from(attempt_no - 1)
        .ok()
        .and_then(|i| BACKOFF_SECS.get(i))
    {
        Some(wait) if !ok && !gave_up && hook.disabled_at.is_none() => Some(now + wait * 1000),
        _ => None,
    };
    let status = if ok {
        "delivered"
    } else if next_at.is_some() {
        "pending"
    } else {
        "failed"
    };
    let mut tx = TenantTx::for_webhooks(&app.db, org_id, Mode::Write).await?;
    db::record_attempt(
        &mut tx,
        db::Attempt {
            id: &uuid::Uuid::now_v7().to_string(),
            webhook_id: &hook.id,
            message_id: &msg.id,
            attempt: attempt_no,
            at: now,
            status_code,
            error: error.as_deref(),
            duration_ms,
            status,
            next_at,
        },
    )
    .await?;
    if hook.disabled_at.is_none() {
        let failures = db::note_result(&mut tx, &hook.id, ok).await?;
        if failures >= i64::from(app.config.webhooks.disable_after_failures) {
            disable(app, &mut tx, &hook.id, &url, failures, now).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// One POST: the status code, or why there was none.
async fn send(
    app: &AppState,
    url: &str,
    msg: &db::MessageRow,
    secrets: &[String],
    timestamp: i64,
) -> Result<u16, String> {
    // Checked again now: the name may resolve elsewhere than at registration.
    let checked = app
        .webhooks
        .guard
        .check_url(url)
        .await
        .map_err(|e| format!("refused: {e}"))?;
    let signatures: Vec<String> = secrets
        .iter()
        .filter_map(|s| sign(s, &msg.id, timestamp, &msg.payload))
        .collect();
    let res = app
        .webhooks
        .client
        .post(checked)
        .header("content-type", "application/json")
        .header("user-agent", "Strongroom-Webhooks/1")
        .header("webhook-id", &msg.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signatures.join(" "))
        .body(msg.payload.clone())
        .send()
        .await;
    match res {
        Ok(r) => Ok(r.status().as_u16()),
        Err(e) if e.is_timeout() => Err("timed out".into()),
        Err(e) => match crate::net_guard::refusal(&e) {
            Some(u) => Err(format!("refused: {u}")),
            None if e.is_connect() => Err("could not connect".into()),
            None => Err("the request failed".into()),
        },
    }
}

/// Disables an endpoint that keeps failing and tells the org's admins.
async fn disable(
    app: &App,
    tx: &mut TenantTx,
    hook_id: &str,
    url: &str,
    failures: i64,
    now: i64,
) -> AppResult<()> {
    let reason = format!("{failures} failed deliveries in a row");
    db::set_disabled(tx, hook_id, Some((now, &reason))).await?;
    let ev = crate::audit::Event {
        actor_id: None,
        action: Action::WebhookDisabled,
        target_type: Some("webhook"),
        target_id: Some(hook_id),
        ip: None,
        metadata: json!({ "reason": reason }),
    };
    crate::audit::append_org(tx, now, ev).await?;
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let org_id = tx.org_id().to_string();
    for (user_id, email_ct) in db::admins(tx).await? {
        let Some(to) = crate::identity::address(&app.keyring, &user_id, &email_ct)? else {
            continue;
        };
        let body = format!(
            "Strongroom stopped sending events to a webhook endpoint of your organization after {failures} failed deliveries in a row.\n\n\
             Endpoint host: {host}\n\nCheck the delivery log, fix the endpoint, then turn it back on:\n{base}/orgs/{org_id}/webhooks\n",
            base = app.config.public_url().trim_end_matches('/'),
        );
        mail::enqueue(
            tx.conn()?,
            &app.keyring,
            now,
            &mail::Email {
                to,
                subject: "Strongroom: a webhook endpoint was disabled".into(),
                body,
                unsubscribe: None,
            },
        )
        .await?;
    }
    app.mailer.wake();
    Ok(())
}

/// Dispatches and delivers once.
pub async fn run_once(app: &AppState) -> AppResult<(usize, usize)> {
    let queued = dispatch(app).await?;
    let sent = deliver_due(app).await?;
    Ok((queued, sent))
}

/// The delivery loop: new events are dispatched every `webhooks.poll_interval_ms`; deliveries
/// run concurrently and a free slot is filled as soon as one ends, so a slow endpoint delays
/// neither other endpoints nor the next dispatch. At shutdown, deliveries under way get their
/// timeout to finish.
pub fn spawn_loop(
    app: &AppState,
    shutdown: crate::shutdown::Shutdown,
) -> tokio::task::JoinHandle<()> {
    let app = Arc::clone(app);
    tokio::spawn(async move {
        let every = Duration::from_millis(app.config.webhooks.poll_interval_ms);
        let mut in_flight = InFlight::new();
        let mut next_poll = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_poll {
                if let Err(e) = dispatch(&app).await {
                    tracing::warn!(error = %e, "webhook dispatch");
                }
                next_poll = tokio::time::Instant::now() + every;
            }
            if let Err(e) = top_up(&app, &mut in_flight).await {
                tracing::warn!(error = %e, "webhook delivery loop");
            }
            tokio::select! {
                () = tokio::time::sleep_until(next_poll) => {}
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => finished(done),
                () = shutdown.wait() => break,
            }
        }
        let grace = Duration::from_secs(app.config.webhooks.timeout_secs + 1);
        let drained = tokio::time::timeout(grace, async {
            while let Some(done) = in_flight.join_next().await {
                finished(done);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = in_flight.len(),
                "webhook deliveries cut short by shutdown"
            );
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("not a secret", "m", 1, "{}"), None);
    }

    #[test]
    fn only_known_events_are_accepted() {
        let s = |v: &[&str]| parse_events(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&["*"]).ok().as_deref(), Some("*"));
        assert_eq!(
            s(&["item.created", "item.created", "member.added"])
                .ok()
                .as_deref(),
            Some("item.created member.added")
        );
        assert!(s(&[]).is_err());
        assert!(s(&["item.created", "*"]).is_err());
        assert!(s(&["user.deleted"]).is_err());
        assert_eq!(event_of("invitation.accepted"), Some("member.added"));
        assert_eq!(event_of("item.created"), Some("item.created"));
        assert_eq!(event_of("api_key.created"), None);
    }
}
