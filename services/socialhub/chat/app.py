"""The chat service's ASGI app (`uvicorn --factory socialhub.chat.app:create_app`).

Socket.IO answers under `chat_socketio_path`; everything else (`/health`, `/ready`, `/metrics`,
the HTTP API) goes to the kit's FastAPI app, whose lifespan opens and closes the resources.
"""

import gc
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import socketio
from fastapi import FastAPI
from starlette.types import ASGIApp

from socialhub.chat.blocks import CONSUMER_GROUP, BlockReplica
from socialhub.chat.rooms import dm_room_id
from socialhub.chat.routes import router
from socialhub.chat.service import ChatService
from socialhub.chat.settings import ChatSettings
from socialhub.chat.sockets import ChatSockets
from socialhub.chat.verify import TokenVerifier
from socialhub.contracts.events import USER_TOPIC
from socialhub.kit.app import create_app as create_service_app
from socialhub.kit.app import resources
from socialhub.kit.events.consumer import BatchConsumer

# Client packets are small (a message is at most a few KB): refuse big ones early.
MAX_PACKET_BYTES = 64 * 1024
# Past this wait for a free Redis connection a request fails with "unavailable".
GC_THRESHOLDS = (10_000, 20, 1_000)  # Python's defaults: (700, 10, 10)


def create_app(settings: ChatSettings | None = None) -> ASGIApp:
    settings = settings or ChatSettings()
    # one line per token check would drown the log at thousands of connections
    logging.getLogger("httpx").setLevel(logging.WARNING)
    instance_id = uuid.uuid4().hex[:16]
    sio = socketio.AsyncServer(
        async_mode="asgi",
        cors_allowed_origins=settings.allowed_origins,
        max_http_buffer_size=MAX_PACKET_BYTES,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with resources(app) as res:
            redis = await res.redis(settings)
            verifier = TokenVerifier(settings.auth_service_url, settings.auth_timeout_seconds)
            res.stack.push_async_callback(verifier.aclose)
            chat = ChatService(settings, redis)
            sockets = ChatSockets(sio, chat, verifier, instance_id)
            app.state.chat = chat
            app.state.sockets = sockets
            res.background("fanout", sockets.fanout.run)
            res.background(
                "presence", lambda: sockets.presence.run(sockets.connections.memberships)
            )
            res.background("token-recheck", sockets.connections.recheck_tokens)
            res.background(
                "block-replica",
                BatchConsumer(
                    settings,
                    topics=[USER_TOPIC],
                    group=CONSUMER_GROUP,
                    handler=BlockReplica(chat.blocks, dm_room_id, chat.evict).handle,
                    batch_size=settings.consumer_batch_size,
                ).run,
            )
            _tune_garbage_collector()
            yield
            await sockets.connections.disconnect_all()
            await sockets.presence.withdraw()

    app = create_service_app("chat", settings, lifespan=lifespan, routers=[router])
    combined: ASGIApp = socketio.ASGIApp(
        sio, other_asgi_app=app, socketio_path=settings.chat_socketio_path.strip("/")
    )
    return combined


def _tune_garbage_collector() -> None:
    """Python's cyclic collector rescans every long-lived object (the sockets, queues and tasks
    of thousands of connections) in each full collection: 150-260 ms pauses every few
    seconds at 1,000 busy connections, the largest source of latency spikes we measured
    (README, "Measurements"). What exists after startup is frozen out of it, and collections
    of the older generations are made rarer."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
