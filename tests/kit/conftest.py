import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import text

from devstack.servers.postgres import Postgres
from socialhub.contracts.events import ALL_TOPICS
from socialhub.kit.database import Database
from socialhub.kit.events.outbox import NOTIFY_TRIGGER, outbox
from socialhub.kit.settings import KafkaSettings, PostgresSettings


@pytest.fixture
async def outbox_db(postgres: Postgres) -> AsyncIterator[Database]:
    """A fresh database holding only the outbox, as a service's first migration creates it."""
    name = f"socialhub_kit_{uuid.uuid4().hex[:10]}"
    postgres.create_database(name)
    async with Database.connect(PostgresSettings(database_url=postgres.url(name))) as database:
        async with database.engine.begin() as conn:
            await conn.run_sync(outbox.create)
            for statement in NOTIFY_TRIGGER:
                await conn.execute(text(statement))
        yield database
    postgres.psql(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def kafka_settings(kafka: str) -> AsyncIterator[KafkaSettings]:
    """Settings with their own topic prefix and topics: a test sees only its own events."""
    settings = KafkaSettings(
        kafka_bootstrap_servers=kafka, kafka_topic_prefix=f"t{uuid.uuid4().hex[:8]}."
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    names = [settings.topic(name) for name in ALL_TOPICS]
    await admin.create_topics([NewTopic(n, num_partitions=2, replication_factor=1) for n in names])
    yield settings
    await admin.delete_topics(names)
    await admin.close()
