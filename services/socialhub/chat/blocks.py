"""Blocks between users, as far as direct messages go: a replica built from USER_TOPIC events.

The users service owns blocks. A direct-message room is closed while either of its two users
blocks the other; the join, the send and `GET /chat/dms/{userId}` check it on every call, so
the replica is kept here in Redis (consumer group `chat-service`, docs/events.md) rather than
asked for over HTTP, like the posts service's graph replica.

One hash per direct-message room, `chat:blocks:<roomId>`: field = the blocker's id, value =
`<1|0>:<event ms>:<occurredAt µs>`, the state of the newest `user.blocked` / `user.unblocked`
applied (newest by the event's `timestamp`, then its `occurredAt`). Duplicates and replays
change nothing, and an older event arriving late never overrides a newer one. Unblocked entries
stay (a few bytes) so that a late block from before the unblock cannot close the room again.
"""

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import cast

from pydantic import ValidationError
from redis.asyncio import Redis

from socialhub.contracts.events import UserBlocked, UserUnblocked
from socialhub.kit.events.consumer import Rejected
from socialhub.kit.events.envelope import Event

log = logging.getLogger(__name__)

CONSUMER_GROUP = "chat-service"
BLOCK_EVENTS = {model.event_type: model for model in (UserBlocked, UserUnblocked)}

# KEYS[1]: a DM's blocks; ARGV: blocker, 1 (blocked) or 0 (unblocked), event ms, occurredAt µs.
# Stores the state unless a newer one is stored; returns how many blockers the room has now.
_APPLY = """
local stored = redis.call('HGET', KEYS[1], ARGV[1])
local newer = true
if stored then
    local ms, us = string.match(stored, '^%d:(%d+):(%d+)$')
    ms, us = tonumber(ms), tonumber(us)
    local new_ms, new_us = tonumber(ARGV[3]), tonumber(ARGV[4])
    newer = new_ms > ms or (new_ms == ms and new_us > us)
end
if newer then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[4])
end
local active = 0
for _, value in ipairs(redis.call('HVALS', KEYS[1])) do
    if string.sub(value, 1, 1) == '1' then active = active + 1 end
end
return active
"""


def blocks_key(room_id: str) -> str:
    return f"chat:blocks:{room_id}"


@dataclass(frozen=True)
class BlockChange:
    """What one event says: `blocker` blocks `blocked` (active) or no longer does."""

    blocker: uuid.UUID
    blocked: uuid.UUID
    active: bool
    event_ms: int
    event_us: int  # the envelope's occurredAt, the tie-breaker


class BlockStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._apply = redis.register_script(_APPLY)

    async def blockers(self, room_id: str) -> set[uuid.UUID]:
        """Who of a direct-message room's two users blocks the other (usually nobody)."""
        states = cast(dict[str, str], await self.redis.hgetall(blocks_key(room_id)))
        return {uuid.UUID(blocker) for blocker, state in states.items() if state.startswith("1:")}

    async def apply(self, room_id: str, changes: Sequence[BlockChange]) -> int:
        """Apply the changes of one room (one round trip); how many blockers it has now."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for change in changes:
                await self._apply(
                    keys=[blocks_key(room_id)],
                    client=pipe,
                    args=[
                        str(change.blocker),
                        int(change.active),
                        change.event_ms,
                        change.event_us,
                    ],
                )
            counts = await pipe.execute()
        return int(counts[-1])


# (room id, its two users, why): make the users' sockets leave the room
Evict = Callable[[str, Sequence[uuid.UUID], str], Awaitable[None]]
CLOSED_BY_BLOCK = "a block between you and this user closed this direct-message room"


class BlockReplica:
    """The `BatchConsumer` handler: applies a batch's blocks, then makes the sockets still in
    a room that is now closed leave it (they could otherwise keep reading and typing)."""

    def __init__(
        self, store: BlockStore, room_of: Callable[[uuid.UUID, uuid.UUID], str], evict: Evict
    ) -> None:
        self.store = store
        self.room_of = room_of
        self.evict = evict

    async def handle(self, events: Sequence[Event]) -> list[Rejected]:
        rejected: list[Rejected] = []
        rooms: dict[str, list[BlockChange]] = {}
        for event in events:
            model = BLOCK_EVENTS.get(event.event_type)
            if model is None:
                continue
            try:
                data = model.of(event.data)
            except ValidationError as exc:
                rejected.append(Rejected(event, f"invalid {event.event_type} data: {exc}"[:500]))
                continue
            if data.blocker_id == data.blocked_id:
                rejected.append(Rejected(event, "a user cannot block themself"))
                continue
            change = BlockChange(
                data.blocker_id,
                data.blocked_id,
                model is UserBlocked,
                data.timestamp,
                _microseconds(event),
            )
            rooms.setdefault(self.room_of(change.blocker, change.blocked), []).append(change)
        for room_id, changes in rooms.items():
            # Evicting again on a redelivered batch is harmless: nobody can be in a closed room.
            if await self.store.apply(room_id, changes) and any(c.active for c in changes):
                await self.evict(room_id, (changes[0].blocker, changes[0].blocked), CLOSED_BY_BLOCK)
        return rejected


def _microseconds(event: Event) -> int:
    return int(event.occurred_at.timestamp() * 1_000_000)
