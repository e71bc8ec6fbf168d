"""Process supervision: `make down` must stop exactly what `make up` started."""

import os
import signal
import sys
import time
from pathlib import Path

from devstack.process import ManagedProcess

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + 10
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_start_is_idempotent_and_stop_ends_the_process(tmp_path: Path) -> None:
    proc = ManagedProcess(name="sleeper", argv=SLEEPER, run_dir=tmp_path)
    pid = proc.start()
    assert proc.start() == pid  # a second start finds it running
    assert proc.running()
    assert proc.stop()
    assert not proc.running()
    assert not proc.pidfile.exists()
    assert not proc.stop()  # nothing left to stop


def test_a_stale_pid_file_does_not_count_as_running(tmp_path: Path) -> None:
    proc = ManagedProcess(name="ghost", argv=SLEEPER, run_dir=tmp_path)
    proc.pidfile.write_text("999999\n")  # beyond the default pid_max: never a live process
    assert not proc.running()
    pid = proc.start()
    assert pid != 999999
    proc.stop()


def test_stop_escalates_when_the_process_ignores_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ignoring-sigterm"
    code = (
        "import pathlib, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"pathlib.Path({str(ready)!r}).write_text('')\n"
        "time.sleep(60)\n"
    )
    proc = ManagedProcess(
        name="stubborn", argv=[sys.executable, "-c", code], run_dir=tmp_path, stop_timeout=0.5
    )
    proc.start()
    wait_for(ready)
    assert proc.stop()  # SIGTERM is ignored, so only the SIGKILL that follows can end it
    assert not proc.running()


def test_output_goes_to_the_log(tmp_path: Path) -> None:
    proc = ManagedProcess(
        name="talker", argv=[sys.executable, "-c", "print('hello log')"], run_dir=tmp_path
    )
    proc.start()
    os.waitpid(int(proc.pidfile.read_text()), 0)
    assert "hello log" in proc.tail()
    assert not proc.running()


def test_stop_sends_the_configured_signal(tmp_path: Path) -> None:
    marker = tmp_path / "got-sigint"
    code = (
        "import signal, sys, time, pathlib\n"
        f"def done(*_): pathlib.Path({str(marker)!r}).write_text('yes'); sys.exit(0)\n"
        "signal.signal(signal.SIGINT, done)\n"
        f"pathlib.Path({str(tmp_path / 'ready')!r}).write_text('')\n"
        "time.sleep(60)\n"
    )
    proc = ManagedProcess(
        name="graceful",
        argv=[sys.executable, "-c", code],
        run_dir=tmp_path,
        stop_signal=signal.SIGINT,
    )
    proc.start()
    wait_for(tmp_path / "ready")
    proc.stop()
    assert marker.read_text() == "yes"
