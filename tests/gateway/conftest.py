"""Real nginx in front of the real auth service and stand-in upstreams, started once per session.

These fixtures are the gateway suite's own until the shared platform fixtures can run stand-in
upstreams; the auth service gets its own database and Redis database so this suite neither sees
nor disturbs the other suites' data. Events are not under test here: the auth service's outbox
relay points at a closed port and keeps its events in the outbox.
"""

import os
import pwd
import secrets
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.process import ManagedProcess
from devstack.servers.postgres import Postgres
from devstack.servers.redis import Redis
from devstack.waiting import free_port, http_ok, wait_until
from socialhub.gateway import GatewayConfig, render

NGINX = "/usr/sbin/nginx"
AUTH_DATABASE = "socialhub_auth_gateway_test"
AUTH_REDIS_DB = 15
ECHO_UPSTREAM = Path(__file__).with_name("echo_upstream.py")
MEDIA_FILE = "2026/avatar.jpg"
MEDIA_BYTES = b"\xff\xd8\xff\xe0 not really a jpeg"


def self_signed(directory: Path) -> tuple[str, str]:
    """A certificate for localhost and its key, as files in `directory`."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def worker_user() -> str | None:
    """Run workers as the invoking user when that is root: pytest's temporary directories are
    private (0700), so the default worker user `nobody` could not reach media or temp files."""
    return pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None


@dataclass
class Gateway:
    """One nginx process running a rendered configuration."""

    config: GatewayConfig
    run_dir: Path

    @property
    def conf(self) -> Path:
        return Path(self.config.prefix) / "nginx.conf"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name="nginx",
            run_dir=self.run_dir,
            stop_signal=signal.SIGQUIT,
            argv=[NGINX, "-p", self.config.prefix, "-c", str(self.conf), "-g", "daemon off;"],
        )

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://127.0.0.1:{self.config.listen_port}"

    @property
    def access_log(self) -> Path:
        return Path(self.config.access_log)

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What a client must trust: the configured (self-signed) certificate, if any."""
        if self.config.tls_certificate is None:
            return True
        return ssl.create_default_context(cafile=self.config.tls_certificate)

    def start(self) -> None:
        Path(self.config.prefix).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(render(self.config))
        subprocess.run(
            [NGINX, "-t", "-q", "-p", self.config.prefix, "-c", str(self.conf)], check=True
        )
        process = self.process
        process.start()
        wait_until(
            lambda: _answers(f"{self.url}/health", self.verify),
            timeout=15,
            what="gateway",
            on_timeout=process.tail,
        )

    def stop(self) -> None:
        self.process.stop()


def _answers(url: str, verify: ssl.SSLContext | bool) -> bool:
    try:
        return httpx.get(url, verify=verify, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start_gateway(directory: Path, upstreams: dict[str, list[str]], **options: Any) -> Gateway:
    """Render, check (`nginx -t`) and start a gateway whose files all live in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "listen_port": free_port(),
        "upstreams": upstreams,
        "prefix": str(directory / "prefix"),
        "access_log": str(directory / "access.log"),
        "error_log": str(directory / "error.log"),
        "worker_user": worker_user(),
        **options,
    }
    gateway = Gateway(GatewayConfig(**settings), run_dir=directory)
    gateway.start()
    return gateway


@pytest.fixture(scope="session")
def gateway_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway")


@pytest.fixture(scope="session")
def auth_upstream(gateway_workdir: Path) -> Iterator[str]:
    """The real auth service (own database and Redis database), as `host:port`."""
    postgres, redis = Postgres(), Redis()
    started = [server for server in (postgres, redis) if not server.running()]
    for server in (postgres, redis):
        server.start()
    postgres.create_database(AUTH_DATABASE)
    port = free_port()
    env = {
        "SOCIALHUB_ENV": "test",
        "SERVICE_HOST": "127.0.0.1",
        "SERVICE_PORT": str(port),
        "DATABASE_URL": postgres.url(AUTH_DATABASE),
        "REDIS_URL": redis.url(AUTH_REDIS_DB),
        "JWT_SECRET": secrets.token_urlsafe(48),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "MAIL_BACKEND": "log",
        # Every request comes from 127.0.0.1: the service's own per-IP limits are tested in
        # tests/auth, here they would only make repeated runs flaky.
        "LOGIN_LIMIT_PER_IP": "100000",
        "SIGNUP_LIMIT_PER_IP": "100000",
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run(
        [sys.executable, "-m", "socialhub.auth", "migrate"],
        check=True,
        env={**os.environ, **env},
        capture_output=True,
    )
    process = ManagedProcess(
        name="auth",
        argv=[sys.executable, "-m", "socialhub.auth", "serve"],
        run_dir=gateway_workdir,
        env=env,
    )
    process.start()
    try:
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{port}/health"),
            timeout=30,
            what="auth service",
            on_timeout=process.tail,
        )
        yield f"127.0.0.1:{port}"
    finally:
        process.stop()
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def echo_upstreams(gateway_workdir: Path) -> Iterator[dict[str, str]]:
    """Stand-ins for users, posts and chat that answer with the headers they received."""
    addresses: dict[str, str] = {}
    processes: list[ManagedProcess] = []
    for service in ("users", "posts", "chat"):
        port = free_port()
        process = ManagedProcess(
            name=f"echo-{service}",
            run_dir=gateway_workdir,
            argv=[sys.executable, str(ECHO_UPSTREAM), service, str(port)],
        )
        process.start()
        processes.append(process)
        addresses[service] = f"127.0.0.1:{port}"
    try:
        for service, address in addresses.items():
            wait_until(
                partial(http_ok, f"http://{address}/"), timeout=15, what=f"echo upstream {service}"
            )
        yield addresses
    finally:
        for process in processes:
            process.stop()


@pytest.fixture(scope="session")
def media_root(gateway_workdir: Path) -> Path:
    root = gateway_workdir / "media"
    (root / MEDIA_FILE).parent.mkdir(parents=True)
    (root / MEDIA_FILE).write_bytes(MEDIA_BYTES)
    return root


@pytest.fixture(scope="session")
def upstreams(auth_upstream: str, echo_upstreams: dict[str, str]) -> dict[str, list[str]]:
    """Every service but notifications, whose routes must then answer 503."""
    return {"auth": [auth_upstream], **{name: [a] for name, a in echo_upstreams.items()}}


@pytest.fixture(scope="session")
def gateway(
    gateway_workdir: Path, upstreams: dict[str, list[str]], media_root: Path
) -> Iterator[Gateway]:
    """The gateway as `make up` configures it (default limits and token-check cache)."""
    running = start_gateway(gateway_workdir / "main", upstreams, media_root=str(media_root))
    yield running
    running.stop()
