"""Building a service: the FastAPI app with the kit's middleware, and its lifespan resources."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import Any

from fastapi import APIRouter, FastAPI
from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from redis.asyncio import Redis

from socialhub.gateway import api_documents
from socialhub.kit import health
from socialhub.kit.database import Database
from socialhub.kit.errors import UnexpectedErrorMiddleware, install_error_handlers
from socialhub.kit.inputs import BodyLimitMiddleware
from socialhub.kit.openapi import describe
from socialhub.kit.outages import install_outage_handlers
from socialhub.kit.redis_client import connect_redis
from socialhub.kit.settings import (
    MongoSettings,
    PostgresSettings,
    RedisSettings,
    ServiceSettings,
)
from socialhub.kit.telemetry import TelemetryMiddleware, configure_logging, metrics_endpoint

log = logging.getLogger(__name__)

Lifespan = Callable[[FastAPI], Any]


def create_app(
    service: str, settings: ServiceSettings, *, lifespan: Lifespan, routers: Sequence[APIRouter]
) -> FastAPI:
    configure_logging(service, settings.log_level)
    openapi_url, docs_url = api_documents(service)
    app = FastAPI(
        title=f"SocialHub {service} service",
        lifespan=lifespan,
        openapi_url=openapi_url,
        docs_url=docs_url,
        redoc_url=None,
    )
    app.state.service = service
    app.state.readiness_checks = {}
    install_error_handlers(app)
    install_outage_handlers(app)  # a store down or restarting: 503 + Retry-After
    # the last added runs first: the request id is set before anything can fail or be refused
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(TelemetryMiddleware, service=service, log_requests=settings.access_log)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    app.include_router(health.router)
    for router in routers:
        app.include_router(router)
    describe(app)
    return app


class Resources:
    """What a lifespan opens: registered for `/ready`, closed in reverse order on shutdown.

    Background tasks are cancelled first, so they never outlive the connections they use.
    """

    def __init__(self, app: FastAPI, stack: AsyncExitStack) -> None:
        self.app = app
        self.stack = stack
        self.tasks: list[asyncio.Task[None]] = []

    async def postgres(self, settings: PostgresSettings) -> Database:
        database = await self.stack.enter_async_context(Database.connect(settings))
        self.app.state.database = database
        self.app.state.readiness_checks["postgres"] = database.ping
        return database

    async def redis(
        self,
        settings: RedisSettings,
        *,
        fail_fast_seconds: float | None = None,
        timeout_seconds: float | None = None,
    ) -> Redis:
        """A store client (a readiness check), or a cache client with `fail_fast_seconds`;
        `timeout_seconds` bounds a store client's commands (socialhub.kit.redis_client)."""
        client = connect_redis(
            settings, fail_fast_seconds=fail_fast_seconds, timeout_seconds=timeout_seconds
        )
        self.stack.push_async_callback(client.aclose)
        if fail_fast_seconds is None:
            self.app.state.readiness_checks["redis"] = client.ping
        return client

    async def mongo(self, settings: MongoSettings) -> AsyncIOMotorDatabase[dict[str, Any]]:
        """The service's MongoDB database (motor); connecting is lazy, `/ready` pings it."""
        client: AsyncIOMotorClient[dict[str, Any]] = AsyncIOMotorClient(
            settings.mongo_url,
            tz_aware=True,
            serverSelectionTimeoutMS=settings.mongo_timeout_ms,
            connectTimeoutMS=settings.mongo_timeout_ms,
            maxPoolSize=settings.mongo_max_pool_size,
        )
        self.stack.callback(client.close)
        database = client[settings.mongo_database]
        self.app.state.readiness_checks["mongo"] = lambda: database.command("ping")
        return database

    def background(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = asyncio.create_task(_log_crash(name, work), name=name)
        self.tasks.append(task)

    def periodic(
        self, name: str, work: Callable[[], Awaitable[object]], *, every_seconds: float
    ) -> None:
        """Run `work` every `every_seconds` until shutdown; a failed run (its store away for a
        while) is logged and the next run tries again."""

        async def loop() -> None:
            while True:
                try:
                    await work()
                except Exception as exc:
                    log.warning("%s failed; next run in %.0fs: %r", name, every_seconds, exc)
                await asyncio.sleep(every_seconds)

        self.background(name, loop)

    async def _cancel_tasks(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with suppress(asyncio.CancelledError):
                await task


@asynccontextmanager
async def resources(app: FastAPI) -> AsyncIterator[Resources]:
    async with AsyncExitStack() as stack:
        res = Resources(app, stack)
        try:
            yield res
        finally:
            log.info("shutting down")
            await res._cancel_tasks()


async def _log_crash(name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        await work()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background task %s stopped", name)
        raise
