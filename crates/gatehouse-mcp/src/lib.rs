//! The protocol side of Gatehouse: raw JSON-RPC handling, the two MCP eras, stable names for
//! merged catalogs, and links to upstream servers over stdio and Streamable HTTP.
//!
//! Architecture invariant: messages the gateway forwards stay `serde_json::Value`s from end to
//! end; only the members the gateway must rewrite are edited, so unknown fields and methods
//! pass through unchanged.

pub mod catalog;
pub mod credentials;
pub mod era;
pub mod headers;
pub mod hub;
pub mod jsonrpc;
pub mod naming;
pub mod upstream;
