"""Writes made while Kafka is unreachable reach Kafka later, through the outbox."""

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from devstack.platform import Platform
from socialhub.contracts.events import USER_TOPIC
from socialhub.kit.database import Database
from socialhub.kit.events.outbox import OutboxRelay
from socialhub.kit.migrations import upgrade_to_head
from socialhub.users.app import create_app
from socialhub.users.settings import UsersSettings
from tests.support import EventProbe, app_client, eventually
from tests.users.helpers import as_user, follow, new_user, unfollow

DEAD_BROKER = "127.0.0.1:9"  # discard port: nothing listens, connections are refused


@pytest.fixture
def offline_settings(users_settings: UsersSettings, platform: Platform) -> Iterator[UsersSettings]:
    """The service on a database of its own (no other relay drains it) and a dead broker."""
    postgres = platform.infra.postgres
    name = f"socialhub_users_outbox_{uuid.uuid4().hex[:10]}"
    postgres.create_database(name)
    upgrade_to_head("socialhub.users", postgres.url(name))
    yield users_settings.model_copy(
        update={"database_url": postgres.url(name), "kafka_bootstrap_servers": DEAD_BROKER}
    )
    postgres.psql(f'DROP DATABASE "{name}" WITH (FORCE)')


async def outbox_rows(database: Database) -> list[dict[str, Any]]:
    async with database.transaction() as session:
        rows = (await session.execute(text("SELECT payload FROM outbox ORDER BY id"))).all()
    return [row.payload for row in rows]


async def test_events_of_writes_made_while_kafka_was_unreachable_arrive_later(
    offline_settings: UsersSettings, users_settings: UsersSettings, platform: Platform
) -> None:
    async with app_client(create_app(offline_settings)) as offline:
        alice, bob, carol = (
            await new_user(offline),
            await new_user(offline),
            await new_user(offline),
        )
        assert (await follow(offline, alice, bob)).status_code == 200
        assert (await follow(offline, carol, alice)).status_code == 200
        assert (await unfollow(offline, alice, bob)).status_code == 200
        blocked = await offline.post(f"/users/block/{carol.id}", headers=as_user(alice))
        assert blocked.status_code == 200
        patched = await offline.patch("/users/me", headers=as_user(bob), json={"bio": "offline"})
        assert patched.status_code == 200
        await asyncio.sleep(1.0)  # the relay keeps failing against the dead broker meanwhile

    expected = [
        "user.followed",
        "user.followed",
        "user.unfollowed",
        "user.unfollowed",
        "user.blocked",
        "user.updated",
    ]
    async with Database.connect(offline_settings) as database:
        pending = await outbox_rows(database)
        assert [event["eventType"] for event in pending] == expected
        ids = {event["eventId"] for event in pending}

        online = users_settings.model_copy(update={"database_url": offline_settings.database_url})
        topic = platform.profile.topic_prefix + USER_TOPIC
        async with EventProbe.on(platform.infra.kafka.address, topic) as probe:
            relay = asyncio.create_task(OutboxRelay(database, online).run())
            try:
                received = await probe.collect(lambda e: e["eventId"] in ids, len(expected))

                async def drained() -> bool:
                    return await outbox_rows(database) == []

                await eventually(drained, what="outbox emptied")
            finally:
                relay.cancel()
                await asyncio.gather(relay, return_exceptions=True)
    assert sorted(e["eventType"] for e in received) == sorted(expected)
    assert {e["eventId"]: e for e in received} == {e["eventId"]: e for e in pending}
    by_alice = [
        e["eventType"]
        for e in received
        if e["data"].get("followerId") == str(alice.id)
        or e["data"].get("blockerId") == str(alice.id)
    ]
    assert by_alice == ["user.followed", "user.unfollowed", "user.blocked"]  # one key: in order
