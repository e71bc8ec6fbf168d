"""Start, find and stop long-running processes by pid file.

Every server runs in the foreground under its own session, so its pid is the one we recorded and
`stop` ends exactly what `start` began (and its children), nothing else. A supervised process
(`supervised=True`) runs under `devstack.supervise`, which restarts it when it exits: the pid
file then names the supervisor, and the supervisor's state file says how its child is doing.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from devstack.paths import ensure_dir


@dataclass
class ManagedProcess:
    name: str
    argv: Sequence[str]
    run_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    user: str | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 20.0
    supervised: bool = False
    START_MARKER: ClassVar[str] = "--- starting"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    @property
    def statefile(self) -> Path:
        """Written by the supervisor of a supervised process (restarts, last exit, child pid)."""
        return self.run_dir / f"{self.name}.supervise.json"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None

    def supervision(self) -> "Supervision | None":
        """How the supervised child is doing, while its supervisor runs; None otherwise."""
        if self.pid() is None:
            return None
        try:
            record = json.loads(self.statefile.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return Supervision(
            state=str(record["state"]),
            child_pid=record.get("child_pid"),
            restarts=int(record["restarts"]),
            last_exit=record.get("last_exit"),
            last_exit_at=record.get("last_exit_at"),
        )

    def child_pid(self) -> int | None:
        """The pid doing the work: the supervised child (None between restarts), else pid()."""
        if not self.supervised:
            return self.pid()
        supervision = self.supervision()
        child = supervision.child_pid if supervision else None
        return child if child is not None and _alive(child) else None

    def start(self) -> int:
        """Start the process unless it already runs; returns its pid."""
        existing = self.pid()
        if existing is not None:
            return existing
        ensure_dir(self.run_dir)
        env = {**os.environ, **self.env}
        argv = list(self.argv)
        if self.supervised:
            self.statefile.unlink(missing_ok=True)
            argv = [
                sys.executable,
                "-m",
                "devstack.supervise",
                "--state",
                str(self.statefile),
                "--name",
                self.name,
                "--",
                *argv,
            ]
        with self.logfile.open("ab") as log:
            log.write(f"\n{self.START_MARKER} {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                user=self.user,
                group=self.user,
                extra_groups=[] if self.user else None,
                start_new_session=True,
            )
        self.pidfile.write_text(f"{proc.pid}\n")
        return proc.pid

    def stop(self) -> bool:
        """Stop the process group gracefully, then forcefully; True if something was running."""
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            self.statefile.unlink(missing_ok=True)
            return False
        if self.supervised or self.statefile.exists():
            # Only the supervisor: it passes the signal on to its child once (a second SIGINT
            # would cut a graceful shutdown short) and restarts nothing afterwards.
            _signal_one(pid, self.stop_signal)
        else:
            _signal_group(pid, self.stop_signal)
        deadline = time.monotonic() + self.stop_timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)
        self.statefile.unlink(missing_ok=True)
        return True

    def log_since_start(self) -> str:
        """What the process logged since its latest start (the log file keeps every run)."""
        try:
            text = self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text[text.rfind(self.START_MARKER) :]

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


@dataclass(frozen=True)
class Supervision:
    """A supervisor's record of its child (see devstack.supervise)."""

    state: str  # running, or waiting (to restart it after it exited)
    child_pid: int | None
    restarts: int
    last_exit: str | None  # "exit 1", "SIGKILL"
    last_exit_at: str | None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (all its threads); 0 for none or one that is gone."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); reap it so it counts as gone.
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _signal_one(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a short command to completion, capturing its output for error messages."""
    result = subprocess.run(
        list(argv),
        env={**os.environ, **(env or {})},
        cwd=cwd,
        user=user,
        group=user,
        extra_groups=[] if user else None,
        text=True,
        capture_output=True,
        check=False,
    )
    if check and result.returncode != 0:
        output = f"{result.stdout}{result.stderr}"
        raise RuntimeError(f"command failed ({result.returncode}): {' '.join(argv)}\n{output}")
    return result
