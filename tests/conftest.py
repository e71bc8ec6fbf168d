"""Session fixtures that start the real backing servers once (reusing ones already running)."""

from collections.abc import Iterator

import pytest

from devstack.servers.kafka import Kafka


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """Bootstrap address of the local Kafka broker; stops it afterwards only if it started it."""
    server = Kafka()
    started_here = not server.running()
    server.start()
    yield server.address
    if started_here:
        server.stop()
