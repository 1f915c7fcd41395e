//! The demo server: what a new Gatehouse user sees first.
//!
//! Tools and the prompt are declared with rmcp's macros (`tools.rs`, `prompts.rs`);
//! resources and completion are written out here because they are a handful of lines.

mod notes;
mod prompts;
mod tools;

use std::sync::Arc;

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    handler::server::router::{prompt::PromptRouter, tool::ToolRouter},
    model::{
        CompleteRequestParams, CompleteResult, CompletionInfo, Implementation,
        ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
        ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
        ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig,
    },
    prompt_handler,
    service::RequestContext,
    tool_handler,
};

use notes::{NoteBook, README_TITLE};

/// The URI prefix of every note, and of the readme.
const NOTES_PREFIX: &str = "demo://notes/";
const README_URI: &str = "demo://notes/readme";
const NOTE_TEMPLATE: &str = "demo://notes/{title}";

const README: &str = "\
# Gatehouse demo server

This server is a playground for MCP clients and for Gatehouse policies.

- `echo` returns its `text` argument. It is read-only and fast, which makes it the tool to
  benchmark with.
- `list_notes` (read-only), `add_note` (writes) and `delete_note` (destructive) work on a
  note book kept in memory until the server stops.
- `slow_count` counts to `n`, sending progress notifications when asked, and stops when the
  request is cancelled.
- Each note can be read as the resource `demo://notes/{title}`.
- The prompt `summarize_notes` asks a model to summarize the note book, in a `short` or
  `detailed` style.
";

/// The demo server's handler. Cloning it is cheap: everything lives behind one `Arc`, so
/// the HTTP transport can make one per session or per stateless request.
#[derive(Clone)]
pub(crate) struct DemoServer {
    shared: Arc<DemoShared>,
}

struct DemoShared {
    notes: NoteBook,
    tool_router: ToolRouter<DemoServer>,
    prompt_router: PromptRouter<DemoServer>,
}

impl DemoServer {
    pub(crate) fn new() -> Self {
        Self {
            shared: Arc::new(DemoShared {
                notes: NoteBook::default(),
                tool_router: Self::tool_router(),
                prompt_router: Self::prompt_router(),
            }),
        }
    }
}

#[tool_handler(router = self.shared.tool_router)]
#[prompt_handler(router = self.shared.prompt_router)]
impl ServerHandler for DemoServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .enable_completions()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("gatehouse-demo", env!("CARGO_PKG_VERSION"))
                    .with_title("Gatehouse demo server"),
            )
            .with_instructions(
                "A demo server with an echo tool, an in-memory note book, a slow counter, \
                 note resources and a summarize_notes prompt. Read demo://notes/readme first.",
            )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new(README_URI, "readme")
                .with_title("About the demo server")
                .with_description("What this server offers and how to try it")
                .with_mime_type("text/markdown"),
        ]))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(NOTE_TEMPLATE, "note")
                .with_title("A note")
                .with_description("The text of the note with this title")
                .with_mime_type("text/plain"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri;
        let contents = match uri.strip_prefix(NOTES_PREFIX) {
            Some(README_TITLE) => {
                ResourceContents::text(README, uri.clone()).with_mime_type("text/markdown")
            }
            Some(title) => match self.shared.notes.get(title) {
                Some(body) => {
                    ResourceContents::text(body, uri.clone()).with_mime_type("text/plain")
                }
                None => return Err(resource_not_found(&uri)),
            },
            None => return Err(resource_not_found(&uri)),
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let prefix = request.argument.value.as_str();
        let argument = request.argument.name.as_str();
        let values = if request.r#ref.as_prompt_name() == Some("summarize_notes")
            && argument == "style"
        {
            prompts::complete_from(prompts::STYLES, prefix)
        } else if request.r#ref.as_resource_uri() == Some(NOTE_TEMPLATE) && argument == "title" {
            let titles = self.shared.notes.titles();
            prompts::complete_from(titles.iter().map(String::as_str), prefix)
        } else {
            Vec::new()
        };
        // A completion carries at most 100 values; the rest are reported as "has more".
        let total = values.len();
        let shown: Vec<String> = values
            .into_iter()
            .take(CompletionInfo::MAX_VALUES)
            .collect();
        let has_more = total > shown.len();
        let info = CompletionInfo::with_pagination(shown, Some(saturating_u32(total)), has_more)
            .map_err(|error| McpError::internal_error(error, None))?;
        Ok(CompleteResult::new(info))
    }
}

fn resource_not_found(uri: &str) -> McpError {
    // rmcp turns -32002 into -32602 for 2026-07-28 peers, as SEP-2164 asks.
    McpError::resource_not_found(
        format!("no resource at {uri}"),
        Some(serde_json::json!({ "uri": uri })),
    )
}

fn saturating_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}
