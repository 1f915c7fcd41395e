//! OAuth client tests against a real authorization server served on loopback. One test
//! binary, so the crate links once.

// The helpers outside #[test] functions are test code too; clippy.toml only covers the latter.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness: a panic is the failure report"
)]

mod authorization_code;
mod client_credentials;
mod leaks;
mod refresh;
mod server;
mod support;
mod token_exchange;
