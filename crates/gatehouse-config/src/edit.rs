//! Comment-preserving edits of the configuration text, used by `gatehouse server add/remove`.
//! Each edit returns the new text only if the result still validates, so a command can never
//! leave a broken file behind.

use crate::{ConfigError, Problem, ServerName, parse};

/// A server to add, as given on the command line.
#[derive(Debug, Clone)]
pub enum NewServer {
    /// A stdio server: program and arguments.
    Stdio {
        /// Program to run.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Environment variables for it.
        env: Vec<(String, String)>,
    },
    /// A Streamable HTTP server.
    Http {
        /// Its endpoint.
        url: String,
        /// Headers to send.
        headers: Vec<(String, String)>,
    },
}

/// Adds `[servers.NAME]` to the text; refuses a name already present.
pub fn add_server(
    text: &str,
    name: &ServerName,
    server: &NewServer,
) -> Result<String, ConfigError> {
    let mut document = parse_document(text)?;
    let servers = document
        .entry("servers")
        .or_insert_with(|| {
            let mut table = toml_edit::Table::new();
            table.set_implicit(true);
            toml_edit::Item::Table(table)
        })
        .as_table_mut()
        .ok_or_else(|| {
            single(
                "servers",
                "`servers` must be a table of `[servers.NAME]` entries",
            )
        })?;
    if servers.contains_key(name.as_str()) {
        return Err(single(
            &format!("servers.{name}"),
            &format!(
                "a server named `{name}` already exists; remove it first or pick another name"
            ),
        ));
    }
    let mut table = toml_edit::Table::new();
    match server {
        NewServer::Stdio { command, args, env } => {
            table.insert("command", toml_edit::value(command.as_str()));
            if !args.is_empty() {
                let array: toml_edit::Array = args.iter().map(String::as_str).collect();
                table.insert("args", toml_edit::value(array));
            }
            if !env.is_empty() {
                table.insert("env", toml_edit::value(inline_table(env)));
            }
        }
        NewServer::Http { url, headers } => {
            table.insert("url", toml_edit::value(url.as_str()));
            if !headers.is_empty() {
                table.insert("headers", toml_edit::value(inline_table(headers)));
            }
        }
    }
    servers.insert(name.as_str(), toml_edit::Item::Table(table));
    let new_text = document.to_string();
    parse(&new_text)?;
    Ok(new_text)
}

/// Removes `[servers.NAME]` from the text; an unknown name is an error.
pub fn remove_server(text: &str, name: &str) -> Result<String, ConfigError> {
    let mut document = parse_document(text)?;
    let removed = document
        .get_mut("servers")
        .and_then(toml_edit::Item::as_table_like_mut)
        .and_then(|servers| servers.remove(name));
    if removed.is_none() {
        return Err(single(
            &format!("servers.{name}"),
            &format!("there is no server named `{name}`; `gatehouse server list` shows the names"),
        ));
    }
    let new_text = document.to_string();
    parse(&new_text)?;
    Ok(new_text)
}

fn inline_table(pairs: &[(String, String)]) -> toml_edit::InlineTable {
    let mut table = toml_edit::InlineTable::new();
    for (key, value) in pairs {
        table.insert(key, value.as_str().into());
    }
    table
}

fn parse_document(text: &str) -> Result<toml_edit::DocumentMut, ConfigError> {
    text.parse::<toml_edit::DocumentMut>()
        .map_err(|error| single("file", error.message()))
}

fn single(path: &str, message: &str) -> ConfigError {
    ConfigError {
        problems: vec![Problem {
            path: path.to_owned(),
            line: None,
            message: message.to_owned(),
        }],
    }
}
