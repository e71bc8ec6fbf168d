"""Private backing servers for fault injection: a Redis and a PostgreSQL of this suite's own, on
free ports and in a directory of their own, so stopping, freezing or restarting them disturbs
no other test (and no `make up` platform).

On them runs the real auth service as a process, behind a real nginx gateway (token-check cache
off, so every protected request asks the auth service) with an echo upstream standing in for a
protected service. Kafka is a closed port: events stay in the outbox, which is not under test.

The faults that need the whole platform (Kafka stopped under writes, the notification consumer
killed mid-batch, a supervised service killed under load) run on a private stack of their own
in tests/faults/stack.
"""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devstack.process import ManagedProcess
from devstack.servers.postgres import Postgres
from devstack.servers.redis import Redis
from devstack.waiting import free_port, http_ok, wait_until
from tests.gateway.conftest import ECHO_UPSTREAM, Gateway, start_gateway

DATABASE = "socialhub_auth_faults"


@dataclass
class Service:
    process: ManagedProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def faults_dir() -> Iterator[Path]:
    """Readable by the `postgres` user too (initdb refuses to run as root; pytest's temporary
    directories are private)."""
    directory = Path(tempfile.mkdtemp(prefix="socialhub-faults-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def private_redis(faults_dir: Path) -> Iterator[Redis]:
    server = Redis(port=free_port(), state_dir=faults_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def private_postgres(faults_dir: Path) -> Iterator[Postgres]:
    server = Postgres(port=free_port(), state_dir=faults_dir)
    server.start()
    server.create_database(DATABASE)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def auth_service(
    faults_dir: Path, private_redis: Redis, private_postgres: Postgres
) -> Iterator[Service]:
    port = free_port()
    env = {
        "SOCIALHUB_ENV": "test",
        "SERVICE_HOST": "127.0.0.1",
        "SERVICE_PORT": str(port),
        "DATABASE_URL": private_postgres.url(DATABASE),
        "REDIS_URL": private_redis.url(0),
        "JWT_SECRET": secrets.token_urlsafe(48),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "MAIL_BACKEND": "log",
        "LOGIN_LIMIT_PER_IP": "100000",
        "SIGNUP_LIMIT_PER_IP": "100000",
        "RESET_REQUESTS_PER_EMAIL": "100000",
        "REVOCATION_SYNC_SECONDS": "0.5",
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run(
        [sys.executable, "-m", "socialhub.auth", "migrate"],
        check=True,
        env={**os.environ, **env},
        capture_output=True,
    )
    process = ManagedProcess(
        name=f"auth-{port}",
        run_dir=faults_dir,
        env=env,
        argv=[sys.executable, "-m", "socialhub.auth", "serve"],
    )
    process.start()
    try:
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{port}/health"),
            timeout=60,
            what="auth service",
            on_timeout=process.tail,
        )
        yield Service(process, port)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def echo_users(faults_dir: Path) -> Iterator[str]:
    port = free_port()
    process = ManagedProcess(
        name=f"echo-users-{port}",
        run_dir=faults_dir,
        argv=[sys.executable, str(ECHO_UPSTREAM), "users", str(port)],
    )
    process.start()
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/"), timeout=15, what="echo users")
        yield f"127.0.0.1:{port}"
    finally:
        process.stop()


@pytest.fixture(scope="session")
def faults_gateway(faults_dir: Path, auth_service: Service, echo_users: str) -> Iterator[Gateway]:
    gateway = start_gateway(
        faults_dir / "gateway",
        {"auth": [f"127.0.0.1:{auth_service.port}"], "users": [echo_users]},
        auth_cache_seconds=0,
    )
    yield gateway
    gateway.stop()


@pytest.fixture
async def http(faults_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the private gateway (login, signup, /auth/me and protected routes)."""
    async with httpx.AsyncClient(base_url=faults_gateway.url, timeout=30) as client:
        yield client


@pytest.fixture
async def auth_direct(auth_service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the auth service itself (its token check, as the gateway calls it)."""
    async with httpx.AsyncClient(base_url=auth_service.url, timeout=30) as client:
        yield client
