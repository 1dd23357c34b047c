//! Throw-away databases for test suites (the conformance suite, the queue tests, the API
//! tests) and benchmarks. Not used by the server itself.

use std::path::Path;

use crate::{Result, Store, StoreOptions};

/// A migrated store on a fresh database, and what keeps that database alive.
pub struct TestStore {
    pub store: Store,
    pg: Option<TempPostgres>,
}

impl TestStore {
    /// A migrated SQLite store in `dir` (the caller keeps the directory).
    pub async fn sqlite(dir: &Path) -> Result<Self> {
        let url = format!("sqlite://{}", dir.join("hearth.db").display());
        let store = Store::open(&url, &StoreOptions::default()).await?;
        store.migrate(&dir.join("backups")).await?;
        Ok(Self { store, pg: None })
    }

    /// A migrated store on a fresh database of the PostgreSQL server at `admin_url`.
    pub async fn postgres(admin_url: &str, options: &StoreOptions) -> Result<Self> {
        let db = TempPostgres::create(admin_url).await?;
        let store = Store::open(&db.url, options).await?;
        // No backup before migrating a database made a moment ago.
        store.migrate(Path::new("/nonexistent")).await?;
        Ok(Self {
            store,
            pg: Some(db),
        })
    }

    /// Closes the store and drops its PostgreSQL database.
    pub async fn finish(self) -> Result<()> {
        self.store.close().await;
        match self.pg {
            Some(db) => db.drop_now().await,
            None => Ok(()),
        }
    }
}

/// A fresh PostgreSQL database made on a server the tests may use; dropped by [`Self::drop_now`].
#[derive(Debug)]
pub struct TempPostgres {
    admin_url: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

impl TempPostgres {
    /// Creates `hearth_test_<random>` on the server of `admin_url`.
    pub async fn create(admin_url: &str) -> Result<Self> {
        let name = format!(
            "hearth_test_{}",
            crate::ids::UserId::new().to_string().replace('-', "")
        );
        let admin = Store::open(admin_url, &single()).await?;
        let created = admin
            .execute_admin(&format!("CREATE DATABASE {name}"))
            .await;
        admin.close().await;
        created?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: with_database(admin_url, &name),
            name,
        })
    }

    /// Drops the database, ending any connections still open to it.
    pub async fn drop_now(&self) -> Result<()> {
        let admin = Store::open(&self.admin_url, &single()).await?;
        let dropped = admin
            .execute_admin(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
        admin.close().await;
        dropped
    }
}

fn single() -> StoreOptions {
    StoreOptions {
        max_connections: 1,
        ..StoreOptions::default()
    }
}

/// The same URL naming another database.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            super::with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h/test?sslmode=require", "x"),
            "postgres://u@h/x?sslmode=require"
        );
        assert_eq!(
            super::with_database("postgres://u@h", "x"),
            "postgres://u@h/x"
        );
    }
}
