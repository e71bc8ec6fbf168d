"""The notification service on a MongoDB-compatible server of its own, stopped and started again:
503 with Retry-After meanwhile (never a 500, never a hang), and the first request after the
restart succeeds."""

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from devstack.platform import Platform
from devstack.servers.mongo import Mongo
from devstack.waiting import free_port
from socialhub.kit.events.topics import ensure_topics
from socialhub.notifications.app import create_app
from socialhub.notifications.settings import NotificationSettings
from tests.faults.tally import Tally
from tests.notifications.helpers import as_user, uid
from tests.support import app_client, eventually, settings_for

TIMEOUT_MS = 500


@pytest.fixture
def private_mongo(faults_dir: Path) -> Iterator[Mongo]:
    server = Mongo(port=free_port(), state_dir=faults_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def notifications(
    platform: Platform, private_mongo: Mongo
) -> AsyncIterator[httpx.AsyncClient]:
    """The real service in-process; its own topics and consumer group, so no other test's
    events reach it."""
    prefix = f"f{uuid.uuid4().hex[:10]}."
    settings = settings_for(
        NotificationSettings,
        platform,
        "notifications",
        mongo_url=private_mongo.address,
        mongo_timeout_ms=TIMEOUT_MS,
        kafka_topic_prefix=prefix,
    )
    await ensure_topics(settings)
    async with app_client(create_app(settings)) as client:
        yield client


async def test_mongo_stopped_answers_503_then_the_first_request_succeeds(
    notifications: httpx.AsyncClient, private_mongo: Mongo
) -> None:
    headers = as_user(uid())
    assert (await notifications.get("/notify/notifications", headers=headers)).status_code == 200
    private_mongo.stop()
    tally = Tally("mongo stopped")
    try:
        for _ in range(3):
            for what, request in [
                ("list", notifications.get("/notify/notifications", headers=headers)),
                ("read-all", notifications.post("/notify/notifications/read-all", headers=headers)),
                ("delete", notifications.delete(f"/notify/notifications/{uid()}", headers=headers)),
            ]:
                response = await tally.send(what, request)
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == "2"
                assert response.json()["error"]["code"] == "service_unavailable"
    finally:
        tally.report()
        private_mongo.start()
    assert tally.count(503) == tally.total == 9

    async def answers() -> bool:
        response = await notifications.get("/notify/notifications", headers=headers)
        return response.status_code == 200

    await eventually(answers, within=30, what="the first 200 after the restart")
