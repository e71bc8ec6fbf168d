"""A whole SocialHub of this directory's own, for the faults that need every part of it: Kafka
stopped under writes, the notification consumer killed mid-batch, a service killed and supervised
back.

Everything is private, so stopping Kafka or SIGKILLing a service here disturbs no other test
(and no `make up` platform): PostgreSQL, Redis, Kafka and the Mongo-compatible server run on free
ports in one temporary directory; the real auth, users, posts and notifications services are
started by devstack's own `Platform` code (the environment and the supervisor `make up` uses) on a
profile of their own; a real nginx gateway from the same code fronts them. Chat is not started:
no fault here involves it (its routes answer 502).

The stack is package-scoped: started for the first test here, stopped after the last one.
"""

import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devstack.config import Profile
from devstack.platform import Infra, Platform, wait_healthy
from devstack.process import ManagedProcess
from devstack.servers.base import Server
from devstack.servers.kafka import Kafka
from devstack.servers.mailsink import MailSink
from devstack.servers.mongo import Mongo
from devstack.servers.postgres import Postgres
from devstack.servers.redis import Redis
from devstack.waiting import free_port
from socialhub.contracts.topology import SERVICES, service
from socialhub.notifications.settings import NotificationSettings
from tests.support import settings_for

RUNNING = ("auth", "users", "posts", "notifications")
PROFILE_ENV = (
    # every request comes from 127.0.0.1
    ("SIGNUP_LIMIT_PER_IP", "100000"),
    ("LOGIN_LIMIT_PER_IP", "100000"),
    # no mail server runs here (the MailSink below is never started)
    ("MAIL_BACKEND", "log"),
    # the cheapest bcrypt: signups are set-up here, not what is under test
    ("BCRYPT_ROUNDS", "4"),
    # a 2-core machine: one access line per request costs more than the requests under test
    ("ACCESS_LOG", "false"),
    ("SHUTDOWN_GRACE_SECONDS", "2"),
    # notification batches smaller than the bursts here, so that a burst spans several
    ("CONSUMER_BATCH_SIZE", "100"),
)


class PrivatePlatform(Platform):
    """devstack's Platform, its files (run dir and logs, media, nginx, the JWT secret) in
    `directory`: Platform.__init__ would create `.state/<profile>` in the clone."""

    def __init__(self, profile: Profile, infra: Infra, directory: Path) -> None:
        self.profile = profile
        self.infra = infra
        self.state = directory
        self.run_dir = directory / "run"
        self.media_dir = directory / "media"


@dataclass
class Stack:
    platform: PrivatePlatform

    @property
    def kafka(self) -> Kafka:
        return self.platform.infra.kafka

    @property
    def mongo(self) -> Mongo:
        return self.platform.infra.mongo

    @property
    def postgres(self) -> Postgres:
        return self.platform.infra.postgres

    @property
    def gateway_url(self) -> str:
        return self.platform.gateway_url

    def process(self, name: str) -> ManagedProcess:
        """The service's supervised process (its supervisor's pid file, its child's state)."""
        return self.platform.service_process(service(name))

    def url(self, name: str) -> str:
        """The service itself, past the gateway (health, metrics)."""
        return f"http://127.0.0.1:{self.platform.profile.port(service(name))}"

    def database(self, name: str) -> str:
        return self.platform.profile.database(service(name))

    @property
    def mongo_database(self) -> str:
        return self.platform.profile.mongo_database

    @property
    def notification_settings(self) -> NotificationSettings:
        """The notification service's settings as it runs here (topics, group, channels)."""
        return settings_for(NotificationSettings, self.platform, "notifications")


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_offset() -> int:
    """A port offset that puts every service on a free port (Profile.port adds it to each)."""
    for _ in range(50):
        offset = free_port() - SERVICES[0].port
        if all(bindable(spec.port + offset) for spec in SERVICES):
            return offset
    raise RuntimeError("no free run of ports for the services")


def in_parallel(*calls: Callable[[], object]) -> None:
    """Start or stop independent things side by side (Kafka alone takes ~20 s to start)."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        done = [pool.submit(call) for call in calls]
    for future in done:
        future.result()


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    directory = Path(tempfile.mkdtemp(prefix="socialhub-stack-"))
    directory.chmod(0o755)  # initdb runs as `postgres` when we are root
    infra = Infra(
        postgres=Postgres(port=free_port(), state_dir=directory),
        redis=Redis(port=free_port(), state_dir=directory),
        kafka=Kafka(
            port=free_port(), controller_port=free_port(), state_dir=directory, node_port=None
        ),
        mongo=Mongo(port=free_port(), state_dir=directory),
        mail=MailSink(port=free_port()),
    )
    profile = Profile(
        "faults",
        port_offset=free_offset(),
        gateway_port=free_port(),
        redis_db=0,
        env=PROFILE_ENV,
        gateway_rate=(1_000_000, 1_000_000),
    )
    platform = PrivatePlatform(profile, infra, directory)
    servers: list[Server] = [infra.postgres, infra.redis, infra.kafka, infra.mongo]
    services = [platform.service_process(service(name)) for name in RUNNING]
    try:
        in_parallel(*(server.start for server in servers))
        platform.prepare_data()
        for process in services:
            process.start()
        for name, process in zip(RUNNING, services, strict=True):
            wait_healthy(process, f"http://127.0.0.1:{profile.port(service(name))}")
        platform.start_gateway()
        yield Stack(platform)
    finally:
        try:
            platform.gateway_process().stop()
            in_parallel(*(process.stop for process in services))
            in_parallel(*(server.stop for server in servers))
        finally:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the stack's gateway."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        yield client
