"""The notification service's ASGI app (`uvicorn --factory socialhub.notifications.app:create_app`).

Each instance runs the API and one member of the `notification-group` consumer group: instances
share the topics' partitions, so any number up to the partition count consume in parallel.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from socialhub.contracts.events import POST_TOPIC, USER_TOPIC
from socialhub.kit.app import create_app as create_service_app
from socialhub.kit.app import resources
from socialhub.kit.events.consumer import BatchConsumer
from socialhub.notifications.ingest import NotificationIngest
from socialhub.notifications.routes import router
from socialhub.notifications.settings import NotificationSettings
from socialhub.notifications.store import NotificationStore

CONSUMER_GROUP = "notification-group"
TOPICS = (POST_TOPIC, USER_TOPIC)


def consumer_for(settings: NotificationSettings, ingest: NotificationIngest) -> BatchConsumer:
    return BatchConsumer(
        settings,
        topics=TOPICS,
        group=CONSUMER_GROUP,
        handler=ingest.handle,
        batch_size=settings.consumer_batch_size,
    )


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    settings = settings or NotificationSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with resources(app) as res:
            database = await res.mongo(settings)
            redis = await res.redis(settings)
            store = NotificationStore(database, ttl_days=settings.notification_ttl_days)
            if not await store.ensure_indexes():
                res.periodic(
                    "expiry-sweep",
                    store.expire,
                    every_seconds=settings.expiry_sweep_interval_seconds,
                )
            ingest = NotificationIngest(store, redis, settings)
            res.background("notification-consumer", consumer_for(settings, ingest).run)
            app.state.notifications = store
            yield

    return create_service_app("notifications", settings, lifespan=lifespan, routers=[router])
