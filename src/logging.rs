//! JSON logs through a redaction layer: whatever a log line carries, emails are masked and anything
//! shaped like a bearer secret, password, cookie or key is replaced before it is written.

use std::io::{self, Write};
use std::sync::LazyLock;

use regex::{Captures, Regex};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
        .unwrap_or_else(|_| never())
});
static SECRET_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)("[a-z_]*(?:password|passwd|token|secret|cookie|authorization|api_key|code)[a-z_]*"\s*:\s*)"(?:[^"\\]|\\.)*""#)
        .unwrap_or_else(|_| never())
});
static LONG_OPAQUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9_\-]{32,}").unwrap_or_else(|_| never()));
static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
        .unwrap_or_else(|_| never())
});

fn never() -> Regex {
    // The patterns above are constants that compile; this is unreachable.
    Regex::new("$^").unwrap_or_else(|_| std::process::abort())
}

/// Redacts one chunk of log output.
pub fn redact(line: &str) -> String {
    let s = SECRET_FIELD.replace_all(line, |c: &Captures<'_>| format!("{}\"[redacted]\"", &c[1]));
    let s = EMAIL.replace_all(&s, |c: &Captures<'_>| crate::mask::email(&c[0]));
    let s = LONG_OPAQUE.replace_all(&s, |c: &Captures<'_>| {
        if UUID.is_match(&c[0]) {
            c[0].to_string()
        } else {
            "[redacted]".to_string()
        }
    });
    s.into_owned()
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

/// Installs the process-wide subscriber (stdout).
pub fn init(level: &str) {
    let _ = tracing::subscriber::set_global_default(subscriber(level, io::stdout));
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_what_must_not_be_logged() {
        let line = r#"{"msg":"x","password":"hunter2 hunter2","email":"alice@example.com","session_token":"s3cr3tvalue","u":"0190a5e4-8f3e-7c1a-9d2b-123456789abc","t":"Zm9vYmFyYmF6cXV4cXV1eGZvb2Jhcjk4NzY1NDMyMTA"}"#;
        let out = super::redact(line);
        assert!(!out.contains("hunter2"));
        assert!(!out.contains("alice@example.com"));
        assert!(out.contains("a***@e***.com"));
        assert!(!out.contains("s3cr3tvalue"));
        assert!(out.contains("0190a5e4-8f3e-7c1a-9d2b-123456789abc"));
        assert!(!out.contains("Zm9vYmFyYmF6cXV4"));
    }
}
