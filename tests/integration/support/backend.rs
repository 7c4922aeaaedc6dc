//! The store backends the store behaviour suite runs on: a SQLite file in a temporary
//! folder, or a PostgreSQL database of its own on the server the tests reach, created
//! for one test and dropped after it.
//!
//! The PostgreSQL server is `postgres://bantin:bantin@127.0.0.1:5432/postgres` unless
//! `BANTIN_TEST_POSTGRES` names another (a role allowed to create databases);
//! `.ci/run` starts the server and creates that role.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bantin::config::Database;
use bantin::store::Store;
use tempfile::TempDir;

/// The server and role the PostgreSQL tests use by default.
const DEFAULT_POSTGRES: &str = "postgres://bantin:bantin@127.0.0.1:5432/postgres";

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store for one test, and the database under it (removed on drop).
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub database: Database,
    // Dropped after `store`: fields drop in order.
    place: Place,
}

enum Place {
    Sqlite(TempDir),
    Postgres(TestDatabase),
}

impl TestStore {
    /// An empty store on `backend`, with the default near-duplicate distance (3).
    pub fn new(backend: Backend) -> TestStore {
        let (database, place) = match backend {
            Backend::Sqlite => {
                let dir = TempDir::new().expect("temporary folder");
                let path = dir.path().join("data/bantin.sqlite3");
                (Database::Sqlite(path), Place::Sqlite(dir))
            }
            Backend::Postgres => {
                let db = TestDatabase::create();
                (Database::Postgres(db.url.clone()), Place::Postgres(db))
            }
        };
        let store = bantin::store::open(&database, 3).expect("store opens");
        TestStore {
            store,
            database,
            place,
        }
    }

    /// The `database_url` that names this store's database in `bantin.toml`.
    pub fn database_url(&self) -> String {
        match &self.database {
            Database::Sqlite(path) => format!("sqlite:{}", path.display()),
            Database::Postgres(url) => url.clone(),
        }
    }

    /// `bantin.toml`'s `database_url` line for this store's database.
    pub fn settings_line(&self) -> String {
        format!("database_url = {:?}", self.database_url())
    }

    /// Another store on the same database, as a restarted process opens it.
    pub fn reopen(&self, near_duplicate_distance: u32) -> Arc<dyn Store> {
        bantin::store::open(&self.database, near_duplicate_distance).expect("store reopens")
    }

    /// Runs SQL statements on the database directly (to age rows, say); the SQL must
    /// mean the same on both backends. Callable from async tests too.
    pub fn execute(&self, sql: &str) {
        match &self.place {
            Place::Sqlite(_) => {
                let Database::Sqlite(path) = &self.database else {
                    unreachable!("a SQLite place holds a SQLite database")
                };
                rusqlite::Connection::open(path)
                    .expect("database opens")
                    .execute_batch(sql)
                    .expect("SQL runs");
            }
            Place::Postgres(db) => {
                on_plain_thread(|| db.client().batch_execute(sql).expect("SQL runs"))
            }
        }
    }

    /// One number the query `sql` answers.
    pub fn count(&self, sql: &str) -> i64 {
        match &self.place {
            Place::Sqlite(_) => {
                let Database::Sqlite(path) = &self.database else {
                    unreachable!("a SQLite place holds a SQLite database")
                };
                rusqlite::Connection::open(path)
                    .expect("database opens")
                    .query_row(sql, [], |r| r.get(0))
                    .expect("query runs")
            }
            Place::Postgres(db) => {
                on_plain_thread(|| db.client().query_one(sql, &[]).expect("query runs").get(0))
            }
        }
    }

    /// Number of stored items.
    pub fn item_count(&self) -> u64 {
        self.count("SELECT count(*) FROM items") as u64
    }

    /// Asserts the database is consistent: SQLite's own integrity check, and on both
    /// backends that every item is stored under a link of its own.
    pub fn assert_consistent(&self) {
        if let Place::Sqlite(_) = self.place {
            let Database::Sqlite(path) = &self.database else {
                unreachable!("a SQLite place holds a SQLite database")
            };
            let ok: String = rusqlite::Connection::open(path)
                .unwrap()
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(ok, "ok");
        }
        let orphans = self.count(
            "SELECT count(*) FROM items i
             WHERE NOT EXISTS (SELECT 1 FROM item_links l WHERE l.key = i.key AND l.item = i.rowid)",
        );
        assert_eq!(orphans, 0, "items without their own link");
    }
}

impl std::ops::Deref for TestStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

/// A PostgreSQL database made for one test.
pub struct TestDatabase {
    /// Its connection URL.
    pub url: String,
    name: String,
    admin: String,
}

impl TestDatabase {
    /// Creates an empty database on the test server; a server that cannot be reached
    /// fails the test with what to do.
    pub fn create() -> TestDatabase {
        on_plain_thread(Self::create_here)
    }

    fn create_here() -> TestDatabase {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin = std::env::var("BANTIN_TEST_POSTGRES").unwrap_or(DEFAULT_POSTGRES.to_owned());
        let name = format!(
            "bantin_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {admin} ({e}). The store tests need it: start \
                 it (`pg_ctlcluster 15 main start`) and create the role as .ci/run does \
                 (`CREATE ROLE bantin LOGIN CREATEDB PASSWORD 'bantin'`), or set \
                 BANTIN_TEST_POSTGRES to a role that may create databases"
            )
        });
        // Two statements: neither may run inside the transaction a batch becomes.
        for sql in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            client.batch_execute(&sql).expect("test database created");
        }
        let mut url = url::Url::parse(&admin).expect("BANTIN_TEST_POSTGRES is a URL");
        url.set_path(&name);
        TestDatabase {
            url: url.to_string(),
            name,
            admin,
        }
    }

    /// A connection to this database.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("test database reachable")
    }
}

/// Runs `work` on a thread of its own: the blocking `postgres` client cannot run on a
/// thread driving async tasks, as in a `#[tokio::test]`.
fn on_plain_thread<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(work)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // FORCE ends connections a store still holds (PostgreSQL 13 and newer).
        let drop_sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        on_plain_thread(|| {
            if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
                let _ = client.batch_execute(&drop_sql);
            }
        });
    }
}
