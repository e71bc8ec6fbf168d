import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorCollection
from redis.asyncio import Redis

from devstack.platform import Platform
from devstack.servers.mongo import Mongo
from socialhub.contracts.events import ALL_TOPICS
from socialhub.kit.events.topics import ensure_topics
from socialhub.notifications.app import create_app
from socialhub.notifications.settings import NotificationSettings
from socialhub.notifications.store import COLLECTION
from tests.notifications.helpers import Document
from tests.support import app_client, settings_for


@pytest.fixture(scope="session")
def notification_settings(platform: Platform, mongo_server: Mongo) -> NotificationSettings:
    """The test profile's settings: `test.` topics, group `test.notification-group`."""
    return settings_for(NotificationSettings, platform, "notifications")


@pytest.fixture(scope="session")
async def notifications(
    notification_settings: NotificationSettings,
) -> AsyncIterator[httpx.AsyncClient]:
    """The service in-process (API and consumer) on the real Kafka, FerretDB and Redis."""
    async with app_client(create_app(notification_settings)) as client:
        yield client


@pytest.fixture(scope="session")
async def producer(kafka: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka, enable_idempotence=True, acks="all", linger_ms=5
    )
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture(scope="session")
async def redis(notification_settings: NotificationSettings) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(notification_settings.redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def isolated(
    notification_settings: NotificationSettings,
) -> AsyncIterator[NotificationSettings]:
    """Settings with their own topics, consumer group and MongoDB database, for exact counts."""
    settings = notification_settings.model_copy(
        update={
            "kafka_topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
            "mongo_database": f"socialhub_test_{uuid.uuid4().hex[:10]}",
        }
    )
    await ensure_topics(settings)
    yield settings
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics([settings.topic(name) for name in ALL_TOPICS])
    finally:
        await admin.close()
    client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(settings.mongo_url)
    await client.drop_database(settings.mongo_database)
    client.close()


@pytest.fixture
async def isolated_collection(
    isolated: NotificationSettings,
) -> AsyncIterator[AsyncIOMotorCollection[Document]]:
    """Direct access to the isolated database's notifications, to count what was stored."""
    client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(isolated.mongo_url, tz_aware=True)
    yield client[isolated.mongo_database][COLLECTION]
    client.close()
