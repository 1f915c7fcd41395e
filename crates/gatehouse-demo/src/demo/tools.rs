//! The demo server's tools: `echo`, the note book tools and `slow_count`.

use std::time::Duration;

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::wrapper::Parameters,
    model::{CallToolResult, ContentBlock, ProgressNotificationParam},
    service::RequestContext,
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::DemoServer;

/// The largest `n` accepted by `slow_count`.
const MAX_COUNT: u32 = 1_000;
/// The longest pause accepted by `slow_count`, in milliseconds.
const MAX_INTERVAL_MS: u64 = 60_000;

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct EchoArgs {
    /// The text to return.
    text: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct AddNoteArgs {
    /// A unique title: 1 to 64 characters from A-Z, a-z, 0-9, '-', '_' and '.'.
    title: String,
    /// The text of the note.
    body: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct DeleteNoteArgs {
    /// The title of the note to delete.
    title: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct SlowCountArgs {
    /// How far to count (1 to 1000, default 5).
    #[serde(default)]
    n: Option<u32>,
    /// The pause between two numbers in milliseconds (0 to 60000, default 100).
    #[serde(default)]
    interval_ms: Option<u64>,
}

#[tool_router(vis = "pub(super)")]
impl DemoServer {
    /// Returns the given text unchanged. Handy to check that a connection works, and to
    /// measure the overhead of whatever sits between you and this server.
    #[tool(
        name = "echo",
        annotations(
            title = "Echo",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text(args.text)])
    }

    /// Lists all notes, title and text, in title order.
    #[tool(
        name = "list_notes",
        annotations(
            title = "List notes",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_notes(&self) -> CallToolResult {
        let notes = self.shared.notes.all();
        if notes.is_empty() {
            return CallToolResult::success(vec![ContentBlock::text(
                "There are no notes yet. Add one with add_note.",
            )]);
        }
        let listing = notes
            .iter()
            .map(|(title, body)| format!("# {title}\n{body}"))
            .collect::<Vec<_>>()
            .join("\n\n");
        CallToolResult::success(vec![ContentBlock::text(listing)])
    }

    /// Adds a note. Fails if a note with the same title exists; delete it first.
    #[tool(
        name = "add_note",
        annotations(
            title = "Add a note",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn add_note(&self, Parameters(args): Parameters<AddNoteArgs>) -> CallToolResult {
        match self.shared.notes.add(&args.title, &args.body) {
            Ok(()) => CallToolResult::success(vec![ContentBlock::text(format!(
                "Added the note {:?}. Read it at demo://notes/{}.",
                args.title, args.title
            ))]),
            Err(error) => CallToolResult::error(vec![ContentBlock::text(error.to_string())]),
        }
    }

    /// Deletes a note for good. There is no undo.
    #[tool(
        name = "delete_note",
        annotations(
            title = "Delete a note",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn delete_note(&self, Parameters(args): Parameters<DeleteNoteArgs>) -> CallToolResult {
        match self.shared.notes.delete(&args.title) {
            Ok(()) => CallToolResult::success(vec![ContentBlock::text(format!(
                "Deleted the note {:?}.",
                args.title
            ))]),
            Err(error) => CallToolResult::error(vec![ContentBlock::text(error.to_string())]),
        }
    }

    /// Counts from 1 to n, pausing between numbers. Reports each number as progress when
    /// the request carries a progress token, and stops early when the request is cancelled.
    #[tool(
        name = "slow_count",
        annotations(
            title = "Count slowly",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn slow_count(
        &self,
        Parameters(args): Parameters<SlowCountArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let n = args.n.unwrap_or(5);
        let interval_ms = args.interval_ms.unwrap_or(100);
        if !(1..=MAX_COUNT).contains(&n) || interval_ms > MAX_INTERVAL_MS {
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "n must be 1 to {MAX_COUNT} and interval_ms at most {MAX_INTERVAL_MS}"
            ))]));
        }
        let progress_token = context.meta.get_progress_token();
        let interval = Duration::from_millis(interval_ms);
        for step in 1..=n {
            tokio::select! {
                () = context.ct.cancelled() => {
                    return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                        "cancelled after counting to {}", step - 1
                    ))]));
                }
                () = tokio::time::sleep(interval) => {}
            }
            if let Some(token) = &progress_token {
                let progress = ProgressNotificationParam::new(token.clone(), f64::from(step))
                    .with_total(f64::from(n))
                    .with_message(format!("counted to {step}"));
                // A client that went away cancels the request too; the next loop turn
                // sees that, so a failed notification needs no handling of its own.
                let _ = context.peer.notify_progress(progress).await;
            }
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "Counted to {n}."
        ))]))
    }
}
