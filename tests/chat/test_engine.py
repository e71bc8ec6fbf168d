"""SocketEngine pins the python-socketio internals the chat relies on: a real server (uvicorn) and
a real client, no chat service around them. If an upgrade moves an internal, this fails first."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio
import uvicorn

from devstack.waiting import free_port
from socialhub.chat.engine import SocketEngine
from tests.support import eventually

WAIT = 10.0


@dataclass
class Served:
    engine: SocketEngine
    url: str
    sids: asyncio.Queue[str] = field(default_factory=asyncio.Queue)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    sio = socketio.AsyncServer(async_mode="asgi")
    port = free_port()
    served = Served(SocketEngine(sio), f"http://127.0.0.1:{port}")

    async def on_connect(sid: str, environ: dict[str, Any], auth: object) -> None:
        await served.sids.put(sid)

    served.engine.on("connect", on_connect)
    server = uvicorn.Server(
        uvicorn.Config(
            socketio.ASGIApp(sio), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    try:

        async def started() -> bool:
            return bool(server.started)

        await eventually(started, within=WAIT, what="uvicorn started")
        yield served
    finally:
        server.should_exit = True
        await task


@dataclass
class Client:
    sio: socketio.AsyncClient
    received: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)

    async def next(self) -> tuple[str, Any]:
        async with asyncio.timeout(WAIT):
            return await self.received.get()


async def connect(served: Served) -> tuple[Client, str]:
    client = Client(socketio.AsyncClient())

    async def on_any(event: str, data: Any) -> None:
        await client.received.put((event, data))

    client.sio.on("*", on_any)
    await client.sio.connect(served.url, transports=["websocket"])
    async with asyncio.timeout(WAIT):
        sid = await served.sids.get()
    return client, sid


async def test_broadcast_reaches_a_room_skipping_whom_it_is_told(served: Served) -> None:
    first, first_sid = await connect(served)
    second, second_sid = await connect(served)
    try:
        for sid in (first_sid, second_sid):
            await served.engine.enter_room(sid, "room")
        await served.engine.broadcast("room", "skipped", {"n": 1}, skip={first_sid})
        await served.engine.broadcast("room", "everyone", {"n": 2})
        assert await first.next() == ("everyone", {"n": 2})
        assert await second.next() == ("skipped", {"n": 1})
        assert await second.next() == ("everyone", {"n": 2})
        await served.engine.leave_room(second_sid, "room")
        await served.engine.broadcast("room", "after_leaving", None)
        await served.engine.emit("direct", "to second", to=second_sid)
        assert await first.next() == ("after_leaving", None)
        assert await second.next() == ("direct", "to second")
    finally:
        await first.sio.disconnect()
        await second.sio.disconnect()


async def test_a_lost_transport_is_seen_and_forgotten(served: Served) -> None:
    client, sid = await connect(served)
    assert not served.engine.transport_lost(sid)
    await served.engine.enter_room(sid, "room")
    await client.sio.eio.disconnect(abort=True)  # the transport goes, without a goodbye

    async def lost() -> bool:
        return served.engine.transport_lost(sid)

    await eventually(lost, within=WAIT, what="the lost transport seen")
    await served.engine.forget(sid)
    await served.engine.broadcast("room", "nobody", None)  # no participant is left to fail
    assert served.engine.transport_lost("no-such-sid")


async def test_disconnect_ends_the_clients_connection(served: Served) -> None:
    client, sid = await connect(served)
    await served.engine.disconnect(sid)

    async def gone() -> bool:
        return not client.sio.connected

    await eventually(gone, within=WAIT, what="the client disconnected")
    assert served.engine.transport_lost(sid)
