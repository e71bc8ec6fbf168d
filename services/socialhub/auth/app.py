"""The auth service's ASGI app (`uvicorn --factory socialhub.auth.app:create_app`)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from socialhub.auth.mail import create_mailer
from socialhub.auth.routes import router
from socialhub.auth.service import AuthService
from socialhub.auth.settings import AuthSettings
from socialhub.kit.app import create_app as create_service_app
from socialhub.kit.app import resources
from socialhub.kit.events.outbox import Outbox, OutboxRelay


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    settings = settings or AuthSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with resources(app) as res:
            database = await res.postgres(settings)
            redis = await res.redis(settings, timeout_seconds=settings.redis_timeout_seconds)
            res.background("outbox-relay", OutboxRelay(database, settings).run)
            auth = AuthService(settings, database, redis, Outbox(settings), create_mailer(settings))
            app.state.auth = auth
            # the local denylist copy the token check falls back on while Redis is down
            res.periodic(
                "revocation-sync",
                auth.sync_denylist,
                every_seconds=settings.revocation_sync_seconds,
            )
            yield

    return create_service_app("auth", settings, lifespan=lifespan, routers=[router])
