"""Ports and polling: find a free port, wait until a port accepts connections or an HTTP
endpoint answers 200."""

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    on_timeout: Callable[[], str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    detail = on_timeout() if on_timeout else ""
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s\n{detail}".rstrip())


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, for a server started next to the usual ones."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
