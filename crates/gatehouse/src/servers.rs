//! `gatehouse server add/list/remove`: edits of the configuration file that keep the user's
//! comments and are written only if the result still validates.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gatehouse_config::edit::{NewServer, add_server, remove_server};
use gatehouse_config::{ServerName, Transport};

#[derive(Subcommand)]
pub(crate) enum ServerCommand {
    /// Add a server: `server add NAME -- COMMAND ARGS...` or `server add NAME --url URL`.
    Add {
        /// The server's name; its tools appear as NAME__tool.
        name: String,
        /// Endpoint of a Streamable HTTP server.
        #[arg(long)]
        url: Option<String>,
        /// Environment variable for a stdio server, as K=V (repeatable).
        #[arg(long = "env", value_name = "K=V")]
        env: Vec<String>,
        /// Header for an HTTP server, as K:V (repeatable).
        #[arg(long = "header", value_name = "K:V")]
        headers: Vec<String>,
        /// Program and arguments of a stdio server, after `--`.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// List the configured servers.
    List,
    /// Remove a server.
    Remove {
        /// The server's name.
        name: String,
    },
}

pub(crate) fn run(path: &Path, command: ServerCommand) -> Result<()> {
    match command {
        ServerCommand::Add {
            name,
            url,
            env,
            headers,
            command,
        } => {
            let name = ServerName::new(&name)
                .map_err(|problem| anyhow::anyhow!("server name {problem}"))?;
            let server = match (url, command.split_first()) {
                (Some(_), Some(_)) => {
                    bail!("give either --url URL or -- COMMAND ARGS..., not both")
                }
                (None, None) => bail!(
                    "give -- COMMAND ARGS... for a stdio server or --url URL for an HTTP server"
                ),
                (Some(url), None) => {
                    if !env.is_empty() {
                        bail!("--env applies to stdio servers; use --header for an HTTP server");
                    }
                    NewServer::Http {
                        url,
                        headers: pairs(&headers, ':', "--header", "K:V")?,
                    }
                }
                (None, Some((program, args))) => {
                    if !headers.is_empty() {
                        bail!("--header applies to HTTP servers; use --env for a stdio server");
                    }
                    NewServer::Stdio {
                        command: program.clone(),
                        args: args.to_vec(),
                        env: pairs(&env, '=', "--env", "K=V")?,
                    }
                }
            };
            let text = crate::read_config_text(path)?;
            let updated =
                add_server(&text, &name, &server).map_err(|error| anyhow::anyhow!("{error}"))?;
            std::fs::write(path, updated)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("added server `{name}` to {}", path.display());
            Ok(())
        }
        ServerCommand::List => {
            let config = crate::load(path)?;
            if config.servers.is_empty() {
                println!(
                    "no servers; add one with `gatehouse server add NAME -- COMMAND` or `--url URL`"
                );
                return Ok(());
            }
            let live = live_state(&config);
            println!(
                "{:<16} {:<6} {:<14} {:<9} {:>5} {:>9} {:>9}  TARGET",
                "NAME", "KIND", "NAMES", "STATE", "PROCS", "LAST USE", "IDLE STOP"
            );
            for server in &config.servers {
                let names = match &server.prefix {
                    Some(prefix) => format!("{prefix}__*"),
                    None => "unprefixed".to_owned(),
                };
                let (kind, target) = match &server.transport {
                    Transport::Stdio { command, args, .. } => {
                        let args: Vec<&str> = args.iter().map(|arg| arg.as_written()).collect();
                        ("stdio", format!("{command} {}", args.join(" ")))
                    }
                    Transport::Http { url, .. } => ("http", url.clone()),
                };
                let state = live.as_ref().and_then(|servers| {
                    servers
                        .iter()
                        .find(|s| s["name"].as_str() == Some(server.name.as_str()))
                });
                let text = |key: &str| {
                    state
                        .and_then(|s| s[key].as_str())
                        .unwrap_or("-")
                        .to_owned()
                };
                let seconds = |key: &str| {
                    state
                        .and_then(|s| s[key].as_u64())
                        .map_or("-".to_owned(), |secs| format!("{secs}s"))
                };
                let status = match (&live, text("state").as_str()) {
                    (None, _) => "offline".to_owned(),
                    (Some(_), state) => state.to_owned(),
                };
                let processes = state
                    .and_then(|s| s["processes"].as_u64())
                    .map_or("-".to_owned(), |n| n.to_string());
                let idle_stop = if server.lifecycle.always_on {
                    "never".to_owned()
                } else {
                    seconds("idle_deadline_secs")
                };
                println!(
                    "{:<16} {kind:<6} {names:<14} {status:<9} {processes:>5} {:>9} {idle_stop:>9}  {}",
                    server.name,
                    seconds("idle_for_secs"),
                    target.trim_end()
                );
                if let Some(reason) = state.and_then(|s| s["reason"].as_str()) {
                    println!("{:<16} reason: {reason}", "");
                }
            }
            if live.is_none() {
                println!(
                    "(the gateway is not running at {}; states are shown while it runs)",
                    config.gateway.listen
                );
            }
            Ok(())
        }
        ServerCommand::Remove { name } => {
            let text = crate::read_config_text(path)?;
            let updated =
                remove_server(&text, &name).map_err(|error| anyhow::anyhow!("{error}"))?;
            std::fs::write(path, updated)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("removed server `{name}` from {}", path.display());
            Ok(())
        }
    }
}

fn pairs(
    items: &[String],
    separator: char,
    flag: &str,
    shape: &str,
) -> Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|item| match item.split_once(separator) {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_owned(), value.trim_start().to_owned()))
            }
            _ => bail!("{flag} `{item}` must look like {shape}"),
        })
        .collect()
}

/// The running gateway's view of its servers, if it answers on the configured address.
fn live_state(config: &gatehouse_config::Config) -> Option<Vec<serde_json::Value>> {
    let mut address = config.gateway.listen;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    if address.port() == 0 {
        return None;
    }
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()
        .ok()?;
    let body: serde_json::Value = client
        .get(format!("http://{address}/admin/servers"))
        .send()
        .ok()?
        .json()
        .ok()?;
    body["servers"].as_array().cloned()
}
