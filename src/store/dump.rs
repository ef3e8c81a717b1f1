//! The whole database as data, for backups: every table's columns and rows read in one consistent
//! snapshot, and written back into an empty database of either kind (a SQLite backup restores into
//! PostgreSQL and back).
//!
//! Why a logical export through the application, and not `VACUUM INTO` or `pg_dump`: it is the one
//! format both databases read, so it carries an installation from one machine to a cluster; it
//! needs no second tool of the right version on the host; and it reads inside one snapshot (a
//! SQLite read transaction on the WAL, a PostgreSQL `REPEATABLE READ READ ONLY` transaction), so a
//! backup taken while writes go on is consistent without stopping them. The schema itself is not
//! exported: a restore applies this binary's migrations, then loads the rows, and refuses a backup
//! whose schema version differs.
//!
//! Both directions use a connection of their own with the login's full rights (as `migrate`
//! does): row-level security would otherwise show one tenant at a time. On PostgreSQL that login
//! must bypass row-level security to read (a superuser or `BYPASSRLS`), and be a superuser to load
//! (rows go in with foreign keys and triggers off, `session_replication_role = replica`, as
//! `pg_restore` does; the rows came from a database that enforced them).

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{Connection, Row as _};

use super::{Db, Dialect};

/// What a column holds (the three kinds the schema uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Int,
    Text,
    Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
}

/// One row: a JSON value per column (a number, a string, bytes as base64, or null).
pub type Row = Vec<serde_json::Value>;

/// Tables that are not data: the migrations' own bookkeeping, the backup's lease, and exports
/// (a week's downloads whose objects a backup does not carry).
const SKIPPED: [&str; 3] = ["_sqlx_migrations", "backup_leases", "exports"];

/// The schema version of this binary (the last migration's number), the same for both databases.
pub fn schema_version() -> i64 {
    super::SQLITE_MIGRATIONS
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

fn kind_of(declared: &str) -> Option<Kind> {
    let t = declared.to_ascii_lowercase();
    if t.contains("int") {
        Some(Kind::Int)
    } else if t.contains("blob") || t == "bytea" {
        Some(Kind::Bytes)
    } else if t.contains("text") || t.contains("char") || t.is_empty() {
        Some(Kind::Text)
    } else {
        None
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every data table of the database on `conn`, by name.
async fn tables(conn: &mut sqlx::AnyConnection, dialect: Dialect) -> anyhow::Result<Vec<Table>> {
    let names: Vec<String> = match dialect {
        Dialect::Sqlite => sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        ),
        Dialect::Postgres => sqlx::query(
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY name",
        ),
    }
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.try_get("name"))
    .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for name in names.into_iter().filter(|n| !SKIPPED.contains(&n.as_str())) {
        let cols = match dialect {
            Dialect::Sqlite => {
                sqlx::query("SELECT name, type AS declared FROM pragma_table_info($1) ORDER BY cid")
            }
            Dialect::Postgres => sqlx::query(
                "SELECT CAST(column_name AS TEXT) AS name, CAST(data_type AS TEXT) AS declared \
                 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 \
                 ORDER BY ordinal_position",
            ),
        }
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        let mut columns = Vec::new();
        for c in cols {
            let col: String = c.try_get("name")?;
            let declared: String = c.try_get("declared")?;
            let kind = kind_of(&declared).ok_or_else(|| {
                anyhow::anyhow!("{name}.{col}: a column of type {declared} cannot be backed up")
            })?;
            columns.push(Column { name: col, kind });
        }
        out.push(Table { name, columns });
    }
    Ok(out)
}

/// The value of column `i` of `row`, as its kind says (SQLite keeps what it was given, so a value
/// of another storage class is converted rather than refused).
fn value(row: &sqlx::any::AnyRow, i: usize, kind: Kind) -> anyhow::Result<serde_json::Value> {
    use base64::Engine;
    use serde_json::Value as J;
    let b64 = |b: Vec<u8>| J::String(base64::engine::general_purpose::STANDARD.encode(b));
    let v = match kind {
        Kind::Int => match row.try_get::<Option<i64>, _>(i) {
            Ok(v) => v.map_or(J::Null, J::from),
            Err(_) => row
                .try_get::<Option<String>, _>(i)?
                .map_or(Ok(J::Null), |s| s.parse::<i64>().map(J::from))?,
        },
        Kind::Text => match row.try_get::<Option<String>, _>(i) {
            Ok(v) => v.map_or(J::Null, J::String),
            Err(_) => match row.try_get::<Option<i64>, _>(i) {
                Ok(v) => v.map_or(J::Null, |n| J::String(n.to_string())),
                Err(_) => row
                    .try_get::<Option<Vec<u8>>, _>(i)?
                    .map_or(Ok(J::Null), |b| String::from_utf8(b).map(J::String))?,
            },
        },
        Kind::Bytes => match row.try_get::<Option<Vec<u8>>, _>(i) {
            Ok(v) => v.map_or(J::Null, b64),
            Err(_) => row
                .try_get::<Option<String>, _>(i)?
                .map_or(J::Null, |s| b64(s.into_bytes())),
        },
    };
    Ok(v)
}

/// A consistent read of the whole database, open until `finish`.
pub struct Snapshot {
    conn: sqlx::AnyConnection,
    dialect: Dialect,
}

impl Db {
    /// Opens a snapshot on a connection of its own (see the module's notes on the login).
    pub async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let mut conn = sqlx::AnyConnection::connect(&self.url).await?;
        match self.dialect {
            Dialect::Sqlite => {
                sqlx::query("PRAGMA busy_timeout = 5000")
                    .execute(&mut conn)
                    .await?;
                sqlx::query("BEGIN").execute(&mut conn).await?;
                // The read that fixes the snapshot (a deferred transaction takes it on first read).
                sqlx::query("SELECT COUNT(*) FROM sqlite_master")
                    .execute(&mut conn)
                    .await?;
            }
            Dialect::Postgres => {
                let bypass: i32 = sqlx::query(
                    "SELECT CAST(CASE WHEN rolsuper OR rolbypassrls THEN 1 ELSE 0 END AS INTEGER) AS b \
                     FROM pg_roles WHERE rolname = current_user",
                )
                .fetch_one(&mut conn)
                .await?
                .try_get("b")?;
                anyhow::ensure!(
                    bypass == 1,
                    "a backup of PostgreSQL needs a login that bypasses row-level security (a superuser or a role with BYPASSRLS), such as the one that runs `strongroom migrate`"
                );
                sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .execute(&mut conn)
                    .await?;
            }
        }
        Ok(Snapshot {
            conn,
            dialect: self.dialect,
        })
    }
}

impl Snapshot {
    pub async fn tables(&mut self) -> anyhow::Result<Vec<Table>> {
        tables(&mut self.conn, self.dialect).await
    }

    /// The statement that reads `table` (for `rows`, which borrows it).
    pub fn select(table: &Table) -> String {
        let cols: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
        format!("SELECT {} FROM {}", cols.join(", "), quote(&table.name))
    }

    /// The rows of `table`, streamed from the database by `sql` (`Snapshot::select(table)`).
    pub fn rows<'a>(
        &'a mut self,
        sql: &'a str,
        table: &'a Table,
    ) -> BoxStream<'a, anyhow::Result<Row>> {
        sqlx::query(sql)
            .fetch(&mut self.conn)
            .map(move |row| {
                let row = row?;
                table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| value(&row, i, c.kind))
                    .collect()
            })
            .boxed()
    }

    /// Every stored document version as `(org_id, version_id)`: the objects the snapshot needs.
    pub async fn document_versions(&mut self) -> anyhow::Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT org_id, id FROM document_versions ORDER BY org_id, id")
            .fetch_all(&mut self.conn)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("org_id")?, r.try_get("id")?)))
            .collect()
    }

    pub async fn finish(mut self) -> anyhow::Result<()> {
        sqlx::query("ROLLBACK").execute(&mut self.conn).await?;
        self.conn.close().await?;
        Ok(())
    }
}

/// Whether the database holds no data yet (no tables, or only empty ones): a restore goes into
/// nothing else.
pub async fn is_empty(url: &str) -> anyhow::Result<bool> {
    sqlx::any::install_default_drivers();
    let dialect = if url.starts_with("sqlite:") {
        Dialect::Sqlite
    } else {
        Dialect::Postgres
    };
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let mut empty = true;
    for t in tables(&mut conn, dialect).await? {
        let sql = format!("SELECT 1 AS one FROM {} LIMIT 1", quote(&t.name));
        if sqlx::query(&sql).fetch_optional(&mut conn).await?.is_some() {
            empty = false;
            break;
        }
    }
    conn.close().await?;
    Ok(empty)
}

/// Every audit chain in the database at `url` (read with the login's full rights).
pub async fn chains(url: &str) -> anyhow::Result<Vec<String>> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let rows = sqlx::query("SELECT DISTINCT chain FROM audit_events ORDER BY chain")
        .fetch_all(&mut conn)
        .await?;
    conn.close().await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get("chain"))
        .collect::<Result<_, _>>()?)
}

/// Rows going into an empty, migrated database in one transaction (nothing is visible, and
/// nothing stays, unless `commit` is reached).
pub struct Load {
    conn: sqlx::AnyConnection,
    dialect: Dialect,
    tables: Vec<Table>,
}

impl Db {
    /// Starts loading rows (see the module's notes on the login).
    pub async fn load(&self) -> anyhow::Result<Load> {
        let mut conn = sqlx::AnyConnection::connect(&self.url).await?;
        let tables = tables(&mut conn, self.dialect).await?;
        match self.dialect {
            Dialect::Sqlite => {
                // Outside the transaction (SQLite ignores it inside one); checked before commit.
                sqlx::query("PRAGMA foreign_keys = OFF")
                    .execute(&mut conn)
                    .await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await?;
            }
            Dialect::Postgres => {
                sqlx::query("BEGIN").execute(&mut conn).await?;
                if let Err(e) = sqlx::query("SET LOCAL session_replication_role = replica")
                    .execute(&mut conn)
                    .await
                {
                    anyhow::bail!(
                        "a restore into PostgreSQL needs a superuser login (it loads rows with foreign keys and triggers off): {e}"
                    );
                }
            }
        }
        Ok(Load {
            conn,
            dialect: self.dialect,
            tables,
        })
    }
}

/// Binds per statement (well under both databases' limits).
const MAX_BINDS: usize = 900;

impl Load {
    /// This database's table `name`, which must have the columns (names and kinds) of `backup`.
    pub fn check(&self, backup: &Table) -> anyhow::Result<()> {
        let here = self
            .tables
            .iter()
            .find(|t| t.name == backup.name)
            .ok_or_else(|| {
                anyhow::anyhow!("the backup's table {} is not in this schema", backup.name)
            })?;
        let mut a = here.columns.clone();
        let mut b = backup.columns.clone();
        a.sort_by(|x, y| x.name.cmp(&y.name));
        b.sort_by(|x, y| x.name.cmp(&y.name));
        anyhow::ensure!(
            a == b,
            "the backup's table {} does not have this schema's columns",
            backup.name
        );
        Ok(())
    }

    /// Inserts `rows` of `table` (as the backup describes its columns).
    pub async fn insert(&mut self, table: &Table, rows: &[Row]) -> anyhow::Result<()> {
        use base64::Engine;
        let width = table.columns.len().max(1);
        let per = (MAX_BINDS / width).max(1);
        let cols: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
        for batch in rows.chunks(per) {
            let mut sql = format!(
                "INSERT INTO {} ({}) VALUES ",
                quote(&table.name),
                cols.join(", ")
            );
            let mut n = 0;
            for (r, row) in batch.iter().enumerate() {
                anyhow::ensure!(
                    row.len() == width,
                    "{}: a row of {} values for {width} columns",
                    table.name,
                    row.len()
                );
                sql.push_str(if r == 0 { "(" } else { ", (" });
                for c in 0..width {
                    n += 1;
                    sql.push_str(&if c == 0 {
                        format!("${n}")
                    } else {
                        format!(", ${n}")
                    });
                }
                sql.push(')');
            }
            let mut q = sqlx::query(&sql);
            for row in batch {
                for (v, col) in row.iter().zip(&table.columns) {
                    let bad =
                        || anyhow::anyhow!("{}.{}: not a {:?}", table.name, col.name, col.kind);
                    q = match col.kind {
                        Kind::Int => q.bind(match v {
                            serde_json::Value::Null => None,
                            v => Some(v.as_i64().ok_or_else(bad)?),
                        }),
                        Kind::Text => q.bind(match v {
                            serde_json::Value::Null => None,
                            v => Some(v.as_str().ok_or_else(bad)?.to_string()),
                        }),
                        Kind::Bytes => q.bind(match v {
                            serde_json::Value::Null => None,
                            v => Some(
                                base64::engine::general_purpose::STANDARD
                                    .decode(v.as_str().ok_or_else(bad)?)
                                    .map_err(|_| bad())?,
                            ),
                        }),
                    };
                }
            }
            q.execute(&mut self.conn).await?;
        }
        Ok(())
    }

    /// Checks the foreign keys (SQLite) and commits.
    pub async fn commit(mut self) -> anyhow::Result<()> {
        if self.dialect == Dialect::Sqlite {
            let broken = sqlx::query("SELECT COUNT(*) AS n FROM pragma_foreign_key_check")
                .fetch_one(&mut self.conn)
                .await?
                .try_get::<i64, _>("n")?;
            anyhow::ensure!(broken == 0, "{broken} rows break a foreign key");
        }
        sqlx::query("COMMIT").execute(&mut self.conn).await?;
        if self.dialect == Dialect::Sqlite {
            sqlx::query("PRAGMA foreign_keys = ON")
                .execute(&mut self.conn)
                .await?;
        }
        self.conn.close().await?;
        Ok(())
    }
}

/// Takes the backup lease (deleted objects wait while it lasts: see `documents::collect_garbage`)
/// until `until` (ms), under `id`.
pub async fn take_lease(db: &Db, id: &str, until: i64) -> Result<(), sqlx::Error> {
    let mut c = db.acquire().await?;
    sqlx::query("INSERT INTO backup_leases (id, until) VALUES ($1, $2)")
        .bind(id)
        .bind(until)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn drop_lease(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    let mut c = db.acquire().await?;
    sqlx::query("DELETE FROM backup_leases WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Whether a backup holds a lease at `now` (ms).
pub async fn leased(c: &mut sqlx::AnyConnection, now: i64) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT 1 AS one FROM backup_leases WHERE until > $1 LIMIT 1")
            .bind(now)
            .fetch_optional(&mut *c)
            .await?
            .is_some(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_map_to_the_three_kinds_and_nothing_else_passes() {
        for (t, k) in [
            ("BIGINT", Kind::Int),
            ("INTEGER", Kind::Int),
            ("bigint", Kind::Int),
            ("TEXT", Kind::Text),
            ("text", Kind::Text),
            ("character varying", Kind::Text),
            ("BLOB", Kind::Bytes),
            ("bytea", Kind::Bytes),
        ] {
            assert_eq!(kind_of(t), Some(k), "{t}");
        }
        assert_eq!(kind_of("double precision"), None);
        assert_eq!(kind_of("jsonb"), None);
    }

    #[test]
    fn names_are_quoted() {
        assert_eq!(quote("items"), "\"items\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
