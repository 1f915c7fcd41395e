//! The demo server's prompt, `summarize_notes`, and the completion of its arguments.

use rmcp::{
    ErrorData as McpError,
    handler::server::wrapper::Parameters,
    model::{GetPromptResult, PromptMessage, Role},
    prompt, prompt_router,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::DemoServer;

/// The values of the `style` argument, in the order completion offers them.
pub(crate) const STYLES: [&str; 2] = ["short", "detailed"];

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct SummarizeArgs {
    /// How to summarize: "short" (the default) or "detailed".
    #[serde(default)]
    style: Option<String>,
}

#[prompt_router(vis = "pub(super)")]
impl DemoServer {
    /// Asks the model to summarize all notes in the note book.
    #[prompt(name = "summarize_notes")]
    async fn summarize_notes(
        &self,
        Parameters(args): Parameters<SummarizeArgs>,
    ) -> Result<GetPromptResult, McpError> {
        let style = args.style.as_deref().unwrap_or(STYLES[0]);
        let instruction = match style {
            "short" => "Summarize these notes in at most three sentences.",
            "detailed" => {
                "Summarize these notes in detail: one paragraph per note, then the common themes."
            }
            other => {
                return Err(McpError::invalid_params(
                    format!("unknown style {other:?}; use \"short\" or \"detailed\""),
                    None,
                ));
            }
        };
        let notes = self.shared.notes.all();
        let body = if notes.is_empty() {
            "(The note book is empty.)".to_owned()
        } else {
            notes
                .iter()
                .map(|(title, body)| format!("# {title}\n{body}"))
                .collect::<Vec<_>>()
                .join("\n\n")
        };
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            format!("{instruction}\n\n{body}"),
        )])
        .with_description(format!("A {style} summary of {} notes", notes.len())))
    }
}

/// The candidates among `values` that start with `prefix`, ignoring case.
pub(crate) fn complete_from<'a>(
    values: impl IntoIterator<Item = &'a str>,
    prefix: &str,
) -> Vec<String> {
    let prefix = prefix.to_lowercase();
    values
        .into_iter()
        .filter(|value| value.to_lowercase().starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_filters_by_prefix() {
        assert_eq!(complete_from(STYLES, ""), ["short", "detailed"]);
        assert_eq!(complete_from(STYLES, "De"), ["detailed"]);
        assert!(complete_from(STYLES, "x").is_empty());
    }
}
