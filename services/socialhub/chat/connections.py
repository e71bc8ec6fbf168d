"""Who is connected to this instance: accepted with a token, checked again while connected,
and reached by pushes on `push:user:<id>` through a Socket.IO room of their own."""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import socketio
from prometheus_client import Counter, Gauge

from socialhub.chat.engine import SocketEngine
from socialhub.chat.fanout import Fanout, FanoutUnavailableError, decode_event
from socialhub.chat.presence import Membership
from socialhub.chat.service import ChatService
from socialhub.chat.verify import (
    AuthUnavailableError,
    TokenRejectedError,
    TokenVerifier,
    token_from,
)
from socialhub.kit.identity import Principal

log = logging.getLogger(__name__)

CONNECTIONS = Gauge("chat_connections", "Socket.IO connections on this instance")
REFUSED = Counter("chat_connections_refused_total", "Refused connections, by reason", ["reason"])
# Socket.IO's own events: a push must not impersonate them.
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "error"})


@dataclass(eq=False)
class Connection:
    sid: str
    user: Principal
    token: str  # checked again every chat_token_recheck_seconds
    checked_at: float  # monotonic
    rooms: set[str] = field(default_factory=set)
    # join, leave and disconnect of one connection run one at a time
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False
    sent_at: deque[float] = field(default_factory=deque)
    typed_at: dict[str, float] = field(default_factory=dict)


def personal_room(user_id: object) -> str:
    """Each socket's Socket.IO room for pushes (`:` keeps it apart from chat room ids)."""
    return f"user:{user_id}"


def _refused(reason: str, code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    REFUSED.labels(reason).inc()
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code, "message": message})


class Connections:
    """The registry. `on_closed(connection)` runs under the connection's lock when it ends (the
    rooms it was in are left there)."""

    def __init__(
        self,
        engine: SocketEngine,
        chat: ChatService,
        verifier: TokenVerifier,
        fanout: Fanout,
        on_closed: Callable[[Connection], Awaitable[None]],
    ) -> None:
        self.engine = engine
        self.chat = chat
        self.verifier = verifier
        self.fanout = fanout
        self.on_closed = on_closed
        self.by_sid: dict[str, Connection] = {}

    def get(self, sid: str) -> Connection | None:
        return self.by_sid.get(sid)

    def memberships(self) -> Iterator[Membership]:
        for conn in list(self.by_sid.values()):
            for room_id in list(conn.rooms):
                yield room_id, conn.sid, conn.user

    async def connect(self, sid: str, environ: Mapping[str, Any], auth: object) -> None:
        try:
            token = token_from(environ, auth)
            user = await self.verifier.verify(token)
        except TokenRejectedError as exc:
            raise _refused("unauthorized", "unauthorized", str(exc)) from None
        except AuthUnavailableError as exc:
            log.warning("token check failed: %s", exc)
            raise _refused(
                "auth_unavailable",
                "unavailable",
                "authentication service unavailable, retry shortly",
            ) from None
        try:
            await self.fanout.acquire(
                self.chat.push_channel(user.id), partial(self._on_push, str(user.id))
            )
        except FanoutUnavailableError:
            raise _refused(
                "redis_unavailable", "unavailable", "chat unavailable, retry shortly"
            ) from None
        self.by_sid[sid] = Connection(sid, user, token, time.monotonic())
        await self.engine.enter_room(sid, personal_room(user.id))
        CONNECTIONS.inc()

    async def disconnect(self, sid: str, reason: object = None) -> None:
        conn = self.by_sid.pop(sid, None)
        if conn is None:
            return
        CONNECTIONS.dec()
        async with conn.lock:
            conn.closed = True
            await self.on_closed(conn)
        await self.fanout.release(self.chat.push_channel(conn.user.id))

    async def disconnect_all(self) -> None:
        """On shutdown: let clients reconnect elsewhere at once, and clean up after them."""
        for sid in list(self.by_sid):
            await self.engine.disconnect(sid)

    async def recheck_tokens(self) -> None:
        """Until cancelled: check each connection's token again once per
        chat_token_recheck_seconds, so a logout, a password reset or the token's expiry ends
        connections opened before it; and forget connections the transport lost while they
        were being accepted (python-socketio then reports no disconnect)."""
        interval = self.chat.settings.chat_token_recheck_seconds
        while True:
            await asyncio.sleep(min(interval, 1.0))
            now = time.monotonic()
            verdicts: dict[str, str | None] = {}  # token -> why it is refused (None: fine)
            for conn in list(self.by_sid.values()):
                if self.engine.transport_lost(conn.sid):
                    await self.disconnect(conn.sid)
                    await self.engine.forget(conn.sid)
                    continue
                if now - conn.checked_at < interval:
                    continue
                if conn.token not in verdicts:
                    try:
                        await self.verifier.verify(conn.token)
                        verdicts[conn.token] = None
                    except TokenRejectedError as exc:
                        verdicts[conn.token] = str(exc)
                    except AuthUnavailableError:
                        continue  # the auth service's trouble is not the user's: next round
                conn.checked_at = now
                if (reason := verdicts[conn.token]) is not None:
                    await self.engine.emit(
                        "error",
                        {"event": "connect", "code": "unauthorized", "message": reason},
                        to=conn.sid,
                    )
                    await self.engine.disconnect(conn.sid)

    async def _on_push(self, user_id: str, raw: str) -> None:
        decoded = decode_event(raw)
        if decoded is None or decoded[0] in RESERVED_EVENTS:
            log.warning("dropped a malformed or reserved push for user %s", user_id)
            return
        event, data, _ = decoded
        await self.engine.broadcast(personal_room(user_id), event, data)
