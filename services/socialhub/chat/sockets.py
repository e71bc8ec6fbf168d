"""The Socket.IO side: connect with a token, join and leave rooms, send, type, receive pushes.

Clients emit `join_room {roomId}`, `leave_room {roomId}`, `send_message {roomId, message}` and
`typing {roomId}`; they receive `message_history`, `room_users`, `new_message`, `user_typing`,
anything pushed to them on `push:user:<id>`, and `error {event, code, message, roomId?}` when a
request is refused. Every handler also answers an ack callback with `{"ok": true, ...}` or
`{"ok": false, "error": {...}}`.

This module dispatches the client events and answers their acks; who is connected lives in
`connections`, rooms and what their Redis channels deliver in `membership`, and every call into
python-socketio goes through `engine`.
"""

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

import socketio
from prometheus_client import Counter
from redis.exceptions import RedisError

from socialhub.chat.connections import Connection, Connections
from socialhub.chat.engine import SocketEngine
from socialhub.chat.fanout import Fanout, encode_event
from socialhub.chat.membership import RoomMembership
from socialhub.chat.presence import Presence
from socialhub.chat.rooms import parse_room
from socialhub.chat.service import ChatService, storage_unavailable
from socialhub.chat.verify import TokenVerifier
from socialhub.kit.errors import (
    ApiError,
    bad_request,
    forbidden,
    payload_too_large,
    rate_limited,
)
from socialhub.kit.inputs import check_line, check_text

log = logging.getLogger(__name__)

EVENTS = Counter(
    "chat_events_total", "Client events handled, by event and outcome", ["event", "outcome"]
)

Ack = dict[str, Any]


def error_event(error: ApiError, event: str, room_id: str | None = None) -> dict[str, str]:
    """The `error` event's payload: which client event failed, why, and for which room."""
    payload = {"event": event, "code": error.code, "message": error.message}
    if room_id is not None:
        payload["roomId"] = room_id
    return payload


class ChatSockets:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        chat: ChatService,
        verifier: TokenVerifier,
        instance_id: str,
    ) -> None:
        settings = chat.settings
        self.engine = SocketEngine(sio)
        self.chat = chat
        self.settings = settings
        self.fanout = Fanout(chat.redis, settings.channel(f"chat:instance:{instance_id}"))
        self.presence = Presence(
            chat.redis,
            instance_id,
            chat.room_channel,
            heartbeat_seconds=settings.chat_heartbeat_seconds,
            instance_ttl_seconds=settings.chat_instance_ttl_seconds,
        )
        self.rooms = RoomMembership(
            self.engine,
            chat,
            self.fanout,
            self.presence,
            connection=lambda sid: self.connections.get(sid),
        )
        self.connections = Connections(
            self.engine, chat, verifier, self.fanout, on_closed=self.rooms.leave_all
        )

        self.engine.on("connect", self.connections.connect)
        self.engine.on("disconnect", self.connections.disconnect)
        handlers: Mapping[str, Callable[[Connection, Any], Awaitable[Ack]]] = {
            "join_room": self.join_room,
            "leave_room": self.leave_room,
            "send_message": self.send_message,
            "typing": self.typing,
        }
        for event, handler in handlers.items():
            self.engine.on(event, partial(self._handle, event, handler))

    async def _handle(
        self,
        event: str,
        handler: Callable[[Connection, Any], Awaitable[Ack]],
        sid: str,
        data: Any = None,
        *_: Any,
    ) -> Ack:
        """Run one client event: refusals, and failures of this event alone, become an
        `error` event and a failed ack; the connection and its other events carry on."""
        conn = self.connections.get(sid)
        try:
            if conn is None or conn.closed:
                raise ApiError(409, "not_connected", "the connection is closing")
            result = await handler(conn, data)
        except ApiError as exc:
            return await self._refuse(sid, event, data, exc)
        except Exception:
            log.exception("handling %s failed", event)
            return await self._refuse(
                sid, event, data, ApiError(500, "internal_error", "internal server error")
            )
        EVENTS.labels(event, "ok").inc()
        return result

    async def _refuse(self, sid: str, event: str, data: Any, error: ApiError) -> Ack:
        EVENTS.labels(event, error.code).inc()
        room_id = data.get("roomId") if isinstance(data, dict) else None
        payload = error_event(error, event, room_id if isinstance(room_id, str) else None)
        await self.engine.emit("error", payload, to=sid)
        return {"ok": False, "error": payload}

    async def join_room(self, conn: Connection, data: Any) -> Ack:
        room = await self.chat.authorize(_field(data, "roomId"), conn.user.id)
        if not await self.rooms.join(conn, room.id):
            return {"ok": True, "roomId": room.id, "alreadyJoined": True}
        return {"ok": True, "roomId": room.id}

    async def leave_room(self, conn: Connection, data: Any) -> Ack:
        room_id = _field(data, "roomId")
        await self.rooms.leave(conn, room_id)
        return {"ok": True, "roomId": room_id}

    async def send_message(self, conn: Connection, data: Any) -> Ack:
        room_id = _field(data, "roomId")
        message = _field(data, "message", check_text)
        if room_id not in conn.rooms:
            raise forbidden("join the room before sending to it")
        if not message.strip():
            raise bad_request("message must not be empty")
        size = len(message.encode())
        if size > self.settings.chat_message_max_bytes:
            raise payload_too_large(
                f"message is {size} bytes; the limit is "
                f"{self.settings.chat_message_max_bytes} bytes"
            )
        self._count_send(conn)
        try:
            # a block reaches the sockets already in the room by pub/sub: check it here too
            await self.chat.refuse_if_blocked(parse_room(room_id), conn.user.id)
            message_id = await self.chat.messages.append(
                room_id,
                str(conn.user.id),
                conn.user.username,
                message,
                self.chat.room_channel(room_id),
            )
        except RedisError:
            raise storage_unavailable() from None
        return {"ok": True, "id": message_id, "roomId": room_id}

    async def typing(self, conn: Connection, data: Any) -> Ack:
        room_id = _field(data, "roomId")
        if room_id not in conn.rooms:
            raise forbidden("join the room before typing in it")
        now = time.monotonic()
        if now - conn.typed_at.get(room_id, -1e9) < self.settings.chat_typing_interval_seconds:
            return {"ok": True, "roomId": room_id, "throttled": True}
        conn.typed_at[room_id] = now
        payload = {"roomId": room_id, "userId": str(conn.user.id), "username": conn.user.username}
        try:
            await self.chat.redis.publish(
                self.chat.room_channel(room_id), encode_event("user_typing", payload, skip=conn.sid)
            )
        except RedisError:
            raise storage_unavailable() from None
        return {"ok": True, "roomId": room_id}

    def _count_send(self, conn: Connection) -> None:
        """At most chat_send_limit messages per chat_send_window_seconds per connection."""
        now = time.monotonic()
        window = self.settings.chat_send_window_seconds
        while conn.sent_at and now - conn.sent_at[0] >= window:
            conn.sent_at.popleft()
        if len(conn.sent_at) >= self.settings.chat_send_limit:
            retry = window - (now - conn.sent_at[0])
            raise rate_limited(
                f"at most {self.settings.chat_send_limit} messages per "
                f"{window:g}s; retry in {retry:.1f}s"
            )
        conn.sent_at.append(now)


def _field(data: Any, name: str, rule: Callable[[str], str] = check_line) -> str:
    """A string field of a client event, held to the kit's text rule."""
    if not isinstance(data, dict):
        raise bad_request(f"expected an object with {name}")
    value = data.get(name)
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    try:
        return rule(value)
    except ValueError as exc:
        raise bad_request(f"{name} {exc}") from None
