"""Callers, users and direct database access for the users service's tests."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from socialhub.kit.events.envelope import Event
from socialhub.kit.identity import USER_PAYLOAD_HEADER, Principal
from tests.support import unique


def as_user(user: Principal) -> dict[str, str]:
    """The header the gateway sets after verifying the caller's token."""
    return {USER_PAYLOAD_HEADER: user.header_value()}


def someone(prefix: str = "u") -> Principal:
    """An account the users service has never heard of (no event, no request yet)."""
    return Principal(id=uuid.uuid4(), username=unique(prefix))


async def new_user(client: httpx.AsyncClient, prefix: str = "u") -> Principal:
    """An account whose profile exists (created just in time by its first request)."""
    user = someone(prefix)
    response = await client.get("/users/me", headers=as_user(user))
    assert response.status_code == 200, response.text
    return user


async def profile(client: httpx.AsyncClient, viewer: Principal, user: Principal) -> dict[str, Any]:
    response = await client.get(f"/users/{user.id}", headers=as_user(viewer))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def counts(
    client: httpx.AsyncClient, viewer: Principal, user: Principal
) -> tuple[int, int, int]:
    """(followers, following, posts) as the API shows them."""
    body = await profile(client, viewer, user)
    return body["followersCount"], body["followingCount"], body["postsCount"]


async def follow(
    client: httpx.AsyncClient, follower: Principal, target: Principal
) -> httpx.Response:
    return await client.post(f"/users/follow/{target.id}", headers=as_user(follower))


async def unfollow(
    client: httpx.AsyncClient, follower: Principal, target: Principal
) -> httpx.Response:
    return await client.delete(f"/users/follow/{target.id}", headers=as_user(follower))


async def block(
    client: httpx.AsyncClient, blocker: Principal, blocked: Principal
) -> httpx.Response:
    return await client.post(f"/users/block/{blocked.id}", headers=as_user(blocker))


async def unblock(
    client: httpx.AsyncClient, blocker: Principal, blocked: Principal
) -> httpx.Response:
    return await client.delete(f"/users/block/{blocked.id}", headers=as_user(blocker))


async def list_ids(
    client: httpx.AsyncClient, viewer: Principal, user: Principal, which: str, limit: int = 100
) -> list[str]:
    """Every id on a followers/following list, following the cursors."""
    ids: list[str] = []
    url: str | None = f"/users/{user.id}/{which}?limit={limit}"
    while url:
        response = await client.get(url, headers=as_user(viewer))
        assert response.status_code == 200, response.text
        ids.extend(item["id"] for item in response.json()["items"])
        cursor = response.json()["nextCursor"]
        url = f"/users/{user.id}/{which}?limit={limit}&cursor={cursor}" if cursor else None
    return ids


async def publish(bootstrap: str, topic: str, events: list[Event], key: str) -> None:
    """Events as another service's outbox relay would send them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(topic, event.to_bytes(), key=key.encode())
    finally:
        await producer.stop()


class UsersDb:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str) -> AsyncIterator["UsersDb"]:
        engine = create_async_engine(url)
        try:
            yield cls(engine)
        finally:
            await engine.dispose()

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.begin() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.begin() as conn:
            return list((await conn.execute(text(sql), params)).all())

    async def execute(self, sql: str, **params: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(sql), params)
