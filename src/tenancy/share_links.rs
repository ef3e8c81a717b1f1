//! A share link from the outside: whoever holds its URL. The token is looked up by its keyed
//! hash; everything else is checked in the org's own transaction each time: the link is live
//! (not revoked, not expired, not used up), its document (and the version it names) still exists,
//! and its creator still reaches the workspace. Any failure looks the same from outside ("gone");
//! a failure on a known link is recorded on it and in the org's audit trail.
//!
//! A password is checked with Argon2id; a recipient (an address or `@domain`) confirms a
//! one-time code sent to the address they give. Either proof is carried by a short-lived grant
//! (a MAC over link, expiry and the verified address) that the HTTP layer keeps in a cookie.

use serde_json::json;
use subtle::ConstantTimeEq;

use super::documents::{link_state, mask_recipient, recipient_matches, ContentTicket};
use crate::audit::Action;
use crate::crypto::stream::ContentKey;
use crate::crypto::TenantKey;
use crate::error::{AppError, AppResult};
use crate::identity::RequestCtx;
use crate::mail;
use crate::state::App;
use crate::store;
use crate::store::documents::{self as docs, LinkRow, VersionRow};
use crate::store::tenant::{Mode, TenantTx};

/// How long a code sent to a recipient stays valid.
const CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// Wrong tries one code allows.
const CODE_TRIES: i64 = 5;
/// How long a grant (a verified password or address) lasts.
pub const GRANT_TTL_MS: i64 = 60 * 60 * 1000;

/// A live link, as its public page shows it.
pub struct LiveLink {
    pub org_id: String,
    pub link_id: String,
    pub filename: String,
    pub size: i64,
    pub content_type: String,
    pub needs_password: bool,
    /// The link asks for a verified address.
    pub needs_recipient: bool,
    pub watermark: bool,
    pub expires_at: i64,
}

/// What a link's checks found, in a transaction of the link's org.
struct Checked {
    tx: TenantTx,
    key: TenantKey,
    link: LinkRow,
    version: VersionRow,
    recipient: Option<String>,
}

fn token_ok(token: &str) -> bool {
    (20..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Finds the link and checks it in a transaction of `mode`: `Ok(Err(outcome))` for a known link
/// that is not usable (why, for the record), `Err(NotFound)` for an unknown one.
async fn check(
    app: &App,
    token: &str,
    mode: Mode,
) -> AppResult<Result<Checked, (String, String, &'static str)>> {
    if !token_ok(token) {
        return Err(AppError::NotFound);
    }
    let hash = app.keyring.hash_token(token);
    let found = {
        let mut c = app.db.read().await?;
        docs::find_link_token(&mut c, &hash).await?
    };
    let (link_id, org_id) = found.ok_or(AppError::NotFound)?;
    let mut tx = TenantTx::for_share_link(&app.db, &org_id, mode).await?;
    let Some(link) = docs::get_link(&mut tx, None, &link_id).await? else {
        return Err(AppError::NotFound);
    };
    let now = app.clock.now_ms();
    let state = link_state(&link, now);
    if state != "active" {
        tx.rollback().await?;
        return Ok(Err((org_id, link_id, state)));
    }
    let unavailable = |tx: TenantTx| async move {
        let mut tx = tx;
        tx.rollback().await?;
        AppResult::Ok(())
    };
    let Some(ws_id) = docs::document_workspace(&mut tx, &link.document_id).await? else {
        unavailable(tx).await?;
        return Ok(Err((org_id, link_id, "unavailable")));
    };
    if !docs::user_reaches_workspace(&mut tx, &ws_id, &link.created_by).await? {
        unavailable(tx).await?;
        return Ok(Err((org_id, link_id, "unavailable")));
    }
    let version = match &link.version_id {
        Some(v) => docs::get_version(&mut tx, &link.document_id, v).await?,
        None => docs::get_document(&mut tx, &ws_id, &link.document_id)
            .await?
            .map(|d| d.latest),
    };
    let Some(version) = version else {
        unavailable(tx).await?;
        return Ok(Err((org_id, link_id, "unavailable")));
    };
    let key = super::org_key(app, &mut tx)
        .await?
        .ok_or(AppError::NotFound)?;
    let recipient = link
        .recipient_ct
        .as_ref()
        .map(|ct| key.open_string("share_links", "recipient", &link.id, ct))
        .transpose()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("recipient did not open: {e}")))?;
    Ok(Ok(Checked {
        tx,
        key,
        link,
        version,
        recipient,
    }))
}

/// Records a refused attempt on a known link (its access list and the org's trail).
pub async fn refuse(
    app: &App,
    ctx: &RequestCtx,
    org_id: &str,
    link_id: &str,
    outcome: &str,
) -> AppResult<()> {
    let mut tx = TenantTx::for_share_link(&app.db, org_id, Mode::Write).await?;
    let now = app.clock.now_ms();
    let known = docs::get_link(&mut tx, None, link_id).await?;
    let Some(link) = known else {
        return Ok(());
    };
    docs::insert_access(
        &mut tx,
        &docs::AccessRow {
            id: uuid::Uuid::now_v7().to_string(),
            link_id: link_id.to_string(),
            at: now,
            outcome: outcome.to_string(),
            ip: crate::mask::ip(ctx.ip),
            recipient_ct: None,
            bytes: 0,
        },
    )
    .await?;
    crate::audit::append_org(
        &mut tx,
        now,
        crate::audit::Event {
            actor_id: None,
            action: Action::ShareLinkRefused,
            target_type: Some("share_link"),
            target_id: Some(link_id),
            ip: Some(ctx.ip),
            metadata: json!({ "reason": outcome, "document_id": link.document_id }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The link checked in a transaction of `mode`, when it is live; otherwise its refusal recorded
/// (for a known link) and `NotFound`.
async fn live(app: &App, ctx: &RequestCtx, token: &str, mode: Mode) -> AppResult<Checked> {
    match check(app, token, mode).await? {
        Ok(c) => Ok(c),
        Err((org, link, why)) => {
            refuse(app, ctx, &org, &link, why).await?;
            Err(AppError::NotFound)
        }
    }
}

/// The link's page: `NotFound` for anything but a live link (a dead known link's refusal is
/// recorded first).
pub async fn open(app: &App, ctx: &RequestCtx, token: &str) -> AppResult<LiveLink> {
    let mut c = live(app, ctx, token, Mode::Read).await?;
    c.tx.commit().await?;
    Ok(LiveLink {
        org_id: c.tx.org_id().to_string(),
        link_id: c.link.id.clone(),
        filename: c
            .key
            .open_string(
                "document_versions",
                "name",
                &c.version.id,
                &c.version.name_ct,
            )
            .map_err(|e| AppError::Internal(anyhow::anyhow!("name did not open: {e}")))?,
        size: c.version.size,
        content_type: c.version.content_type.clone(),
        needs_password: c.link.password_hash.is_some(),
        needs_recipient: c.recipient.is_some(),
        watermark: c.link.watermark,
        expires_at: c.link.expires_at,
    })
}

/// Checks a link's password (Argon2id, outside any transaction). A wrong one is recorded.
pub async fn check_password(
    app: &App,
    ctx: &RequestCtx,
    token: &str,
    password: &str,
) -> AppResult<bool> {
    let mut c = live(app, ctx, token, Mode::Read).await?;
    c.tx.commit().await?;
    let (org, link, hash) = (c.tx.org_id().to_string(), c.link.id, c.link.password_hash);
    let Some(hash) = hash else {
        return Ok(true);
    };
    let ok = app
        .hasher
        .verify(password, Some(&hash))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?
        .ok;
    if !ok {
        refuse(app, ctx, &org, &link, "wrong_password").await?;
    }
    Ok(ok)
}

/// Sends a one-time code to `email` when it may open the link; answers the same either way (a
/// code id), so the form tells no one who the recipient is.
pub async fn send_code(app: &App, ctx: &RequestCtx, token: &str, email: &str) -> AppResult<String> {
    let code_id = uuid::Uuid::now_v7().to_string();
    let mut c = live(app, ctx, token, Mode::Write).await?;
    let Ok(email) = crate::identity::normalize_email(email) else {
        c.tx.rollback().await?;
        return Ok(code_id);
    };
    let allowed = c
        .recipient
        .as_deref()
        .is_some_and(|r| recipient_matches(r, &email));
    if !allowed {
        c.tx.rollback().await?;
        return Ok(code_id);
    }
    let now = app.clock.now_ms();
    let code = crate::crypto::numeric_code(6);
    let hash = app
        .keyring
        .hash_token(&format!("link-code:{code_id}:{code}"));
    let email_ct = c
        .key
        .seal("link_codes", "email", &code_id, email.as_bytes());
    docs::insert_code(
        &mut c.tx,
        &code_id,
        &c.link.id,
        &email_ct,
        &hash,
        now + CODE_TTL_MS,
    )
    .await?;
    let body = format!(
        "Someone asked to open a file shared with you on Strongroom, as {masked}.\n\n\
         Your code: {code}\n\n\
         It works once, for 10 minutes. If this was not you, ignore this email: nothing is shared \
         without the code.\n",
        masked = crate::mask::email(&email),
    );
    mail::enqueue(
        c.tx.conn()?,
        &app.keyring,
        now,
        &mail::Email {
            to: email.clone(),
            subject: "Your Strongroom code to open a shared file".into(),
            body,
            unsubscribe: None,
        },
    )
    .await?;
    crate::audit::append_org(
        &mut c.tx,
        now,
        crate::audit::Event {
            actor_id: None,
            action: Action::ShareLinkCodeSent,
            target_type: Some("share_link"),
            target_id: Some(&c.link.id),
            ip: Some(ctx.ip),
            metadata: json!({ "recipient": mask_recipient(&email), "document_id": c.link.document_id }),
        },
    )
    .await?;
    c.tx.commit().await?;
    app.mailer.wake();
    Ok(code_id)
}

/// Checks a code: the verified address when it is right (the code is then spent), `None` (and the
/// attempt recorded) when it is wrong, used, expired or tried too often.
pub async fn check_code(
    app: &App,
    ctx: &RequestCtx,
    token: &str,
    code_id: &str,
    code: &str,
) -> AppResult<Option<String>> {
    let mut c = live(app, ctx, token, Mode::Write).await?;
    let now = app.clock.now_ms();
    let org = c.tx.org_id().to_string();
    let link_id = c.link.id.clone();
    let stored = if uuid::Uuid::parse_str(code_id).is_ok() {
        docs::get_code(&mut c.tx, &link_id, code_id, now).await?
    } else {
        None
    };
    let verified = match stored {
        Some((email_ct, hash, attempts)) if attempts < CODE_TRIES => {
            let code = code.trim();
            let want = app
                .keyring
                .hash_token(&format!("link-code:{code_id}:{code}"));
            let right: bool = want.as_bytes().ct_eq(hash.as_bytes()).into();
            docs::spend_code(&mut c.tx, code_id, right, now).await?;
            if right {
                Some(
                    c.key
                        .open_string("link_codes", "email", code_id, &email_ct)
                        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?,
                )
            } else {
                None
            }
        }
        _ => None,
    };
    c.tx.commit().await?;
    if verified.is_none() {
        refuse(app, ctx, &org, &link_id, "wrong_code").await?;
    }
    Ok(verified)
}

/// A download through the link: checked again, counted (only while the link is live: the last
/// allowed download cannot be taken twice), recorded with the verified recipient and audited, in
/// one transaction. `NotFound` when the link is not usable (recorded).
pub async fn download(
    app: &App,
    ctx: &RequestCtx,
    token: &str,
    recipient: Option<&str>,
) -> AppResult<(ContentTicket, LinkDownload)> {
    let mut c = live(app, ctx, token, Mode::Write).await?;
    let now = app.clock.now_ms();
    if !docs::count_download(&mut c.tx, &c.link.id, now).await? {
        let (org, link) = (c.tx.org_id().to_string(), c.link.id.clone());
        c.tx.rollback().await?;
        refuse(app, ctx, &org, &link, "exhausted").await?;
        return Err(AppError::NotFound);
    }
    let access_id = uuid::Uuid::now_v7().to_string();
    docs::insert_access(
        &mut c.tx,
        &docs::AccessRow {
            id: access_id.clone(),
            link_id: c.link.id.clone(),
            at: now,
            outcome: "download".into(),
            ip: crate::mask::ip(ctx.ip),
            recipient_ct: recipient.map(|r| {
                c.key
                    .seal("link_accesses", "recipient", &access_id, r.as_bytes())
            }),
            bytes: c.version.size,
        },
    )
    .await?;
    crate::audit::append_org(
        &mut c.tx,
        now,
        crate::audit::Event {
            actor_id: None,
            action: Action::ShareLinkDownloaded,
            target_type: Some("share_link"),
            target_id: Some(&c.link.id),
            ip: Some(ctx.ip),
            metadata: json!({
                "document_id": c.link.document_id,
                "version": c.version.number,
                "recipient": recipient.map(crate::mask::email),
                "bytes": c.version.size,
            }),
        },
    )
    .await?;
    if c.link.notify && c.link.first_access_at.is_none() {
        tell_creator(app, &mut c, now).await?;
    }
    let org_id = c.tx.org_id().to_string();
    c.tx.commit().await?;
    let content_key = ContentKey::unwrap(&c.key, &c.version.id, &c.version.key_wrapped)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("content key did not open: {e}")))?;
    let filename = c
        .key
        .open_string(
            "document_versions",
            "name",
            &c.version.id,
            &c.version.name_ct,
        )
        .map_err(|e| AppError::Internal(anyhow::anyhow!("name did not open: {e}")))?;
    Ok((
        ContentTicket {
            document_id: c.link.document_id.clone(),
            version_id: c.version.id.clone(),
            object_key: crate::blobs::document_key(&org_id, &c.version.id)
                .ok_or(AppError::NotFound)?,
            size: u64::try_from(c.version.size).unwrap_or(0),
            sha256: c.version.sha256.clone(),
            content_type: c.version.content_type.clone(),
            filename,
            key: content_key,
        },
        LinkDownload {
            watermark: c.link.watermark,
            at: now,
        },
    ))
}

/// How a link download is to be served.
pub struct LinkDownload {
    pub watermark: bool,
    pub at: i64,
}

/// Emails the link's creator that it was used for the first time.
async fn tell_creator(app: &App, c: &mut Checked, now: i64) -> AppResult<()> {
    let conn = c.tx.conn()?;
    let Some(user) = store::users::find_by_id(conn, &c.link.created_by).await? else {
        return Ok(());
    };
    let to = app
        .keyring
        .open_field_string(&crate::identity::email_ad(&user.id), &user.email_ct)?;
    let body = format!(
        "A file you shared on Strongroom was downloaded through its link for the first time.\n\n\
         See who opened it, and revoke the link, on the document's page:\n{base}/share-links/{link}\n",
        base = app.config.public_url().trim_end_matches('/'),
        link = c.link.id,
    );
    mail::enqueue(
        conn,
        &app.keyring,
        now,
        &mail::Email {
            to,
            subject: "Strongroom: your shared link was opened".into(),
            body,
            unsubscribe: None,
        },
    )
    .await?;
    app.mailer.wake();
    Ok(())
}

/// A grant: proof, for `GRANT_TTL_MS`, that this client gave the link's password and/or
/// confirmed an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub link_id: String,
    pub expires_at: i64,
    pub password: bool,
    pub email: Option<String>,
}

impl Grant {
    fn data(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.link_id,
            self.expires_at,
            u8::from(self.password),
            self.email.as_deref().unwrap_or("")
        )
    }

    /// The grant as a cookie value (its MAC under a key derived for this purpose).
    pub fn seal(&self, app: &App) -> String {
        use base64::Engine;
        let data = self.data();
        let mac = app.keyring.mac("share-link-grant", data.as_bytes());
        format!(
            "{}.{mac}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
        )
    }

    /// The grant in a cookie value, when it is genuine and unexpired.
    pub fn open(app: &App, value: &str) -> Option<Grant> {
        use base64::Engine;
        let (data, mac) = value.split_once('.')?;
        let data = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(data)
            .ok()?;
        if !app.keyring.verify_mac("share-link-grant", &data, mac) {
            return None;
        }
        let data = String::from_utf8(data).ok()?;
        let mut parts = data.splitn(4, '|');
        let g = Grant {
            link_id: parts.next()?.to_string(),
            expires_at: parts.next()?.parse().ok()?,
            password: parts.next()? == "1",
            email: Some(parts.next()?.to_string()).filter(|e| !e.is_empty()),
        };
        (g.expires_at > app.clock.now_ms()).then_some(g)
    }
}
