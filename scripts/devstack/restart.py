"""Restart one service after an edit, leaving everything else running.

Services run under `devstack.supervise`, which starts its child again whenever it exits. So a
restart ends the child gracefully (SIGTERM: in-flight requests drain) and lets the supervisor
start the new code, then waits for the new child's `/health`. The supervisor, the gateway, the
other services and the backing servers are not touched; `make status` counts the restart.

The supervisor treats the exit like any other: restarts less than a minute apart wait its
back-off (0.5 s, doubling), which the wait here allows for.
"""

import os
import signal
import time
from contextlib import suppress
from dataclasses import dataclass

from devstack.platform import SERVICE_START_TIMEOUT
from devstack.process import ManagedProcess
from devstack.supervise import Backoff
from devstack.waiting import http_ok, wait_until

TIMEOUT = SERVICE_START_TIMEOUT + Backoff().longest


class NotRunningError(RuntimeError):
    """The process is not running under its supervisor: there is nothing to restart."""


@dataclass(frozen=True)
class Restarted:
    name: str
    old_pid: int | None  # None: the supervisor was between two starts already
    new_pid: int
    health_url: str
    seconds: float

    def __str__(self) -> str:
        old = f"pid {self.old_pid}" if self.old_pid else "no child"
        return (
            f"{self.name} restarted ({old} -> pid {self.new_pid}); "
            f"{self.health_url} answered after {self.seconds:.1f} s"
        )


def restart(proc: ManagedProcess, health_url: str, *, timeout: float = TIMEOUT) -> Restarted:
    """End `proc`'s supervised child gracefully; return once a new child answers `health_url`."""
    supervision = proc.supervision()
    if supervision is None:
        raise NotRunningError(f"{proc.name} is not running (start it with make up)")
    old = supervision.child_pid
    started = time.monotonic()
    if old is not None:
        with suppress(ProcessLookupError):  # it exited on its own meanwhile: same outcome
            os.kill(old, signal.SIGTERM)

    new: dict[str, int] = {}

    def new_child_answers() -> bool:
        current = proc.supervision()
        if current is None or current.state != "running" or current.child_pid in (None, old):
            return False
        new["pid"] = current.child_pid
        return http_ok(health_url)

    wait_until(
        new_child_answers,
        timeout=timeout,
        what=f"{proc.name} after its restart",
        on_timeout=lambda: f"{proc.logfile}:\n{proc.tail()}",
    )
    return Restarted(proc.name, old, new["pid"], health_url, time.monotonic() - started)
