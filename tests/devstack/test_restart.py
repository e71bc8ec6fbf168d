"""`make restart SERVICE=...` (devstack.restart): the supervised child is replaced by a new one
that answers, the supervisor stays, and a process that is not running is refused."""

from pathlib import Path

import pytest

from devstack.process import ManagedProcess
from devstack.restart import NotRunningError, restart


def test_restart_replaces_the_child_and_returns_once_the_new_one_answers(
    web: tuple[ManagedProcess, str],
) -> None:
    proc, url = web
    supervisor, old_child = proc.pid(), proc.child_pid()
    done = restart(proc, url, timeout=30)
    assert done.old_pid == old_child
    assert done.new_pid == proc.child_pid() != old_child
    assert proc.pid() == supervisor  # the supervisor itself keeps running
    supervision = proc.supervision()
    assert supervision is not None
    # The graceful stop signal ended it (a service drains on it, then exits 0).
    assert (supervision.restarts, supervision.last_exit) == (1, "SIGTERM")
    assert str(done).startswith(f"{proc.name} restarted (pid {old_child} -> pid {done.new_pid})")


def test_a_process_that_is_not_running_is_not_restarted(tmp_path: Path) -> None:
    idle = ManagedProcess(name="idle-1", argv=["true"], run_dir=tmp_path, supervised=True)
    with pytest.raises(NotRunningError, match="idle-1 is not running"):
        restart(idle, "http://127.0.0.1:1/health", timeout=1)
