//! A counting proxy for the PostgreSQL wire protocol, for tests that hold a request to a budget of
//! statements and transactions. It sits between the app's pool and the real server (TCP on
//! 127.0.0.1, no TLS), forwards every byte unchanged, and reads the frontend stream on the way:
//! what the server was asked to do, counted where the server sees it, whatever the client library
//! logs or caches.
//!
//! - A simple Query (`Q`) counts each statement it carries (split at semicolons outside quotes and
//!   comments); an Execute (`E`) of the extended protocol is one statement, its SQL found through the portal named by the Bind (`B`) before it and the
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

#[path = "pgwire_counter/sql.rs"]
mod sql;
#[path = "pgwire_counter/wire.rs"]
mod wire;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use sql::{begins_transaction, split_statements};

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
                tokio::spawn(wire::serve(conn, client, target, shared.clone()));
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
