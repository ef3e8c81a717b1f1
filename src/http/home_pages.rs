//! The signed-in home (a dashboard: items assigned to me, my orgs, recent activity), the
//! notifications page and the notification settings. Every change calls the same services as
//! the API; every form answers with a redirect (Post/Redirect/Get).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

use super::org_pages::to_login;
use super::pages::{render, render_error};
use super::problem::{ApiPath, ApiQuery};
use super::session::{next_cookie, next_cookie_name, safe_next, FullSession};
use crate::error::AppError;
use crate::identity::AuthSession;
use crate::state::{App, AppState};
use crate::tenancy::notifications::{self, NotificationView};
use crate::tenancy::{self, home};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home_page))
        .route("/notifications", get(notifications_page))
        .route("/notifications/read", post(read_all_submit))
        .route("/notifications/{id}/open", get(open_notification))
        .route(
            "/account/notifications",
            get(settings_page).post(settings_submit),
        )
}

/// A notification as a sentence, with the page it is about.
#[derive(Serialize)]
struct Line {
    id: String,
    sentence: String,
    href: Option<String>,
    read: bool,
    at: String,
}

fn line(n: &NotificationView) -> Line {
    let who = &n.actor.display;
    let sentence = match n.kind.as_str() {
        "assigned" => format!("{who} assigned you “{}”", n.text),
        "mentioned" => format!("{who} mentioned you on “{}”", n.text),
        "workspace_added" => format!("{who} gave you access to {}", n.text),
        "invited" => format!(
            "{who} invited you to {} (see the email we sent you)",
            n.text
        ),
        other => format!("{who}: {other}"),
    };
    Line {
        id: n.id.clone(),
        sentence,
        href: target_path(n),
        read: n.read,
        at: n.at.clone(),
    }
}

/// The page a notification is about (ids from the notification; the page checks access again).
fn target_path(n: &NotificationView) -> Option<String> {
    let ws = n.target.get("workspace_id").and_then(|v| v.as_str());
    let item = n.target.get("item_id").and_then(|v| v.as_str());
    let ok = |s: &str| uuid::Uuid::parse_str(s).is_ok();
    match (ws, item) {
        (Some(w), Some(i)) if ok(w) && ok(i) => {
            Some(format!("/orgs/{}/workspaces/{w}/items/{i}", n.org_id))
        }
        (Some(w), None) if ok(w) => Some(format!("/orgs/{}/workspaces/{w}", n.org_id)),
        _ => None,
    }
}

/// The message page for a signed-in user whose request failed with `e`.
fn failed(app: &App, title: &str, e: &AppError) -> Response {
    render_error(
        app,
        e,
        "message.html",
        context! { title, message => "", signed_in => true },
    )
}

/// Signed out: the sign-in page. Signed in: where a sign-in was asked for (the `next` cookie,
/// once), else the dashboard.
async fn home_page(
    State(app): State<AppState>,
    jar: CookieJar,
    FullSession(s): FullSession,
) -> Response {
    let Some(s) = s else {
        return to_login();
    };
    if let Some(next) = jar
        .get(next_cookie_name(&app))
        .map(|c| c.value().to_string())
    {
        let mut gone = next_cookie(&app, "");
        gone.set_max_age(time::Duration::ZERO);
        let jar = jar.remove(gone);
        if let Some(path) = safe_next(&next) {
            return (jar, Redirect::to(path)).into_response();
        }
        return (jar, dashboard(&app, &s).await).into_response();
    }
    dashboard(&app, &s).await
}

async fn dashboard(app: &App, s: &AuthSession) -> Response {
    let loaded = async {
        let assigned = home::assigned(app, s).await?;
        let orgs = tenancy::list_orgs(app, s, None, Some(50)).await?;
        let recent = notifications::list(app, s, None, Some(8)).await?;
        Ok::<_, AppError>((assigned, orgs, recent))
    };
    match loaded.await {
        Ok((assigned, orgs, recent)) => {
            let activity: Vec<Line> = recent.items.iter().map(line).collect();
            render(
                app,
                StatusCode::OK,
                "home.html",
                context! {
                    title => "Home", signed_in => true, nav => "home",
                    assigned => Value::from_serialize(&assigned.items),
                    orgs => Value::from_serialize(&orgs.items),
                    activity => Value::from_serialize(&activity),
                },
            )
        }
        Err(e) => failed(app, "Home", &e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    cursor: Option<String>,
    done: Option<String>,
}

async fn notifications_page(
    State(app): State<AppState>,
    FullSession(s): FullSession,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Response {
    let Some(s) = s else {
        return to_login();
    };
    match notifications::list(&app, &s, q.cursor.as_deref(), Some(50)).await {
        Ok(page) => {
            let items: Vec<Line> = page.items.iter().map(line).collect();
            let notice = (q.done.as_deref() == Some("read"))
                .then_some("All notifications are marked as read.");
            render(
                &app,
                StatusCode::OK,
                "notifications.html",
                context! {
                    title => "Notifications", signed_in => true, notice,
                    items => Value::from_serialize(&items), unread => page.unread,
                    next_cursor => page.next_cursor,
                },
            )
        }
        Err(e) => failed(&app, "Notifications", &e),
    }
}

async fn read_all_submit(State(app): State<AppState>, FullSession(s): FullSession) -> Response {
    let Some(s) = s else {
        return to_login();
    };
    match notifications::mark_read(&app, &s, None).await {
        Ok(()) => Redirect::to("/notifications?done=read").into_response(),
        Err(e) => failed(&app, "Notifications", &e),
    }
}

/// Opens what a notification is about, marking it read (only the caller's own: another's id is
/// "not found").
async fn open_notification(
    State(app): State<AppState>,
    FullSession(s): FullSession,
    ApiPath(id): ApiPath<String>,
) -> Response {
    let Some(s) = s else {
        return to_login();
    };
    let found = async {
        let n = notifications::find(&app, &s, &id)
            .await?
            .ok_or(AppError::NotFound)?;
        notifications::mark_read(&app, &s, Some(vec![n.id.clone()])).await?;
        Ok::<_, AppError>(target_path(&n).unwrap_or_else(|| "/notifications".into()))
    };
    match found.await {
        Ok(path) => Redirect::to(&path).into_response(),
        Err(e) => failed(&app, "Notification", &e),
    }
}

#[derive(Serialize)]
struct KindRow {
    kind: &'static str,
    label: &'static str,
    in_app: bool,
    email: bool,
}

async fn settings_page(
    State(app): State<AppState>,
    FullSession(s): FullSession,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Response {
    let Some(s) = s else {
        return to_login();
    };
    match notifications::settings(&app, &s).await {
        Ok(current) => {
            let kinds: Vec<KindRow> = notifications::KINDS
                .iter()
                .map(|(kind, label)| {
                    let c = current.get(*kind);
                    KindRow {
                        kind,
                        label,
                        in_app: c.is_none_or(|c| c.in_app),
                        email: c.is_none_or(|c| c.email),
                    }
                })
                .collect();
            let notice = (q.done.as_deref() == Some("saved")).then_some("Saved.");
            render(
                &app,
                StatusCode::OK,
                "notification_settings.html",
                context! { title => "Notification settings", signed_in => true, notice, kinds => Value::from_serialize(&kinds) },
            )
        }
        Err(e) => failed(&app, "Notification settings", &e),
    }
}

/// The settings form: a checked box is on, an absent one off (HTML sends only checked boxes).
async fn settings_submit(
    State(app): State<AppState>,
    FullSession(s): FullSession,
    axum::extract::RawForm(body): axum::extract::RawForm,
) -> Response {
    let Some(s) = s else {
        return to_login();
    };
    let Ok(checked) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        let e = AppError::invalid(
            "invalid_form",
            "The form could not be read; nothing was changed.",
        );
        return failed(&app, "Notification settings", &e);
    };
    let on = |name: String| checked.iter().any(|(k, _)| *k == name);
    let changes = notifications::KINDS
        .iter()
        .map(|(kind, _)| {
            (
                kind.to_string(),
                notifications::Channels {
                    in_app: on(format!("{kind}.in_app")),
                    email: on(format!("{kind}.email")),
                },
            )
        })
        .collect();
    match notifications::update_settings(&app, &s, changes).await {
        Ok(_) => Redirect::to("/account/notifications?done=saved").into_response(),
        Err(e) => failed(&app, "Notification settings", &e),
    }
}
