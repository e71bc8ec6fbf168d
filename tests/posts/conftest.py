"""The posts service in-process on the real PostgreSQL, Redis and Kafka of the test profile,
with its media in a temporary directory.

The session instance runs everything (API, outbox relay, both consumer groups). Variants (small
limits, Redis unreachable, ...) are API-only instances on the same database (`RUN_WORKERS=false`):
the session instance relays their events, and they never join a consumer group, so they cannot
take partitions away from it.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from devstack.platform import Platform
from socialhub.contracts.events import POST_TOPIC, USER_TOPIC
from socialhub.kit.database import Database
from socialhub.posts.app import create_app
from socialhub.posts.settings import PostsSettings
from tests.posts.helpers import Graph, database_at
from tests.support import app_client, settings_for

MEDIA_BASE_URL = "http://media.test/media"


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("posts-media")


@pytest.fixture(scope="session")
def posts_settings(platform: Platform, media_dir: Path) -> PostsSettings:
    return settings_for(
        PostsSettings, platform, "posts", media_dir=media_dir, media_base_url=MEDIA_BASE_URL
    )


@pytest.fixture(scope="session")
async def posts(posts_settings: PostsSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(posts_settings)) as client:
        yield client


@asynccontextmanager
async def api_instance(
    settings: PostsSettings,
    **overrides: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """Another API-only instance of the service on the same database, with `overrides`."""
    variant = PostsSettings(**{**settings.model_dump(), "run_workers": False, **overrides})
    async with app_client(create_app(variant)) as client:
        yield client


@pytest.fixture(scope="session")
async def posts_db(posts_settings: PostsSettings) -> AsyncIterator[Database]:
    """The service's database, to check what the API does not show."""
    async with database_at(posts_settings.database_url) as database:
        yield database


@pytest.fixture(scope="session")
async def feed_redis(posts_settings: PostsSettings) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(posts_settings.redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def post_topic(posts_settings: PostsSettings) -> str:
    return posts_settings.topic(POST_TOPIC)


@pytest.fixture(scope="session")
async def graph(
    posts_settings: PostsSettings, posts_db: Database, posts: httpx.AsyncClient
) -> AsyncIterator[Graph]:
    """Follows and blocks as the users service publishes them (the session instance consumes)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=posts_settings.kafka_bootstrap_servers, acks="all"
    )
    await producer.start()
    try:
        yield Graph(producer, posts_settings.topic(USER_TOPIC), posts_db)
    finally:
        await producer.stop()
