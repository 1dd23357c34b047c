//! Hearth's storage: one [`Store`] API over SQLite (embedded default) and PostgreSQL (scale-out).
//!
//! The backend is chosen from the URL scheme. Every query is written once in SQL that both
//! engines accept (`$N` placeholders, text ids, millisecond integer times) and dispatched to the
//! pool at hand; backend-specific SQL lives next to the generic one where an engine needs it.
//! This crate knows SQL and nothing of HTTP or business rules: it stores what the core decided.

mod accounts;
mod chat;
pub(crate) mod enums;
mod error;
mod jobs;
mod knowledge;
mod memory;
mod records;
mod schedules;
mod sealed;
pub mod testing;
mod time;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migrate, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use chat::*;
pub use enums::UnknownVariant;
pub use error::{Result, StoreError};
pub use hearth_api::ids;
pub use jobs::*;
pub use knowledge::*;
pub use memory::*;
pub use records::*;
pub use schedules::*;
pub use sealed::{Sealed, SealedValue};
pub use time::Timestamp;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which engine a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same statement on whichever pool the store holds. Each arm is compiled for its own
/// driver, so row types and binds are checked against both.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Like [`on_pool!`], for statements that write: on SQLite they go through the store's one
/// writing connection, so writers wait in the pool's queue instead of sleeping on SQLite's busy
/// lock (whose back-off sleeps up to 100 ms at a time while the lock may be free again within
/// microseconds). PostgreSQL writes use the pool.
macro_rules! on_writer {
    ($store:expr, |$pool:ident| $body:expr) => {
        match (&$store.pool, &$store.writer) {
            (_, Some($pool)) => $body,
            ($crate::Pool::Sqlite($pool), None) => $body,
            ($crate::Pool::Postgres($pool), _) => $body,
        }
    };
}
pub(crate) use on_writer;

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Most connections the pool keeps.
    pub max_connections: u32,
    /// How long to wait for a connection (and, on SQLite, for a lock) before failing.
    pub acquire_timeout: Duration,
    /// Create a missing SQLite file (off for backups: a wrong path must not look like success).
    pub create_if_missing: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            create_if_missing: true,
        }
    }
}

/// What [`Store::migrate`] did.
#[derive(Clone, Debug, Default)]
pub struct MigrationReport {
    /// Migrations applied by this call.
    pub applied: usize,
    /// Where the database was copied before migrating, when it was.
    pub backup: Option<PathBuf>,
}

/// The one storage API. Cheap to clone: it holds a connection pool.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// SQLite's writing connection (see [`on_writer!`]); `None` on PostgreSQL.
    writer: Option<sqlx::SqlitePool>,
    /// The URL as given, kept for `pg_dump`; may hold a password, so never printed.
    url: String,
    /// The URL without credentials, for messages.
    location: String,
    /// The SQLite file, when there is one.
    sqlite_path: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (and for SQLite creates) the database named by `url`: `sqlite://PATH` or
    /// `postgres://…`. Does not migrate. Errors carry one line meant for an operator.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = PathBuf::from(
                rest.trim_start_matches("//")
                    .split('?')
                    .next()
                    .unwrap_or(""),
            );
            if path.as_os_str().is_empty() {
                return Err(StoreError::Open(
                    "database URL `sqlite://` names no file".into(),
                ));
            }
            let location = format!("SQLite database {}", path.display());
            let connect = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Open(format!("invalid SQLite URL: {e}")))?
                .create_if_missing(options.create_if_missing)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(options.acquire_timeout);
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect.clone())
                .await
                .map_err(|e| {
                    StoreError::Open(format!("cannot open {location}: {}", driver_message(&e)))
                })?;
            // Opened lazily: the first write connects (after the read below proved the file).
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(options.acquire_timeout)
                .connect_lazy_with(connect);
            // A file that is not a database can pass the connect-time pragmas; read the schema to be sure.
            sqlx::query("SELECT count(*) FROM sqlite_master")
                .fetch_one(&pool)
                .await
                .map_err(|e| {
                    StoreError::Open(format!("cannot read {location}: {}", driver_message(&e)))
                })?;
            Ok(Self {
                pool: Pool::Sqlite(pool),
                writer: Some(writer),
                url: url.to_owned(),
                location,
                sqlite_path: Some(path),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Open(format!("invalid PostgreSQL URL: {e}")))?;
            let location = format!(
                "PostgreSQL database {} at {}:{}",
                connect.get_database().unwrap_or("(default)"),
                connect.get_host(),
                connect.get_port()
            );
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await
                .map_err(|e| {
                    StoreError::Open(format!(
                        "cannot connect to {location}: {}",
                        driver_message(&e)
                    ))
                })?;
            Ok(Self {
                pool: Pool::Postgres(pool),
                writer: None,
                url: url.to_owned(),
                location,
                sqlite_path: None,
            })
        } else {
            let scheme = url.split(':').next().unwrap_or("");
            Err(StoreError::Open(format!(
                "unsupported database URL scheme `{scheme}`: use sqlite://PATH or postgres://…"
            )))
        }
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Where the data lives, without credentials.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn migrator(&self) -> &'static Migrator {
        match self.pool {
            Pool::Sqlite(_) => &SQLITE_MIGRATIONS,
            Pool::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// How many of this binary's migrations the database has not applied yet.
    pub async fn pending_migrations(&self) -> Result<usize> {
        let applied = on_pool!(self, |pool| {
            let mut conn = pool.acquire().await?;
            conn.ensure_migrations_table()
                .await
                .map_err(migrate_error)?;
            conn.list_applied_migrations()
                .await
                .map_err(migrate_error)?
        });
        let pending = self
            .migrator()
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .filter(|m| !applied.iter().any(|a| a.version == m.version))
            .count();
        Ok(pending)
    }

    /// Applies pending migrations. A SQLite file is copied to `backup_dir` first when there is
    /// anything to apply to a database that already holds a schema.
    pub async fn migrate(&self, backup_dir: &Path) -> Result<MigrationReport> {
        let pending = self.pending_migrations().await?;
        let mut report = MigrationReport {
            applied: pending,
            backup: None,
        };
        // Even with nothing pending, `run` checks that every applied migration is one this
        // binary knows, unchanged: a database written by a newer Hearth is refused.
        if let (Pool::Sqlite(pool), true) = (&self.pool, pending > 0) {
            let (tables,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
            )
            .fetch_one(pool)
            .await?;
            if tables > 0 {
                std::fs::create_dir_all(backup_dir).map_err(|e| {
                    StoreError::Open(format!(
                        "cannot create backup dir {}: {e}",
                        backup_dir.display()
                    ))
                })?;
                let dest = backup_dir.join(format!(
                    "hearth-pre-migrate-{}.db",
                    Timestamp::now().millis()
                ));
                self.backup(&dest).await?;
                report.backup = Some(dest);
            }
        }
        on_pool!(self, |pool| self
            .migrator()
            .run(pool)
            .await
            .map_err(migrate_error))?;
        Ok(report)
    }

    /// Whether every migration of this binary is applied, without writing anything (for
    /// readiness probes).
    pub async fn is_migrated(&self) -> Result<bool> {
        let applied: std::result::Result<Vec<(i64,)>, sqlx::Error> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(pool)
                .await
        });
        let applied = match applied {
            Ok(rows) => rows,
            // No migrations table yet: nothing is applied.
            Err(sqlx::Error::Database(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        Ok(self
            .migrator()
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .all(|m| applied.iter().any(|(v,)| *v == m.version)))
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Writes a consistent copy of the live database to `dest`, which must not exist yet.
    /// SQLite uses `VACUUM INTO`; PostgreSQL runs `pg_dump` (custom format) against the same URL.
    pub async fn backup(&self, dest: &Path) -> Result<()> {
        if dest.exists() {
            return Err(StoreError::Open(format!(
                "backup target {} already exists",
                dest.display()
            )));
        }
        match &self.pool {
            Pool::Sqlite(pool) => {
                let target = dest
                    .to_str()
                    .ok_or_else(|| StoreError::Open("backup path is not valid UTF-8".into()))?;
                sqlx::query("VACUUM INTO $1")
                    .bind(target)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())?;
                Ok(())
            }
            Pool::Postgres(pool) => {
                let opts = pool.connect_options();
                let mut cmd = tokio::process::Command::new("pg_dump");
                // The password goes through the environment, not the command line (`ps` shows
                // that); `--no-password` makes pg_dump fail instead of prompting.
                if let Some(password) = url_password(&self.url) {
                    cmd.env("PGPASSWORD", password);
                }
                cmd.arg("--no-password")
                    .arg("--format=custom")
                    .arg("--file")
                    .arg(dest)
                    .arg("--host")
                    .arg(opts.get_host())
                    .arg("--port")
                    .arg(opts.get_port().to_string())
                    .arg("--username")
                    .arg(opts.get_username());
                if let Some(db) = opts.get_database() {
                    cmd.arg("--dbname").arg(db);
                }
                let out = cmd.output().await.map_err(|e| {
                    StoreError::Open(format!("cannot run pg_dump (is it installed?): {e}"))
                })?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(StoreError::Open(format!(
                        "pg_dump failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )))
                }
            }
        }
    }

    /// The SQLite file behind this store, if any.
    pub fn sqlite_path(&self) -> Option<&Path> {
        self.sqlite_path.as_deref()
    }

    /// Runs one administrative statement (`CREATE DATABASE …`) outside a transaction; used by
    /// test fixtures and tools, never with user input.
    pub async fn execute_admin(&self, sql: &str) -> Result<()> {
        on_pool!(self, |pool| sqlx::raw_sql(sql)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// A statement that, first in a transaction, serialises it against others that decide on
    /// the state of the whole users table (first admin, last admin). PostgreSQL runs READ
    /// COMMITTED, so it needs a table lock. SQLite has one writer at a time, but a transaction
    /// that reads before it writes can fail to upgrade its lock; a no-op write takes the write
    /// lock up front (waiting on the busy timeout like any writer).
    pub(crate) fn users_lock(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "UPDATE users SET id = id WHERE FALSE",
            Pool::Postgres(_) => "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE",
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
        on_pool!(self, |pool| pool.close().await)
    }
}

/// The percent-decoded password of a `postgres://user:password@host/db` URL.
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split('/').next()?.rsplit_once('@')?.0;
    let raw = userinfo.split_once(':')?.1;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| raw.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn migrate_error(e: sqlx::migrate::MigrateError) -> StoreError {
    match e {
        sqlx::migrate::MigrateError::VersionMissing(v) => StoreError::Open(format!(
            "the database has migration {v}, which this binary does not know: it was written by a newer Hearth"
        )),
        sqlx::migrate::MigrateError::Execute(e) => StoreError::from(e),
        other => StoreError::Open(format!("migration failed: {other}")),
    }
}

/// The driver's own words, without the `error returned from database:` preamble.
fn driver_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::PoolTimedOut => {
            "timed out waiting for a connection (is it locked or unreachable?)".into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn password_from_url() {
        assert_eq!(
            super::url_password("postgres://u:p%40ss%3Aw@h:5432/db").as_deref(),
            Some("p@ss:w")
        );
        assert_eq!(super::url_password("postgres://u@h/db"), None);
        assert_eq!(super::url_password("postgres://h/db"), None);
        assert_eq!(
            super::url_password("postgres://u:%zz@h/db").as_deref(),
            Some("%zz")
        );
    }
}
