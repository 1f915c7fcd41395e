//! The kinds of list a server offers, and fetching one from an upstream page by page with a
//! bound, so a server that repeats its cursor or never stops cannot hold the gateway.

use serde_json::{Value, json};

use crate::jsonrpc;
use crate::upstream::{CallOptions, Upstream, UpstreamError};

/// Most pages read from one upstream for one list.
pub const MAX_UPSTREAM_PAGES: usize = 64;
/// Most items kept from one upstream for one list.
pub const MAX_UPSTREAM_ITEMS: usize = 10_000;

/// A kind of list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list`.
    Tools,
    /// `prompts/list`.
    Prompts,
    /// `resources/list`.
    Resources,
    /// `resources/templates/list`.
    ResourceTemplates,
}

impl ListKind {
    /// Every kind.
    pub const ALL: [ListKind; 4] = [
        ListKind::Tools,
        ListKind::Prompts,
        ListKind::Resources,
        ListKind::ResourceTemplates,
    ];

    /// The list method.
    pub fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::ResourceTemplates => "resources/templates/list",
        }
    }

    /// The member of the result that holds the items.
    pub fn field(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The member of an item that the gateway rewrites.
    pub fn key(self) -> &'static str {
        match self {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::ResourceTemplates => "uriTemplate",
        }
    }

    /// The server capability that announces this list.
    pub fn capability(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources | ListKind::ResourceTemplates => "resources",
        }
    }

    /// The kind whose `list_changed` notification this is.
    pub fn from_list_changed(method: &str) -> &'static [ListKind] {
        match method {
            "notifications/tools/list_changed" => &[ListKind::Tools],
            "notifications/prompts/list_changed" => &[ListKind::Prompts],
            "notifications/resources/list_changed" => {
                &[ListKind::Resources, ListKind::ResourceTemplates]
            }
            _ => &[],
        }
    }

    /// The downstream notification that announces a change of this list.
    pub fn list_changed_method(self) -> &'static str {
        match self {
            ListKind::Tools => "notifications/tools/list_changed",
            ListKind::Prompts => "notifications/prompts/list_changed",
            ListKind::Resources | ListKind::ResourceTemplates => {
                "notifications/resources/list_changed"
            }
        }
    }
}

/// One upstream's complete list, as the upstream named its items.
#[derive(Debug, Clone)]
pub struct UpstreamList {
    /// The items.
    pub items: Vec<Value>,
    /// The shortest cache lifetime any page allowed, in milliseconds (2026-07-28 servers).
    pub ttl_ms: Option<u64>,
    /// Whether any page was marked `private`.
    pub private: bool,
}

/// Reads every page of one list from one upstream.
pub async fn fetch_list(
    upstream: &Upstream,
    kind: ListKind,
    options: impl Fn() -> CallOptions,
) -> Result<UpstreamList, FetchError> {
    let mut list = UpstreamList {
        items: Vec::new(),
        ttl_ms: None,
        private: false,
    };
    let mut cursor: Option<Value> = None;
    let mut seen_cursors = Vec::new();
    for _ in 0..MAX_UPSTREAM_PAGES {
        let params = match &cursor {
            Some(cursor) => json!({"cursor": cursor}),
            None => json!({}),
        };
        let request = jsonrpc::request(json!(0), kind.method(), Some(params));
        let response = upstream
            .call(request, options())
            .await
            .map_err(FetchError::Upstream)?;
        let Some(result) = response.get("result") else {
            let message = response
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("error")
                .to_owned();
            let code = jsonrpc::error_code(&response).unwrap_or_default();
            return Err(FetchError::Refused { code, message });
        };
        if let Some(items) = result.get(kind.field()).and_then(Value::as_array) {
            let room = MAX_UPSTREAM_ITEMS.saturating_sub(list.items.len());
            list.items.extend(items.iter().take(room).cloned());
        }
        if let Some(ttl) = result.get("ttlMs").and_then(Value::as_u64) {
            list.ttl_ms = Some(list.ttl_ms.map_or(ttl, |current| current.min(ttl)));
        }
        if result.get("cacheScope").and_then(Value::as_str) == Some("private") {
            list.private = true;
        }
        match result.get("nextCursor").filter(|c| !c.is_null()) {
            Some(next) if !seen_cursors.contains(next) && list.items.len() < MAX_UPSTREAM_ITEMS => {
                seen_cursors.push(next.clone());
                cursor = Some(next.clone());
            }
            _ => return Ok(list),
        }
    }
    Ok(list)
}

/// Why a list could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The upstream could not be reached.
    #[error(transparent)]
    Upstream(UpstreamError),
    /// The upstream answered with an error.
    #[error("the server answered {code}: {message}")]
    Refused {
        /// Its error code.
        code: i64,
        /// Its message.
        message: String,
    },
}
