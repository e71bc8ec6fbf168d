"""Helpers the test suites share: settings for the test profile, in-process apps, event probes."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from pydantic_settings import BaseSettings

from devstack.config import SERVICES
from devstack.platform import Platform

T = TypeVar("T", bound=BaseSettings)


def settings_for(cls: type[T], platform: Platform, service: str, **overrides: Any) -> T:
    """A service's settings exactly as the test platform would run it, plus overrides."""
    spec = next(s for s in SERVICES if s.name == service)
    env = {key.lower(): value for key, value in platform.service_env(spec).items()}
    known = {key: value for key, value in env.items() if key in cls.model_fields}
    return cls(**{**known, **overrides})


@asynccontextmanager
async def app_client(app: FastAPI, *,
                     client_ip: str = "203.0.113.7") -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (real stores, background tasks) and talk to it over ASGI."""
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=asgi_transport(app, client_ip),
                                  base_url="http://testserver") as client):
        yield client


def asgi_transport(app: FastAPI, client_ip: str) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=app, client=(client_ip, 40000), raise_app_exceptions=False)


def random_ip() -> str:
    """A documentation-range address (RFC 5737), so each test can be its own client."""
    return f"198.51.100.{uuid.uuid4().int % 254 + 1}"


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 10.0,
                     what: str = "condition") -> None:
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


class EventProbe:
    """Reads a topic from the offsets it had when the probe was created."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer

    @classmethod
    @asynccontextmanager
    async def on(cls, bootstrap: str, topic: str) -> AsyncIterator["EventProbe"]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="latest")
        await consumer.start()
        try:
            partitions = consumer.assignment()
            assert partitions, f"topic {topic} does not exist"
            for tp in partitions:  # resolve "latest" now, before the test acts
                await consumer.position(tp)
            yield cls(consumer)
        finally:
            await consumer.stop()

    async def wait_for(self, match: Callable[[dict[str, Any]], bool], *,
                       within: float = 20.0) -> tuple[dict[str, Any], bytes | None]:
        """The first new event matching `match`, with its Kafka key."""
        async with asyncio.timeout(within):
            while True:
                batches = await self.consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        event = json.loads(record.value)
                        if match(event):
                            return event, record.key

    async def collect(self, match: Callable[[dict[str, Any]], bool], count: int, *,
                      within: float = 30.0) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        async with asyncio.timeout(within):
            while len(found) < count:
                batches = await self.consumer.getmany(timeout_ms=200)
                found.extend(event for records in batches.values() for record in records
                             if match(event := json.loads(record.value)))
        return found

    async def drain(self, *, seconds: float) -> list[dict[str, Any]]:
        """Everything that arrives during the next `seconds`."""
        found: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            batches = await self.consumer.getmany(timeout_ms=int(left * 1000) or 1)
            found.extend(json.loads(r.value) for records in batches.values() for r in records)
        return found
