//! Processes the runner starts: spawned in their own process group, their output kept in a log
//! file, their address read from what they print or found by polling a port, their memory read
//! from `/proc`, and ended by their id, never by name.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// How long a process may take to leave after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(50);

/// What to start.
pub struct Launch<'a> {
    /// A short name, used for the log file and in messages.
    pub name: &'a str,
    /// The program.
    pub program: &'a Path,
    /// Its arguments.
    pub args: Vec<String>,
    /// Variables added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// The working directory, if not the runner's.
    pub cwd: Option<&'a Path>,
}

/// A running process started by the runner; ended (with its process group) when dropped.
pub struct Spawned {
    name: String,
    child: Child,
    log: PathBuf,
    lines: Option<mpsc::Receiver<String>>,
    stopped: bool,
}

impl Spawned {
    /// Starts `launch` with stdout and stderr going to `<logs>/<name>.log`; stdout lines are
    /// also offered to [`Spawned::wait_for_line`].
    pub fn start(launch: Launch<'_>, logs: &Path) -> Result<Self> {
        let log = logs.join(format!("{}.log", launch.name));
        let stderr =
            File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = Command::new(launch.program);
        command
            .args(&launch.args)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.try_clone()?)
            // Its own group, so stopping it also reaches helpers it starts (a shell, workers).
            .process_group(0);
        if let Some(cwd) = launch.cwd {
            command.current_dir(cwd);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", launch.program.display()))?;
        let (sender, receiver) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let mut copy = stderr;
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    // The log is best effort; the line still reaches a waiting reader.
                    let _ = writeln!(copy, "{line}");
                    let _ = sender.send(line);
                }
            });
        }
        Ok(Self {
            name: launch.name.to_owned(),
            child,
            log,
            lines: Some(receiver),
            stopped: false,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout line containing `marker` and returns the `http://...` URL in it.
    pub fn wait_for_url(&mut self, marker: &str, timeout: Duration) -> Result<String> {
        let line = self.wait_for_line(|line| line.contains(marker), timeout)?;
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .with_context(|| format!("no URL in `{line}`"))?;
        Ok(url.to_owned())
    }

    /// Waits for the first stdout line that `wanted` accepts.
    pub fn wait_for_line(
        &mut self,
        wanted: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "{} printed nothing expected within {timeout:?}{}",
                    self.name,
                    self.log_tail()
                );
            }
            let received = match &self.lines {
                Some(lines) => lines.recv_timeout(left.min(POLL)),
                None => bail!("the output of {} is no longer read", self.name),
            };
            match received {
                Ok(line) if wanted(&line) => return Ok(line),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => self.check_alive()?,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("{} ended its output early{}", self.name, self.log_tail());
                }
            }
        }
    }

    /// Waits for the process to exit by itself and returns whether it succeeded.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                self.stopped = true;
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!("{} did not exit within {timeout:?}", self.name)
    }

    /// Polls until `address` accepts a TCP connection.
    pub fn wait_for_port(&mut self, address: SocketAddr, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&address, POLL).is_ok() {
                return Ok(());
            }
            self.check_alive()?;
            std::thread::sleep(POLL);
        }
        bail!(
            "{} did not listen on {address} within {timeout:?}{}",
            self.name,
            self.log_tail()
        )
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}){}", self.name, self.log_tail());
        }
        Ok(())
    }

    /// Ends the process group with SIGTERM, then SIGKILL after a grace period, and reaps the
    /// process. Descendants that left the group and outlive their parent are ended by id and
    /// named in the returned list.
    pub fn stop(mut self) -> Vec<String> {
        self.stop_now()
    }

    fn stop_now(&mut self) -> Vec<String> {
        if self.stopped {
            return Vec::new();
        }
        self.stopped = true;
        let descendants = process_tree(self.pid()).descendants;
        let Ok(raw) = i32::try_from(self.pid()) else {
            return Vec::new();
        };
        let group = Pid::from_raw(raw);
        // The group may already be gone; that is the goal.
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(POLL);
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
        // Children in a group of their own are their parent's to end; give them a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut survivors: Vec<u32> = descendants.clone();
        while !survivors.is_empty() && Instant::now() < deadline {
            survivors.retain(|&pid| is_alive(pid));
            std::thread::sleep(POLL);
        }
        survivors.retain(|&pid| is_alive(pid));
        let mut leftovers = Vec::new();
        for pid in survivors {
            leftovers.push(format!("{} left pid {pid} running", self.name));
            if let Ok(raw) = i32::try_from(pid) {
                let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
            }
        }
        leftovers
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(8)..].join("\n  ");
        format!(" (log {}):\n  {tail}", self.log.display())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// A port on 127.0.0.1 that was free a moment ago, for programs that cannot be told port 0.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Resident memory of a process and of everything it started.
#[derive(Debug, Clone, Default)]
pub struct TreeMemory {
    /// The process's own resident memory, in KiB.
    pub own_kib: u64,
    /// Resident memory of all its descendants, in KiB.
    pub descendants_kib: u64,
    /// The descendants' process ids.
    pub descendants: Vec<u32>,
}

impl TreeMemory {
    /// Own and descendants together, in KiB.
    pub fn total_kib(&self) -> u64 {
        self.own_kib + self.descendants_kib
    }

    /// Adds another tree (for targets made of several processes).
    pub fn add(&mut self, other: &TreeMemory) {
        self.own_kib += other.own_kib;
        self.descendants_kib += other.descendants_kib;
        self.descendants.extend_from_slice(&other.descendants);
    }
}

/// Reads the memory of `pid` and its descendants from `/proc`.
pub fn process_tree(pid: u32) -> TreeMemory {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(parent) = parent_of(child) {
                children.entry(parent).or_default().push(child);
            }
        }
    }
    let mut tree = TreeMemory {
        own_kib: rss_kib(pid),
        ..TreeMemory::default()
    };
    let mut pending = children.get(&pid).cloned().unwrap_or_default();
    while let Some(next) = pending.pop() {
        tree.descendants_kib += rss_kib(next);
        tree.descendants.push(next);
        if let Some(more) = children.get(&next) {
            pending.extend_from_slice(more);
        }
    }
    tree
}

/// Linux reports CPU time in clock ticks of 1/100 s (USER_HZ) on every common architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time used so far by `pid` and its descendants, in seconds: user and system time of
/// every live process plus what each has collected from children it already reaped.
pub fn tree_cpu_seconds(pid: u32) -> f64 {
    let tree = process_tree(pid);
    let ticks: u64 = std::iter::once(pid)
        .chain(tree.descendants.iter().copied())
        .map(cpu_ticks)
        .sum();
    ticks as f64 / TICKS_PER_SECOND
}

fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    // After the command name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    stat[close + 1..]
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum()
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces; fields follow the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn rss_kib(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn is_alive(pid: u32) -> bool {
    // A zombie has exited; only its parent's reaping is missing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_of_this_process_has_memory() {
        let tree = process_tree(std::process::id());
        assert!(tree.own_kib > 0);
        assert!(is_alive(std::process::id()));
        assert_eq!(
            parent_of(std::process::id()),
            Some(std::os::unix::process::parent_id())
        );
    }
}
