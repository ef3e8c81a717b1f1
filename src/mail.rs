//! Outgoing email. Messages are queued in `email_outbox` (encrypted, in the caller's transaction)
//! and delivered by a job loop with retries and backoff, to SMTP when configured, else as `.eml`
//! files in `<data_dir>/outbox/` so a person or a test can follow their links.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::crypto::{FieldAd, Keyring};
use crate::store::{self, Conn, Db};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// A one-click opt-out URL (RFC 8058): sent as `List-Unsubscribe` with
    /// `List-Unsubscribe-Post`, so mail clients offer an unsubscribe button that needs no page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe: Option<String>,
}

/// Text someone else chose (an org name), made safe to quote in an email: in quotation marks, on
/// one line (its own quotes turned to apostrophes), and with anything a mail client would turn into a link defused (`https://a.b/c` ->
/// `hxxps[://]a[.]b/c`, `x@y.z` -> `x[at]y[.]z`, `www.a.b` -> `www[.]a[.]b`).
pub fn quote_untrusted(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            '"' => '\'',
            c => c,
        })
        .collect();
    let defused = one_line
        .split(' ')
        .map(|word| {
            let linkish = word.contains("://")
                || word.contains('@')
                || word
                    .trim_matches(|c: char| !c.is_alphanumeric())
                    .split('.')
                    .filter(|p| !p.is_empty())
                    .count()
                    >= 2;
            if linkish {
                word.replace("http", "hxxp")
                    .replace("HTTP", "hxxp")
                    .replace("://", "[://]")
                    .replace('@', "[at]")
                    .replace('.', "[.]")
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!("\"{defused}\"")
}

fn ad(id: &str) -> FieldAd<'_> {
    FieldAd {
        scope: "platform",
        table: "email_outbox",
        column: "payload",
        row: id,
        account: None,
    }
}

/// Queues `email` in the caller's transaction.
pub async fn enqueue(
    c: &mut Conn,
    keyring: &Keyring,
    now: i64,
    email: &Email,
) -> Result<(), sqlx::Error> {
    let id = uuid::Uuid::now_v7().to_string();
    let payload = serde_json::to_vec(email).unwrap_or_default();
    store::outbox::insert(c, &id, keyring.seal_platform_field(&ad(&id), &payload), now).await
}

/// Removes every message to `addr` from the outbox, sent or not (an erased account's).
/// Returns how many went.
pub async fn forget_recipient(c: &mut Conn, keyring: &Keyring, addr: &str) -> anyhow::Result<u64> {
    let mut gone = 0;
    for (id, payload_ct) in store::outbox::all(c).await? {
        let Ok(payload) = keyring.open_field(&ad(&id), &payload_ct) else {
            continue;
        };
        let Ok(mail) = serde_json::from_slice::<Email>(&payload) else {
            continue;
        };
        if mail.to.eq_ignore_ascii_case(addr) {
            gone += store::outbox::delete(c, &id).await?;
        }
    }
    Ok(gone)
}

enum Transport {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Delivers queued email.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    from: Mailbox,
    db: Db,
    keyring: Arc<Keyring>,
    clock: SharedClock,
    wake: Notify,
}

const MAX_ATTEMPTS: i64 = 8;

impl Mailer {
    pub fn new(
        cfg: &Config,
        db: Db,
        keyring: Arc<Keyring>,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let transport = match &cfg.smtp {
            None => {
                let dir = cfg.data_dir.join("outbox");
                crate::private_dir::create(&dir)?;
                Transport::File(AsyncFileTransport::new(dir))
            }
            Some(s) => {
                let mut b = match s.tls.as_str() {
                    "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)?,
                    "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
                    _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)?,
                }
                .port(s.port);
                if let (Some(u), Some(p)) = (&s.username, &s.password) {
                    b = b.credentials(Credentials::new(u.clone(), p.clone()));
                }
                Transport::Smtp(b.build())
            }
        };
        let from: Mailbox = cfg.mail_from.parse()?;
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                from,
                db,
                keyring,
                clock,
                wake: Notify::new(),
            }),
        })
    }

    /// Tells the worker there is mail (call after committing a transaction that queued some).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Delivers every message that is due now; returns how many were sent.
    pub async fn deliver_pending(&self) -> anyhow::Result<usize> {
        let mut sent = 0;
        loop {
            let now = self.inner.clock.now_ms();
            let mut conn = self.inner.db.acquire().await?;
            let Some(row) = store::outbox::claim(&mut conn, now, 60_000).await? else {
                return Ok(sent);
            };
            drop(conn);
            let result = self.send_row(&row.id, &row.payload_ct).await;
            let mut conn = self.inner.db.acquire().await?;
            match result {
                Ok(()) => {
                    store::outbox::mark_sent(&mut conn, &row.id, self.inner.clock.now_ms()).await?;
                    metrics::counter!("strongroom_emails_total", "result" => "sent").increment(1);
                    sent += 1;
                }
                Err(e) => {
                    tracing::warn!(outbox_id = %row.id, attempt = row.attempts, error = %e, "email delivery failed");
                    metrics::counter!("strongroom_emails_total", "result" => "failed").increment(1);
                    let backoff =
                        1000 * 2i64.pow(u32::try_from(row.attempts.clamp(0, 12)).unwrap_or(12));
                    let next = if row.attempts >= MAX_ATTEMPTS {
                        i64::MAX
                    } else {
                        now + backoff
                    };
                    store::outbox::mark_failed(
                        &mut conn,
                        &row.id,
                        next,
                        &crate::logging::redact(&e.to_string()),
                    )
                    .await?;
                }
            }
        }
    }

    async fn send_row(&self, id: &str, ct: &[u8]) -> anyhow::Result<()> {
        let plain = self.inner.keyring.open_field(&ad(id), ct)?;
        let email: Email = serde_json::from_slice(&plain)?;
        // Plain 7-bit text when possible, so a person (or a test) can read the outbox file as is.
        // (RFC 5322 allows lines up to 998 characters; lettre's chooser would pick quoted-printable
        // above 76, which splits links.)
        let body = if email.body.is_ascii() && email.body.lines().all(|l| l.len() <= 998) {
            Body::dangerous_pre_encoded(
                email
                    .body
                    .replace("\r\n", "\n")
                    .replace('\n', "\r\n")
                    .into_bytes(),
                ContentTransferEncoding::SevenBit,
            )
        } else {
            Body::new(email.body)
        };
        let mut msg = Message::builder()
            .from(self.inner.from.clone())
            .to(email.to.parse()?)
            .subject(email.subject);
        if let Some(url) = &email.unsubscribe {
            use lettre::message::header::{HeaderName, HeaderValue};
            msg = msg
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".into(),
                ));
        }
        let msg = msg.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(body),
        )?;
        match &self.inner.transport {
            Transport::File(t) => t.send(msg).await.map(|_| ())?,
            Transport::Smtp(t) => t.send(msg).await.map(|_| ())?,
        }
        tracing::info!(outbox_id = %id, "email delivered");
        Ok(())
    }

    /// The job loop: runs until `shutdown` fires, waking on `wake()` or every few seconds.
    pub fn spawn_worker(&self, shutdown: crate::shutdown::Shutdown) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.deliver_pending().await {
                    tracing::error!(error = %e, "outbox worker error");
                }
                tokio::select! {
                    _ = me.inner.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = shutdown.wait() => return,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::quote_untrusted;

    #[test]
    fn untrusted_text_is_quoted_and_links_are_defused() {
        let q = quote_untrusted("URGENT: account locked, reset at https://evil.example/r");
        assert_eq!(
            q,
            "\"URGENT: account locked, reset at hxxps[://]evil[.]example/r\""
        );
        assert!(!quote_untrusted("mail boss@evil.example now").contains("@evil.example"));
        assert!(!quote_untrusted("visit www.evil.example").contains("www.evil"));
        assert!(!quote_untrusted("evil.example/login").contains("evil.example"));
        assert_eq!(quote_untrusted("Acme \"Corp\""), "\"Acme 'Corp'\"");
        assert!(!quote_untrusted("a\nb").contains('\n'));
    }
}
