//! Notifications: in the app (a bell with an unread count) and by email, per the recipient's
//! settings. Written by the action that causes them, in its org's transaction; never for one's own
//! actions. What they say about other people is a display name, never an email address (one that
//! looks like an address is masked as the API masks emails); emails name no item or workspace,
//! only link to it, so an item's title never leaves through a mailbox.

use serde_json::{json, Value};

use super::OrgScope;
use crate::error::{AppError, AppResult};
use crate::identity::AuthSession;
use crate::mail;
use crate::state::App;
use crate::store;

/// Every kind, with what its setting is called on the settings page.
pub const KINDS: &[(&str, &str)] = &[
    ("assigned", "An item is assigned to me"),
    ("mentioned", "Someone mentions me with @name in a comment"),
    ("workspace_added", "I am given access to a workspace"),
    ("invited", "I am invited to an organization"),
];

fn known(kind: &str) -> bool {
    KINDS.iter().any(|(k, _)| *k == kind)
}

/// A display name as others see it in a notification: masked if it looks like an email address.
fn shown(name: &str) -> String {
    crate::mask::display_name(name)
}

/// What an action tells its recipient.
struct Notice<'a> {
    kind: &'static str,
    workspace_id: Option<&'a str>,
    item_id: Option<&'a str>,
    /// Ids only: `workspace_id`, `item_id`, …
    target: Value,
    /// The item's title or the workspace's name (sealed under the org key).
    text: &'a str,
    /// Where it is seen (a path under the public URL).
    path: String,
}

/// Records `notice` for `recipient` in the org's transaction, in the app and/or by email per
/// their settings; nothing for the actor themselves.
async fn deliver(
    app: &App,
    org: &mut OrgScope,
    recipient: &str,
    notice: Notice<'_>,
    now: i64,
) -> AppResult<()> {
    if recipient == org.user_id() {
        return Ok(());
    }
    let (in_app, email) = store::notifications::setting(org.tx().conn()?, recipient, notice.kind)
        .await?
        .unwrap_or((true, true));
    if in_app {
        let id = uuid::Uuid::now_v7().to_string();
        let text_ct = org
            .key()
            .seal("notifications", "text", &id, notice.text.as_bytes());
        let actor = org.user_id().to_string();
        let target = notice.target.to_string();
        store::notifications::insert(
            org.tx(),
            store::notifications::NewNotification {
                id: &id,
                user_id: recipient,
                kind: notice.kind,
                actor_id: &actor,
                workspace_id: notice.workspace_id,
                item_id: notice.item_id,
                target: &target,
                text_ct,
                now,
            },
        )
        .await?;
    }
    if email {
        let actor_id = org.user_id().to_string();
        let c = org.tx().conn()?;
        let Some(to) = store::users::find_by_id(c, recipient).await? else {
            return Ok(());
        };
        let Some(address) = crate::identity::address(&app.keyring, &to.id, &to.email_ct)? else {
            return Ok(());
        };
        let actor = match store::users::find_by_id(c, &actor_id).await? {
            Some(u) => shown(&crate::identity::shown_name(
                &app.keyring,
                &u.id,
                &u.display_name_ct,
            )?),
            None => "Someone".into(),
        };
        let what = match notice.kind {
            "assigned" => "assigned an item to you",
            "mentioned" => "mentioned you in a comment",
            "workspace_added" => "gave you access to a workspace",
            _ => "invited you to an organization",
        };
        let body = format!(
            "{actor} {what} on Strongroom.\n\n\
             Open it (you may need to sign in):\n{base}{path}\n\n\
             (The name is the one that person chose, not Strongroom's.)\n\n\
             You can choose which notifications you get by email in your account settings:\n\
             {base}/account/notifications\n",
            actor = mail::quote_untrusted(&actor),
            base = app.config.public_url(),
            path = notice.path,
        );
        mail::enqueue(
            c,
            &app.keyring,
            now,
            &mail::Email {
                to: address,
                subject: format!("Strongroom: someone {what}"),
                body,
                unsubscribe: None,
            },
        )
        .await?;
        app.mailer.wake();
    }
    Ok(())
}

/// `assignee` was given item `item_id` of workspace `ws_id`.
pub(super) async fn item_assigned(
    app: &App,
    org: &mut OrgScope,
    assignee: &str,
    ws_id: &str,
    item_id: &str,
    title: &str,
    now: i64,
) -> AppResult<()> {
    let path = format!("/orgs/{}/workspaces/{ws_id}/items/{item_id}", org.org_id());
    let notice = Notice {
        kind: "assigned",
        workspace_id: Some(ws_id),
        item_id: Some(item_id),
        target: json!({ "workspace_id": ws_id, "item_id": item_id }),
        text: title,
        path,
    };
    deliver(app, org, assignee, notice, now).await
}

/// The members mentioned with `@name` in `body` who can see workspace `ws_id` are told about the
/// comment on item `item_id`. A name matches a member whose display name, without spaces and
/// case-insensitively, is that name, or whose first word is (when only one member's is).
pub(super) async fn mentions(
    app: &App,
    org: &mut OrgScope,
    body: &str,
    ws_id: &str,
    item_id: &str,
    title: &str,
    now: i64,
) -> AppResult<()> {
    let wanted = mentioned_names(body);
    if wanted.is_empty() {
        return Ok(());
    }
    let members = store::orgs::list_members(org.tx(), "", 10_000).await?;
    let mut names = Vec::with_capacity(members.len());
    for m in &members {
        let name = crate::identity::shown_name(&app.keyring, &m.user_id, &m.display_name_ct)?;
        names.push((m.user_id.clone(), name.to_lowercase()));
    }
    let mut told: Vec<String> = Vec::new();
    for w in &wanted {
        let whole: Vec<&String> = names
            .iter()
            .filter(|(_, n)| n.split_whitespace().collect::<String>() == *w)
            .map(|(id, _)| id)
            .collect();
        let first: Vec<&String> = names
            .iter()
            .filter(|(_, n)| n.split_whitespace().next() == Some(w.as_str()))
            .map(|(id, _)| id)
            .collect();
        let who = if !whole.is_empty() {
            whole
        } else if first.len() == 1 {
            first
        } else {
            Vec::new()
        };
        for id in who {
            if told.contains(id) {
                continue;
            }
            told.push(id.clone());
            if !store::orgs::can_see_workspace(org.tx(), id, ws_id).await? {
                continue;
            }
            let path = format!("/orgs/{}/workspaces/{ws_id}/items/{item_id}", org.org_id());
            let notice = Notice {
                kind: "mentioned",
                workspace_id: Some(ws_id),
                item_id: Some(item_id),
                target: json!({ "workspace_id": ws_id, "item_id": item_id }),
                text: title,
                path,
            };
            deliver(app, org, id, notice, now).await?;
        }
    }
    Ok(())
}

/// The distinct `@names` of a comment, lowercased (at most 20).
fn mentioned_names(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let chars: Vec<char> = body.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        // `a@b` inside an email address is not a mention.
        if *c != '@' || (i > 0 && chars[i - 1].is_alphanumeric()) {
            continue;
        }
        let name: String = chars[i + 1..]
            .iter()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect::<String>()
            .trim_end_matches(['.', '-', '_'])
            .to_lowercase();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
        if out.len() == 20 {
            break;
        }
    }
    out
}

/// `user_id` was given a role in workspace `ws_id` (named `name`).
pub(super) async fn workspace_added(
    app: &App,
    org: &mut OrgScope,
    user_id: &str,
    ws_id: &str,
    name: &str,
    now: i64,
) -> AppResult<()> {
    let path = format!("/orgs/{}/workspaces/{ws_id}", org.org_id());
    let notice = Notice {
        kind: "workspace_added",
        workspace_id: Some(ws_id),
        item_id: None,
        target: json!({ "workspace_id": ws_id }),
        text: name,
        path,
    };
    deliver(app, org, user_id, notice, now).await
}

/// An existing account was invited to the org (named `org_name`); the invitation email carries
/// the link, so this one only tells them in the app (and never emails twice).
pub(super) async fn invited(
    _app: &App,
    org: &mut OrgScope,
    user_id: &str,
    org_name: &str,
    now: i64,
) -> AppResult<()> {
    if user_id == org.user_id() {
        return Ok(());
    }
    let (in_app, _) = store::notifications::setting(org.tx().conn()?, user_id, "invited")
        .await?
        .unwrap_or((true, true));
    if !in_app {
        return Ok(());
    }
    let id = uuid::Uuid::now_v7().to_string();
    let text_ct = org
        .key()
        .seal("notifications", "text", &id, org_name.as_bytes());
    let actor = org.user_id().to_string();
    store::notifications::insert(
        org.tx(),
        store::notifications::NewNotification {
            id: &id,
            user_id,
            kind: "invited",
            actor_id: &actor,
            workspace_id: None,
            item_id: None,
            target: "{}",
            text_ct,
            now,
        },
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Actor {
    pub display: String,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    pub id: String,
    pub kind: String,
    pub org_id: String,
    /// Ids of what it is about (`workspace_id`, `item_id`).
    #[schema(value_type = Object)]
    pub target: Value,
    pub actor: Actor,
    /// The item's title, the workspace's or the org's name.
    pub text: String,
    pub read: bool,
    pub at: String,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NotificationPage {
    pub items: Vec<NotificationView>,
    pub unread: i64,
    pub next_cursor: Option<String>,
}

/// The caller's notifications, newest first, with the unread count; one read transaction.
pub async fn list(
    app: &App,
    s: &AuthSession,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<NotificationPage> {
    let before = match cursor {
        None => String::new(),
        Some(c) if uuid::Uuid::parse_str(c).is_ok() => c.to_string(),
        Some(_) => {
            return Err(AppError::invalid(
                "invalid_cursor",
                "cursor: a value from next_cursor.",
            ))
        }
    };
    let limit = super::page_limit(limit)?;
    let mut tx = app.db.begin_for_user(&s.user_id).await?;
    let rows =
        store::notifications::list(&mut tx, &s.user_id, s.mfa, &before, None, limit + 1).await?;
    let unread = store::notifications::unread_count(&mut tx, &s.user_id, s.mfa).await?;
    tx.commit().await?;
    let mut items = views(app, rows)?;
    let next_cursor = if items.len() > usize::try_from(limit).unwrap_or(0) {
        items.truncate(usize::try_from(limit).unwrap_or(0));
        items.last().map(|n| n.id.clone())
    } else {
        None
    };
    Ok(NotificationPage {
        items,
        unread,
        next_cursor,
    })
}

/// One of the caller's notifications (None: not theirs, or none such).
pub async fn find(app: &App, s: &AuthSession, id: &str) -> AppResult<Option<NotificationView>> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(None);
    }
    let mut tx = app.db.begin_for_user(&s.user_id).await?;
    let rows = store::notifications::list(&mut tx, &s.user_id, s.mfa, "", Some(id), 1).await?;
    tx.commit().await?;
    Ok(views(app, rows)?.into_iter().next())
}

/// Rows opened: each text with its org's key, each actor's name with the platform key.
fn views(
    app: &App,
    rows: Vec<store::notifications::NotificationRow>,
) -> AppResult<Vec<NotificationView>> {
    let mut keys: std::collections::HashMap<String, crate::crypto::TenantKey> =
        std::collections::HashMap::new();
    let mut items = Vec::with_capacity(rows.len());
    for r in rows {
        if !keys.contains_key(&r.org_id) {
            let wrapped = crate::crypto::WrappedKey {
                version: u32::try_from(r.key_version).unwrap_or(0),
                wrapped: r.key_wrapped.clone(),
            };
            let key = match app.keyring.open_tenant_key(&r.org_id, &wrapped) {
                Err(crate::crypto::CryptoError::Shredded) => continue,
                other => other?,
            };
            keys.insert(r.org_id.clone(), key);
        }
        let Some(key) = keys.get(&r.org_id) else {
            continue;
        };
        let text = key.open_string("notifications", "text", &r.id, &r.text_ct)?;
        let display = match (&r.actor_id, &r.actor_name_ct) {
            (Some(id), Some(ct)) => shown(&crate::identity::shown_name(&app.keyring, id, ct)?),
            _ => "Deleted user".into(),
        };
        items.push(NotificationView {
            id: r.id,
            kind: r.kind,
            org_id: r.org_id,
            target: serde_json::from_str(&r.target).unwrap_or(Value::Null),
            actor: Actor { display },
            text,
            read: r.read_at.is_some(),
            at: crate::clock::rfc3339(r.created_at),
        });
    }
    Ok(items)
}

/// The caller's unread count (the bell).
pub async fn unread(app: &App, s: &AuthSession) -> AppResult<i64> {
    let mut c = app.db.begin_for_user(&s.user_id).await?;
    let n = store::notifications::unread_count(&mut c, &s.user_id, s.mfa).await?;
    c.commit().await?;
    Ok(n)
}

/// Marks some (`ids`) or all of the caller's notifications read; another user's ids change
/// nothing.
pub async fn mark_read(app: &App, s: &AuthSession, ids: Option<Vec<String>>) -> AppResult<()> {
    if let Some(ids) = &ids {
        if ids.len() > 200 || ids.iter().any(|i| uuid::Uuid::parse_str(i).is_err()) {
            return Err(AppError::invalid(
                "invalid_ids",
                "ids: up to 200 notification ids.",
            ));
        }
    }
    let now = app.clock.now_ms();
    let mut tx = app.db.begin_for_user_write(&s.user_id).await?;
    store::notifications::mark_read(&mut tx, &s.user_id, ids.as_deref(), now).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Channels {
    pub in_app: bool,
    pub email: bool,
}

/// The caller's settings for every kind (defaults: both on).
pub async fn settings(
    app: &App,
    s: &AuthSession,
) -> AppResult<std::collections::BTreeMap<String, Channels>> {
    let mut tx = app.db.begin_for_user(&s.user_id).await?;
    let changed = store::notifications::settings(&mut tx, &s.user_id).await?;
    tx.commit().await?;
    Ok(KINDS
        .iter()
        .map(|(k, _)| {
            let c = changed.iter().find(|(kind, _, _)| kind == k).map_or(
                Channels {
                    in_app: true,
                    email: true,
                },
                |(_, in_app, email)| Channels {
                    in_app: *in_app,
                    email: *email,
                },
            );
            (k.to_string(), c)
        })
        .collect())
}

/// Changes some of the caller's settings; an unknown kind changes nothing (422).
pub async fn update_settings(
    app: &App,
    s: &AuthSession,
    changes: std::collections::BTreeMap<String, Channels>,
) -> AppResult<std::collections::BTreeMap<String, Channels>> {
    if let Some(bad) = changes.keys().find(|k| !known(k)) {
        return Err(AppError::invalid(
            "invalid_kind",
            format!(
                "{bad}: not a notification kind (one of {}).",
                KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let mut tx = app.db.begin_for_user_write(&s.user_id).await?;
    for (kind, c) in &changes {
        store::notifications::put_setting(&mut tx, &s.user_id, kind, c.in_app, c.email).await?;
    }
    tx.commit().await?;
    settings(app, s).await
}

#[cfg(test)]
mod tests {
    use super::mentioned_names;

    #[test]
    fn mentions_are_names_after_an_at_sign_not_inside_an_address() {
        assert_eq!(
            mentioned_names("thanks @Alice and @bob.smith, cc a@b.com @alice."),
            vec!["alice".to_string(), "bob.smith".to_string()]
        );
        assert!(mentioned_names("mail me at jane@example.com").is_empty());
    }
}
