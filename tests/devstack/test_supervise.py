"""Supervised processes (devstack.supervise): a crashed service comes back by itself, a stop ends
it for good, and `make status` says how often it was restarted."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from devstack.platform import Platform, wait_healthy
from devstack.process import ManagedProcess
from devstack.supervise import Backoff, describe_exit
from devstack.waiting import free_port, http_ok, port_open, wait_until
from socialhub.contracts.topology import service

WAIT = 30.0


def eventually(check: Callable[[], bool], what: str) -> None:
    wait_until(check, timeout=WAIT, what=what)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def group_members(pgid: int) -> list[int]:
    """Every live process in the process group `pgid` (a supervisor's is its own pid)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def restarted(proc: ManagedProcess, old_child: int) -> Callable[[], bool]:
    def check() -> bool:
        child = proc.child_pid()
        return child is not None and child != old_child

    return check


def test_backoff_doubles_to_its_cap_and_starts_over_after_a_healthy_minute() -> None:
    backoff = Backoff(initial=0.5, longest=30.0, reset_after=60.0)
    quick_exits = [backoff.after_exit(ran_seconds=1.0) for _ in range(8)]
    assert quick_exits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff.after_exit(ran_seconds=59.0) == 30.0  # not yet a healthy minute
    assert backoff.after_exit(ran_seconds=60.0) == 0.5
    assert backoff.after_exit(ran_seconds=1.0) == 1.0


def test_exits_are_named_as_make_status_shows_them() -> None:
    assert describe_exit(3) == "exit 3"
    assert describe_exit(-signal.SIGKILL) == "SIGKILL"


def test_a_killed_child_comes_back_and_answers(web: tuple[ManagedProcess, str]) -> None:
    proc, url = web
    supervisor, child = proc.pid(), proc.child_pid()
    assert supervisor is not None
    assert child is not None
    assert child != supervisor

    os.kill(child, signal.SIGKILL)
    eventually(restarted(proc, child), "a new child")
    eventually(lambda: http_ok(url), "the restarted web server")

    assert proc.pid() == supervisor  # the pid file still names what `make up` started
    supervision = proc.supervision()
    assert supervision is not None
    assert supervision.restarts == 1
    assert supervision.last_exit == "SIGKILL"
    assert "restart 1 in 0.5 s" in proc.log_since_start()


def test_stopping_the_supervisor_stops_the_child_and_nothing_restarts_it(
    web: tuple[ManagedProcess, str],
) -> None:
    proc, url = web
    supervisor, child = proc.pid(), proc.child_pid()
    assert supervisor is not None
    assert child is not None

    assert proc.stop()
    assert not alive(child)
    assert not proc.statefile.exists()
    time.sleep(2)  # four times the first back-off: a restart would have come by now
    assert group_members(supervisor) == []
    assert not http_ok(url)
    assert "SIGTERM: the child exited" in proc.log_since_start()


def test_a_stop_signal_reaches_the_child_exactly_once(tmp_path: Path) -> None:
    """A second SIGINT cuts uvicorn's graceful shutdown short: the child must get just one."""
    ready, received = tmp_path / "ready", tmp_path / "received"
    code = (
        "import os, pathlib, signal, sys, time\n"
        "seen = []\n"
        "def handle(signum, _frame): seen.append(signum)\n"
        "signal.signal(signal.SIGINT, handle)\n"
        f"pathlib.Path({str(ready)!r}).write_text(str(os.getpid()))\n"
        "while not seen: time.sleep(0.01)\n"
        "time.sleep(0.5)  # the drain: any second signal would arrive meanwhile\n"
        f"pathlib.Path({str(received)!r}).write_text(str(len(seen)))\n"
    )
    proc = ManagedProcess(
        name="drainer",
        argv=[sys.executable, "-c", code],
        run_dir=tmp_path,
        stop_signal=signal.SIGINT,
        supervised=True,
    )
    proc.start()
    eventually(ready.exists, "the child")
    assert proc.stop()
    assert received.read_text() == "1"
    assert "SIGINT: the child exited (exit 0); stopped, no restart" in proc.log_since_start()


def test_a_crash_loop_backs_off_and_a_stop_during_the_back_off_ends_it(tmp_path: Path) -> None:
    proc = ManagedProcess(
        name="crasher",
        argv=[sys.executable, "-c", "raise SystemExit(3)"],
        run_dir=tmp_path,
        supervised=True,
    )
    proc.start()

    def restarted_twice() -> bool:
        supervision = proc.supervision()
        return supervision is not None and supervision.restarts >= 2

    eventually(restarted_twice, "two restarts")
    supervision = proc.supervision()
    assert supervision is not None
    assert supervision.last_exit == "exit 3"
    log = proc.log_since_start()
    assert "restart 1 in 0.5 s" in log
    assert "restart 2 in 1 s" in log

    supervisor = proc.pid()
    assert supervisor is not None
    assert proc.stop()
    assert group_members(supervisor) == []


def test_a_dead_supervisor_takes_its_child_along(web: tuple[ManagedProcess, str]) -> None:
    """Killed alone, the supervisor leaves no unowned service behind (its child gets SIGTERM)."""
    proc, url = web
    supervisor, child = proc.pid(), proc.child_pid()
    assert supervisor is not None
    assert child is not None
    os.kill(supervisor, signal.SIGKILL)
    eventually(lambda: not proc.running(), "the supervisor to die")
    eventually(lambda: not alive(child), "the orphaned child to exit")
    assert not http_ok(url)


def test_a_killed_service_is_restarted_and_make_status_counts_it(platform: Platform) -> None:
    """The real auth service of the test profile, on a port of its own (not the fixtures')."""
    auth = service("auth")
    port = free_port()
    proc = platform.service_process(auth, port)
    assert proc.supervised
    url = f"http://127.0.0.1:{port}"
    supervisor = proc.start()
    try:
        wait_healthy(proc, url)
        child = proc.child_pid()
        assert child is not None
        os.kill(child, signal.SIGKILL)
        eventually(restarted(proc, child), "a new auth process")
        wait_healthy(proc, url)

        row = next(r for r in platform.status() if r["name"] == proc.name)
        assert row["state"] == "running"
        assert row["restarts"] == "1"
        assert row["last_exit"].startswith("SIGKILL at ")
        status = subprocess.run(
            [sys.executable, "-m", "devstack", "status", "--profile", "test"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        line = next(line for line in status.splitlines() if line.split()[:1] == [proc.name])
        assert line.split()[1:4] == ["running", "1", "SIGKILL"], status
    finally:
        stopped = proc.stop()
    assert stopped
    # uvicorn drained and exited on the one SIGTERM: the supervisor outlived it (no SIGKILL)
    assert "SIGTERM: the child exited" in proc.log_since_start()
    assert group_members(supervisor) == []
    assert not port_open(port)
