//! Opening a store: what a wrong URL reports, and that no password reaches a message.

use gatehouse_store::{Backend, Store, redact_url};

#[test]
fn passwords_are_redacted() {
    for (url, expected) in [
        (
            "sqlite://gatehouse.db?mode=rwc",
            "sqlite://gatehouse.db?mode=rwc",
        ),
        (
            "postgres://gh:s3cret@db:5432/gatehouse",
            "postgres://gh:***@db:5432/gatehouse",
        ),
        ("postgres://gh@db/gatehouse", "postgres://gh@db/gatehouse"),
        (
            "postgres://gh:p@ss@db/gatehouse",
            "postgres://gh:***@db/gatehouse",
        ),
        (
            "postgres://db/gatehouse?user=gh&password=s3cret&sslmode=require",
            "postgres://db/gatehouse?user=gh&password=***&sslmode=require",
        ),
    ] {
        assert_eq!(redact_url(url), expected, "redacting {url}");
    }
}

#[tokio::test]
async fn bad_urls_say_what_to_do() {
    let missing_directory = std::env::temp_dir().join("gatehouse-no-such-directory/store.db");
    for (url, expected) in [
        (
            "mysql://root:s3cret@localhost/gatehouse".to_owned(),
            "unsupported store URL `mysql://root:***@localhost/gatehouse`; use `sqlite://PATH?mode=rwc` or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`".to_owned(),
        ),
        (
            format!("sqlite://{}", missing_directory.display()),
            format!(
                "cannot open the SQLite store at `sqlite://{}?mode=rwc`: error returned from database: (code: 14) unable to open database file; check the URL, that the file's directory is writable or the server is running, and the credentials",
                missing_directory.display()
            ),
        ),
    ] {
        let error = Store::open(&url).await.expect_err("opening must fail");
        assert_eq!(error.to_string(), expected);
    }
}

#[tokio::test]
async fn a_server_that_is_not_running_is_reported_with_the_password_redacted() {
    // Port 1 on loopback: nothing listens there.
    let error = Store::open("postgres://gh:s3cret@127.0.0.1:1/gatehouse")
        .await
        .expect_err("opening must fail");
    let message = error.to_string();
    assert!(
        message.starts_with(
            "cannot open the PostgreSQL store at `postgres://gh:***@127.0.0.1:1/gatehouse`"
        ),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    assert_eq!(
        Backend::of_url("postgresql://db/x"),
        Some(Backend::Postgres)
    );
}
