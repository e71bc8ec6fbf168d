"""Session fixtures: the real backing servers, started once per run and reused if running.

A fixture stops a server at the end only if it started it, so `make test` next to `make up`
leaves the developer's platform alone. Tests use the `test` profile (its own databases, Redis
database, Mongo database and Kafka topic prefix), never the `dev` data.
"""

from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

import httpx
import pytest

from devstack.config import PROFILES
from devstack.platform import Infra, Platform
from devstack.servers.base import Server
from devstack.servers.kafka import Kafka
from devstack.servers.mailsink import MailSink
from devstack.servers.mongo import Mongo
from devstack.servers.postgres import Postgres
from devstack.servers.redis import Redis
from socialhub.contracts.topology import SERVICES
from tests import unit

S = TypeVar("S", bound=Server)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--unit",
        action="store_true",
        help="only the unit tests, and no server may start (make unit)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("unit"):
        unit.forbid_servers()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the unit tests; under `--unit`, leave out every other test."""
    others = []
    for item in items:
        if unit.is_unit(item):
            item.add_marker(pytest.mark.unit)
        else:
            others.append(item)
    if config.getoption("unit") and others:
        config.hook.pytest_deselected(items=others)
        items[:] = [item for item in items if item.get_closest_marker("unit")]


def _serve(server: S) -> Iterator[S]:
    started_here = not server.process().running()
    server.start()
    yield server
    if started_here:
        server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    yield from _serve(Postgres())


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    yield from _serve(Redis())


@pytest.fixture(scope="session")
def kafka_server() -> Iterator[Kafka]:
    yield from _serve(Kafka())


@pytest.fixture(scope="session")
def kafka(kafka_server: Kafka) -> str:
    """Bootstrap address of the local Kafka broker."""
    return kafka_server.address


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[Mongo]:
    yield from _serve(Mongo())


@pytest.fixture(scope="session")
def mongo(mongo_server: Mongo) -> str:
    """URL of the local MongoDB-compatible server (FerretDB), without a database."""
    return mongo_server.address


@pytest.fixture(scope="session")
def mailsink() -> Iterator[MailSink]:
    yield from _serve(MailSink())


@pytest.fixture(scope="session")
def platform(
    postgres: Postgres, redis_server: Redis, kafka_server: Kafka, mailsink: MailSink
) -> Platform:
    """The `test` profile with databases migrated and topics created (no processes yet).

    MongoDB is started only by the fixtures that need it (`mongo_server`).
    """
    test_platform = Platform(
        PROFILES["test"], Infra(postgres, redis_server, kafka_server, Mongo(), mailsink)
    )
    test_platform.prepare_data()
    return test_platform


@pytest.fixture(scope="session")
def running_platform(platform: Platform, mongo_server: Mongo) -> Iterator[Platform]:
    """Every service as a real process behind the real nginx gateway.

    Stops afterwards exactly the processes this session started: a developer may have started
    the test profile by hand to debug, and earlier tests may run extra instances of a service
    in the same run directory (those stop themselves), which must not keep the profile's own
    processes running after the session.
    """
    own = [*(platform.service_process(service) for service in SERVICES), platform.gateway_process()]
    started_here = [process for process in own if not process.running()]
    platform.start_services()
    platform.start_gateway()
    yield platform
    for process in started_here:
        process.stop()


@pytest.fixture(scope="module")
async def gateway(running_platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the running platform's gateway: what a user of `make up` talks to.
    (tests/gateway overrides this with the nginx it tests against stand-in upstreams.)"""
    async with httpx.AsyncClient(base_url=running_platform.gateway_url, timeout=15) as client:
        yield client
