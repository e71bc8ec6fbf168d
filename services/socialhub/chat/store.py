"""What the chat keeps in Redis: room history (one capped stream per room) and private groups.

Redis runs with append-only persistence, so both survive restarts of the chat service and of
Redis itself (README: why Redis streams rather than PostgreSQL).

Keys:
    chat:messages:<roomId>        stream; entry id = message id = history cursor
    chat:group:<groupId>          hash: name, ownerId, createdAt
    chat:group:<groupId>:members  set of user ids (the owner included)
"""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis

from socialhub.kit.errors import bad_request, conflict
from socialhub.kit.pagination import decode_cursor, encode_cursor

STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")
STREAM_ID_PART_MAX = 2**64 - 1  # Redis keeps both parts of a stream id as unsigned 64-bit

# Store and broadcast in one step: every instance receives messages in stream order, and a
# message is in the history before any instance can deliver it (the join protocol relies on it).
_SEND = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
                      'u', ARGV[3], 'n', ARGV[4], 'm', ARGV[5], 't', ARGV[6])
redis.call('PUBLISH', ARGV[7], cjson.encode({event = 'new_message', data = {
    id = id, roomId = ARGV[2], userId = ARGV[3], username = ARGV[4], message = ARGV[5],
    createdAt = ARGV[6]}}))
return id
"""

# Add members up to a cap, atomically; -1 when the cap would be exceeded.
_ADD_MEMBERS = """
local new = {}
for i = 2, #ARGV do
    if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then new[#new + 1] = ARGV[i] end
end
if redis.call('SCARD', KEYS[1]) + #new > tonumber(ARGV[1]) then return -1 end
if #new > 0 then redis.call('SADD', KEYS[1], unpack(new)) end
return #new
"""


def stream_key(room_id: str) -> str:
    return f"chat:messages:{room_id}"


def _group_key(group_id: str) -> str:
    return f"chat:group:{group_id}"


def _members_key(group_id: str) -> str:
    return f"chat:group:{group_id}:members"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stream_id_key(message_id: str) -> tuple[int, int]:
    """Stream ids order as (milliseconds, sequence)."""
    ms, _, seq = message_id.partition("-")
    return int(ms), int(seq)


def check_cursor(value: str) -> str:
    """A history cursor Redis can page before: a stream id above 0-0 (no message is older)."""
    if not STREAM_ID.fullmatch(value):
        raise ValueError("must be a message id such as 1700000000000-0")
    ms, seq = stream_id_key(value)
    if max(ms, seq) > STREAM_ID_PART_MAX or (ms, seq) == (0, 0):
        raise ValueError("is no message id: both parts are 0 to 2^64-1, and 0-0 is none")
    return value


def message_cursor(message_id: str) -> str:
    """A history page's `nextCursor`: the last message id, in the kit's cursor format."""
    return encode_cursor(message_id)


def message_position(cursor: str) -> str:
    """The message id in a `nextCursor`; 400 `invalid_cursor` for anything else."""
    return decode_cursor(cursor, check_cursor)


@dataclass(frozen=True)
class Page:
    messages: list[dict[str, str]]  # newest first
    last_id: str | None  # the oldest message of the page when older ones exist


class MessageStore:
    def __init__(self, redis: Redis, *, max_per_room: int) -> None:
        self.redis = redis
        self.max_per_room = max_per_room
        self._send = redis.register_script(_SEND)

    async def append(
        self, room_id: str, user_id: str, username: str, message: str, channel: str
    ) -> str:
        """Store the message and publish `new_message` on the room's channel; its id."""
        message_id = await self._send(
            keys=[stream_key(room_id)],
            args=[self.max_per_room, room_id, user_id, username, message, now_iso(), channel],
        )
        return str(message_id)

    async def recent(self, room_id: str, count: int) -> list[dict[str, str]]:
        """The last `count` messages, oldest first (what a client shows on joining)."""
        if count == 0:
            return []
        entries = cast(list[Entry], await self.redis.xrevrange(stream_key(room_id), count=count))
        return [_wire(room_id, entry) for entry in reversed(entries)]

    async def page(self, room_id: str, before: str | None, limit: int) -> Page:
        """Messages older than the cursor `before` (checked by `check_cursor`), newest first."""
        upper = f"({before}" if before is not None else "+"
        entries = cast(
            list[Entry],
            await self.redis.xrevrange(stream_key(room_id), max=upper, min="-", count=limit + 1),
        )
        messages = [_wire(room_id, entry) for entry in entries[:limit]]
        more = len(entries) > limit
        return Page(messages, messages[-1]["id"] if more and messages else None)


Entry = tuple[str, dict[str, str]]  # a stream entry, with decode_responses=True


def _wire(room_id: str, entry: Entry) -> dict[str, str]:
    message_id, fields = entry
    return {
        "id": message_id,
        "roomId": room_id,
        "userId": fields["u"],
        "username": fields["n"],
        "message": fields["m"],
        "createdAt": fields["t"],
    }


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    owner_id: uuid.UUID
    created_at: str
    members: frozenset[uuid.UUID]

    def as_json(self) -> dict[str, Any]:
        return {
            "roomId": self.id,
            "name": self.name,
            "ownerId": str(self.owner_id),
            "createdAt": self.created_at,
            "members": sorted(str(member) for member in self.members),
        }


class GroupStore:
    def __init__(self, redis: Redis, *, max_members: int) -> None:
        self.redis = redis
        self.max_members = max_members
        self._add = redis.register_script(_ADD_MEMBERS)

    async def create(
        self, group_id: str, name: str, owner: uuid.UUID, members: set[uuid.UUID]
    ) -> Group:
        everyone = {owner, *members}
        if len(everyone) > self.max_members:
            raise bad_request(f"a group has at most {self.max_members} members")
        created_at = now_iso()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                _group_key(group_id),
                mapping={"name": name, "ownerId": str(owner), "createdAt": created_at},
            )
            pipe.sadd(_members_key(group_id), *(str(m) for m in everyone))
            await pipe.execute()
        return Group(group_id, name, owner, created_at, frozenset(everyone))

    async def get(self, group_id: str) -> Group | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(_group_key(group_id))
            pipe.smembers(_members_key(group_id))
            meta, members = await pipe.execute()
        if not meta:
            return None
        return Group(
            group_id,
            meta["name"],
            uuid.UUID(meta["ownerId"]),
            meta["createdAt"],
            frozenset(uuid.UUID(m) for m in members),
        )

    async def membership(self, group_id: str, user_id: uuid.UUID) -> tuple[bool, bool]:
        """(the group exists, the user is a member) in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(_group_key(group_id))
            pipe.sismember(_members_key(group_id), str(user_id))
            exists, member = await pipe.execute()
        return bool(exists), bool(member)

    async def add_members(self, group_id: str, members: set[uuid.UUID]) -> int:
        added = await self._add(
            keys=[_members_key(group_id)], args=[self.max_members, *sorted(str(m) for m in members)]
        )
        if int(added) < 0:
            raise conflict(f"a group has at most {self.max_members} members")
        return int(added)

    async def remove_member(self, group_id: str, member: uuid.UUID) -> bool:
        return bool(await self.redis.srem(_members_key(group_id), str(member)))
