//! The proxy's connections: the startup phase, then the frontend stream read and recorded before
//! it is forwarded, and the backend stream's ReadyForQuery answers counted.

use std::collections::HashMap;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{
    lock, split_statements, Event, Log, Protocol, Shared, CANCEL_REQUEST, GSSENC_REQUEST,
    MAX_STARTUP, SSL_REQUEST,
};

/// One client connection: the untyped startup phase, then both directions.
pub(super) async fn serve(conn: u64, mut client: TcpStream, target: (String, u16), log: Shared) {
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
