//! An org's integrations pages, for its admins: API keys (made with scope checkboxes, the whole
//! key shown once, last use with a masked address, revocation), webhook endpoints (made with event
//! checkboxes, the signing secret shown once, a delivery log with redelivery, a test event, secret
//! rotation, turning a disabled endpoint on again, deletion) and the plan the billing events set.
//! The forms call the same services as the API; making a key or an endpoint and rotating a secret
//! ask for a recent step-up, as there.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use minijinja::{context, Value};
use serde::Deserialize;

use super::*;
use crate::http::middleware::RequestCtxExt;
use crate::http::problem::{ApiForm, ApiQuery};
use crate::http::session::FullSession;
use crate::http::work_api::{param, PathParams};
use crate::store::tenant::Mode;
use crate::tenancy::api_keys::{self, KeyInput, NewApiKey};
use crate::tenancy::{billing, webhooks};

const ORG: &str = "/orgs/{org_id}";

pub(super) fn routes() -> Router<AppState> {
    let h = format!("{ORG}/webhooks/{{hook_id}}");
    Router::new()
        .route(
            &format!("{ORG}/api-keys"),
            get(keys_page).post(create_key_submit),
        )
        .route(
            &format!("{ORG}/api-keys/{{key_id}}/revoke"),
            post(revoke_key_submit),
        )
        .route(
            &format!("{ORG}/webhooks"),
            get(hooks_page).post(create_hook_submit),
        )
        .route(&h, get(hook_page))
        .route(
            &format!("{h}/test"),
            post(|State(app), ctx, page, path| button_submit(app, ctx, page, path, Button::Test)),
        )
        .route(&format!("{h}/rotate-secret"), post(rotate_submit))
        .route(
            &format!("{h}/enable"),
            post(|State(app), ctx, page, path| button_submit(app, ctx, page, path, Button::Enable)),
        )
        .route(&format!("{h}/delete"), post(delete_hook_submit))
        .route(
            &format!("{h}/deliveries/{{delivery_id}}/redeliver"),
            post(redeliver_submit),
        )
        .route(&format!("{ORG}/billing"), get(billing_page))
}

/// What each scope lets a key do, in `Scope::ALL`'s order (a test holds them together).
const SCOPES: [(&str, &str); 9] = [
    (
        "workspaces:read",
        "read the organization, its members and workspaces",
    ),
    (
        "workspaces:write",
        "create and change workspaces and who has access",
    ),
    ("items:read", "read items and statuses"),
    ("items:write", "create, change, move and delete items"),
    ("updates:read", "read comments"),
    ("updates:write", "post comments"),
    ("documents:read", "list and download documents"),
    (
        "documents:write",
        "upload, change, share and delete documents",
    ),
    ("audit:read", "read and export the audit log"),
];

/// What each webhook event announces, in `webhooks::EVENTS`' order.
const EVENTS: [(&str, &str); 8] = [
    ("item.created", "an item was added"),
    ("item.updated", "an item was changed or moved"),
    ("item.deleted", "an item was deleted"),
    ("comment.created", "a comment was posted"),
    (
        "document.uploaded",
        "a document or a new version was uploaded",
    ),
    ("document.deleted", "a document was deleted"),
    ("member.added", "someone joined the organization"),
    ("member.removed", "someone left or was removed"),
];

/// Notices after a change on these pages (by name, never text from the URL).
fn integration_notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "key_revoked" => "The key was revoked: it stopped working at once.",
        "hook_deleted" => "The endpoint was deleted: nothing more is sent to it.",
        "tested" => "A test event is on its way; it shows in the delivery log once sent.",
        "redelivered" => "The event is on its way again.",
        "enabled" => "The endpoint is on again: events from now on are sent to it.",
        _ => return None,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct IntegrationsQuery {
    done: String,
    cursor: String,
}

fn outcome(q: &IntegrationsQuery) -> Outcome<'static> {
    Outcome {
        error: None,
        notice: integration_notice(&q.done),
    }
}

/// A form's fields as sent (repeated names, as checkboxes send them, kept in order).
type Fields = Vec<(String, String)>;

fn field<'a>(f: &'a Fields, name: &str) -> &'a str {
    f.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn values(f: &Fields, name: &str) -> Vec<String> {
    f.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// Whether the session confirmed it is its user recently enough for the step-up actions.
fn confirmed(app: &App, s: &AuthSession) -> bool {
    crate::identity::mfa::require_recent_auth(app, s).is_ok()
}

/// A read scope in the same org after a change (which committed, or failed and rolled back).
async fn reopen(app: &AppState, s: &AuthSession, org_id: &str) -> AppResult<OrgScope> {
    tenancy::authorize(app, s, org_id, Mode::Read).await
}

// ---------------------------------------------------------------------------------------------
// API keys

async fn keys_page(
    State(app): State<AppState>,
    OrgPage(mut scope, s): OrgPage,
    ApiQuery(q): ApiQuery<IntegrationsQuery>,
) -> Response {
    keys_view(&app, &s, &mut scope, outcome(&q), empty_key_form(), None).await
}

fn empty_key_form() -> Value {
    context! { scopes => Vec::<String>::new(), expires => "", name => "", rate => "", networks => "" }
}

async fn keys_view(
    app: &AppState,
    s: &AuthSession,
    scope: &mut OrgScope,
    out: Outcome<'_>,
    form: Value,
    new_key: Option<&NewApiKey>,
) -> Response {
    let loaded = async {
        scope.require(OrgRole::Admin)?;
        let org = tenancy::get_org(app, scope).await?;
        let (keys, more) = all!(|c| api_keys::list_keys(app, scope, c.as_deref(), Some(PAGE)))?;
        let (members, _) = org_members(app, scope).await?;
        Ok::<_, AppError>((org, keys, more, members))
    };
    let (org, keys, more, members) = or_page!(app, loaded.await);
    let names = names(&members);
    // Newest first.
    let rows: Vec<Value> = keys
        .iter()
        .rev()
        .map(|k| {
            context! {
                id => k.id, name => k.name, prefix => k.prefix,
                scopes => k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                by => name_of(&names, &k.created_by), created_at => k.created_at,
                expires_at => k.expires_at, revoked_at => k.revoked_at,
                rate => k.rate_limit_per_minute, networks => k.allowed_networks,
                last_used_at => k.last_used_at, last_used_ip => k.last_used_ip, status => k.status,
            }
        })
        .collect();
    let scopes: Vec<Value> = SCOPES
        .iter()
        .map(|(name, label)| context! { name, label })
        .collect();
    let l = app.config.rate_limits.api_per_key;
    let default_rate = u64::from(l.max) * 60 / l.window_secs.max(1);
    show(
        app,
        &out,
        "api_keys.html",
        context! {
            title => "API keys", org => Value::from_serialize(&org), keys => rows, more, scopes,
            default_rate, confirmed => confirmed(app, s), form,
            new_key => new_key.map(|k| context! { name => k.view.name, key => k.key, expires_at => k.view.expires_at }),
        },
    )
}

/// The key the form describes, or why it cannot be one.
fn key_input(app: &App, f: &Fields) -> AppResult<KeyInput> {
    let expires_at = match field(f, "expires_in_days").trim() {
        "never" => None,
        d => {
            let days: i64 = d
                .parse()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| {
                    AppError::invalid("invalid_expiry", "expires_at: choose when the key expires.")
                })?;
            Some(crate::clock::rfc3339(
                app.clock.now_ms() + days * 86_400_000,
            ))
        }
    };
    let rate_limit_per_minute = match field(f, "rate_limit_per_minute").trim() {
        "" => None,
        r => Some(r.parse::<i64>().map_err(|_| {
            AppError::invalid(
                "invalid_rate_limit",
                "rate_limit_per_minute: between 1 and 100000.",
            )
        })?),
    };
    Ok(KeyInput {
        name: field(f, "name").to_string(),
        scopes: values(f, "scopes"),
        expires_at,
        rate_limit_per_minute,
        allowed_networks: field(f, "allowed_networks")
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// Makes a key and shows it this once (the page is the answer to the post, never a redirect
/// that would put the key in a URL or the history). Without a recent step-up, the prompt.
async fn create_key_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    jar: CookieJar,
    OrgPage(mut scope, s): OrgPage,
    ApiForm(f): ApiForm<Fields>,
) -> Response {
    let org_id = scope.org_id().to_string();
    let form = context! {
        name => field(&f, "name"), scopes => values(&f, "scopes"),
        expires => field(&f, "expires_in_days"), rate => field(&f, "rate_limit_per_minute"),
        networks => field(&f, "allowed_networks"),
    };
    let made = match key_input(&app, &f) {
        Ok(input) => api_keys::create_key(&app, &ctx.0, &s, &mut scope, input).await,
        Err(e) => Err(e),
    };
    drop(scope);
    let mut scope = or_page!(&app, reopen(&app, &s, &org_id).await);
    match made {
        Ok(key) => {
            let out = Outcome {
                error: None,
                notice: Some("The key was created. Copy it now: it is shown only once."),
            };
            keys_view(&app, &s, &mut scope, out, empty_key_form(), Some(&key)).await
        }
        Err(e) if is_step_up(&e) => step_up(&app, jar, &format!("/orgs/{org_id}/api-keys")),
        Err(e) => keys_view(&app, &s, &mut scope, Outcome::failed(&e), form, None).await,
    }
}

async fn revoke_key_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    OrgPage(mut scope, s): OrgPage,
    PathParams(path): PathParams,
) -> Response {
    let key_id = or_page!(&app, param(&path, "key_id"));
    let org_id = scope.org_id().to_string();
    match api_keys::revoke_key(&app, &ctx.0, &mut scope, &key_id).await {
        Ok(()) => {
            Redirect::to(&format!("/orgs/{org_id}/api-keys?done=key_revoked")).into_response()
        }
        Err(e) => {
            drop(scope);
            let mut scope = or_page!(&app, reopen(&app, &s, &org_id).await);
            let out = Outcome::failed(&e);
            keys_view(&app, &s, &mut scope, out, empty_key_form(), None).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Webhooks

async fn hooks_page(
    State(app): State<AppState>,
    OrgPage(mut scope, s): OrgPage,
    ApiQuery(q): ApiQuery<IntegrationsQuery>,
) -> Response {
    let form = context! { url => "", events => Vec::<String>::new() };
    hooks_view(&app, &s, &mut scope, outcome(&q), form).await
}

async fn hooks_view(
    app: &AppState,
    s: &AuthSession,
    scope: &mut OrgScope,
    out: Outcome<'_>,
    form: Value,
) -> Response {
    let loaded = async {
        scope.require(OrgRole::Admin)?;
        let org = tenancy::get_org(app, scope).await?;
        let (hooks, more) = all!(|c| webhooks::list(app, scope, c.as_deref(), Some(PAGE)))?;
        let (members, _) = org_members(app, scope).await?;
        Ok::<_, AppError>((org, hooks, more, members))
    };
    let (org, hooks, more, members) = or_page!(app, loaded.await);
    let names = names(&members);
    let rows: Vec<Value> = hooks
        .iter()
        .map(|h| {
            context! {
                id => h.id, url => h.url, events => h.events, status => h.status,
                failures => h.failures, created_at => h.created_at,
                by => name_of(&names, &h.created_by),
            }
        })
        .collect();
    let events: Vec<Value> = EVENTS
        .iter()
        .map(|(name, label)| context! { name, label })
        .collect();
    show(
        app,
        &out,
        "webhooks.html",
        context! {
            title => "Webhooks", org => Value::from_serialize(&org), hooks => rows, more, events,
            confirmed => confirmed(app, s), form,
        },
    )
}

/// Registers an endpoint and shows its page with the secret, this once. The service opens the
/// org itself (no transaction waits on the URL's DNS), so this takes the session, not `OrgPage`.
async fn create_hook_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    jar: CookieJar,
    session: FullSession,
    PathParams(path): PathParams,
    ApiForm(f): ApiForm<Fields>,
) -> Response {
    let Some(s) = session.0 else {
        return to_login();
    };
    let org_id = or_page!(&app, param(&path, "org_id"));
    let url = field(&f, "url").trim().to_string();
    let events = values(&f, "events");
    let made = webhooks::create(&app, &ctx.0, &s, &org_id, &url, &events).await;
    let mut scope = or_page!(&app, reopen(&app, &s, &org_id).await);
    match made {
        Ok(hook) => {
            let out = Outcome {
                error: None,
                notice: Some("The endpoint was added. Copy its secret now: it is shown only once."),
            };
            hook_view(&app, &s, &mut scope, &hook.id, "", out, Some(&hook.secret)).await
        }
        Err(e) if is_step_up(&e) => step_up(&app, jar, &format!("/orgs/{org_id}/webhooks")),
        Err(e) => {
            let form = context! { url, events };
            hooks_view(&app, &s, &mut scope, Outcome::failed(&e), form).await
        }
    }
}

async fn hook_page(
    State(app): State<AppState>,
    OrgPage(mut scope, s): OrgPage,
    PathParams(path): PathParams,
    ApiQuery(q): ApiQuery<IntegrationsQuery>,
) -> Response {
    let hook_id = or_page!(&app, param(&path, "hook_id"));
    let out = outcome(&q);
    hook_view(&app, &s, &mut scope, &hook_id, &q.cursor, out, None).await
}

/// Delivery log entries a page shows.
const DELIVERIES_PER_PAGE: i64 = 50;

async fn hook_view(
    app: &AppState,
    s: &AuthSession,
    scope: &mut OrgScope,
    hook_id: &str,
    cursor: &str,
    out: Outcome<'_>,
    new_secret: Option<&str>,
) -> Response {
    let loaded = async {
        let org = tenancy::get_org(app, scope).await?;
        let hook = webhooks::get(app, scope, hook_id).await?;
        let cursor = (!cursor.is_empty()).then_some(cursor);
        let log = webhooks::deliveries(scope, hook_id, cursor, Some(DELIVERIES_PER_PAGE)).await?;
        let (members, _) = org_members(app, scope).await?;
        Ok::<_, AppError>((org, hook, log, members))
    };
    let (org, hook, log, members) = or_page!(app, loaded.await);
    let names = names(&members);
    let host = url::Url::parse(&hook.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "Endpoint".into());
    let deliveries: Vec<Value> = log
        .items
        .iter()
        .map(|d| {
            context! {
                id => d.id, event => d.event, attempt => d.attempt, status_code => d.status_code,
                ok => d.status_code.is_some_and(|c| (200..300).contains(&c)),
                error => d.error, duration_ms => d.duration_ms, at => d.at,
            }
        })
        .collect();
    show(
        app,
        &out,
        "webhook.html",
        context! {
            title => "Webhook endpoint", org => Value::from_serialize(&org),
            hook => context! { host, ..Value::from_serialize(&hook) },
            by => name_of(&names, &hook.created_by), deliveries, next_cursor => log.next_cursor,
            confirmed => confirmed(app, s), new_secret,
        },
    )
}

/// The endpoint's page with a notice after a change that worked.
fn hook_done(org_id: &str, hook_id: &str, done: &str) -> Response {
    Redirect::to(&format!("/orgs/{org_id}/webhooks/{hook_id}?done={done}")).into_response()
}

/// The endpoint's page again after a change that failed, in a read scope of its own.
async fn hook_again(
    app: &AppState,
    s: &AuthSession,
    failed: OrgScope,
    hook_id: &str,
    e: &AppError,
) -> Response {
    let org_id = failed.org_id().to_string();
    drop(failed);
    let mut scope = or_page!(app, reopen(app, s, &org_id).await);
    hook_view(app, s, &mut scope, hook_id, "", Outcome::failed(e), None).await
}

/// The endpoint's buttons that need nothing but the endpoint.
#[derive(Clone, Copy)]
enum Button {
    Test,
    Enable,
}

async fn button_submit(
    app: AppState,
    ctx: RequestCtxExt,
    OrgPage(mut scope, s): OrgPage,
    PathParams(path): PathParams,
    which: Button,
) -> Response {
    let hook_id = or_page!(&app, param(&path, "hook_id"));
    let done = match which {
        Button::Test => webhooks::send_test(&app, &ctx.0, &mut scope, &hook_id)
            .await
            .map(|_| "tested"),
        Button::Enable => webhooks::enable(&app, &ctx.0, &mut scope, &hook_id)
            .await
            .map(|_| "enabled"),
    };
    match done {
        Ok(done) => hook_done(scope.org_id(), &hook_id, done),
        Err(e) => hook_again(&app, &s, scope, &hook_id, &e).await,
    }
}

async fn redeliver_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    OrgPage(mut scope, s): OrgPage,
    PathParams(path): PathParams,
) -> Response {
    let (hook_id, delivery_id) = match (param(&path, "hook_id"), param(&path, "delivery_id")) {
        (Ok(h), Ok(d)) => (h, d),
        _ => return denied(&app, &AppError::NotFound),
    };
    match webhooks::redeliver(&app, &ctx.0, &mut scope, &hook_id, &delivery_id).await {
        Ok(()) => hook_done(scope.org_id(), &hook_id, "redelivered"),
        Err(e) => hook_again(&app, &s, scope, &hook_id, &e).await,
    }
}

/// A new secret, shown this once on the endpoint's page; without a recent step-up, the prompt.
async fn rotate_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    jar: CookieJar,
    OrgPage(mut scope, s): OrgPage,
    PathParams(path): PathParams,
) -> Response {
    let hook_id = or_page!(&app, param(&path, "hook_id"));
    let org_id = scope.org_id().to_string();
    let rotated = webhooks::rotate_secret(&app, &ctx.0, &s, &mut scope, &hook_id).await;
    drop(scope);
    let mut scope = or_page!(&app, reopen(&app, &s, &org_id).await);
    match rotated {
        Ok(r) => {
            let out = Outcome {
                error: None,
                notice: Some(
                    "The secret was rotated. Copy the new one now: it is shown only once.",
                ),
            };
            hook_view(&app, &s, &mut scope, &hook_id, "", out, Some(&r.secret)).await
        }
        Err(e) if is_step_up(&e) => {
            step_up(&app, jar, &format!("/orgs/{org_id}/webhooks/{hook_id}"))
        }
        Err(e) => {
            hook_view(
                &app,
                &s,
                &mut scope,
                &hook_id,
                "",
                Outcome::failed(&e),
                None,
            )
            .await
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ConfirmForm {
    confirm: String,
}

async fn delete_hook_submit(
    State(app): State<AppState>,
    ctx: RequestCtxExt,
    OrgPage(mut scope, s): OrgPage,
    PathParams(path): PathParams,
    ApiForm(f): ApiForm<ConfirmForm>,
) -> Response {
    let hook_id = or_page!(&app, param(&path, "hook_id"));
    if f.confirm != "on" {
        let e = AppError::invalid(
            "confirmation_required",
            "confirm: tick the box to confirm the deletion.",
        );
        return hook_again(&app, &s, scope, &hook_id, &e).await;
    }
    match webhooks::delete(&app, &ctx.0, &mut scope, &hook_id).await {
        Ok(()) => Redirect::to(&format!(
            "/orgs/{}/webhooks?done=hook_deleted",
            scope.org_id()
        ))
        .into_response(),
        Err(e) => hook_again(&app, &s, scope, &hook_id, &e).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Billing

async fn billing_page(State(app): State<AppState>, OrgPage(mut scope, _): OrgPage) -> Response {
    let loaded = async {
        let plan = billing::plan(&mut scope).await?;
        let org = tenancy::get_org(&app, &mut scope).await?;
        Ok::<_, AppError>((org, plan))
    };
    let (org, plan) = or_page!(&app, loaded.await);
    show(
        &app,
        &Outcome::default(),
        "billing.html",
        context! { title => "Billing", org => Value::from_serialize(&org), plan => Value::from_serialize(&plan) },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::api_keys::Scope;

    #[test]
    fn the_forms_offer_every_scope_and_every_event_and_nothing_else() {
        let offered: Vec<&str> = SCOPES.iter().map(|(s, _)| *s).collect();
        let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(offered, known);
        let offered: Vec<&str> = EVENTS.iter().map(|(e, _)| *e).collect();
        assert_eq!(offered, webhooks::EVENTS.to_vec());
    }
}
