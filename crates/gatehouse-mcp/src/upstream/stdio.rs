//! A spawned upstream server spoken to over stdin/stdout, one JSON-RPC message per line.
//!
//! The child gets a clean environment (only `PATH`, `HOME` and what the configuration gives
//! it), runs in its own process group so it and its helpers can be stopped together, has its
//! stderr copied to the gateway log at a bounded rate, and is reaped by a task that fails every
//! call in flight the moment it exits.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::codec::{FramedRead, LinesCodec};

use super::mux::Mux;
use crate::credentials::Scrubber;

/// Longest line accepted from an upstream: one message.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Stderr lines copied to the log per second; the rest are counted and summarised.
const STDERR_LINES_PER_SECOND: u32 = 20;
/// Variables passed through from the gateway's environment.
const INHERITED_VARIABLES: &[&str] = &["PATH", "HOME"];

/// A running child process.
pub(crate) struct StdioWire {
    pid: Option<u32>,
    exited: watch::Receiver<bool>,
    close_stdin: std::sync::Mutex<Option<oneshot::Sender<()>>>,
}

/// What to run.
pub(crate) struct StdioCommand<'a> {
    pub command: &'a str,
    pub args: Vec<SecretString>,
    pub env: BTreeMap<String, SecretString>,
    pub cwd: Option<&'a str>,
}

impl StdioWire {
    /// Spawns the child and starts its reader, writer, stderr and reaper tasks.
    pub(crate) fn spawn(
        server: &str,
        spec: &StdioCommand<'_>,
        mux: &Arc<Mux>,
        outbound: mpsc::UnboundedReceiver<Value>,
        scrubber: &Arc<Scrubber>,
    ) -> std::io::Result<Self> {
        let mut command = Command::new(spec.command);
        command
            .args(spec.args.iter().map(ExposeSecret::expose_secret))
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        for name in INHERITED_VARIABLES {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.envs(
            spec.env
                .iter()
                .map(|(name, value)| (name, value.expose_secret())),
        );
        if let Some(cwd) = spec.cwd {
            command.current_dir(cwd);
        }
        let mut child = command.spawn()?;
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (exited_sender, exited) = watch::channel(false);

        let (close_sender, close_receiver) = oneshot::channel();
        if let Some(stdin) = stdin {
            tokio::spawn(write_messages(stdin, outbound, close_receiver));
        }
        if let Some(stdout) = stdout {
            let mux = Arc::clone(mux);
            let server = server.to_owned();
            tokio::spawn(async move {
                let mut lines =
                    FramedRead::new(stdout, LinesCodec::new_with_max_length(MAX_LINE_BYTES));
                while let Some(line) = lines.next().await {
                    match line {
                        Ok(line) if line.trim().is_empty() => {}
                        Ok(line) => match serde_json::from_str::<Value>(&line) {
                            Ok(message) => mux.dispatch(message, None),
                            Err(error) => {
                                tracing::debug!(%server, %error, "non-JSON line on stdout ignored")
                            }
                        },
                        Err(error) => {
                            tracing::warn!(%server, %error, "unreadable output; stopping the server");
                            break;
                        }
                    }
                }
            });
        }
        if let Some(stderr) = stderr {
            tokio::spawn(copy_stderr(server.to_owned(), stderr, Arc::clone(scrubber)));
        }
        tokio::spawn(reap(
            server.to_owned(),
            child,
            Arc::clone(mux),
            exited_sender,
        ));
        Ok(Self {
            pid,
            exited,
            close_stdin: std::sync::Mutex::new(Some(close_sender)),
        })
    }

    /// Whether the child has exited.
    pub(crate) fn has_exited(&self) -> bool {
        *self.exited.borrow()
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Stops the child: close stdin, wait, SIGTERM the group, wait, SIGKILL the group.
    pub(crate) async fn shutdown(&self, grace: Duration) {
        // Closing stdin is the polite way to ask a stdio server to stop.
        let close = self
            .close_stdin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(close) = close {
            let _ = close.send(());
        }
        let mut exited = self.exited.clone();
        if wait_exit(&mut exited, grace).await {
            return;
        }
        if let Some(pid) = self.pid {
            signal_group(pid, nix::sys::signal::Signal::SIGTERM);
            if wait_exit(&mut exited, grace).await {
                return;
            }
            signal_group(pid, nix::sys::signal::Signal::SIGKILL);
            wait_exit(&mut exited, grace).await;
        }
    }
}

async fn wait_exit(exited: &mut watch::Receiver<bool>, grace: Duration) -> bool {
    tokio::time::timeout(grace, exited.wait_for(|done| *done))
        .await
        .is_ok()
}

fn signal_group(pid: u32, signal: nix::sys::signal::Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal);
    }
}

async fn write_messages(
    mut stdin: ChildStdin,
    mut outbound: mpsc::UnboundedReceiver<Value>,
    mut close: oneshot::Receiver<()>,
) {
    loop {
        let message = tokio::select! {
            message = outbound.recv() => message,
            _ = &mut close => None,
        };
        let Some(message) = message else { break };
        let mut line = match serde_json::to_vec(&message) {
            Ok(line) => line,
            Err(_) => continue,
        };
        line.push(b'\n');
        if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
            break;
        }
    }
}

async fn copy_stderr(server: String, stderr: tokio::process::ChildStderr, scrubber: Arc<Scrubber>) {
    let mut lines = FramedRead::new(stderr, LinesCodec::new_with_max_length(64 * 1024));
    let mut window = Instant::now();
    let mut in_window = 0u32;
    let mut suppressed = 0u64;
    while let Some(line) = lines.next().await {
        let Ok(line) = line else { continue };
        if window.elapsed() >= Duration::from_secs(1) {
            if suppressed > 0 {
                tracing::info!(%server, suppressed, "stderr lines suppressed by the rate limit");
            }
            window = Instant::now();
            in_window = 0;
            suppressed = 0;
        }
        in_window += 1;
        if in_window <= STDERR_LINES_PER_SECOND {
            tracing::info!(%server, stderr = %scrubber.scrub_text(&line));
        } else {
            suppressed += 1;
        }
    }
}

async fn reap(server: String, mut child: Child, mux: Arc<Mux>, exited: watch::Sender<bool>) {
    let status = child.wait().await;
    let reason = match status {
        Ok(status) => format!("server `{server}` exited ({status})"),
        Err(error) => format!("server `{server}` could not be watched: {error}"),
    };
    tracing::info!(%server, %reason, "upstream process ended");
    let _ = exited.send(true);
    mux.fail_all(&reason);
}
