//! Account deletion. A request (after a step-up) schedules the erasure `accounts.deletion_grace_days`
//! later and is emailed; until then the owner can sign in and cancel it. An owner who is the only
//! owner of an org must hand it over or delete it first. At the end (the purge job, or at once
//! with a grace of 0) the person's data is removed:
//!
//! - in every org they belong to: the membership and workspace roles, their notifications, the
//!   API keys they made (revoked) and webhooks (disabled), their pending invitations; items
//!   assigned to them are unassigned; `member.removed` is audited there;
//! - in every org: invitations addressed to their email, and the address's opt-outs;
//! - on the platform: sessions, tokens, TOTP, recovery codes, passkeys, ceremonies, their
//!   notification settings, their exports and any mail to them still in the outbox; the account row keeps its
//!   id (what they wrote and the audit trail name it) but its email is replaced by a placeholder
//!   (sealed) with a blind index that is not the email's, its name by "Deleted user", and its
//!   password by one nothing matches. The address can sign up anew.
//!
//! The audit trail keeps the user id and its (already masked) metadata, so every chain verifies.

use serde_json::json;

use super::{email, email_ad, name_ad, AuthSession, RequestCtx};
use crate::audit::{self, Action, Event};
use crate::error::{AppError, AppResult};
use crate::mail;
use crate::state::App;
use crate::store::{self, erasure as db, tenant::Mode, tenant::TenantTx};

/// What replaces an erased account's name wherever it wrote something.
pub const DELETED_USER: &str = "Deleted user";

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DeletionView {
    /// When the account will be erased (RFC 3339); now, with no grace period.
    pub scheduled_for: String,
}

/// `POST /me/deletion`: schedules the account's erasure.
pub async fn request_deletion(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
) -> AppResult<DeletionView> {
    super::mfa::require_recent_auth(app, s)?;
    let sole = sole_owned(app, &s.user_id).await?;
    if !sole.is_empty() {
        return Err(last_owner(&sole));
    }
    let now = app.clock.now_ms();
    let due = now + i64::from(app.config.accounts.deletion_grace_days) * 24 * 3600 * 1000;
    let mut tx = app.db.begin().await?;
    let u = store::users::find_by_id(&mut tx, &s.user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if !db::schedule(&mut tx, &s.user_id, due, now).await? {
        return Err(AppError::Unauthenticated);
    }
    let ev = Event {
        actor_id: Some(&s.user_id),
        action: Action::AccountDeletionRequested,
        target_type: Some("user"),
        target_id: Some(&s.user_id),
        ip: Some(ctx.ip),
        metadata: json!({ "scheduled_for": crate::clock::rfc3339(due) }),
    };
    audit::append_platform(&mut tx, now, ev).await?;
    if due > now {
        let addr = app
            .keyring
            .open_field_string(&email_ad(&u.id), &u.email_ct)?;
        let body = format!(
            "You asked us to delete your Strongroom account. It will be erased on {when}: your name, email address, \
             sessions, second factors and API keys go, you leave every organization, and what you wrote stays \
             under \"{DELETED_USER}\".\n\n\
             Changed your mind? Sign in before then and cancel the deletion at {base}/account.\n\n\
             If you did not ask for this, sign in, cancel it and change your password.\n",
            when = long_date(due),
            base = app.config.public_url().trim_end_matches('/'),
        );
        mail::enqueue(
            &mut tx,
            &app.keyring,
            now,
            &email(&addr, "Your Strongroom account will be deleted", body),
        )
        .await?;
    }
    tx.commit().await?;
    app.mailer.wake();
    if due <= now {
        erase(app, &s.user_id, now).await?;
    }
    Ok(DeletionView {
        scheduled_for: crate::clock::rfc3339(due),
    })
}

/// `DELETE /me/deletion`: cancels a scheduled erasure (404 when none is).
pub async fn cancel_deletion(app: &App, ctx: &RequestCtx, s: &AuthSession) -> AppResult<()> {
    let now = app.clock.now_ms();
    let mut tx = app.db.begin().await?;
    if !db::cancel(&mut tx, &s.user_id, now).await? {
        return Err(AppError::NotFound);
    }
    let ev = Event {
        actor_id: Some(&s.user_id),
        action: Action::AccountDeletionCancelled,
        target_type: Some("user"),
        target_id: Some(&s.user_id),
        ip: Some(ctx.ip),
        metadata: json!({}),
    };
    audit::append_platform(&mut tx, now, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// When the signed-in account's erasure is due, if one is scheduled (unix ms).
pub async fn scheduled(app: &App, user_id: &str) -> AppResult<Option<i64>> {
    let mut c = app.db.read().await?;
    Ok(db::due_at(&mut c, user_id).await?)
}

/// Erases every account whose grace period has ended (the purge job). An account that became
/// an org's only owner meanwhile waits, logged, until the org is handed over or deleted.
/// Returns how many were erased.
pub async fn erase_due(app: &App) -> AppResult<usize> {
    let now = app.clock.now_ms();
    let due = {
        let mut c = app.db.read().await?;
        db::due(&mut c, now, 100).await?
    };
    let mut erased = 0;
    for user_id in due {
        match erase(app, &user_id, now).await {
            Ok(true) => erased += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(user = %user_id, error = %e, "account erasure"),
        }
    }
    Ok(erased)
}

/// Erases the account now if its erasure is due. False when it is not (cancelled, already
/// erased, or the only owner of an org).
pub async fn erase(app: &App, user_id: &str, now: i64) -> AppResult<bool> {
    let u = {
        let mut c = app.db.read().await?;
        match db::due_at(&mut c, user_id).await? {
            Some(due) if due <= now => {}
            _ => return Ok(false),
        }
        store::users::find_by_id(&mut c, user_id)
            .await?
            .ok_or(AppError::NotFound)?
    };
    let sole = sole_owned(app, user_id).await?;
    if !sole.is_empty() {
        tracing::warn!(user = %user_id, orgs = sole.len(), "account erasure waits: the only owner of an organization");
        return Ok(false);
    }
    let addr = app
        .keyring
        .open_field_string(&email_ad(user_id), &u.email_ct)?;
    let bidx = app.keyring.blind_index(&addr);

    // Each org the person belongs to: they leave it, as if removed, in its own transaction.
    let orgs = {
        let mut tx = app.db.begin_for_user(user_id).await?;
        let m = db::memberships(&mut tx, user_id).await?;
        tx.commit().await?;
        m
    };
    for (org_id, _) in &orgs {
        leave(app, org_id, user_id, now).await?;
    }
    // Invitations to the address and its opt-outs, in every org (RLS: one org at a time).
    let all_orgs = {
        let mut c = app.db.read().await?;
        store::work::keyed_tenants(&mut c).await?
    };
    for org_id in all_orgs.iter().filter(|o| uuid::Uuid::parse_str(o).is_ok()) {
        let mut tx = TenantTx::for_erasure(&app.db, org_id).await?;
        db::forget_address(&mut tx, &bidx).await?;
        tx.commit().await?;
    }
    {
        let mut tx = app.db.begin_for_user_write(user_id).await?;
        db::forget_own(&mut tx, user_id).await?;
        tx.commit().await?;
    }
    crate::exports::purge(app, now, Some(user_id)).await?;
    let mut tx = app.db.begin().await?;
    mail::forget_recipient(&mut tx, &app.keyring, &addr).await?;
    let placeholder = format!("deleted-user-{user_id}");
    let done = db::erase_account(
        &mut tx,
        user_id,
        db::Pseudonym {
            // Not the blind index of any address: `normalize_email` would never let this through.
            email_bidx: format!("erased:{user_id}"),
            email_ct: app
                .keyring
                .seal_platform_field(&email_ad(user_id), placeholder.as_bytes()),
            display_name_ct: app
                .keyring
                .seal_platform_field(&name_ad(user_id), DELETED_USER.as_bytes()),
        },
        now,
    )
    .await?;
    if !done {
        return Ok(false);
    }
    let ev = Event {
        actor_id: Some(user_id),
        action: Action::AccountErased,
        target_type: Some("user"),
        target_id: Some(user_id),
        ip: None,
        metadata: json!({ "orgs_left": orgs.len() }),
    };
    audit::append_platform(&mut tx, now, ev).await?;
    tx.commit().await?;
    // After the commit: what the account's secret sealed (its email, name and sessions' addresses)
    // now opens in no copy of the database, old backups included. A crash before this leaves the
    // secret to the purge's sweep.
    app.keyring.destroy_account_secret(user_id)?;
    metrics::counter!("strongroom_accounts_erased_total").increment(1);
    Ok(true)
}

/// The person leaves one org for good.
async fn leave(app: &App, org_id: &str, user_id: &str, now: i64) -> AppResult<()> {
    let Some((mut tx, access)) =
        TenantTx::enter(&app.db, org_id, user_id, None, Mode::Write).await?
    else {
        return Ok(());
    };
    store::orgs::lock_org(&mut tx).await?;
    store::orgs::delete_member(&mut tx, user_id).await?;
    store::notifications::forget(&mut tx, None, None, Some(user_id)).await?;
    store::work::delete_user_workspace_roles(&mut tx, user_id).await?;
    let keys_revoked = store::api_keys::revoke_by_creator(&mut tx, user_id, now).await?;
    let webhooks_disabled = store::webhooks::disable_by_creator(&mut tx, user_id, now).await?;
    let (unassigned, invitations) = db::leave_org(&mut tx, user_id, now).await?;
    let ev = Event {
        actor_id: Some(user_id),
        action: Action::MemberRemoved,
        target_type: Some("user"),
        target_id: Some(user_id),
        ip: None,
        metadata: json!({ "role": access.role, "left": true, "erased": true,
                          "api_keys_revoked": keys_revoked, "webhooks_disabled": webhooks_disabled,
                          "items_unassigned": unassigned, "invitations_withdrawn": invitations }),
    };
    audit::append_org(&mut tx, now, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// The names of the orgs whose only owner is the user.
async fn sole_owned(app: &App, user_id: &str) -> AppResult<Vec<String>> {
    let owned: Vec<String> = {
        let mut tx = app.db.begin_for_user(user_id).await?;
        let m = db::memberships(&mut tx, user_id).await?;
        tx.commit().await?;
        m.into_iter()
            .filter(|(_, role)| role == "owner")
            .map(|(org, _)| org)
            .collect()
    };
    let mut sole = Vec::new();
    for org_id in owned {
        let Some((mut tx, access)) =
            TenantTx::enter(&app.db, &org_id, user_id, None, Mode::Read).await?
        else {
            continue;
        };
        if store::orgs::count_owners(&mut tx).await? <= 1 {
            let key = app.keyring.open_tenant_key(
                &org_id,
                &crate::crypto::WrappedKey {
                    version: access.key_version,
                    wrapped: access.key_wrapped,
                },
            )?;
            let name = match store::orgs::get_org(&mut tx).await? {
                Some(o) => key.open_string("orgs", "name", &o.id, &o.name_ct)?,
                None => org_id.clone(),
            };
            sole.push(name);
        }
        tx.commit().await?;
    }
    Ok(sole)
}

fn last_owner(orgs: &[String]) -> AppError {
    AppError::Conflict {
        code: "last_owner",
        detail: format!(
            "You are the only owner of {}: make someone else owner, or delete the organization, before deleting your account.",
            orgs.iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// "15 December 2026, 09:30 UTC".
pub fn long_date(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[day padding:none] [month repr:long] [year], [hour]:[minute] UTC"
    );
    t.format(&fmt).unwrap_or_default()
}

/// The erasure job in `serve`: erases the accounts whose grace period ended, at start and every
/// `retention.interval_secs` (hourly by default; 0 turns it off, as it does the purge).
pub fn spawn_job(
    app: &crate::state::AppState,
    shutdown: crate::shutdown::Shutdown,
) -> Option<tokio::task::JoinHandle<()>> {
    let every = app.config.retention.interval_secs;
    if every == 0 {
        return None;
    }
    let app = std::sync::Arc::clone(app);
    Some(tokio::spawn(async move {
        loop {
            match erase_due(&app).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(accounts = n, "accounts erased"),
                Err(e) => tracing::warn!(error = %e, "account erasure job"),
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(every)) => {}
                () = shutdown.wait() => return,
            }
        }
    }))
}
