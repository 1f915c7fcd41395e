"""Start and stop the processes the e2e tests run: the gateway and peer servers.

Every process gets its own session (process group), writes stdout and stderr to files in the
test's temporary folder, and is stopped by its pid: SIGTERM, a bounded wait, then SIGKILL to its
process group so that children it spawned cannot outlive the test. Every wait here is bounded.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

POLL_INTERVAL_SECONDS = 0.05


class ProcessFailed(RuntimeError):
    """A managed process exited early or never printed what it was expected to print."""


class ManagedProcess:
    """One child process with its output in `<log_dir>/<name>.stdout` and `.stderr`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        with open(self.stdout_path, "wb") as stdout, open(self.stderr_path, "wb") as stderr:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_for_line(self, pattern: str, timeout_seconds: float, *, stream: str = "stdout") -> re.Match[str]:
        """Poll `stream` until a line matches `pattern`; fail if the process exits or time runs out."""
        path = {"stdout": self.stdout_path, "stderr": self.stderr_path}[stream]
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout_seconds
        while True:
            match = regex.search(path.read_text(errors="replace"))
            if match:
                return match
            if self.popen.poll() is not None:
                raise ProcessFailed(
                    f"{self.name} exited with code {self.popen.returncode} before printing "
                    f"a line matching {pattern!r} on {stream}\n{self.describe_output()}"
                )
            if time.monotonic() > deadline:
                raise ProcessFailed(
                    f"{self.name} printed no line matching {pattern!r} on {stream} within {timeout_seconds}s"
                    f"\n{self.describe_output()}"
                )
            time.sleep(POLL_INTERVAL_SECONDS)

    def stop(self, grace_seconds: float = 5.0) -> int | None:
        """SIGTERM, wait up to `grace_seconds`, then SIGKILL the process group. Returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                pass
        # The group id is the pid (start_new_session), so this also ends children the process
        # left behind, whether it exited by itself or is still running.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            return None
        return self.popen.returncode

    def describe_output(self, max_chars: int = 6000) -> str:
        """The tail of stdout and stderr, for failure messages."""
        parts = []
        for path in (self.stdout_path, self.stderr_path):
            text = path.read_text(errors="replace") if path.exists() else ""
            if len(text) > max_chars:
                text = "...\n" + text[-max_chars:]
            parts.append(f"--- {path.name} ---\n{text}")
        return "\n".join(parts)


def free_loopback_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago, for peers that cannot bind port 0 themselves."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_tcp(port: int, process: ManagedProcess, timeout_seconds: float) -> None:
    """Poll until 127.0.0.1:port accepts a connection."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if process.popen.poll() is not None:
            raise ProcessFailed(
                f"{process.name} exited with code {process.popen.returncode} before accepting "
                f"connections on 127.0.0.1:{port}\n{process.describe_output()}"
            )
        if time.monotonic() > deadline:
            raise ProcessFailed(
                f"{process.name} did not accept connections on 127.0.0.1:{port} within "
                f"{timeout_seconds}s\n{process.describe_output()}"
            )
        time.sleep(POLL_INTERVAL_SECONDS)
