//! The page templates: one minijinja environment for every page, compiled once at start-up and
//! held in `App`, so a template that does not compile stops the server from starting instead of
//! failing the first request that renders it. Escaping is minijinja's default, chosen by file
//! name: every template is `.html`, so every value is HTML-escaped unless a template says
//! otherwise.

use anyhow::Context;
use minijinja::{Environment, Value};

/// Every template, by the name pages render it by (and `{% extends %}` finds it by).
const SOURCES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("logout.html", include_str!("../templates/logout.html")),
    // Sign-up, sign-in and recovery.
    ("signup.html", include_str!("../templates/signup.html")),
    ("verify.html", include_str!("../templates/verify.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("forgot.html", include_str!("../templates/forgot.html")),
    ("reset.html", include_str!("../templates/reset.html")),
    // The account's security settings and second factors.
    ("account.html", include_str!("../templates/account.html")),
    (
        "mfa_login.html",
        include_str!("../templates/mfa_login.html"),
    ),
    (
        "totp_setup.html",
        include_str!("../templates/totp_setup.html"),
    ),
    (
        "recovery_codes.html",
        include_str!("../templates/recovery_codes.html"),
    ),
    ("reauth.html", include_str!("../templates/reauth.html")),
    // Organizations and their work.
    ("orgs.html", include_str!("../templates/orgs.html")),
    ("org.html", include_str!("../templates/org.html")),
    ("audit.html", include_str!("../templates/audit.html")),
    (
        "workspace.html",
        include_str!("../templates/workspace.html"),
    ),
    ("item.html", include_str!("../templates/item.html")),
    (
        "item_delete.html",
        include_str!("../templates/item_delete.html"),
    ),
    ("home.html", include_str!("../templates/home.html")),
    (
        "notifications.html",
        include_str!("../templates/notifications.html"),
    ),
    (
        "notification_settings.html",
        include_str!("../templates/notification_settings.html"),
    ),
    ("search.html", include_str!("../templates/search.html")),
    (
        "org_settings.html",
        include_str!("../templates/org_settings.html"),
    ),
    (
        "invitation_accept.html",
        include_str!("../templates/invitation_accept.html"),
    ),
    (
        "invitation_optout.html",
        include_str!("../templates/invitation_optout.html"),
    ),
    // Documents and share links.
    (
        "documents.html",
        include_str!("../templates/documents.html"),
    ),
    ("document.html", include_str!("../templates/document.html")),
    ("org_tabs.html", include_str!("../templates/org_tabs.html")),
    ("api_keys.html", include_str!("../templates/api_keys.html")),
    ("webhooks.html", include_str!("../templates/webhooks.html")),
    ("webhook.html", include_str!("../templates/webhook.html")),
    ("billing.html", include_str!("../templates/billing.html")),
    ("share.html", include_str!("../templates/share.html")),
    (
        "share_gone.html",
        include_str!("../templates/share_gone.html"),
    ),
    (
        "share_link.html",
        include_str!("../templates/share_link.html"),
    ),
];

/// The page's clock (`now_ms`, set by every render), else the system's.
fn now_of(state: &minijinja::State) -> i64 {
    state
        .lookup("now_ms")
        .and_then(|v| i64::try_from(v).ok())
        .unwrap_or_else(|| {
            i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis()),
            )
            .unwrap_or(0)
        })
}

/// The one template environment (see the module documentation).
pub struct Templates(Environment<'static>);

impl Templates {
    /// Compiles every template; the first that does not compile is the error.
    pub fn load() -> anyhow::Result<Self> {
        let mut env = Environment::new();
        // Human dates: relative words with the exact UTC time on hover, against the `now_ms` every
        // page gets (the app's clock).
        env.add_filter("when", |state: &minijinja::State, v: String| {
            Value::from_safe_string(crate::humanize::time_html(&v, now_of(state)))
        });
        env.add_filter("due", |state: &minijinja::State, v: String| {
            crate::humanize::due_words(&v, now_of(state))
        });
        env.add_filter("device", |v: String| crate::humanize::device(&v));
        env.add_filter("filesize", |v: i64| crate::humanize::file_size(v));
        // User-written Markdown, parsed and sanitised (`crate::markdown`).
        env.add_filter("markdown", |v: String| {
            Value::from_safe_string(crate::markdown::to_html(&v))
        });
        for (name, src) in SOURCES {
            env.add_template(name, src)
                .with_context(|| format!("template {name} does not compile"))?;
        }
        Ok(Templates(env))
    }

    /// The template `name` rendered with `ctx`.
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        self.0.get_template(name)?.render(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::Templates;

    #[test]
    fn every_template_compiles_and_escapes_html() {
        let t = Templates::load().unwrap();
        let html = t
            .render(
                "message.html",
                minijinja::context! { title => "<b>", message => "<script>" },
            )
            .unwrap();
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
    }
}
