//! The `gatehouse` command: starts the gateway, writes and edits its configuration, and runs
//! the bundled demo server. The only place where errors become exit codes.

mod access;
mod audit;
mod people;
mod secrets;
mod servers;
mod tools;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "A governance gateway for the Model Context Protocol"
)]
struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        default_value = "gatehouse.toml",
        env = "GATEHOUSE_CONFIG"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a starter configuration (wired to the bundled demo server) to the config path.
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Run the gateway.
    Serve {
        /// Listen here instead of the configured address (port 0 picks a free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Check the configuration and name every problem with its location.
    Validate,
    /// List, add and remove upstream servers in the configuration file.
    #[command(subcommand)]
    Server(servers::ServerCommand),
    /// Add, list, show, disable and offboard people.
    #[command(subcommand)]
    User(people::UserCommand),
    /// Manage groups (what policies grant to).
    #[command(subcommand)]
    Group(people::GroupCommand),
    /// Manage teams (what owns secrets).
    #[command(subcommand)]
    Team(people::GroupCommand),
    /// Issue, list and revoke gateway API keys.
    #[command(subcommand)]
    Key(people::KeyCommand),
    /// Store, rotate, list and remove the upstream credentials only the gateway holds.
    #[command(subcommand)]
    Secret(secrets::SecretCommand),
    /// List every known tool (from the catalogs the gateway has learned), with its server and
    /// class.
    Tools,
    /// Ask the policy: can this person call this tool, and why.
    #[command(subcommand)]
    Policy(access::PolicyCommand),
    /// Read and verify the audit receipts.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// What a person can reach today, or (with --tool) who can call a tool.
    Access {
        /// The person.
        user: Option<String>,
        /// A tool name: list the people who may call it.
        #[arg(long)]
        tool: Option<String>,
    },
    /// Run the bundled demo MCP server (stdio by default).
    DemoServer {
        /// Serve Streamable HTTP on this address instead of stdio.
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init { force } => init(&cli.config, force),
        Command::Serve { listen } => runtime()?.block_on(serve(&cli.config, listen)),
        Command::Validate => {
            let config = load(&cli.config)?;
            if let Some(auth) = &config.auth {
                gatehouse_gateway::identity::settings_from_table(auth)
                    .map_err(|error| anyhow::anyhow!("{}: {error}", cli.config.display()))?;
            }
            gatehouse_gateway::policy::PolicyGate::from_config(
                &config,
                &config_folder(&cli.config),
            )
            .map_err(|problems| anyhow::anyhow!("{}: policy: {problems}", cli.config.display()))?;
            if config
                .servers
                .iter()
                .any(|server| !server.secrets().is_empty())
            {
                runtime()?.block_on(check_secrets(&cli.config, &config))?;
            }
            println!(
                "{}: valid ({} server{})",
                cli.config.display(),
                config.servers.len(),
                if config.servers.len() == 1 { "" } else { "s" }
            );
            Ok(())
        }
        Command::Server(command) => servers::run(&cli.config, command),
        Command::User(command) => runtime()?.block_on(people::user(&cli.config, command)),
        Command::Group(command) => runtime()?.block_on(people::group(
            &cli.config,
            gatehouse_store::GroupKind::Group,
            command,
        )),
        Command::Team(command) => runtime()?.block_on(people::group(
            &cli.config,
            gatehouse_store::GroupKind::Team,
            command,
        )),
        Command::Key(command) => runtime()?.block_on(people::key(&cli.config, command)),
        Command::Secret(command) => runtime()?.block_on(secrets::run(&cli.config, command)),
        Command::Tools => runtime()?.block_on(tools::list(&cli.config)),
        Command::Audit(command) => runtime()?.block_on(audit::run(&cli.config, command)),
        Command::Policy(command) => runtime()?.block_on(access::policy(&cli.config, command)),
        Command::Access { user, tool } => {
            runtime()?.block_on(access::access(&cli.config, user, tool))
        }
        Command::DemoServer { http } => runtime()?.block_on(async move {
            match http {
                Some(address) => {
                    let listener = tokio::net::TcpListener::bind(address).await?;
                    println!("listening on http://{}/mcp", listener.local_addr()?);
                    std::io::stdout().flush()?;
                    gatehouse_demo::serve_demo_http(listener).await
                }
                None => gatehouse_demo::serve_demo_stdio().await,
            }
        }),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

/// Reads and validates the configuration file.
pub(crate) fn load(path: &Path) -> Result<gatehouse_config::Config> {
    let text = read_config_text(path)?;
    gatehouse_config::parse(&text).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}

pub(crate) fn read_config_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}; create one with `gatehouse init` or pass --config FILE",
            path.display()
        )
    })
}

/// The store URL: the configured one, or `gatehouse.db` beside the configuration file.
pub(crate) fn store_url(path: &Path, config: &gatehouse_config::Config) -> String {
    match &config.store_url {
        Some(url) => url.clone(),
        None => {
            let folder = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            format!(
                "sqlite://{}?mode=rwc",
                folder.join("gatehouse.db").display()
            )
        }
    }
}

fn init(path: &Path, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        );
    }
    let executable = std::env::current_exe().context("cannot find the gatehouse executable")?;
    let text = gatehouse_config::starter_config(&executable.to_string_lossy());
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    let key_file = config_folder(path).join(gatehouse_vault::KEY_FILE);
    if !key_file.exists() && std::env::var_os(gatehouse_vault::KEY_VARIABLE).is_none() {
        gatehouse_vault::VaultKey::create_file(&key_file)?;
        println!(
            "wrote {} (the key sealing upstream secrets; keep it apart from copies of the store)",
            key_file.display()
        );
    }
    println!("next: `gatehouse serve` and point your MCP client at http://127.0.0.1:8080/mcp");
    Ok(())
}

async fn serve(path: &Path, listen: Option<std::net::SocketAddr>) -> Result<()> {
    init_logging();
    let config = load(path)?;
    let address = listen.unwrap_or(config.gateway.listen);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}; is another process using it?"))?;
    let local = listener.local_addr()?;
    let store_url = store_url(path, &config);
    let store = gatehouse_store::Store::open(&store_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the store at {}",
                gatehouse_store::redact_url(&store_url)
            )
        })?;
    let identity =
        gatehouse_gateway::identity::Identity::from_config(config.auth.as_ref(), &store)?;
    if config.auth.is_none() {
        tracing::warn!(
            "no [auth] table: every request is served anonymously (allowed on loopback only)"
        );
    }
    let base = config_folder(path);
    let policy = gatehouse_gateway::policy::PolicyGate::from_config(&config, &base)
        .map_err(|problems| anyhow::anyhow!("{}: policy: {problems}", path.display()))?;
    if matches!(policy, gatehouse_gateway::policy::PolicyGate::Open) {
        tracing::warn!("no [auth] and no grants: every caller may see and call every tool");
    }
    let (audit, audit_task) = gatehouse_gateway::audit::Audit::open(&store, &base, &config.audit)
        .await
        .map_err(|problem| anyhow::anyhow!("audit: {problem}"))?;
    if audit_task.is_none() {
        tracing::warn!("[audit] enabled = false: no receipts are written");
    }
    // Each person's OAuth grant is sealed in the vault, so such servers need a key.
    let grants_per_person = config.servers.iter().any(|server| {
        server
            .oauth
            .as_ref()
            .is_some_and(gatehouse_config::OAuthSettings::is_per_user)
    });
    let vault = secrets::open_vault(&base, store.clone(), grants_per_person).await?;
    let credentials = gatehouse_gateway::credentials::Credentials::new(vault);
    credentials
        .check_config(&config)
        .await
        .map_err(|problems| anyhow::anyhow!("{}: {problems}", path.display()))?;
    credentials
        .configure_oauth(&config, &format!("http://{local}"))
        .await
        .map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))?;
    let gateway =
        gatehouse_gateway::Gateway::new(&config, store, identity, policy, audit, credentials);
    let reloader = tokio::spawn(reload_policy_on_hangup(
        path.to_owned(),
        std::sync::Arc::clone(&gateway),
    ));
    println!("gatehouse listening on http://{local}/mcp");
    std::io::stdout().flush()?;
    tracing::info!(address = %local, servers = config.servers.len(), "gateway started");
    let served = gatehouse_gateway::serve(gateway, listener, shutdown_signal()).await;
    reloader.abort();
    let _ = reloader.await;
    served?;
    // The writer appends what is queued and signs a final checkpoint once its handles are
    // gone; a task still holding one must not keep the process from ending.
    if let Some(audit_task) = audit_task
        && tokio::time::timeout(std::time::Duration::from_secs(5), audit_task.join())
            .await
            .is_err()
    {
        tracing::warn!("the audit writer did not finish within 5 s");
    }
    tracing::info!("gateway stopped");
    Ok(())
}

/// Checks that every service credential the configuration refers to is stored and opens.
async fn check_secrets(path: &Path, config: &gatehouse_config::Config) -> Result<()> {
    let store = people::open_store(path, config).await?;
    let vault = secrets::open_vault(&config_folder(path), store, false).await?;
    gatehouse_gateway::credentials::Credentials::new(vault)
        .check_config(config)
        .await
        .map_err(|problems| anyhow::anyhow!("{}: {problems}", path.display()))
}

/// On SIGHUP, reads the configuration again and swaps in its policy if it validates; an invalid
/// one is refused and the policy in force stays.
async fn reload_policy_on_hangup(
    path: PathBuf,
    gateway: std::sync::Arc<gatehouse_gateway::Gateway>,
) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        return;
    };
    while hangups.recv().await.is_some() {
        let compiled = load(&path).and_then(|config| {
            gatehouse_gateway::policy::compile(&config, &config_folder(&path))
                .map_err(|problems| anyhow::anyhow!("{problems}"))
        });
        match compiled {
            Ok(policy) => {
                tracing::info!(hash = policy.hash(), "policy reloaded");
                gateway.replace_policy(policy);
            }
            Err(error) => {
                tracing::error!(%error, "policy reload refused; the previous policy stays in force")
            }
        }
    }
}

/// The folder holding the configuration file, against which relative paths are resolved.
pub(crate) fn config_folder(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
