"""Helpers the test suites share: settings for the test profile, in-process apps, event probes."""

import asyncio
import ipaddress
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from pydantic_settings import BaseSettings

from devstack.platform import Platform
from socialhub.contracts.topology import service as service_named

T = TypeVar("T", bound=BaseSettings)


def settings_for(cls: type[T], platform: Platform, service: str, **overrides: Any) -> T:
    """A service's settings exactly as the test platform would run it, plus overrides."""
    env = {
        key.lower(): value for key, value in platform.service_env(service_named(service)).items()
    }
    known = {key: value for key, value in env.items() if key in cls.model_fields}
    return cls(**{**known, **overrides})


@asynccontextmanager
async def app_client(
    app: FastAPI, *, client_ip: str = "203.0.113.7"
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (real stores, background tasks) and talk to it over ASGI."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=asgi_transport(app, client_ip), base_url="http://testserver"
        ) as client,
    ):
        yield client


def asgi_transport(app: FastAPI, client_ip: str) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=app, client=(client_ip, 40000), raise_app_exceptions=False)


def random_ip() -> str:
    """A documentation-range address (RFC 3849), so each test can be its own client.

    IPv6, because the per-IP limits' counters outlive a test run (Redis keeps them for their
    window): among IPv4's 254 documentation addresses a later run soon meets a spent one.
    """
    return str(ipaddress.IPv6Address(0x2001_0DB8 << 96 | uuid.uuid4().int >> 32))


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 10.0, what: str = "condition"
) -> None:
    """Wait until an async check holds: for effects that happen after a response or event."""
    try:
        async with asyncio.timeout(within):
            while not await check():  # noqa: ASYNC110 - polling an effect outside this loop
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {within}s") from None


def unique(prefix: str = "u") -> str:
    """A fresh lowercase name, safe as a username (<= 30 chars)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


PASSWORD = "SecurePass123!"


async def sign_up(
    client: httpx.AsyncClient, prefix: str = "u", name: str = "Test User"
) -> tuple[dict[str, Any], str]:
    """A new account through `POST /auth/signup`: its user object and token."""
    username = unique(prefix)
    response = await client.post(
        "/auth/signup",
        json={
            "name": name,
            "email": f"{username}@example.com",
            "username": username,
            "password": PASSWORD,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["user"], response.json()["token"]


class EventProbe:
    """Reads a topic from the offsets it had when the probe was created."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer

    @classmethod
    @asynccontextmanager
    async def on(cls, bootstrap: str, topic: str) -> AsyncIterator["EventProbe"]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        await consumer.start()
        try:
            partitions = consumer.assignment()
            assert partitions, f"topic {topic} does not exist"
            for tp in partitions:  # resolve "latest" now, before the test acts
                await consumer.position(tp)
            yield cls(consumer)
        finally:
            await consumer.stop()

    async def wait_for(
        self, match: Callable[[dict[str, Any]], bool], *, within: float = 20.0
    ) -> tuple[dict[str, Any], bytes | None]:
        """The first new event matching `match`, with its Kafka key."""
        async with asyncio.timeout(within):
            while True:
                batches = await self.consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        event = json.loads(record.value)
                        if match(event):
                            return event, record.key

    async def collect(
        self, match: Callable[[dict[str, Any]], bool], count: int, *, within: float = 30.0
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        async with asyncio.timeout(within):
            while len(found) < count:
                batches = await self.consumer.getmany(timeout_ms=200)
                found.extend(
                    event
                    for records in batches.values()
                    for record in records
                    if match(event := json.loads(record.value))
                )
        return found

    async def drain(self, *, seconds: float) -> list[dict[str, Any]]:
        """Everything that arrives during the next `seconds`."""
        found: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            batches = await self.consumer.getmany(timeout_ms=int(left * 1000) or 1)
            found.extend(json.loads(r.value) for records in batches.values() for r in records)
        return found


Record = tuple[bytes, dict[str, bytes]]


async def read_topic(
    bootstrap: str, topic: str, count: int, *, then_wait_ms: int = 0
) -> list[Record]:
    """The first `count` records of a topic from its start (value, headers), then whatever
    arrives within `then_wait_ms`: a test that expects exactly `count` sees any extra ones."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    found: list[Record] = []
    try:
        async with asyncio.timeout(20):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    found.extend((r.value, dict(r.headers)) for r in records)
        if then_wait_ms:
            extra = await consumer.getmany(timeout_ms=then_wait_ms)
            found.extend((r.value, dict(r.headers)) for records in extra.values() for r in records)
    finally:
        await consumer.stop()
    return found


def escaped_json(body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """httpx arguments sending `body` as ASCII JSON: lone surrogates stay `\\udXXX` escapes,
    as an attacker sends them (httpx's `json=` cannot encode them)."""
    return {
        "content": json.dumps(body).encode(),
        "headers": {**(headers or {}), "content-type": "application/json"},
    }


def raw_http(port: int, request: bytes, host: str = "127.0.0.1") -> httpx.Response:
    """Bytes no HTTP client would send, over a plain socket; the answer read until the server
    closes (send `Connection: close`)."""
    with socket.create_connection((host, port), timeout=15) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = [(name, value) for name, value in (line.split(": ", 1) for line in header_lines)]
    return httpx.Response(int(status_line.split(" ")[1]), headers=headers, content=body)
