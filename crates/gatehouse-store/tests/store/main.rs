//! The store's tests: every repository on SQLite and, when `GATEHOUSE_TEST_POSTGRES_URL` is set,
//! on PostgreSQL, each test on its own fresh database (see `support`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod support;

mod api_keys;
mod catalog;
mod changes;
mod migrations;
mod open;
mod receipts;
mod secrets;
mod send;
mod users;
