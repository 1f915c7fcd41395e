//! The machine a run measured on, as `/proc` and the system describe it.

use serde::Serialize;

/// What a reader needs to judge the figures.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores this process may use.
    pub cores: usize,
    /// The CPU model name.
    pub cpu: String,
    /// Total memory, in GiB.
    pub memory_gib: f64,
    /// The kernel release.
    pub kernel: String,
    /// The 1-minute load average when the run started.
    pub load_average: String,
}

impl Machine {
    /// Reads the machine's description.
    pub fn describe() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, name)| name.trim().to_owned());
        let memory_kib: f64 = read("/proc/meminfo")
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        Self {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            cpu,
            memory_gib: memory_kib / 1024.0 / 1024.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_average: read("/proc/loadavg")
                .split_whitespace()
                .next()
                .unwrap_or("?")
                .to_owned(),
        }
    }

    /// One line for the report.
    pub fn line(&self) -> String {
        format!(
            "{} cores (nproc), {}, {:.1} GiB memory, Linux {}, load average {} at the start",
            self.cores, self.cpu, self.memory_gib, self.kernel, self.load_average
        )
    }
}
