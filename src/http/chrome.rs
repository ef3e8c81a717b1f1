//! What every signed-in page shows around its content: the org switcher (the caller's orgs) and
//! the notification bell (the unread count). Loaded once per page request, by the page session
//! extractor (`FullSession`) on a `GET`, into a task-local that `pages::render` reads; the scope
//! is set by a layer on the page routes only, so API requests never pay for it. A form's `POST`
//! does not load it (it answers with a redirect, or a page whose header keeps the plain links).

use std::cell::RefCell;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use minijinja::{context, Value};

use crate::identity::AuthSession;
use crate::state::App;
use crate::store;

tokio::task_local! {
    static CHROME: RefCell<Option<Value>>;
}

/// The layer's function: a fresh, empty header for this page request.
pub async fn scope(req: Request, next: Next) -> Response {
    CHROME.scope(RefCell::new(None), next.run(req)).await
}

#[derive(serde::Serialize)]
struct OrgLink {
    id: String,
    name: String,
    role: String,
}

/// Loads the header of `s` for the page being answered (nothing outside a page request). A
/// failure leaves the plain header: the page itself reports its own errors.
pub async fn load(app: &App, s: &AuthSession) {
    if CHROME.try_with(|_| ()).is_err() {
        return;
    }
    let loaded = async {
        let mut tx = app.db.begin_for_user(&s.user_id).await?;
        let rows = store::orgs::list_orgs_for_user(&mut tx, &s.user_id, "", 50).await?;
        let unread = store::notifications::unread_count(&mut tx, &s.user_id, s.mfa).await?;
        tx.commit().await?;
        let mut orgs = Vec::with_capacity(rows.len());
        for (row, role, (version, wrapped)) in rows {
            let key = match app
                .keyring
                .open_tenant_key(&row.id, &crate::crypto::WrappedKey { version, wrapped })
            {
                Err(crate::crypto::CryptoError::Shredded) => continue,
                other => other?,
            };
            orgs.push(OrgLink {
                name: key.open_string("orgs", "name", &row.id, &row.name_ct)?,
                id: row.id,
                role,
            });
        }
        orgs.sort_by_key(|o| o.name.to_lowercase());
        Ok::<_, anyhow::Error>(context! { orgs => Value::from_serialize(&orgs), unread })
    };
    match loaded.await {
        Ok(v) => {
            let _ = CHROME.try_with(|c| *c.borrow_mut() = Some(v));
        }
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "page header not loaded"),
    }
}

/// The header loaded for this page request, if any.
pub fn current() -> Option<Value> {
    CHROME.try_with(|c| c.borrow().clone()).ok().flatten()
}
