//! Identity tests against a real token issuer served on loopback. One test binary, so the
//! crate links once.

// The helpers outside #[test] functions are test code too; clippy.toml only covers the latter.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness: a panic is the failure report"
)]

mod api_keys;
mod config;
mod issuer;
mod jwt;
mod kid_flood;
mod resource;
mod support;
mod trusted_header;
