"""The users service in-process on the real PostgreSQL, Redis and Kafka of the test profile."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from devstack.platform import Platform
from socialhub.auth.app import create_app as create_auth_app
from socialhub.auth.settings import AuthSettings
from socialhub.users.app import create_app
from socialhub.users.settings import UsersSettings
from tests.support import app_client, settings_for
from tests.users.helpers import UsersDb


@pytest.fixture(scope="session")
def users_settings(platform: Platform) -> UsersSettings:
    return settings_for(UsersSettings, platform, "users")


@pytest.fixture(scope="session")
def users_app(users_settings: UsersSettings) -> FastAPI:
    return create_app(users_settings)


@pytest.fixture(scope="session")
async def users(users_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The users service, with its outbox relay and its consumer group running."""
    async with app_client(users_app) as client:
        yield client


@pytest.fixture(scope="session")
async def users_db(users_settings: UsersSettings) -> AsyncIterator[UsersDb]:
    """Direct access to the service's database, to check what the API cannot show."""
    async with UsersDb.connect(users_settings.database_url) as database:
        yield database


@pytest.fixture(scope="session")
async def cache_redis(users_settings: UsersSettings) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(users_settings.redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def auth(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """The real auth service (in-process): its signups publish the `user.created` we consume."""
    async with app_client(create_auth_app(settings_for(AuthSettings, platform, "auth"))) as client:
        yield client
