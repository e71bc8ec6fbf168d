"""The auth service and two chat instances as real processes, on the real Redis and PostgreSQL.

Each chat instance is `python -m socialhub.chat serve` with the test profile's environment (Redis
database 1, channel prefix `test.`), its own free port, and fast presence heartbeats so a killed
instance's users disappear within seconds.
"""

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from redis.asyncio import Redis

from devstack.platform import Platform
from tests.chat.helpers import ChatClient, Instance

FAST_PRESENCE = {"CHAT_HEARTBEAT_SECONDS": "0.3", "CHAT_INSTANCE_TTL_SECONDS": "2"}


@pytest.fixture(scope="session")
def auth_instance(platform: Platform) -> Iterator[Instance]:
    instance = Instance.create(platform, "auth").start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
async def auth_http(auth_instance: Instance) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=auth_instance.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def new_chat_instance(platform: Platform, auth_instance: Instance) -> Callable[..., Instance]:
    """A chat instance (not started) that checks tokens with this suite's auth service."""

    def create(**env: str) -> Instance:
        return Instance.create(
            platform, "chat", **{"AUTH_SERVICE_URL": auth_instance.url, **FAST_PRESENCE, **env}
        )

    return create


@pytest.fixture(scope="session")
def chat_pair(new_chat_instance: Callable[..., Instance]) -> Iterator[tuple[Instance, Instance]]:
    first, second = new_chat_instance().start(), new_chat_instance().start()
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture
def spare_chat(new_chat_instance: Callable[..., Instance]) -> Iterator[Instance]:
    """A third instance of one test's own, to stop, restart or kill."""
    instance = new_chat_instance().start()
    yield instance
    instance.stop()


@pytest.fixture
async def client() -> AsyncIterator[Callable[[], ChatClient]]:
    """Makes Socket.IO clients; all are disconnected when the test ends."""
    made: list[ChatClient] = []

    def make() -> ChatClient:
        made.append(ChatClient())
        return made[-1]

    yield make
    for chat_client in made:
        await chat_client.close()


@pytest.fixture(scope="session")
async def redis(platform: Platform) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(
        platform.infra.redis.url(platform.profile.redis_db), decode_responses=True
    )
    yield client
    await client.aclose()
