//! `gatehouse secret`: upstream credentials held by the gateway alone. A value is read from
//! standard input or a file, never from the command line (where it would land in shell
//! history and the process table), sealed with the secrets key and stored as ciphertext.
//! Listing shows metadata only. A rotation or removal is announced to a running gateway,
//! which uses the new value from the next call and replaces processes that took the old one
//! once their calls finish.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gatehouse_config::{Config, SecretScope, check_secret_name};
use gatehouse_store::{SecretMetadata, SecretRef, Store, Timestamp};
use gatehouse_vault::{Details, KEY_FILE, KEY_VARIABLE, Vault, VaultKey};
use secrecy::SecretString;
use zeroize::Zeroizing;

#[derive(Subcommand)]
pub(crate) enum SecretCommand {
    /// Store a new secret; the value is read from standard input, or from --file.
    Set {
        /// Its name, as the configuration refers to it (`{secret:NAME}`).
        name: String,
        /// Store it as this person's own credential (`{user_secret:NAME}`).
        #[arg(long)]
        user: Option<String>,
        /// Read the value from this file instead of standard input.
        #[arg(long)]
        file: Option<PathBuf>,
        /// The team answerable for it.
        #[arg(long)]
        team: Option<String>,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Replace a secret's value; running servers move to it without failing a call.
    Rotate {
        /// Its name.
        name: String,
        /// The person whose own credential it is.
        #[arg(long)]
        user: Option<String>,
        /// Read the value from this file instead of standard input.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// List secrets: owner, version, age, last use and the servers using each; never a value.
    List,
    /// Delete a secret; servers that use it stop working until it is set again.
    Remove {
        /// Its name.
        name: String,
        /// The person whose own credential it is.
        #[arg(long)]
        user: Option<String>,
    },
}

pub(crate) async fn run(path: &Path, command: SecretCommand) -> Result<()> {
    let config = crate::load(path)?;
    let store = crate::people::open_store(path, &config).await?;
    let folder = crate::config_folder(path);
    match command {
        SecretCommand::Set {
            name,
            user,
            file,
            team,
            description,
        } => {
            check_secret_name(&name).map_err(anyhow::Error::msg)?;
            let vault = open_vault(&folder, store, true)
                .await?
                .context("no secrets key")?;
            let value = read_value(file.as_deref())?;
            let secret = SecretRef {
                name: &name,
                user: user.as_deref(),
            };
            let details = Details {
                owner_team: team.as_deref(),
                description: &description,
            };
            let stored = vault.add(secret, &value, details).await.map_err(|error| {
                match error {
                    gatehouse_vault::VaultError::Store(
                        gatehouse_store::StoreError::AlreadyExists { .. },
                    ) => anyhow::anyhow!(
                        "secret `{secret}` is already set; replace its value with `gatehouse secret rotate {name}{}`",
                        user.as_ref().map(|user| format!(" --user {user}")).unwrap_or_default()
                    ),
                    other => other.into(),
                }
            })?;
            println!("stored secret `{secret}` (version {})", stored.version);
            let users = servers_using(&config, &name, scope_of(user.as_deref()));
            if users.is_empty() {
                println!(
                    "no server refers to it yet; use `{}` in a server's env, args or headers",
                    reference(&name, user.as_deref())
                );
            } else {
                println!("used by: {}", users.join(", "));
            }
        }
        SecretCommand::Rotate { name, user, file } => {
            let vault = open_vault(&folder, store, false)
                .await?
                .context("there is no secrets key, so there is no secret to rotate")?;
            let value = read_value(file.as_deref())?;
            let secret = SecretRef {
                name: &name,
                user: user.as_deref(),
            };
            let rotated = vault.rotate(secret, &value).await?;
            println!(
                "rotated secret `{secret}` to version {}: new calls use it; running servers that took the old value are replaced once their calls finish",
                rotated.version
            );
        }
        SecretCommand::List => {
            let secrets = store.list_secrets().await?;
            print_secrets(&config, &secrets);
        }
        SecretCommand::Remove { name, user } => {
            let secret = SecretRef {
                name: &name,
                user: user.as_deref(),
            };
            store.remove_secret(secret).await?;
            println!("removed secret `{secret}`");
            let users = servers_using(&config, &name, scope_of(user.as_deref()));
            if !users.is_empty() {
                println!(
                    "these servers refer to it and fail until it is set again: {}",
                    users.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// Opens the vault of `store` with the key from the environment or the key file in `folder`.
/// With `create`, a missing key is made (unless the store already holds secrets sealed with a
/// key that is not here). `None` when there is no key and none may be made.
pub(crate) async fn open_vault(folder: &Path, store: Store, create: bool) -> Result<Option<Vault>> {
    let key = match VaultKey::load(folder)? {
        Some(key) => key,
        None if Vault::has_sealed(&store).await? => bail!(
            "this store holds secrets sealed with a key that is not here: restore {} or set ${KEY_VARIABLE}",
            folder.join(KEY_FILE).display()
        ),
        None if create => {
            let key = VaultKey::create_file(&folder.join(KEY_FILE))?;
            eprintln!(
                "created the secrets key {} (readable by you only); keep it apart from copies of the store",
                folder.join(KEY_FILE).display()
            );
            key
        }
        None => return Ok(None),
    };
    Ok(Some(Vault::open(store, key).await?))
}

/// Reads a value from `file` or standard input; one trailing line break is dropped.
fn read_value(file: Option<&Path>) -> Result<SecretString> {
    let mut text = Zeroizing::new(String::new());
    match file {
        Some(file) => {
            std::fs::File::open(file)
                .and_then(|mut opened| opened.read_to_string(&mut text))
                .with_context(|| format!("cannot read {}", file.display()))?;
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprintln!("enter the value, then press Ctrl-D:");
            }
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the value from standard input")?;
        }
    }
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if trimmed.is_empty() {
        bail!(
            "the value is empty; pipe it in (`gatehouse secret set NAME < token.txt`) or pass --file"
        );
    }
    Ok(SecretString::from(trimmed.to_owned()))
}

fn scope_of(user: Option<&str>) -> SecretScope {
    if user.is_some() {
        SecretScope::User
    } else {
        SecretScope::Service
    }
}

fn reference(name: &str, user: Option<&str>) -> String {
    match user {
        None => format!("{{secret:{name}}}"),
        Some(_) => format!("{{user_secret:{name}}}"),
    }
}

/// The servers whose configuration refers to secret `name` in `scope`; a person's OAuth grant
/// (`oauth.SERVER`) is used by that server.
fn servers_using(config: &Config, name: &str, scope: SecretScope) -> Vec<String> {
    let grant_of = name.strip_prefix("oauth.");
    config
        .servers
        .iter()
        .filter(|server| {
            let grant = scope == SecretScope::User
                && server.oauth.is_some()
                && grant_of == Some(server.name.as_str());
            grant
                || server
                    .secrets()
                    .iter()
                    .any(|secret| secret.name == name && secret.scope == scope)
        })
        .map(|server| server.name.to_string())
        .collect()
}

fn print_secrets(config: &Config, secrets: &[SecretMetadata]) {
    println!(
        "{:<28} {:<12} {:>4} {:<17} {:<17} {:<17} {:<20} DESCRIPTION",
        "SECRET", "OWNER TEAM", "VER", "CREATED", "ROTATED", "LAST USED", "USED BY"
    );
    for secret in secrets {
        let id = secret.secret_ref().to_string();
        let users = servers_using(config, &secret.name, scope_of(secret.user.as_deref()));
        println!(
            "{:<28} {:<12} {:>4} {:<17} {:<17} {:<17} {:<20} {}",
            id,
            secret.owner_team.as_deref().unwrap_or("-"),
            secret.version,
            when(Some(secret.created_at)),
            when(secret.rotated_at),
            when(secret.last_used_at),
            if users.is_empty() {
                "-".to_owned()
            } else {
                users.join(",")
            },
            secret.description
        );
    }
}

fn when(time: Option<Timestamp>) -> String {
    time.and_then(|time| chrono::DateTime::from_timestamp_millis(time.as_unix_millis()))
        .map_or_else(
            || "never".to_owned(),
            |time| time.format("%Y-%m-%d %H:%M").to_string(),
        )
}
