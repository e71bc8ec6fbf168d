from collections.abc import AsyncIterator

import httpx
import pytest

from devstack.platform import Platform
from socialhub.auth.app import create_app
from socialhub.auth.settings import AuthSettings
from tests.support import app_client, settings_for


@pytest.fixture(scope="session")
def auth_settings(platform: Platform) -> AuthSettings:
    return settings_for(AuthSettings, platform, "auth")


@pytest.fixture(scope="session")
async def auth(auth_settings: AuthSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The auth service in-process, on the real PostgreSQL, Redis, Kafka and SMTP sink."""
    async with app_client(create_app(auth_settings)) as client:
        yield client
