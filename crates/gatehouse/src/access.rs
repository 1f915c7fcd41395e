//! Answers for humans: `gatehouse policy check` (can this person call this tool, and which
//! rules decided), `gatehouse policy test` (a table of expected decisions, for a team's CI),
//! and `gatehouse access` (what a person can reach, or who can call a tool). They read the
//! same policy the gateway enforces and the tool catalogs the gateway persisted.

use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gatehouse_config::{Config, ServerConfig};
use gatehouse_mcp::catalog::ListKind;
use gatehouse_mcp::naming::Namespace;
use gatehouse_policy::{Action, DecisionRequest, Item, PolicySet, Principal};
use gatehouse_store::{CatalogKind, Store};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Decide one call and explain it.
    Check {
        /// The person.
        #[arg(long)]
        user: String,
        /// The tool, by the name clients see (`server__tool`).
        #[arg(long)]
        tool: String,
        /// The call's arguments as a JSON object.
        #[arg(long)]
        args: Option<String>,
    },
    /// Run a table of expected decisions; exits non-zero if any differs.
    Test {
        /// A TOML file of `[[case]]` tables: user, tool, optional args (JSON text), expect.
        file: std::path::PathBuf,
    },
}

/// The policy in force and what it decides about.
struct Context_ {
    config: Config,
    store: Store,
    policy: PolicySet,
    tools: Vec<(ServerConfig, String, Value)>,
}

async fn context(path: &Path) -> Result<Context_> {
    let config = crate::load(path)?;
    let store = crate::people::open_store(path, &config).await?;
    let policy = gatehouse_gateway::policy::compile(&config, &crate::config_folder(path))
        .map_err(|problems| anyhow::anyhow!("policy: {problems}"))?;
    let entries = store.catalog_entries(None).await?;
    let mut tools = Vec::new();
    for server in &config.servers {
        let Some(entry) = entries
            .iter()
            .find(|e| e.server == server.name.as_str() && e.kind == CatalogKind::Tools)
        else {
            continue;
        };
        let namespace = Namespace::new(server.prefix.clone());
        for tool in serde_json::from_str::<Vec<Value>>(&entry.items_json).unwrap_or_default() {
            let exposed = namespace.expose_name(tool["name"].as_str().unwrap_or_default());
            tools.push((server.clone(), exposed, tool));
        }
    }
    Ok(Context_ {
        config,
        store,
        policy,
        tools,
    })
}

impl Context_ {
    async fn principal(&self, user: &str) -> Result<Principal> {
        let memberships = match self.store.memberships(user).await {
            Ok(memberships) => memberships,
            Err(gatehouse_store::StoreError::NotFound { .. }) => Default::default(),
            Err(error) => return Err(error.into()),
        };
        Ok(Principal {
            user: user.to_owned(),
            groups: memberships.groups,
            teams: memberships.teams,
        })
    }

    fn item(&self, tool: &str) -> Result<Item> {
        if let Some((server, exposed, definition)) =
            self.tools.iter().find(|(_, exposed, _)| exposed == tool)
        {
            return Ok(gatehouse_gateway::policy::describe(
                server,
                ListKind::Tools,
                exposed,
                Some(definition),
            ));
        }
        // A tool not learned yet is still decided, as the gateway would: classified without hints.
        let server = self
            .config
            .servers
            .iter()
            .find(|server| {
                server
                    .prefix
                    .as_deref()
                    .is_some_and(|prefix| tool.starts_with(&format!("{prefix}__")))
            })
            .with_context(|| {
                format!(
                    "no configured server offers `{tool}`; `gatehouse tools` lists the known ones"
                )
            })?;
        Ok(gatehouse_gateway::policy::describe(
            server,
            ListKind::Tools,
            tool,
            None,
        ))
    }

    fn decide(
        &self,
        principal: &Principal,
        item: &Item,
        arguments: Option<&Map<String, Value>>,
    ) -> gatehouse_policy::Decision {
        let request = DecisionRequest {
            principal,
            action: Action::Use,
            item,
            arguments,
        };
        self.policy.decide(&request, SystemTime::now())
    }
}

fn parse_args(args: Option<&str>) -> Result<Option<Map<String, Value>>> {
    match args {
        None => Ok(None),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            _ => bail!("--args must be a JSON object, such as '{{\"path\": \"/workspace/a\"}}'"),
        },
    }
}

pub(crate) async fn policy(path: &Path, command: PolicyCommand) -> Result<()> {
    let context = context(path).await?;
    match command {
        PolicyCommand::Check { user, tool, args } => {
            let principal = context.principal(&user).await?;
            let item = context.item(&tool)?;
            let arguments = parse_args(args.as_deref())?;
            let decision = context.decide(&principal, &item, arguments.as_ref());
            println!(
                "{}: {}",
                if decision.is_allowed() {
                    "allow"
                } else {
                    "deny"
                },
                decision.reason
            );
            println!("tool class: {}", item.kind.class().as_str());
            println!("policy: {}", context.policy.hash());
            for id in &decision.rules {
                match context.policy.rule(id) {
                    Some(rule) => println!("rule {id} ({}):\n{}", rule.location, rule.text),
                    None => println!("rule {id}"),
                }
            }
            for error in &decision.errors {
                println!("error: {error}");
            }
            Ok(())
        }
        PolicyCommand::Test { file } => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Table {
                case: Vec<Case>,
            }
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Case {
                user: String,
                tool: String,
                args: Option<String>,
                expect: String,
            }
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let table: Table = toml::from_str(&text)
                .with_context(|| format!("{} is not a table of [[case]]", file.display()))?;
            let mut failed = 0;
            for case in &table.case {
                let principal = context.principal(&case.user).await?;
                let item = context.item(&case.tool)?;
                let arguments = parse_args(case.args.as_deref())?;
                let decision = context.decide(&principal, &item, arguments.as_ref());
                let got = if decision.is_allowed() {
                    "allow"
                } else {
                    "deny"
                };
                let ok = got == case.expect;
                failed += usize::from(!ok);
                println!(
                    "{} {} {} -> {got} (expected {}): {}",
                    if ok { "ok  " } else { "FAIL" },
                    case.user,
                    case.tool,
                    case.expect,
                    decision.reason
                );
            }
            println!("{} passed, {failed} failed", table.case.len() - failed);
            if failed > 0 {
                bail!("{failed} decision(s) differ from the table");
            }
            Ok(())
        }
    }
}

pub(crate) async fn access(path: &Path, user: Option<String>, tool: Option<String>) -> Result<()> {
    let context = context(path).await?;
    match (user, tool) {
        (Some(user), None) => {
            let principal = context.principal(&user).await?;
            println!("{user} can call:");
            let mut count = 0;
            for (server, exposed, definition) in &context.tools {
                let item = gatehouse_gateway::policy::describe(
                    server,
                    ListKind::Tools,
                    exposed,
                    Some(definition),
                );
                let decision = context.decide(&principal, &item, None);
                if decision.is_allowed() {
                    println!(
                        "  {exposed:<40} {:<12} by {}",
                        item.kind.class().as_str(),
                        decision.rules.join(", ")
                    );
                    count += 1;
                }
            }
            println!("{count} of {} known tools", context.tools.len());
        }
        (None, Some(tool)) => {
            let item = context.item(&tool)?;
            println!("who can call {tool}:");
            for person in context.store.list_users().await? {
                if person.is_disabled() {
                    continue;
                }
                let principal = context.principal(&person.name).await?;
                let decision = context.decide(&principal, &item, None);
                if decision.is_allowed() {
                    println!("  {:<24} by {}", person.name, decision.rules.join(", "));
                }
            }
        }
        _ => bail!(
            "give a person (`gatehouse access alice`) or a tool (`gatehouse access --tool server__tool`)"
        ),
    }
    Ok(())
}
