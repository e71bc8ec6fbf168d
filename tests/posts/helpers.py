"""Callers, media samples, the follow graph as USER_TOPIC events, and direct database access."""

import struct
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from sqlalchemy import Table, func, select

from socialhub.kit.database import Database
from socialhub.kit.events.envelope import Event
from socialhub.kit.identity import USER_PAYLOAD_HEADER, Principal
from socialhub.kit.settings import PostgresSettings
from socialhub.posts.models import blocks, follows, posts
from tests.support import eventually, unique

DEAD_ADDRESS = "127.0.0.1:9"  # the discard port: nothing listens, connections are refused


def someone(prefix: str = "u") -> Principal:
    """A caller; the posts service needs no account, only the gateway's verified header."""
    return Principal(id=uuid.uuid4(), username=unique(prefix))


def as_user(user: Principal) -> dict[str, str]:
    return {USER_PAYLOAD_HEADER: user.header_value()}


async def create_post(
    client: httpx.AsyncClient, author: Principal, content: str = "hello", visibility: str = "public"
) -> dict[str, Any]:
    response = await client.post(
        "/posts/", headers=as_user(author), json={"content": content, "visibility": visibility}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def page_ids(
    client: httpx.AsyncClient, viewer: Principal, path: str, **params: Any
) -> tuple[list[str], str | None]:
    response = await client.get(path, headers=as_user(viewer), params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return [item["id"] for item in body["items"]], body["nextCursor"]


async def all_ids(
    client: httpx.AsyncClient, viewer: Principal, path: str, limit: int = 100
) -> list[str]:
    """Every page of a list, followed through its cursors."""
    ids, cursor = await page_ids(client, viewer, path, limit=limit)
    while cursor:
        more, cursor = await page_ids(client, viewer, path, limit=limit, cursor=cursor)
        ids += more
    return ids


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The kit's envelope: {"error": {"status", "code", "message"}, "requestId"}."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"]["status"] == status
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


# -- media samples: the smallest bytes each format's signature check accepts -----------------


def png(width: int = 1, height: int = 1) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(300)
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;" + bytes(300)
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(300)
WEBM = (
    b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81"
    b"\x08\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02" + bytes(300)
)
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(300)
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(300)


# -- the follow graph, published as the users service does -----------------------------------


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Graph:
    """Publishes follow and block events on USER_TOPIC (the shared envelope) and waits until
    the posts service's replica applied them."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, database: Database) -> None:
        self.producer = producer
        self.topic = topic
        self.database = database

    async def publish(
        self,
        event_type: str,
        data: dict[str, Any],
        key: uuid.UUID,
        occurred_at: datetime | None = None,
    ) -> Event:
        event = Event(
            event_type=event_type,
            producer="users",
            data=data,
            occurred_at=occurred_at or datetime.now(UTC),
        )
        await self.producer.send_and_wait(self.topic, event.to_bytes(), key=str(key).encode())
        return event

    async def follow(
        self, follower: Principal, following: Principal, *, ms: int | None = None, wait: bool = True
    ) -> int:
        ms = ms or now_ms()
        await self.publish(
            "user.followed",
            {
                "followerId": str(follower.id),
                "followerUsername": follower.username,
                "followingId": str(following.id),
                "followingUsername": following.username,
                "timestamp": ms,
            },
            key=follower.id,
        )
        if wait:
            await self.applied(follows, follower.id, following.id, ms)
        return ms

    async def unfollow(
        self, follower: Principal, following: Principal, *, ms: int | None = None, wait: bool = True
    ) -> int:
        ms = ms or now_ms()
        await self.publish(
            "user.unfollowed",
            {"followerId": str(follower.id), "followingId": str(following.id), "timestamp": ms},
            key=follower.id,
        )
        if wait:
            await self.applied(follows, follower.id, following.id, ms)
        return ms

    async def block(
        self, blocker: Principal, blocked: Principal, *, ms: int | None = None, wait: bool = True
    ) -> int:
        ms = ms or now_ms()
        await self.publish(
            "user.blocked",
            {"blockerId": str(blocker.id), "blockedId": str(blocked.id), "timestamp": ms},
            key=blocker.id,
        )
        if wait:
            await self.applied(blocks, blocker.id, blocked.id, ms)
        return ms

    async def unblock(
        self, blocker: Principal, blocked: Principal, *, ms: int | None = None, wait: bool = True
    ) -> int:
        ms = ms or now_ms()
        await self.publish(
            "user.unblocked",
            {"blockerId": str(blocker.id), "blockedId": str(blocked.id), "timestamp": ms},
            key=blocker.id,
        )
        if wait:
            await self.applied(blocks, blocker.id, blocked.id, ms)
        return ms

    async def applied(self, table: Table, source: uuid.UUID, target: uuid.UUID, ms: int) -> None:
        """Wait until the replica's row carries the event of time `ms` (or a newer one)."""

        async def done() -> bool:
            row = await self.edge(table, source, target)
            return row is not None and row["event_ms"] >= ms

        await eventually(done, within=30, what=f"{table.name} {source}->{target} applied")

    async def edge(
        self, table: Table, source: uuid.UUID, target: uuid.UUID
    ) -> dict[str, Any] | None:
        first, second = table.primary_key.columns.values()
        async with self.database.transaction() as session:
            row = (
                await session.execute(select(table).where(first == source, second == target))
            ).first()
        return dict(row._mapping) if row else None


async def post_rows(database: Database, author: uuid.UUID) -> int:
    async with database.transaction() as session:
        return int(
            (
                await session.execute(
                    select(func.count()).select_from(posts).where(posts.c.author_id == author)
                )
            ).scalar_one()
        )


@asynccontextmanager
async def database_at(url: str) -> AsyncIterator[Database]:
    async with Database.connect(PostgresSettings(database_url=url)) as database:
        yield database
