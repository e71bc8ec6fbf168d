"""`python -m devstack.supervise --state FILE -- ARGV...`: run ARGV, and run it again when it exits.

`make up` starts every service through this, so a crashed service comes back by itself instead of
staying down until the next `make up`. The child stays in the supervisor's process group, so
`ManagedProcess.stop` (signal the supervisor, then SIGKILL the group) still ends both. A stop
signal (SIGTERM, SIGINT, SIGQUIT) is passed on to the child once, so its graceful shutdown (drain)
runs as before, and no restart follows. Restarts wait with a doubling back-off so a service that
cannot start does not spin. What happened is written to FILE (JSON) for `make status`.
"""

import argparse
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
_PR_SET_PDEATHSIG = 1


@dataclass
class Backoff:
    """Delay before the next restart: doubles after each quick exit, resets after a long run.

    A child that ran `reset_after` seconds counts as healthy again: its next crash is met with
    the initial delay, not with the longest one earned by a crash loop long ago.
    """

    initial: float = 0.5
    longest: float = 30.0
    reset_after: float = 60.0
    _next: float = field(init=False)

    def __post_init__(self) -> None:
        self._next = self.initial

    def after_exit(self, ran_seconds: float) -> float:
        """The delay before restarting a child that exited after running `ran_seconds`."""
        if ran_seconds >= self.reset_after:
            self._next = self.initial
        delay = self._next
        self._next = min(self._next * 2, self.longest)
        return delay


def describe_exit(returncode: int) -> str:
    """`exit 1` or `SIGKILL`: how `make status` names the last exit."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-returncode).name
        return f"signal {-returncode}"
    return f"exit {returncode}"


class Supervisor:
    """Runs one child until told to stop; restarts it with back-off whenever it exits."""

    def __init__(
        self, argv: Sequence[str], state_file: Path, name: str, backoff: Backoff | None = None
    ) -> None:
        self.argv = list(argv)
        self.state_file = state_file
        self.name = name
        self.backoff = backoff or Backoff()
        self.child: subprocess.Popen[bytes] | None = None
        self.stop_signal: signal.Signals | None = None
        self.restarts = 0
        self.last_exit: str | None = None
        self.last_exit_at: str | None = None

    def run(self) -> None:
        """Until a stop signal: run the child, wait for it, wait the back-off, run it again."""
        for sig in (*STOP_SIGNALS, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        try:
            while self.stop_signal is None:
                started = time.monotonic()
                returncode = self._run_child_once()
                if self.stop_signal is not None:
                    self._log(
                        f"{self.stop_signal.name}: the child exited "
                        f"({describe_exit(returncode)}); stopped, no restart"
                    )
                    break
                ran = time.monotonic() - started
                delay = self.backoff.after_exit(ran)
                self.last_exit, self.last_exit_at = describe_exit(returncode), _now()
                self._write_state("waiting", restart_in=delay)
                self._log(
                    f"exited ({self.last_exit}) after {ran:.1f} s; "
                    f"restart {self.restarts + 1} in {delay:g} s"
                )
                if not self._sleep_unless_stopped(delay):
                    self._log(
                        f"{self.stop_signal.name if self.stop_signal else 'stop'} during "
                        "the back-off: stopped, no restart"
                    )
                    break
                self.restarts += 1
        finally:
            self.state_file.unlink(missing_ok=True)

    def _run_child_once(self) -> int:
        """Start the child and wait for it; its return code (127: it could not be started)."""
        try:
            # Same process group as the supervisor (ManagedProcess.stop's SIGKILL reaches both);
            # the child gets SIGTERM if the supervisor itself dies instead of running on unowned.
            self.child = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, preexec_fn=_terminate_with(os.getpid())
            )
        except OSError as error:
            self._log(f"cannot start {self.argv[0]}: {error}")
            return 127
        try:
            if self.stop_signal is not None:  # asked to stop while the child was starting
                self.child.send_signal(self.stop_signal)
            self._write_state("running", started_at=_now())
            if self.restarts:
                self._log(f"restart {self.restarts}: pid {self.child.pid}")
            return self.child.wait()
        finally:
            self.child = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """Pass the signal on; a stop signal also ends supervision (no I/O here: reentrancy)."""
        sig = signal.Signals(signum)
        if sig in STOP_SIGNALS and self.stop_signal is None:
            self.stop_signal = sig
        child = self.child
        if child is not None and child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, sig)

    def _sleep_unless_stopped(self, seconds: float) -> bool:
        """False when a stop signal arrived during the back-off."""
        deadline = time.monotonic() + seconds
        while self.stop_signal is None and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return self.stop_signal is None

    def _write_state(self, state: str, **extra: Any) -> None:
        record = {
            "state": state,
            "supervisor_pid": os.getpid(),
            "child_pid": self.child.pid if self.child else None,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "last_exit_at": self.last_exit_at,
            **extra,
        }
        partial = self.state_file.with_name(self.state_file.name + ".part")
        partial.write_text(json.dumps(record) + "\n")
        partial.replace(self.state_file)  # readers never see half a file

    def _log(self, message: str) -> None:
        print(f"--- supervise {self.name}: {message}", flush=True)


def _terminate_with(parent: int) -> Callable[[], None]:
    """A preexec_fn: the child receives SIGTERM (a graceful stop) when `parent` dies."""
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork, not in the child

    def in_child() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    return in_child


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.supervise")
    parser.add_argument("--state", type=Path, required=True, help="JSON file for make status")
    parser.add_argument("--name", default="", help="how the log lines name the child")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- ARGV of the child")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to supervise (give it after --)")
    Supervisor(command, args.state, args.name or Path(command[0]).name).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
