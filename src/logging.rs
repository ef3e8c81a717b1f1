//! JSON logs through a redaction layer: whatever a log line carries, emails are masked and anything
//! shaped like a bearer secret, password, cookie or key is replaced before it is written.
//!
//! Cheap enough for one line per request: a line is scanned once for what the patterns need (an
//! `@`, a secret-sounding word, a long run of token characters that is not a UUID) and only a line
//! that has one goes through the patterns. Lines are handed to a writer thread, which writes them
//! in batches, so no request waits on a write to stdout. The one line per request (`access`) is
//! written straight to that thread: every field of it is ours (our request id, a method label, the
//! route's template, never the path a client sent), so it has nothing to redact.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::{LazyLock, OnceLock};

use regex::{Captures, Regex};
use serde::Serialize;
use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
        .unwrap_or_else(|_| never())
});
/// The words that make a field secret; `SECRET_FIELD` is a field whose name holds one.
static SECRET_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)password|passwd|token|secret|cookie|authorization|api_key|code")
        .unwrap_or_else(|_| never())
});
static SECRET_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)("[a-z_]*(?:password|passwd|token|secret|cookie|authorization|api_key|code)[a-z_]*"\s*:\s*)"(?:[^"\\]|\\.)*""#)
        .unwrap_or_else(|_| never())
});
static LONG_OPAQUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9_\-]{32,}").unwrap_or_else(|_| never()));
const LONG_OPAQUE_MIN: usize = 32;

fn never() -> Regex {
    // The patterns above are constants that compile; this is unreachable.
    Regex::new("$^").unwrap_or_else(|_| std::process::abort())
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `8-4-4-4-12` hex digits: a UUID, which is an id, not a secret.
fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The runs `LONG_OPAQUE` would match (maximal runs of token characters, 32 or longer) that
/// are not UUIDs: whether the line has one.
fn has_long_opaque(s: &str) -> bool {
    s.as_bytes()
        .split(|b| !is_token_byte(*b))
        .any(|run| run.len() >= LONG_OPAQUE_MIN && !is_uuid(run))
}

/// Redacts one chunk of log output; a chunk with nothing to redact comes back borrowed.
pub fn redact(line: &str) -> Cow<'_, str> {
    let secret = SECRET_WORD.is_match(line);
    let email = line.contains('@');
    let opaque = has_long_opaque(line);
    if !(secret || email || opaque) {
        return Cow::Borrowed(line);
    }
    let mut s = Cow::Borrowed(line);
    if secret {
        s = Cow::Owned(
            SECRET_FIELD
                .replace_all(&s, |c: &Captures<'_>| format!("{}\"[redacted]\"", &c[1]))
                .into_owned(),
        );
    }
    if email {
        s = Cow::Owned(
            EMAIL
                .replace_all(&s, |c: &Captures<'_>| crate::mask::email(&c[0]))
                .into_owned(),
        );
    }
    // Masking never makes a long run, so a line without one before has none after.
    if opaque {
        s = Cow::Owned(
            LONG_OPAQUE
                .replace_all(&s, |c: &Captures<'_>| {
                    if is_uuid(c[0].as_bytes()) {
                        c[0].to_string()
                    } else {
                        "[redacted]".to_string()
                    }
                })
                .into_owned(),
        );
    }
    s
}

/// Wraps a writer so that every write is redacted first.
pub struct Redacting<W>(pub W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `MakeWriter` for redacted output on top of another `MakeWriter`.
#[derive(Clone)]
pub struct RedactingMakeWriter<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = Redacting<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        Redacting(self.0.make_writer())
    }
}

/// A JSON subscriber writing redacted lines to `writer`.
pub fn subscriber<M>(level: &str, writer: M) -> impl tracing::Subscriber + Send + Sync
where
    M: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(RedactingMakeWriter(writer))
        .finish()
}

/// Where `init` sends the access lines.
static ACCESS: OnceLock<NonBlocking> = OnceLock::new();
/// The target of access lines (that of the middleware which writes them), for level filters.
const ACCESS_TARGET: &str = "strongroom::http::middleware";

#[derive(Serialize)]
struct AccessLine<'a> {
    timestamp: String,
    level: &'static str,
    fields: AccessFields<'a>,
    target: &'static str,
}

#[derive(Serialize)]
struct AccessFields<'a> {
    message: &'static str,
    request_id: &'a str,
    method: &'a str,
    route: &'a str,
    status: u16,
    latency_ms: u64,
}

/// The line logged for every request, shaped like every other JSON line (`timestamp`, `level`,
/// `fields`, `target`). Without `init` (tests, tools) it goes through `tracing` like any event.
pub fn access(request_id: &str, method: &str, route: &str, status: u16, latency_ms: u64) {
    if !tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
        return;
    }
    let Some(writer) = ACCESS.get() else {
        tracing::info!(target: ACCESS_TARGET, request_id, method, route, status, latency_ms, "request");
        return;
    };
    let fields = AccessFields {
        message: "request",
        request_id,
        method,
        route,
        status,
        latency_ms,
    };
    if let Some(line) = access_line(time::OffsetDateTime::now_utc(), fields) {
        // Never lossy (see `init`); an error means the writer thread is gone at shutdown.
        let _ = writer.clone().write_all(&line);
    }
}

fn access_line(at: time::OffsetDateTime, fields: AccessFields<'_>) -> Option<Vec<u8>> {
    let line = AccessLine {
        timestamp: at
            .format(&time::format_description::well_known::Rfc3339)
            .ok()?,
        level: "INFO",
        fields,
        target: ACCESS_TARGET,
    };
    let mut buf = Vec::with_capacity(256);
    serde_json::to_writer(&mut buf, &line).ok()?;
    buf.push(b'\n');
    Some(buf)
}

/// Installs the process-wide subscriber: redacted lines go to a writer thread that writes them to
/// stdout in batches. Never lossy: were the thread ever 128k lines behind, a request would wait
/// rather than a line be dropped. Keep the guard until the process ends; dropping it writes what is
/// still queued.
pub fn init(level: &str) -> WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("strongroom-log")
        .finish(io::BufWriter::new(io::stdout()));
    let _ = ACCESS.set(writer.clone());
    let _ = tracing::subscriber::set_global_default(subscriber(level, writer));
    guard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_what_must_not_be_logged() {
        let line = r#"{"msg":"x","password":"hunter2 hunter2","email":"alice@example.com","session_token":"s3cr3tvalue","u":"0190a5e4-8f3e-7c1a-9d2b-123456789abc","t":"Zm9vYmFyYmF6cXV4cXV1eGZvb2Jhcjk4NzY1NDMyMTA"}"#;
        let out = redact(line);
        assert!(!out.contains("hunter2"));
        assert!(!out.contains("alice@example.com"));
        assert!(out.contains("a***@e***.com"));
        assert!(!out.contains("s3cr3tvalue"));
        assert!(out.contains("0190a5e4-8f3e-7c1a-9d2b-123456789abc"));
        assert!(!out.contains("Zm9vYmFyYmF6cXV4"));
    }

    #[test]
    fn each_pattern_fires_on_its_own() {
        // Only a secret field: upper-case name, escaped quotes inside the value.
        let out = redact(r#"{"X_API_KEY":"ab\"cd","n":1}"#);
        assert_eq!(out, r#"{"X_API_KEY":"[redacted]","n":1}"#);
        // Only an email, in free text.
        assert!(!redact("sent to bob@mail.example.org today").contains("bob@"));
        // Only a long opaque run (33 characters, not a UUID); a UUID with one more character on
        // either side is such a run too.
        let out = redact("bearer abcdefghijklmnopqrstuvwxyz0123456 end");
        assert_eq!(out, "bearer [redacted] end");
        let out = redact("id 0190a5e4-8f3e-7c1a-9d2b-123456789abcd end");
        assert_eq!(out, "id [redacted] end");
    }

    #[test]
    fn the_access_line_is_one_json_line_shaped_like_the_others() {
        let at = time::OffsetDateTime::from_unix_timestamp(1_796_000_000).expect("time");
        let fields = AccessFields {
            message: "request",
            request_id: "01a2311a-87f9-7065-9474-797be36a67a4",
            method: "GET",
            route: "/api/v1/orgs/{org_id}",
            status: 404,
            latency_ms: 7,
        };
        let line = access_line(at, fields).expect("line");
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        assert!(line.ends_with(b"\n"));
        let v: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v["timestamp"], "2026-11-30T00:53:20Z");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "strongroom::http::middleware");
        assert_eq!(v["fields"]["message"], "request");
        assert_eq!(v["fields"]["route"], "/api/v1/orgs/{org_id}");
        assert_eq!(v["fields"]["status"], 404);
        assert_eq!(v["fields"]["latency_ms"], 7);
        // Nothing in it that redaction would touch: writing it unredacted changes nothing.
        let text = std::str::from_utf8(&line).expect("utf-8");
        assert!(matches!(redact(text), Cow::Borrowed(_)));
    }

    #[test]
    fn a_line_with_nothing_to_hide_is_passed_through_untouched() {
        let line = r#"{"timestamp":"2026-12-01T09:42:16.123456Z","level":"INFO","fields":{"message":"request","request_id":"0190a5e4-8f3e-7c1a-9d2b-123456789abc","method":"GET","route":"/api/v1/orgs/{org_id}","status":200,"latency_ms":3},"target":"strongroom::http::middleware"}"#;
        assert!(matches!(redact(line), Cow::Borrowed(_)));
        // A 31-character run is short enough; 32 is not.
        let short = "k ".to_string() + &"a".repeat(31);
        assert!(matches!(redact(&short), Cow::Borrowed(_)));
        let long = "k ".to_string() + &"a".repeat(32);
        assert_eq!(redact(&long), "k [redacted]");
    }
}
