//! Benchmarks for Gatehouse: a load generator that speaks MCP Streamable HTTP in both protocol
//! eras, and the pieces the side-by-side runner (`scripts/bench`) is made of.
//!
//! [`client`] is a deliberately small MCP client built for load: one kept-alive HTTP/1.1
//! connection per simulated client over `hyper`'s connection API, request bodies assembled from
//! prebuilt bytes, and replies read as JSON or as an SSE stream. [`load`] runs N such clients
//! in a loop, bounded by a call count and by a duration, and records every successful call's
//! latency in an HDR histogram; [`report`] turns that into a JSON line and a human line.
//! [`canned`] is an MCP responder that answers without doing any work, so the generator's own
//! ceiling can be measured on the same machine in the same run.
//!
//! Architecture invariant: nothing here binds or connects anywhere but the address it is given,
//! and every loop stops by itself, at its call count or at its deadline, whichever comes first.

#![forbid(unsafe_code)]

pub mod canned;
pub mod client;
pub mod load;
pub mod report;

pub use client::{ClientError, Endpoint, Era, McpClient, PreparedCall};
pub use load::{LoadSpec, SessionsReport, open_sessions, run_load};
pub use report::{Latencies, LoadReport};
