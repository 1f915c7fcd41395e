//! The test harness: a fresh database per test on each backend, and the macro that runs one
//! table-driven check on both.
//!
//! SQLite tests use a new file in the temporary directory. PostgreSQL tests create a new
//! schema in the database named by `GATEHOUSE_TEST_POSTGRES_URL` (start a server with
//! `scripts/postgres`), open the store with that schema as its search path, and drop it
//! afterwards; a schema costs a tenth of what a new database does. Without that variable the PostgreSQL half fails
//! when `CI` is set, and otherwise prints that it was not run.

use std::path::PathBuf;

use gatehouse_store::Store;
use sqlx::{AnyConnection, Connection};

/// The variable that names the PostgreSQL server for tests.
pub const POSTGRES_URL_VARIABLE: &str = "GATEHOUSE_TEST_POSTGRES_URL";

/// One test's own database.
pub struct TestDb {
    pub store: Store,
    /// The URL the store was opened with, for tests that tamper behind the store's back.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteFile(PathBuf),
    PostgresSchema { server_url: String, schema: String },
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!(
            "gatehouse-store-test-{}.db",
            uuid::Uuid::new_v4().simple()
        ));
        let url = format!("sqlite://{}", path.display());
        let store = Store::open(&url).await.expect("open the SQLite test store");
        Self {
            store,
            url,
            cleanup: Cleanup::SqliteFile(path),
        }
    }

    /// A fresh PostgreSQL database, or `None` (after saying so) when none is configured
    /// outside CI.
    pub async fn postgres() -> Option<Self> {
        let server_url = match std::env::var(POSTGRES_URL_VARIABLE) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                let in_ci = std::env::var("CI").is_ok_and(|value| !value.is_empty());
                assert!(
                    !in_ci,
                    "{POSTGRES_URL_VARIABLE} is not set, but CI is: the PostgreSQL half of the store \
                     tests must run in CI. Start a server with `url=$(scripts/postgres start DIR)`, \
                     export {POSTGRES_URL_VARIABLE}=$url, and stop it with `scripts/postgres stop DIR`"
                );
                eprintln!(
                    "NOT RUN on PostgreSQL: {POSTGRES_URL_VARIABLE} is not set (start one with scripts/postgres)"
                );
                return None;
            }
        };
        let schema = format!("gatehouse_test_{}", uuid::Uuid::new_v4().simple());
        run_on_server(&server_url, &format!("CREATE SCHEMA {schema}")).await;
        let separator = if server_url.contains('?') { '&' } else { '?' };
        let url = format!("{server_url}{separator}options[search_path]={schema}");
        let store = Store::open(&url)
            .await
            .expect("open the PostgreSQL test store");
        Some(Self {
            store,
            url,
            cleanup: Cleanup::PostgresSchema { server_url, schema },
        })
    }

    /// Another store on the same database: a second gateway replica.
    pub async fn replica(&self) -> Store {
        Store::open(&self.url)
            .await
            .expect("open a second store on the test database")
    }

    /// Removes the database. Not run when the test panics, leaving it to look at.
    pub async fn finish(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::PostgresSchema { server_url, schema } => {
                run_on_server(&server_url, &format!("DROP SCHEMA {schema} CASCADE")).await;
            }
        }
    }
}

async fn run_on_server(server_url: &str, statement: &str) {
    sqlx::any::install_default_drivers();
    let mut connection = AnyConnection::connect(server_url)
        .await
        .expect("connect to the PostgreSQL test server");
    sqlx::raw_sql(statement)
        .execute(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
    connection.close().await.expect("close");
}

/// `on_both_backends! { name: helper, argument; ... }` makes a module `name` with two tests,
/// `sqlite` and `postgres`, each running `helper(&TestDb, argument)` on a fresh database.
macro_rules! on_both_backends {
    ($($name:ident: $helper:path, $argument:expr;)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::support::TestDb::sqlite().await;
                $helper(&db, $argument).await;
                db.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::support::TestDb::postgres().await {
                    $helper(&db, $argument).await;
                    db.finish().await;
                }
            }
        }
    )*};
}
pub(crate) use on_both_backends;

/// Runs `steps` in order through `run` and compares every output with the expected one,
/// reporting all differences at once.
pub async fn check_transcript<F>(steps: &[(&str, &str)], mut run: F)
where
    F: AsyncFnMut(&str) -> String,
{
    let mut mismatches = Vec::new();
    for (command, expected) in steps {
        let actual = run(command).await;
        if actual != *expected {
            mismatches.push(format!(
                "  > {command}\n    expected: {expected}\n    actual:   {actual}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "transcript differs:\n{}",
        mismatches.join("\n")
    );
}

/// Renders a result as its value or `error: MESSAGE`.
pub fn render<T, E: std::fmt::Display>(
    result: Result<T, E>,
    value: impl FnOnce(T) -> String,
) -> String {
    match result {
        Ok(ok) => value(ok),
        Err(error) => format!("error: {error}"),
    }
}

/// `key=value` arguments of a transcript command, after the positional ones.
pub fn option<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    words
        .iter()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

/// The fixed time transcripts count from: `+90s` is 90 seconds after it.
pub const BASE_TIME_MS: i64 = 1_700_000_000_000;

/// Parses `+90s`, `+2h`, `-1m` relative to [`BASE_TIME_MS`].
pub fn relative_time(text: &str) -> gatehouse_store::Timestamp {
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => panic!("relative time `{text}` must start with + or -"),
    };
    let (number, unit) = rest.split_at(rest.len() - 1);
    let number: i64 = number.parse().expect("relative time number");
    let unit_ms = match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => panic!("relative time unit in `{text}` must be s, m, h or d"),
    };
    gatehouse_store::Timestamp::from_unix_millis(BASE_TIME_MS + sign * number * unit_ms)
}

/// Renders a time relative to [`BASE_TIME_MS`], the inverse of [`relative_time`] to the second.
pub fn show_relative(time: gatehouse_store::Timestamp) -> String {
    let seconds = (time.as_unix_millis() - BASE_TIME_MS) / 1000;
    if seconds < 0 {
        format!("{seconds}s")
    } else {
        format!("+{seconds}s")
    }
}
