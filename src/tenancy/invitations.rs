//! Invitations: an admin invites an email address with a role; the emailed token is single-use,
//! valid 7 days and stored as a keyed hash; only the account with that address can accept it.

use serde_json::json;

use super::{audit_org, decode_cursor, page, page_limit, OrgRole, OrgScope, Page};
use crate::audit::Action;
use crate::crypto::new_token;
use crate::error::{AppError, AppResult};
use crate::identity::{normalize_email, AuthSession, RequestCtx};
use crate::state::App;
use crate::store::tenant::TenantTx;
use crate::{mail, mask, store};

pub const INVITATION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub email: String,
    pub role: OrgRole,
    pub invited_by: String,
    pub created_at: String,
    pub expires_at: String,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: &'static str,
}

fn view(
    scope: &mut OrgScope,
    r: &store::orgs::InvitationRow,
    now: i64,
) -> AppResult<InvitationView> {
    let status = match (r.accepted_at, r.revoked_at) {
        (Some(_), _) => "accepted",
        (_, Some(_)) => "revoked",
        _ if r.expires_at <= now => "expired",
        _ => "pending",
    };
    Ok(InvitationView {
        id: r.id.clone(),
        email: scope
            .key()
            .open_string("invitations", "email", &r.id, &r.email_ct)?,
        role: OrgRole::parse(&r.role).unwrap_or(OrgRole::Member),
        invited_by: r.invited_by.clone(),
        created_at: crate::clock::rfc3339(r.created_at),
        expires_at: crate::clock::rfc3339(r.expires_at),
        status,
    })
}

pub async fn create_invitation(
    app: &App,
    ctx: &RequestCtx,
    scope: &mut OrgScope,
    email: &str,
    role: OrgRole,
) -> AppResult<InvitationView> {
    scope.require(OrgRole::Admin)?;
    if role == OrgRole::Owner && scope.role() != OrgRole::Owner {
        return Err(AppError::Forbidden {
            code: "forbidden",
            detail: "Only owners can invite owners.".into(),
        });
    }
    let addr = normalize_email(email)?;
    let bidx = app.keyring.blind_index(&addr);
    let now = app.clock.now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    let token = new_token();
    if store::orgs::is_opted_out(scope.tx(), &bidx).await? {
        return Err(AppError::invalid(
            "invitations_declined",
            "This address asked not to receive invitations from this organization.",
        ));
    }
    // Each invitation is an email to an address of the inviter's choosing: limited per org, per
    // inviter across all orgs, and per recipient across all orgs (so new orgs do not help).
    reserve_invitation(app, scope, &bidx).await?;
    let org = store::orgs::get_org(scope.tx())
        .await?
        .ok_or(AppError::NotFound)?;
    let org_name = scope
        .key()
        .open_string("orgs", "name", scope.org_id(), &org.name_ct)?;
    let inviter = scope.user_id().to_string();
    let inviter_name = display_name(app, scope.tx().conn()?, &inviter)
        .await?
        .unwrap_or_default();
    let row = store::orgs::NewInvitation {
        id: &id,
        email_bidx: &bidx,
        email_ct: scope
            .key()
            .seal("invitations", "email", &id, addr.as_bytes()),
        role: role.as_str(),
        invited_by: &inviter,
        token_hash: &app.keyring.hash_token(&token),
        now,
        expires_at: now + INVITATION_TTL_MS,
    };
    store::orgs::insert_invitation(scope.tx(), row).await?;
    audit_org(
        scope,
        ctx,
        Action::InvitationCreated,
        ("invitation", &id),
        json!({ "email": mask::email(&addr), "role": role.as_str() }),
        now,
    )
    .await?;
    let optout = format!(
        "{}/invitations/opt-out?token={}",
        app.config.public_url(),
        optout_token(app, scope.org_id(), &bidx)
    );
    let invite = Invite {
        org_name: &org_name,
        inviter: &inviter_name,
        role,
        accept_url: &format!(
            "{}/invitations/accept?token={token}",
            app.config.public_url()
        ),
        optout_url: &optout,
    };
    mail::enqueue(scope.tx().conn()?, &app.keyring, now, &invite.email(&addr)).await?;
    // Someone who already has an account also sees it in the app (the email carries the link).
    if let Some(user) = store::users::find_by_email_bidx(scope.tx().conn()?, &bidx).await? {
        super::notifications::invited(app, scope, &user.id, &org_name, now).await?;
    }
    let stored = store::orgs::get_invitation(scope.tx(), &id)
        .await?
        .ok_or(AppError::NotFound)?;
    scope.commit().await?;
    app.mailer.wake();
    view(scope, &stored, now)
}

/// Counts one invitation against the org's, the inviter's and the recipient's budgets; refused
/// (and nothing counted) when any is used up.
async fn reserve_invitation(app: &App, scope: &mut OrgScope, bidx: &str) -> AppResult<()> {
    let rl = &app.config.rate_limits;
    let budgets = [
        (format!("invite:{}", scope.org_id()), rl.invitations_per_org),
        (
            format!("invite-by:{}", scope.user_id()),
            rl.invitations_per_inviter,
        ),
        (format!("invite-to:{bidx}"), rl.invitations_per_recipient),
    ];
    for (i, (key, limit)) in budgets.iter().enumerate() {
        if let Err(r) = app.limiter.hit(key, *limit).await {
            for (taken, _) in &budgets[..i] {
                app.limiter.forgive(taken).await;
            }
            return Err(r.into());
        }
    }
    Ok(())
}

/// The invitation email. The org name is chosen by whoever created the org, so it is never the
/// subject, always quoted and marked as theirs, and anything link-like in it is defused so mail
/// clients do not make it clickable. Every invitation carries a one-click opt-out.
struct Invite<'a> {
    org_name: &'a str,
    inviter: &'a str,
    role: OrgRole,
    accept_url: &'a str,
    optout_url: &'a str,
}

impl Invite<'_> {
    fn email(&self, to: &str) -> mail::Email {
        let body = format!(
            "You were invited to join an organization on Strongroom, as {role}.\n\n\
             The person who invited you calls themselves: {inviter}\n\
             The organization calls itself: {name}\n\
             (These names were chosen by those people, not by Strongroom. \
             Strongroom never asks for your password by email.)\n\n\
             To accept, sign in (or create an account) with this email address, then open this link \
             within 7 days:\n\n{accept}\n\n\
             If you did not expect this, ignore this message.\n\n\
             Don't want invitations from this organization? One click stops them:\n{optout}\n",
            role = self.role.as_str(),
            inviter = mail::quote_untrusted(&mask::display_name(self.inviter)),
            name = mail::quote_untrusted(self.org_name),
            accept = self.accept_url,
            optout = self.optout_url,
        );
        mail::Email {
            to: to.to_string(),
            subject: "You are invited to an organization on Strongroom".into(),
            body,
            unsubscribe: Some(self.optout_url.to_string()),
        }
    }
}

/// The opt-out token for (org, recipient): `<org id>_<email blind index>_<mac>`. It does not expire
/// and needs no row: it can only ever say "stop inviting this address".
fn optout_token(app: &App, org_id: &str, bidx: &str) -> String {
    let mac = app
        .keyring
        .mac(OPTOUT_LABEL, format!("{org_id}.{bidx}").as_bytes());
    format!("{org_id}_{bidx}_{mac}")
}

const OPTOUT_LABEL: &str = "invitation-optout";

/// The (org id, blind index) an opt-out token names, when its MAC holds.
fn open_optout_token(app: &App, token: &str) -> Option<(String, String)> {
    let mut parts = token.splitn(3, '_');
    let (org, bidx, mac) = (parts.next()?, parts.next()?, parts.next()?);
    (token.len() <= 256
        && uuid::Uuid::parse_str(org).is_ok()
        && bidx.len() == 64
        && bidx.bytes().all(|b| b.is_ascii_hexdigit())
        && app
            .keyring
            .verify_mac(OPTOUT_LABEL, format!("{org}.{bidx}").as_bytes(), mac))
    .then(|| (org.to_string(), bidx.to_string()))
}

/// Whether an opt-out token is genuine (for the confirmation page).
pub fn optout_token_is_valid(app: &App, token: &str) -> bool {
    open_optout_token(app, token).is_some()
}

/// Stops the org a token names from inviting its address again, and revokes that org's pending
/// invitations to it. Anyone holding the email can do this; it needs no account. Repeating it is
/// harmless. The token names the org whose context is opened (as an invitation token does).
pub async fn opt_out_of_invitations(app: &App, ctx: &RequestCtx, token: &str) -> AppResult<()> {
    let (org_id, bidx) = open_optout_token(app, token).ok_or(AppError::InvalidToken)?;
    let now = app.clock.now_ms();
    let mut tx = TenantTx::for_invitation_token(&app.db, &org_id, "").await?;
    if store::orgs::get_org(&mut tx).await?.is_none() {
        // The org is gone: nothing can invite from it any more.
        return Ok(());
    }
    if store::orgs::insert_optout(&mut tx, &bidx, now).await? {
        let revoked = store::orgs::revoke_pending_to(&mut tx, &bidx, now).await?;
        let ev = crate::audit::Event {
            actor_id: None,
            action: Action::InvitationOptedOut,
            target_type: Some("org"),
            target_id: Some(&org_id),
            ip: Some(ctx.ip),
            metadata: json!({ "pending_revoked": revoked }),
        };
        crate::audit::append_org(&mut tx, now, ev).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn list_invitations(
    app: &App,
    scope: &mut OrgScope,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Page<InvitationView>> {
    scope.require(OrgRole::Admin)?;
    let after = decode_cursor(cursor)?;
    let limit = page_limit(limit)?;
    let now = app.clock.now_ms();
    let rows = store::orgs::list_invitations(scope.tx(), &after, limit + 1).await?;
    let items = rows
        .iter()
        .map(|r| view(scope, r, now))
        .collect::<AppResult<Vec<_>>>()?;
    Ok(page(items, limit, |i| i.id.clone()))
}

pub async fn revoke_invitation(
    app: &App,
    ctx: &RequestCtx,
    scope: &mut OrgScope,
    id: &str,
) -> AppResult<()> {
    scope.require(OrgRole::Admin)?;
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(AppError::NotFound);
    }
    let now = app.clock.now_ms();
    if !store::orgs::revoke_invitation(scope.tx(), id, now).await? {
        return Err(AppError::NotFound);
    }
    audit_org(
        scope,
        ctx,
        Action::InvitationRevoked,
        ("invitation", id),
        json!({}),
        now,
    )
    .await?;
    scope.commit().await?;
    Ok(())
}

/// Accepts an invitation for the signed-in user; the same `invalid_token` for a used, revoked,
/// expired or unknown token and for the wrong account.
/// A user's display name (None: the account is gone).
async fn display_name(app: &App, c: &mut store::Conn, user_id: &str) -> AppResult<Option<String>> {
    let Some(u) = store::users::find_by_id(c, user_id).await? else {
        return Ok(None);
    };
    Ok(Some(crate::identity::shown_name(
        &app.keyring,
        &u.id,
        &u.display_name_ct,
    )?))
}

/// What an invitation link is for, shown before it is accepted.
pub struct InvitationPreview {
    pub org_name: String,
    pub role: OrgRole,
    /// The inviter's display name, as they chose it (masked if it holds an email address).
    pub inviter: String,
}

/// The org, role and inviter of a live invitation, for whoever holds its token (signed in or
/// not: the token is the secret). None for an unknown, used, revoked or expired token: all look
/// the same. Reads only.
pub async fn preview_invitation(app: &App, token: &str) -> AppResult<Option<InvitationPreview>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let hash = app.keyring.hash_token(token);
    let found = {
        let mut c = app.db.read().await?;
        store::orgs::find_invitation_token(&mut c, &hash).await?
    };
    let Some((inv_id, org_id)) = found else {
        return Ok(None);
    };
    let now = app.clock.now_ms();
    let mut tx = TenantTx::for_invitation_preview(&app.db, &org_id).await?;
    let Some(inv) = store::orgs::get_invitation(&mut tx, &inv_id).await? else {
        return Ok(None);
    };
    if inv.accepted_at.is_some() || inv.revoked_at.is_some() || inv.expires_at <= now {
        return Ok(None);
    }
    let Some(org) = store::orgs::get_org(&mut tx).await? else {
        return Ok(None);
    };
    let Some(key) = super::org_key(app, &mut tx).await? else {
        return Ok(None);
    };
    let inviter = display_name(app, tx.conn()?, &inv.invited_by)
        .await?
        .map(|n| mask::display_name(&n))
        .unwrap_or_else(|| "A former member".into());
    tx.commit().await?;
    Ok(Some(InvitationPreview {
        org_name: key.open_string("orgs", "name", &org_id, &org.name_ct)?,
        role: OrgRole::parse(&inv.role).unwrap_or(OrgRole::Member),
        inviter,
    }))
}

pub async fn accept_invitation(
    app: &App,
    ctx: &RequestCtx,
    s: &AuthSession,
    token: &str,
) -> AppResult<super::OrgView> {
    let hash = app.keyring.hash_token(token);
    let (found, me) = {
        let mut c = app.db.read().await?;
        let found = store::orgs::find_invitation_token(&mut c, &hash).await?;
        (found, store::users::find_by_id(&mut c, &s.user_id).await?)
    };
    let (inv_id, org_id) = found.ok_or(AppError::InvalidToken)?;
    let me = me.ok_or(AppError::Unauthenticated)?;
    let my_email = app
        .keyring
        .open_field_string(&crate::identity::email_ad(&me.id), &me.email_ct)?;
    let my_bidx = app.keyring.blind_index(&my_email);
    let now = app.clock.now_ms();
    // The token stands in for membership here: it names the org whose context is opened.
    let mut tx = TenantTx::for_invitation_token(&app.db, &org_id, &s.user_id).await?;
    let inv = store::orgs::get_invitation(&mut tx, &inv_id)
        .await?
        .ok_or(AppError::InvalidToken)?;
    if inv.email_bidx != my_bidx || !store::orgs::accept_invitation(&mut tx, &inv_id, now).await? {
        return Err(AppError::InvalidToken);
    }
    let role = OrgRole::parse(&inv.role).unwrap_or(OrgRole::Member);
    if store::orgs::member_role(&mut tx, &s.user_id)
        .await?
        .is_none()
    {
        store::orgs::insert_member(&mut tx, &s.user_id, role.as_str(), now).await?;
    }
    let ev = crate::audit::Event {
        actor_id: Some(&s.user_id),
        action: Action::InvitationAccepted,
        target_type: Some("invitation"),
        target_id: Some(&inv_id),
        ip: Some(ctx.ip),
        metadata: json!({ "role": role.as_str() }),
    };
    crate::audit::append_org(&mut tx, now, ev).await?;
    // The answer is built here, not through `authorize`: the membership exists now even if an org
    // policy (require MFA) keeps the new member out until they enrol a second factor.
    let org = store::orgs::get_org(&mut tx)
        .await?
        .ok_or(AppError::InvalidToken)?;
    let key = super::org_key(app, &mut tx)
        .await?
        .ok_or(AppError::InvalidToken)?;
    let role = store::orgs::member_role(&mut tx, &s.user_id)
        .await?
        .and_then(|r| OrgRole::parse(&r))
        .unwrap_or(role);
    tx.commit().await?;
    Ok(super::OrgView {
        id: org_id.clone(),
        name: key.open_string("orgs", "name", &org_id, &org.name_ct)?,
        role,
        require_mfa: org.require_mfa,
        created_at: crate::clock::rfc3339(org.created_at),
    })
}
