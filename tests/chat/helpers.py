"""Chat test helpers: real processes on free ports, users from the real auth service, and a
Socket.IO client that records every event it receives."""

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import socketio

from devstack.paths import ROOT
from devstack.platform import Platform, wait_healthy
from devstack.process import ManagedProcess
from devstack.waiting import free_port
from socialhub.contracts.topology import service
from tests.support import sign_up

SOCKETIO_PATH = "/chat/socket.io"
WAIT_SECONDS = 15.0


@dataclass
class Instance:
    """One service process (`python -m socialhub.<name> serve`) on its own port."""

    process: ManagedProcess
    port: int

    @classmethod
    def create(cls, platform: Platform, name: str, **env: str) -> "Instance":
        port = free_port()
        process = ManagedProcess(
            name=f"{name}-{port}",
            argv=[sys.executable, "-m", f"socialhub.{name}", "serve"],
            run_dir=platform.run_dir,
            env={**platform.service_env(service(name), port), **env},
            cwd=ROOT,
        )
        return cls(process, port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Instance":
        self.process.start()
        wait_healthy(self.process, self.url)
        return self

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        """SIGKILL: the instance dies without cleaning anything up."""
        pid = self.process.pid()
        assert pid is not None, f"{self.process.name} is not running"
        os.killpg(pid, signal.SIGKILL)
        self.process.stop()  # reaps it and removes the pid file


@dataclass(frozen=True)
class User:
    id: str
    username: str
    token: str

    @property
    def header(self) -> dict[str, str]:
        """What the gateway forwards after checking the token (direct calls to a service)."""
        return {"x-user-payload": f'{{"id":"{self.id}","username":"{self.username}"}}'}


async def new_user(auth: httpx.AsyncClient) -> User:
    user, token = await sign_up(auth, "c", name="Chat Tester")
    return User(user["id"], user["username"], token)


def open_room() -> str:
    return f"room-{uuid.uuid4().hex[:12]}"


@dataclass
class ChatClient:
    """A python-socketio client that keeps every event it receives, in order."""

    sio: socketio.AsyncClient = field(
        default_factory=lambda: socketio.AsyncClient(reconnection=False)
    )
    events: list[tuple[str, Any]] = field(default_factory=list)
    connect_error: Any = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.sio.on("*", self._record)
        self.sio.on("connect_error", self._refused)
        self.sio.on("disconnect", self._disconnected)

    async def _record(self, event: str, data: Any = None) -> None:
        self.events.append((event, data))
        self._arrived.set()

    async def _refused(self, data: Any = None) -> None:
        self.connect_error = data

    async def _disconnected(self, *_: Any) -> None:
        await self._record("disconnect")

    async def connect(
        self,
        base_url: str,
        token: str | None,
        *,
        via: str = "auth",
        path: str = SOCKETIO_PATH,
        transport: str = "websocket",
    ) -> None:
        url, headers, auth = base_url, {}, None
        if token is not None and via == "auth":
            auth = {"token": token}
        elif token is not None and via == "header":
            headers = {"Authorization": f"Bearer {token}"}
        elif token is not None and via == "query":
            url = f"{base_url}?token={token}"
        await self.sio.connect(
            url,
            headers=headers,
            auth=auth,
            socketio_path=path,
            transports=[transport],
            wait_timeout=WAIT_SECONDS,
        )

    async def call(self, event: str, data: Any) -> Any:
        return await self.sio.call(event, data, timeout=WAIT_SECONDS)

    async def join(self, room_id: str) -> list[dict[str, Any]]:
        """Join and return the room's history (the `message_history` this join produced)."""
        start = len(self.events)
        ack = await self.call("join_room", {"roomId": room_id})
        assert ack["ok"], ack
        history = await self.wait_for(
            "message_history", lambda d: d["roomId"] == room_id, since=start
        )
        messages: list[dict[str, Any]] = history["messages"]
        return messages

    def received(
        self, event: str, match: Callable[[Any], bool] = lambda _: True, *, since: int = 0
    ) -> list[Any]:
        return [data for name, data in self.events[since:] if name == event and match(data)]

    async def wait_for(
        self,
        event: str,
        match: Callable[[Any], bool] = lambda _: True,
        *,
        since: int = 0,
        within: float = WAIT_SECONDS,
    ) -> Any:
        """The first `event` (from index `since`) that matches; fails after `within` seconds."""
        async with asyncio.timeout(within):
            while True:
                found = self.received(event, match, since=since)
                if found:
                    return found[0]
                self._arrived.clear()
                await self._arrived.wait()

    async def round_trip(self) -> None:
        """Returns once everything the server sent before now has arrived (one connection
        keeps order): only after this does "X did not arrive" prove anything."""
        ack = await self.call("typing", {"roomId": "round-trip-probe"})
        assert ack["ok"] is False

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


async def refused_join(client: ChatClient, room_id: str) -> dict[str, Any]:
    """Join `room_id`, expect a refusal, and prove no history or presence came with it."""
    mark = len(client.events)
    ack = await client.call("join_room", {"roomId": room_id})
    assert ack["ok"] is False
    error: dict[str, Any] = await client.wait_for(
        "error", lambda d: d.get("roomId") == room_id, since=mark
    )
    assert error == ack["error"]
    await client.round_trip()
    leaked = [
        (n, d)
        for n, d in client.events[mark:]
        if n in ("message_history", "room_users", "new_message")
    ]
    assert leaked == []
    return error


def user_ids(room_users: dict[str, Any]) -> set[str]:
    return {user["userId"] for user in room_users["users"]}
