"""What the fault tests look at on the private stack: accounts and writes through the gateway,
the notifications a user sees (the API) and has (the store, deleted ones included), the pushes a
user receives, and whether the event pipeline has settled (every outbox empty, the notification
group caught up), which is what makes the counts afterwards exact rather than "eventually"."""

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import httpx
from motor.motor_asyncio import AsyncIOMotorClient
from redis.asyncio import Redis as RedisClient
from redis.asyncio.client import PubSub
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from socialhub.notifications.app import CONSUMER_GROUP
from socialhub.notifications.ingest import push_channel
from socialhub.notifications.store import COLLECTION
from tests.faults.stack.conftest import Stack
from tests.notifications.helpers import caught_up
from tests.support import eventually, sign_up

Document = dict[str, Any]
OUTBOX_SERVICES = ("auth", "users", "posts")


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_account(api: httpx.AsyncClient, prefix: str) -> Account:
    user, token = await sign_up(api, prefix)
    return Account(user["id"], user["username"], token)


async def known_to_users(api: httpx.AsyncClient, who: Account) -> None:
    """The users service has the profile (it arrives by `user.created`): following needs it."""

    async def known() -> bool:
        return (await api.get(f"/users/{who.id}", headers=who.headers)).status_code == 200

    await eventually(known, within=30, what=f"the users service knowing {who.username}")


async def create_post(api: httpx.AsyncClient, author: Account, content: str) -> str:
    response = await api.post("/posts/", headers=author.headers, json={"content": content})
    assert response.status_code == 201, response.text
    post_id: str = response.json()["id"]
    return post_id


async def live_notifications(api: httpx.AsyncClient, who: Account) -> list[Document]:
    """Every notification the API lists for `who`, all pages."""
    found: list[Document] = []
    params: dict[str, str | int] = {"limit": 100}
    while True:
        response = await api.get("/notify/notifications", params=params, headers=who.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend(page["notifications"])
        if page["nextCursor"] is None:
            return found
        params["cursor"] = page["nextCursor"]


async def unread_count(api: httpx.AsyncClient, who: Account) -> int:
    response = await api.get("/notify/notifications", params={"limit": 1}, headers=who.headers)
    assert response.status_code == 200, response.text
    count: int = response.json()["unreadCount"]
    return count


async def stored(stack: Stack, who: Account) -> list[Document]:
    """Every notification document of `who` in the store, soft-deleted ones included."""
    client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(stack.mongo.address)
    try:
        collection = client[stack.mongo_database][COLLECTION]
        documents: list[Document] = await collection.find({"userId": who.id}).to_list(None)
        return documents
    finally:
        client.close()


async def outbox_rows(stack: Stack) -> dict[str, int]:
    """Events each service's outbox still holds (not yet acknowledged by Kafka)."""
    counts: dict[str, int] = {}
    for name in OUTBOX_SERVICES:
        engine = create_async_engine(stack.postgres.url(stack.database(name)))
        try:
            async with engine.connect() as connection:
                counts[name] = (
                    await connection.execute(text("SELECT count(*) FROM outbox"))
                ).scalar_one()
        finally:
            await engine.dispose()
    return counts


async def settled(stack: Stack, *, within: float = 120.0) -> float:
    """Wait until every event written so far is in the notification store: the outboxes are
    empty and the notification group has committed the end of every partition. Returns the
    seconds it took."""
    started = time.monotonic()
    settings = stack.notification_settings

    async def done() -> bool:
        if any((await outbox_rows(stack)).values()):
            return False
        return await caught_up(settings, CONSUMER_GROUP)

    async with asyncio.timeout(within):
        while not await done():  # noqa: ASYNC110 - polling servers, not a local flag
            await asyncio.sleep(0.25)
    return time.monotonic() - started


async def metric(stack: Stack, service: str, name: str) -> float:
    """The sum of a Prometheus counter's samples on the service (this process's since start)."""
    async with httpx.AsyncClient(base_url=stack.url(service), timeout=10) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    total = 0.0
    for line in response.text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample.split("{", 1)[0] == name:
            total += float(value)
    return total


@dataclass
class Pushes:
    """Real-time pushes received on users' channels, counted per notification id."""

    received: Counter[str] = field(default_factory=Counter)
    first: asyncio.Event = field(default_factory=asyncio.Event)

    def of(self, notification_ids: Iterable[str]) -> dict[str, int]:
        """How often each of these notifications was pushed."""
        return {id_: self.received[id_] for id_ in notification_ids}

    async def listen(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                push = json.loads(message["data"])
                assert push["event"] == "notification", push
                self.received[push["data"]["id"]] += 1
                self.first.set()

    async def quiet(self, seconds: float = 1.0) -> None:
        """Until no push came for `seconds` (a late duplicate would still be counted)."""
        while True:
            before = sum(self.received.values())
            await asyncio.sleep(seconds)
            if sum(self.received.values()) == before:
                return


@asynccontextmanager
async def pushes_to(stack: Stack, *users: Account) -> AsyncIterator[Pushes]:
    """Subscribed (confirmed) to the users' push channels for the duration."""
    settings = stack.notification_settings
    client = RedisClient.from_url(settings.redis_url)
    pushes = Pushes()
    try:
        async with client.pubsub() as pubsub:
            channels = [push_channel(settings, user.id) for user in users]
            await pubsub.subscribe(*channels)
            confirmed = 0
            async with asyncio.timeout(10):
                while confirmed < len(channels):
                    message = await pubsub.get_message(timeout=1.0)
                    confirmed += message is not None and message["type"] == "subscribe"
            listener = asyncio.create_task(pushes.listen(pubsub))
            try:
                yield pushes
            finally:
                listener.cancel()
                with suppress(asyncio.CancelledError):
                    await listener
    finally:
        await client.aclose()
