//! A counting proxy for the PostgreSQL wire protocol, for tests that hold a request to a budget of
//! statements and transactions. It sits between the app's pool and the real server (TCP on
//! 127.0.0.1, no TLS), forwards every byte unchanged, and reads the frontend stream on the way:
//! what the server was asked to do, counted where the server sees it, whatever the client library
//! logs or caches.
//!
//! - A simple Query (`Q`) is one statement; an Execute (`E`) of the extended protocol is one
//!   statement, its SQL found through the portal named by the Bind (`B`) before it and the
//!   statement that Bind names, prepared by an earlier Parse (`P`) (sqlx prepares named statements
//!   once per connection and caches them, so a Parse and its Executes are far apart).
//! - A transaction is a statement whose SQL begins with `BEGIN` or `START TRANSACTION`.
//! - Every Query and every Sync (`S`) is answered by one ReadyForQuery (`Z`): one round trip. A
//!   Sync with no extended message before it is sqlx's connection check (on every pool acquire and
//!   release), listed as a ping, not a statement.
//! - An SSLRequest (or GSSENCRequest) is answered `N` by the proxy itself, as a server without TLS
//!   would, so the session that follows is readable; a CancelRequest is passed through.
//!
//! Counting is by window: `mark` waits until the wire is quiet (every question answered and
//! nothing new for a moment) and remembers where the log is; `window` waits again and returns
//! what was sent since, on every connection. Waiting for quiet catches the work a pool does just
//! after a request (the release check), so nothing spills into the next window.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;
/// A startup packet larger than this is not one (PostgreSQL itself caps it at 10,000 bytes).
const MAX_STARTUP: usize = 10_000;
/// How long the wire must stay quiet before a window opens or closes.
const QUIET: Duration = Duration::from_millis(150);
/// How long to wait for quiet at most.
const SETTLE_LIMIT: Duration = Duration::from_secs(15);

/// How a statement reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// A simple Query message (sqlx sends BEGIN, COMMIT and ROLLBACK this way).
    Simple,
    /// An Execute of the extended protocol.
    Extended,
}

/// One thing a client asked of the server, in the order the proxy forwarded it.
#[derive(Debug, Clone)]
pub enum Event {
    /// A session began: its startup packet went to the server.
    Connected { conn: u64, database: String },
    /// A simple Query message: one round trip carrying `statements` statements (each also logged
    /// as a `Statement`; a query of only comments carries none and is a bare round trip).
    Query { conn: u64, statements: usize },
    /// A statement to run.
    Statement {
        conn: u64,
        protocol: Protocol,
        sql: String,
    },
    /// A statement prepared (a named one is cached by sqlx and executed later by name).
    Parse {
        conn: u64,
        name: String,
        sql: String,
    },
    /// A Sync ending a batch of extended-protocol messages.
    Sync { conn: u64 },
    /// A Sync on its own: a connection check.
    Ping { conn: u64 },
    /// The client ended the session.
    Terminated { conn: u64 },
}

impl Event {
    fn conn(&self) -> u64 {
        match self {
            Event::Connected { conn, .. }
            | Event::Query { conn, .. }
            | Event::Statement { conn, .. }
            | Event::Parse { conn, .. }
            | Event::Sync { conn }
            | Event::Ping { conn }
            | Event::Terminated { conn } => *conn,
        }
    }
}

#[derive(Default)]
struct Log {
    events: Vec<Event>,
    /// Per connection: questions (startup, Query, Sync) not answered by a ReadyForQuery yet.
    awaiting: HashMap<u64, i64>,
    /// Frames the proxy could not make sense of: a counter that misreads must not pass silently.
    errors: Vec<String>,
    /// Connections whose answers the proxy could not read.
    blind: HashSet<u64>,
    next_conn: u64,
}

type Shared = Arc<Mutex<Log>>;

fn lock(log: &Shared) -> std::sync::MutexGuard<'_, Log> {
    log.lock().expect("the proxy log lock is not poisoned")
}

/// The proxy: listening on 127.0.0.1, forwarding to the server of the first URL routed through it.
pub struct PgWireCounter {
    addr: SocketAddr,
    upstream: Arc<OnceLock<(String, u16)>>,
    log: Shared,
    accept: JoinHandle<()>,
}

impl Drop for PgWireCounter {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Where the log stood when a window opened.
#[derive(Debug, Clone, Copy)]
pub struct Mark(usize);

impl PgWireCounter {
    /// Listens on a free port of 127.0.0.1; connections are accepted once a URL is routed.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds a local port");
        let addr = listener.local_addr().expect("the proxy's address");
        let upstream: Arc<OnceLock<(String, u16)>> = Arc::new(OnceLock::new());
        let log: Shared = Arc::default();
        let (up, shared) = (upstream.clone(), log.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Some(target) = up.get().cloned() else {
                    lock(&shared)
                        .errors
                        .push("a connection before any URL was routed".into());
                    continue;
                };
                let conn = {
                    let mut l = lock(&shared);
                    l.next_conn += 1;
                    l.next_conn
                };
                tokio::spawn(serve(conn, client, target, shared.clone()));
            }
        });
        Self {
            addr,
            upstream,
            log,
            accept,
        }
    }

    /// `url` (a `postgres://` URL) with its host and port replaced by the proxy's; the server it
    /// named becomes the proxy's upstream (one upstream per proxy).
    pub fn route(&self, url: &str) -> String {
        let mut u = url::Url::parse(url).expect("the database URL parses");
        let host = u
            .host_str()
            .expect("the database URL names a TCP host")
            .to_string();
        let port = u.port().unwrap_or(5432);
        let target = self.upstream.get_or_init(|| (host.clone(), port));
        assert_eq!(
            target,
            &(host, port),
            "one proxy forwards to one server only"
        );
        u.set_host(Some(&self.addr.ip().to_string()))
            .expect("the URL takes a host");
        u.set_port(Some(self.addr.port()))
            .expect("the URL takes a port");
        u.to_string()
    }

    /// Waits for quiet, then marks the start of a window.
    pub async fn mark(&self) -> Mark {
        self.settle().await;
        Mark(lock(&self.log).events.len())
    }

    /// Waits for quiet, then returns everything sent since `mark`.
    pub async fn window(&self, mark: Mark) -> Window {
        self.settle().await;
        let l = lock(&self.log);
        Window {
            events: l.events[mark.0..].to_vec(),
            errors: l.errors.clone(),
        }
    }

    /// Until every question on every connection has its answer and nothing new was sent for
    /// `QUIET`.
    async fn settle(&self) {
        let start = Instant::now();
        let mut seen = usize::MAX;
        let mut quiet_since = Instant::now();
        loop {
            let (len, answered) = {
                let l = lock(&self.log);
                let answered = l
                    .awaiting
                    .iter()
                    .all(|(conn, n)| *n <= 0 || l.blind.contains(conn));
                (l.events.len(), answered)
            };
            if len != seen || !answered {
                seen = len;
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= QUIET {
                return;
            }
            assert!(
                start.elapsed() < SETTLE_LIMIT,
                "the database wire did not go quiet within {SETTLE_LIMIT:?} (proxy errors: {:?})",
                lock(&self.log).errors
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// What was sent to the server during a window, on all connections.
#[derive(Debug, Clone)]
pub struct Window {
    pub events: Vec<Event>,
    /// Everything the proxy failed to parse since it started (empty when the count is sound).
    pub errors: Vec<String>,
}

impl Window {
    /// Statements, in order: (connection, protocol, SQL).
    pub fn statements(&self) -> Vec<(u64, Protocol, &str)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Statement {
                    conn,
                    protocol,
                    sql,
                } => Some((*conn, *protocol, sql.as_str())),
                _ => None,
            })
            .collect()
    }

    pub fn statement_count(&self) -> usize {
        self.statements().len()
    }

    /// Statements that begin a transaction.
    pub fn transactions(&self) -> usize {
        self.statements()
            .iter()
            .filter(|(_, _, sql)| begins_transaction(sql))
            .count()
    }

    /// Questions answered by a ReadyForQuery: simple Query messages, Syncs and pings.
    pub fn round_trips(&self) -> usize {
        self.count(|e| {
            matches!(
                e,
                Event::Query { .. } | Event::Sync { .. } | Event::Ping { .. }
            )
        })
    }

    pub fn pings(&self) -> usize {
        self.count(|e| matches!(e, Event::Ping { .. }))
    }

    pub fn parses(&self) -> usize {
        self.count(|e| matches!(e, Event::Parse { .. }))
    }

    pub fn connections_opened(&self) -> usize {
        self.count(|e| matches!(e, Event::Connected { .. }))
    }

    /// The connections anything was sent on.
    pub fn connections_used(&self) -> BTreeSet<u64> {
        self.events.iter().map(Event::conn).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|&e| f(e)).count()
    }
}

impl fmt::Display for Window {
    /// A summary line, then every statement, prepare and ping in order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} statements, {} transactions, {} round trips ({} pings), {} parses, {} connections \
             used ({} opened)",
            self.statement_count(),
            self.transactions(),
            self.round_trips(),
            self.pings(),
            self.parses(),
            self.connections_used().len(),
            self.connections_opened(),
        )?;
        let mut n = 0;
        for e in &self.events {
            match e {
                Event::Statement {
                    conn,
                    protocol,
                    sql,
                } => {
                    n += 1;
                    let how = match protocol {
                        Protocol::Simple => "query  ",
                        Protocol::Extended => "execute",
                    };
                    writeln!(f, "  {n:>2}. [conn {conn}] {how} {}", one_line(sql))?;
                }
                Event::Parse { conn, name, sql } => {
                    writeln!(f, "      [conn {conn}] (parse {name:?}: {})", one_line(sql))?
                }
                Event::Ping { conn } => writeln!(f, "      [conn {conn}] (ping)")?,
                Event::Connected { conn, database } => {
                    writeln!(f, "      [conn {conn}] (connect to {database})")?
                }
                Event::Terminated { conn } => writeln!(f, "      [conn {conn}] (terminate)")?,
                Event::Query { conn, statements } if *statements != 1 => writeln!(
                    f,
                    "      [conn {conn}] (one query message carrying {statements} statements)"
                )?,
                Event::Query { .. } | Event::Sync { .. } => {}
            }
        }
        if !self.errors.is_empty() {
            writeln!(f, "  proxy errors: {:?}", self.errors)?;
        }
        Ok(())
    }
}

fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `sql` starts a transaction (after any leading comments).
pub fn begins_transaction(sql: &str) -> bool {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let words: Vec<String> = s
        .split_whitespace()
        .take(2)
        .map(|w| w.trim_end_matches(';').to_ascii_uppercase())
        .collect();
    match words.first().map(String::as_str) {
        Some("BEGIN") => true,
        Some("START") => words.get(1).map(String::as_str) == Some("TRANSACTION"),
        _ => false,
    }
}

/// The statements of a simple query: split at semicolons outside quotes, quoted identifiers,
/// dollar quotes and comments; parts that hold only comments or blanks are no statement.
pub fn split_statements(sql: &str) -> Vec<String> {
    let b = sql.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut i, mut code) = (0, 0, false);
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"--") {
            i += rest.iter().position(|c| *c == b'\n').unwrap_or(rest.len());
        } else if rest.starts_with(b"/*") {
            // Block comments nest in PostgreSQL.
            let (mut depth, mut j) = (0usize, 0);
            while j < rest.len() {
                if rest[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            i += j;
        } else if rest[0] == b'\'' || rest[0] == b'"' {
            // '' (or "") inside is the quote itself: scanning on from it re-enters the quote.
            let escapes = rest[0] == b'\'' && i > 0 && b[i - 1].eq_ignore_ascii_case(&b'e');
            let mut j = 1;
            while j < rest.len() && rest[j] != rest[0] {
                j += if escapes && rest[j] == b'\\' { 2 } else { 1 };
            }
            i += j + 1;
            code = true;
        } else if let Some(tag) = dollar_tag(rest) {
            let body = &rest[tag.len()..];
            let end = body
                .windows(tag.len())
                .position(|w| w == tag)
                .map_or(body.len(), |p| p + tag.len());
            i += tag.len() + end;
            code = true;
        } else if rest[0] == b';' {
            if code {
                parts.push(sql[start..i].trim().to_string());
            }
            i += 1;
            start = i;
            code = false;
        } else {
            code |= !rest[0].is_ascii_whitespace();
            i += 1;
        }
    }
    if code {
        parts.push(sql[start..].trim().to_string());
    }
    parts
}

/// `$tag$` (or `$$`) at the start of `s`: a dollar quote's opening.
fn dollar_tag(s: &[u8]) -> Option<&[u8]> {
    if s.first() != Some(&b'$') {
        return None;
    }
    let len = s[1..]
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))?;
    (s.get(1 + len) == Some(&b'$') && !s.get(1).is_some_and(u8::is_ascii_digit))
        .then(|| &s[..len + 2])
}

/// One client connection: the untyped startup phase, then both directions.
async fn serve(conn: u64, mut client: TcpStream, target: (String, u16), log: Shared) {
    // Sessions end by being closed or killed (a test database is dropped WITH (FORCE)): an
    // input/output error is how a connection ends, not a miscount.
    let _ = serve_inner(conn, &mut client, target, &log).await;
    lock(&log).awaiting.remove(&conn);
}

async fn serve_inner(
    conn: u64,
    client: &mut TcpStream,
    target: (String, u16),
    log: &Shared,
) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    // The startup phase: length-prefixed packets without a type byte.
    let startup = loop {
        let len = usize::try_from(client.read_i32().await?).unwrap_or(0);
        if !(8..=MAX_STARTUP).contains(&len) {
            lock(log)
                .errors
                .push(format!("conn {conn}: a startup packet of length {len}"));
            return Ok(());
        }
        let mut packet = vec![0u8; len];
        packet[..4].copy_from_slice(&i32::try_from(len).unwrap_or(0).to_be_bytes());
        client.read_exact(&mut packet[4..]).await?;
        let code = i32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        match code {
            // No TLS here, as a server without it would answer; the client goes on in clear.
            SSL_REQUEST | GSSENC_REQUEST => client.write_all(b"N").await?,
            _ => break packet,
        }
    };
    let mut server = TcpStream::connect((target.0.as_str(), target.1)).await?;
    server.set_nodelay(true)?;
    let code = i32::from_be_bytes([startup[4], startup[5], startup[6], startup[7]]);
    if code == CANCEL_REQUEST {
        server.write_all(&startup).await?;
        tokio::io::copy_bidirectional(client, &mut server).await?;
        return Ok(());
    }
    {
        let mut l = lock(log);
        l.events.push(Event::Connected {
            conn,
            database: startup_parameter(&startup[8..], "database").unwrap_or_default(),
        });
        // Authentication ends with the first ReadyForQuery.
        l.awaiting.insert(conn, 1);
    }
    server.write_all(&startup).await?;
    let (client_rd, client_wr) = client.split();
    let (server_rd, server_wr) = server.split();
    let up = frontend(conn, client_rd, server_wr, log);
    let down = backend(conn, server_rd, client_wr, log);
    tokio::try_join!(up, down)?;
    Ok(())
}

/// The value of a startup parameter (`name\0value\0` pairs).
fn startup_parameter(params: &[u8], name: &str) -> Option<String> {
    let mut parts = params.split(|b| *b == 0);
    while let Some(key) = parts.next() {
        let value = parts.next()?;
        if key == name.as_bytes() {
            return Some(String::from_utf8_lossy(value).into_owned());
        }
    }
    None
}

/// Typed frames (`type`, `i32` length counting itself, body) from the start of `buf`: the length
/// of the complete frames, after handing each to `each`. `Err` for a length no frame can have.
fn frames(buf: &[u8], mut each: impl FnMut(u8, &[u8])) -> Result<usize, String> {
    let mut at = 0;
    while buf.len() - at >= 5 {
        let len = i32::from_be_bytes([buf[at + 1], buf[at + 2], buf[at + 3], buf[at + 4]]);
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l >= 4)
            .ok_or_else(|| format!("a frame {:?} of length {len}", buf[at] as char))?;
        let end = at + 1 + len;
        if end > buf.len() {
            break;
        }
        each(buf[at], &buf[at + 5..end]);
        at = end;
    }
    Ok(at)
}

/// Client to server: every complete message is recorded, then forwarded, so a statement is in the
/// log before the server can answer it.
async fn frontend(
    conn: u64,
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    log: &Shared,
) -> std::io::Result<()> {
    let mut state = Frontend::default();
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        if from.read_buf(&mut buf).await? == 0 {
            return to.shutdown().await;
        }
        let parsed = {
            let mut l = lock(log);
            frames(&buf, |ty, body| state.message(conn, ty, body, &mut l))
        };
        let done = match parsed {
            Ok(n) => n,
            Err(e) => {
                lock(log).errors.push(format!("conn {conn} frontend: {e}"));
                return pass_through(&buf, from, to).await;
            }
        };
        if done > 0 {
            to.write_all(&buf[..done]).await?;
            buf.drain(..done);
        }
    }
}

/// Server to client: counts ReadyForQuery answers, forwarding complete frames.
async fn backend(
    conn: u64,
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    log: &Shared,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        if from.read_buf(&mut buf).await? == 0 {
            return to.shutdown().await;
        }
        let mut ready = 0;
        let parsed = frames(&buf, |ty, _| ready += i64::from(ty == b'Z'));
        let done = match parsed {
            Ok(n) => n,
            Err(e) => {
                {
                    let mut l = lock(log);
                    l.errors.push(format!("conn {conn} backend: {e}"));
                    // Its answers can no longer be counted: quiet is judged without it.
                    l.blind.insert(conn);
                }
                return pass_through(&buf, from, to).await;
            }
        };
        if ready > 0 {
            *lock(log).awaiting.entry(conn).or_default() -= ready;
        }
        if done > 0 {
            to.write_all(&buf[..done]).await?;
            buf.drain(..done);
        }
    }
}

/// After a frame the proxy cannot read: forwards the rest unread, so the app goes on and the
/// test reports the proxy's error rather than a hang.
async fn pass_through(
    pending: &[u8],
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
) -> std::io::Result<()> {
    to.write_all(pending).await?;
    tokio::io::copy(&mut from, &mut to).await?;
    to.shutdown().await
}

/// What a connection prepared: statement names to SQL, portal names to SQL.
#[derive(Default)]
struct Frontend {
    statements: HashMap<String, String>,
    portals: HashMap<String, String>,
    /// An extended-protocol message was sent since the last Sync.
    batch: bool,
}

impl Frontend {
    fn message(&mut self, conn: u64, ty: u8, body: &[u8], l: &mut Log) {
        let mut r = Reader(body);
        match ty {
            b'Q' => {
                // A simple query may hold several statements: the server runs each.
                let statements = split_statements(&r.cstr());
                l.events.push(Event::Query {
                    conn,
                    statements: statements.len(),
                });
                for sql in statements {
                    l.events.push(Event::Statement {
                        conn,
                        protocol: Protocol::Simple,
                        sql,
                    });
                }
                *l.awaiting.entry(conn).or_default() += 1;
            }
            b'P' => {
                let (name, sql) = (r.cstr(), r.cstr());
                self.statements.insert(name.clone(), sql.clone());
                l.events.push(Event::Parse { conn, name, sql });
                self.batch = true;
            }
            b'B' => {
                let (portal, statement) = (r.cstr(), r.cstr());
                let sql = self.statements.get(&statement).cloned().unwrap_or_else(|| {
                    l.errors.push(format!(
                        "conn {conn}: Bind of unknown statement {statement:?}"
                    ));
                    format!("<unknown statement {statement:?}>")
                });
                self.portals.insert(portal, sql);
                self.batch = true;
            }
            b'E' => {
                let portal = r.cstr();
                let sql = self.portals.get(&portal).cloned().unwrap_or_else(|| {
                    l.errors
                        .push(format!("conn {conn}: Execute of unknown portal {portal:?}"));
                    format!("<unknown portal {portal:?}>")
                });
                l.events.push(Event::Statement {
                    conn,
                    protocol: Protocol::Extended,
                    sql,
                });
                self.batch = true;
            }
            b'C' => {
                let kind = r.byte();
                let name = r.cstr();
                match kind {
                    b'S' => self.statements.remove(&name),
                    _ => self.portals.remove(&name),
                };
                self.batch = true;
            }
            b'D' | b'H' => self.batch = true,
            b'S' => {
                l.events.push(if self.batch {
                    Event::Sync { conn }
                } else {
                    Event::Ping { conn }
                });
                *l.awaiting.entry(conn).or_default() += 1;
                self.batch = false;
            }
            b'X' => {
                l.events.push(Event::Terminated { conn });
            }
            // Authentication responses and COPY data carry no statement.
            b'p' | b'd' | b'c' | b'f' => {}
            other => l.errors.push(format!(
                "conn {conn}: an unexpected frontend message {:?}",
                other as char
            )),
        }
    }
}

/// Reads the fields of a message body; a truncated body reads as empty fields.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn cstr(&mut self) -> String {
        let end = self.0.iter().position(|b| *b == 0).unwrap_or(self.0.len());
        let s = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0 = self.0.get(end + 1..).unwrap_or_default();
        s
    }

    fn byte(&mut self) -> u8 {
        let b = self.0.first().copied().unwrap_or(0);
        self.0 = self.0.get(1..).unwrap_or_default();
        b
    }
}

#[cfg(test)]
mod tests {
    use super::{begins_transaction, split_statements};

    #[test]
    fn a_simple_query_counts_each_of_its_statements() {
        assert_eq!(split_statements("BEGIN"), ["BEGIN"]);
        assert_eq!(split_statements("  COMMIT;  "), ["COMMIT"]);
        assert!(split_statements("/* SQLx ping */").is_empty());
        assert!(split_statements(" ; -- nothing;\n").is_empty());
        assert_eq!(
            split_statements(
                "BEGIN; SELECT set_config('a', 'x;y', true); SELECT \"odd;name\" FROM t; \
                 /* a; /* nested; */ comment */ SELECT $q$;$q$, $$;$$, E'\\';', $1 -- trailing;"
            )
            .len(),
            4
        );
        assert_eq!(
            split_statements("SELECT 'it''s; fine'"),
            ["SELECT 'it''s; fine'"]
        );
    }

    #[test]
    fn transactions_are_recognised_by_their_first_words() {
        assert!(begins_transaction("BEGIN"));
        assert!(begins_transaction("begin isolation level serializable"));
        assert!(begins_transaction(
            "/* c */ -- c\n START TRANSACTION READ ONLY"
        ));
        assert!(!begins_transaction("START_TRANSACTION"));
        assert!(!begins_transaction("SELECT 'BEGIN'"));
        assert!(!begins_transaction("COMMIT"));
    }
}
