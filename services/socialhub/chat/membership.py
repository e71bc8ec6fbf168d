"""Rooms on this instance: the join protocol, leaving, and delivering what a room's Redis channel
carries (messages, presence, typing, evictions) to the local sockets in it.

Everything a room's members receive travels through the room's channel, also to members on this
instance, so every client sees one order.
"""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from redis.exceptions import RedisError

from socialhub.chat.connections import Connection
from socialhub.chat.engine import SocketEngine
from socialhub.chat.fanout import Fanout, FanoutUnavailableError, decode_event
from socialhub.chat.presence import Presence
from socialhub.chat.service import EVICT, REMOVED_FROM_GROUP, ChatService, storage_unavailable
from socialhub.chat.store import stream_id_key
from socialhub.kit.errors import ApiError, bad_request

log = logging.getLogger(__name__)

MAX_ROOMS_PER_CONNECTION = 100
PRESENCE_INTERVAL = 0.5  # seconds between two `room_users` of one room


@dataclass(eq=False)
class Catchup:
    """A joining connection: new messages are held back until its history is sent, then those
    the history (or the held ones) already covered are skipped until a newer one arrives."""

    held: list[Any] | None = field(default_factory=list)
    newest: tuple[int, int] = (-1, -1)  # the newest message id it has been sent

    def takes(self, message: Any) -> bool:
        """Whether the listener sends it `message` (a new_message) directly."""
        if self.held is not None:
            self.held.append(message)
            return False
        return stream_id_key(message["id"]) > self.newest


class RoomMembership:
    def __init__(
        self,
        engine: SocketEngine,
        chat: ChatService,
        fanout: Fanout,
        presence: Presence,
        connection: Callable[[str], Connection | None],
    ) -> None:
        self.engine = engine
        self.chat = chat
        self.fanout = fanout
        self.presence = presence
        self.connection = connection
        self.room_sids: dict[str, set[str]] = {}  # local connections per room
        # Joins take turns, a pool's worth at a time: when thousands of clients reconnect at
        # once (an instance died), the first are served quickly instead of all slowly.
        self.join_slots = asyncio.Semaphore(chat.settings.redis_max_connections)
        # room -> sid -> where a connection that just joined stands (see _enter)
        self.joining: dict[str, dict[str, Catchup]] = {}
        # `room_users` pacing per room (see _presence_changed)
        self.presence_sent_at: dict[str, float] = {}
        self.presence_due: dict[str, Any] = {}
        self.pending: set[asyncio.Task[None]] = set()

    async def join(self, conn: Connection, room_id: str) -> bool:
        """False if the connection is in the room already."""
        async with conn.lock:
            if conn.closed:
                raise ApiError(409, "not_connected", "the connection is closing")
            if room_id in conn.rooms:
                return False
            if len(conn.rooms) >= MAX_ROOMS_PER_CONNECTION:
                raise bad_request(f"a connection joins at most {MAX_ROOMS_PER_CONNECTION} rooms")
            async with self.join_slots:
                await self._enter(conn, room_id)
        return True

    async def leave(self, conn: Connection, room_id: str) -> None:
        async with conn.lock:
            if room_id not in conn.rooms:
                raise bad_request("you are not in this room")
            try:
                await self._leave(conn, room_id)
            except (RedisError, OSError):
                raise storage_unavailable() from None

    async def leave_all(self, conn: Connection) -> None:
        """A closed connection leaves its rooms (the caller holds its lock)."""
        for room_id in list(conn.rooms):
            try:
                await self._leave(conn, room_id)
            except (RedisError, OSError) as exc:
                log.warning("leaving %s on disconnect failed: %s", room_id, exc)

    # -- joining and leaving -----------------------------------------------------------------

    async def _enter(self, conn: Connection, room_id: str) -> None:
        """Join: subscribe, announce presence, send the history, then the live messages.

        The subscription is confirmed before the history is read, so no message falls between
        them; a message can still reach the listener after the history that holds it was read,
        hence the Catchup: every message reaches the connection once, in order.
        """
        catchup = Catchup()
        self.joining.setdefault(room_id, {})[conn.sid] = catchup
        conn.rooms.add(room_id)
        self.room_sids.setdefault(room_id, set()).add(conn.sid)
        try:
            await self.engine.enter_room(conn.sid, room_id)
            await self.fanout.acquire(
                self.chat.room_channel(room_id), partial(self._on_room_event, room_id)
            )
            await self.presence.join(room_id, conn.sid, conn.user)
            history = await self.chat.messages.recent(
                room_id, self.chat.settings.chat_history_on_join
            )
            await self.engine.emit(
                "message_history", {"roomId": room_id, "messages": history}, to=conn.sid
            )
            if history:
                catchup.newest = stream_id_key(history[-1]["id"])
            while catchup.held:
                messages, catchup.held = catchup.held, []
                for message in messages:
                    if stream_id_key(message["id"]) > catchup.newest:
                        await self.engine.emit("new_message", message, to=conn.sid)
                        catchup.newest = stream_id_key(message["id"])
            catchup.held = None
        except (FanoutUnavailableError, RedisError, OSError) as exc:
            log.warning("joining %s failed: %s", room_id, exc)
            await self._undo_enter(conn, room_id)
            raise storage_unavailable() from None

    async def _undo_enter(self, conn: Connection, room_id: str) -> None:
        try:
            await self._leave(conn, room_id)
        except (RedisError, OSError) as exc:
            log.warning("undoing the join of %s failed: %s", room_id, exc)

    async def _leave(self, conn: Connection, room_id: str) -> None:
        if room_id not in conn.rooms:
            return
        conn.rooms.discard(room_id)
        conn.typed_at.pop(room_id, None)
        self._caught_up(room_id, conn.sid)
        sids = self.room_sids.get(room_id, set())
        sids.discard(conn.sid)
        if not sids:
            self.room_sids.pop(room_id, None)
            self.presence_sent_at.pop(room_id, None)
        await self.engine.leave_room(conn.sid, room_id)
        try:
            await self.presence.leave(room_id, conn.sid, last_local=not sids)
        finally:
            await self.fanout.release(self.chat.room_channel(room_id))

    def _caught_up(self, room_id: str, sid: str) -> None:
        joining = self.joining.get(room_id)
        if joining is not None:
            joining.pop(sid, None)
            if not joining:
                del self.joining[room_id]

    # -- what Redis delivers -----------------------------------------------------------------

    async def _on_room_event(self, room_id: str, raw: str) -> None:
        decoded = decode_event(raw)
        if decoded is None:
            log.warning("malformed event on room %s", room_id)
            return
        event, data, skip = decoded
        if event == "new_message":
            skip_sids = []
            for sid, catchup in list(self.joining.get(room_id, {}).items()):
                if catchup.takes(data):
                    self._caught_up(room_id, sid)  # later messages are newer still
                else:
                    skip_sids.append(sid)
            await self.engine.broadcast(room_id, event, data, skip_sids)
        elif event == EVICT:
            if isinstance(data, dict):
                # in a task: it waits for the connections' locks, which a join may hold while
                # it waits for this listener to confirm a subscription
                self._spawn(
                    self._evict(
                        room_id,
                        str(data.get("userId")),
                        str(data.get("message", REMOVED_FROM_GROUP)),
                    )
                )
        elif event == "room_users":
            await self._presence_changed(room_id, data)
        else:
            await self.engine.broadcast(room_id, event, data, (skip,) if skip else ())

    async def _presence_changed(self, room_id: str, data: Any) -> None:
        """Send `room_users` at once, unless one went out less than PRESENCE_INTERVAL ago: then
        the latest list goes out when the interval ends. A room filling up with N members
        would otherwise cost N lists to each of N members."""
        if room_id in self.presence_due:
            self.presence_due[room_id] = data  # a newer list replaces the one waiting
            return
        now = asyncio.get_running_loop().time()
        wait = self.presence_sent_at.get(room_id, -PRESENCE_INTERVAL) + PRESENCE_INTERVAL - now
        if wait <= 0:
            self.presence_sent_at[room_id] = now
            await self.engine.broadcast(room_id, "room_users", data)
            return
        self.presence_due[room_id] = data
        self._spawn(self._send_due_presence(room_id, wait))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` beside the listener, which must never wait for it."""
        task = asyncio.create_task(work)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _send_due_presence(self, room_id: str, wait: float) -> None:
        await asyncio.sleep(wait)
        latest = self.presence_due.pop(room_id, None)
        if latest is not None:
            self.presence_sent_at[room_id] = asyncio.get_running_loop().time()
            await self.engine.broadcast(room_id, "room_users", latest)

    async def _evict(self, room_id: str, user_id: str, message: str) -> None:
        """The user's sockets leave the room and are told why (a removed group member, a
        direct-message room closed by a block)."""
        for sid in list(self.room_sids.get(room_id, ())):
            conn = self.connection(sid)
            if conn is None or str(conn.user.id) != user_id:
                continue
            async with conn.lock:
                try:
                    await self._leave(conn, room_id)
                except (RedisError, OSError) as exc:  # it has left locally all the same
                    log.warning("removing %s from %s failed: %s", sid, room_id, exc)
            await self.engine.emit(
                "error",
                {"event": "join_room", "code": "removed", "message": message, "roomId": room_id},
                to=sid,
            )
