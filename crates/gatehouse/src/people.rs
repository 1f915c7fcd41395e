//! `gatehouse user`, `group`, `team` and `key`: the people the gateway knows and the API keys
//! they hold, kept in the store. A revocation is recorded with a change event, which a running
//! gateway reads to close the person's open sessions and streams within a second.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gatehouse_store::{GroupKind, NewApiKey, Store, Timestamp};

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Add a person.
    Add {
        /// A unique name, the one policies and tokens use.
        name: String,
        /// How to show them.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// List people.
    List,
    /// Show a person: state, groups, teams and keys.
    Show {
        /// The person.
        name: String,
    },
    /// Refuse every request of a person from now on (keys stay, but stop working).
    Disable {
        /// The person.
        name: String,
    },
    /// Let a disabled person in again.
    Enable {
        /// The person.
        name: String,
    },
    /// Disable a person and revoke every key they hold, in one step.
    Offboard {
        /// The person.
        name: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum GroupCommand {
    /// Add a group.
    Add {
        /// Its name.
        name: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List groups.
    List,
    /// Add a person to a group.
    AddMember {
        /// The group.
        group: String,
        /// The person.
        user: String,
    },
    /// Remove a person from a group.
    RemoveMember {
        /// The group.
        group: String,
        /// The person.
        user: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum KeyCommand {
    /// Issue a gateway API key to a person; the key is printed once and only its digest kept.
    Issue {
        /// The person.
        user: String,
        /// A name for the key, such as the device it lives on.
        #[arg(long, default_value = "default")]
        name: String,
        /// Lifetime, such as `30d`, `12h` or `90m`; keys do not expire without it.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys (never their values).
    List {
        /// Only this person's keys.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a key by its id (`gh_...`).
    Revoke {
        /// The key id.
        id: String,
    },
}

/// Opens the store named by the configuration.
pub(crate) async fn open_store(path: &Path, config: &gatehouse_config::Config) -> Result<Store> {
    let url = crate::store_url(path, config);
    Store::open(&url).await.with_context(|| {
        format!(
            "cannot open the store at {}",
            gatehouse_store::redact_url(&url)
        )
    })
}

pub(crate) async fn user(path: &Path, command: UserCommand) -> Result<()> {
    let config = crate::load(path)?;
    let store = open_store(path, &config).await?;
    match command {
        UserCommand::Add { name, display_name } => {
            let user = store
                .add_user(&name, display_name.as_deref().unwrap_or(&name))
                .await?;
            println!("added user `{}`", user.name);
        }
        UserCommand::List => {
            println!("{:<24} {:<10} DISPLAY NAME", "NAME", "STATE");
            for user in store.list_users().await? {
                let state = if user.is_disabled() {
                    "disabled"
                } else {
                    "active"
                };
                println!("{:<24} {state:<10} {}", user.name, user.display_name);
            }
        }
        UserCommand::Show { name } => {
            let user = store.user(&name).await?;
            let memberships = store.memberships(&name).await?;
            println!("user:     {} ({})", user.name, user.display_name);
            println!(
                "state:    {}",
                if user.is_disabled() {
                    "disabled"
                } else {
                    "active"
                }
            );
            println!("groups:   {}", memberships.groups.join(", "));
            println!("teams:    {}", memberships.teams.join(", "));
            print_keys(&store.list_api_keys(Some(&name)).await?);
        }
        UserCommand::Disable { name } => {
            store.disable_user(&name).await?;
            println!("disabled `{name}`: their next request is refused and open sessions close");
        }
        UserCommand::Enable { name } => {
            store.enable_user(&name).await?;
            println!("enabled `{name}`");
        }
        UserCommand::Offboard { name } => {
            store.disable_user(&name).await?;
            let revoked = store.revoke_user_api_keys(&name).await?;
            println!("offboarded `{name}`:");
            println!("  user disabled: every request is refused from now on");
            if revoked.is_empty() {
                println!("  no active API keys to revoke");
            }
            for key in &revoked {
                println!("  revoked API key {key}");
            }
            // Their own upstream credentials are held by the gateway: they go too.
            for secret in store.list_secrets().await? {
                if secret.user.as_deref() == Some(name.as_str()) {
                    store.remove_secret(secret.secret_ref()).await?;
                    println!(
                        "  removed their stored credential `{}`",
                        secret.secret_ref()
                    );
                }
            }
            println!(
                "  open sessions and streams are closed by the running gateway within a second"
            );
        }
    }
    Ok(())
}

pub(crate) async fn group(path: &Path, kind: GroupKind, command: GroupCommand) -> Result<()> {
    let config = crate::load(path)?;
    let store = open_store(path, &config).await?;
    let noun = kind.as_str();
    match command {
        GroupCommand::Add { name, description } => {
            store.add_group(kind, &name, &description).await?;
            println!("added {noun} `{name}`");
        }
        GroupCommand::List => {
            for group in store.list_groups(kind).await? {
                let members = store.members(kind, &group.name).await?;
                println!(
                    "{:<24} {}  [{}]",
                    group.name,
                    group.description,
                    members.join(", ")
                );
            }
        }
        GroupCommand::AddMember { group, user } => {
            store.add_member(kind, &group, &user).await?;
            println!("added `{user}` to {noun} `{group}`");
        }
        GroupCommand::RemoveMember { group, user } => {
            store.remove_member(kind, &group, &user).await?;
            println!("removed `{user}` from {noun} `{group}`");
        }
    }
    Ok(())
}

pub(crate) async fn key(path: &Path, command: KeyCommand) -> Result<()> {
    let config = crate::load(path)?;
    let store = open_store(path, &config).await?;
    match command {
        KeyCommand::Issue {
            user,
            name,
            expires,
        } => {
            let Some(auth) = &config.auth else {
                bail!(
                    "there is no [auth] table: add `[auth.api_keys]` with a pepper to use API keys"
                );
            };
            let settings = gatehouse_gateway::identity::settings_from_table(auth)?;
            let Some(api_keys) = settings.api_keys() else {
                bail!(
                    "API keys are not enabled: add `[auth.api_keys]` with `pepper_env` or `pepper_file`"
                );
            };
            let issued = gatehouse_identity::IssuedApiKey::generate(api_keys.pepper())?;
            let expires_at = match expires.as_deref() {
                Some(text) => Some(Timestamp::now().saturating_add(parse_lifetime(text)?)),
                None => None,
            };
            let id = issued.id.to_string();
            store
                .add_api_key(NewApiKey {
                    id: &id,
                    user: &user,
                    name: &name,
                    digest: issued.digest.as_bytes(),
                    expires_at,
                })
                .await?;
            use secrecy::ExposeSecret;
            println!("issued key {id} to `{user}` ({name}); it is shown only this once:");
            println!("{}", issued.key.expose_secret());
        }
        KeyCommand::List { user } => print_keys(&store.list_api_keys(user.as_deref()).await?),
        KeyCommand::Revoke { id } => {
            let key = store.revoke_api_key(&id).await?;
            println!(
                "revoked key {} of `{}`: refused from the next request on",
                key.id, key.user
            );
        }
    }
    Ok(())
}

fn print_keys(keys: &[gatehouse_store::ApiKey]) {
    let now = Timestamp::now();
    println!(
        "{:<22} {:<16} {:<12} {:<10} LAST USED",
        "KEY", "USER", "NAME", "STATE"
    );
    for key in keys {
        let state = format!("{:?}", key.status(now)).to_lowercase();
        let last_used = key.last_used_at.map_or("never".to_owned(), |at| {
            format!("{}", at.as_unix_millis() / 1000)
        });
        println!(
            "{:<22} {:<16} {:<12} {state:<10} {last_used}",
            key.id, key.user, key.name
        );
    }
}

/// `30d`, `12h`, `90m` or `45s`.
fn parse_lifetime(text: &str) -> Result<Duration> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let count: u64 = number
        .parse()
        .with_context(|| format!("`{text}` is not a lifetime such as 30d, 12h or 90m"))?;
    let seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => bail!("`{text}` is not a lifetime such as 30d, 12h or 90m"),
    };
    Ok(Duration::from_secs(count.saturating_mul(seconds)))
}
