"""A supervised process to restart and kill, instead of a service of the shared platform."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.process import ManagedProcess
from devstack.waiting import free_port, http_ok, wait_until


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[ManagedProcess, str]]:
    """A tiny HTTP server, supervised; stopped at the end whatever the test did."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("up\n")
    port = free_port()
    proc = ManagedProcess(
        name=f"web-{port}",
        run_dir=tmp_path / "run",
        supervised=True,
        argv=[
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(tmp_path / "www"),
        ],
    )
    proc.start()
    url = f"http://127.0.0.1:{port}/"
    wait_until(lambda: http_ok(url), timeout=30, what="the supervised web server")
    yield proc, url
    proc.stop()
