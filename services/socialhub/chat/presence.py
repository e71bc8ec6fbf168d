"""Who is in a room, across instances, and how a dead instance's users leave it.

A room's connections are the hash `chat:presence:<roomId>` (`<instanceId>|<sid>` -> userId) and
its users the hash `chat:presence-users:<roomId>` (userId -> `<connections>|<username>`), so a
user with two tabs is one user, and a join or leave costs O(1) however big the room. Each change
publishes the room's `room_users` (`users`: at most `LISTED_USERS` of them, `count`: all) on the
room's channel in the same Lua script, so all instances see the lists in the order the changes
happened.

Instances heartbeat into the sorted set `chat:instances` (score: Redis time). One that misses
its heartbeats for `chat_instance_ttl_seconds` is dead: a surviving instance takes a short lock
and purges its fields from every room it had (`chat:instance:<id>:rooms`). An instance that was
only paused and finds itself purged re-adds its connections.
"""

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from socialhub.kit.identity import Principal

log = logging.getLogger(__name__)

REGISTRY = "chat:instances"
REAP_LOCK_SECONDS = 60
# `room_users` names at most this many users (and counts them all): the list goes to every
# member on every join and leave.
LISTED_USERS = 100

_CHANGE = """
local conns, users, rooms = KEYS[1], KEYS[2], KEYS[3]
local op, arg, room = ARGV[1], ARGV[2], ARGV[6]

local function drop(field)
    local user = redis.call('HGET', conns, field)
    if not user then return 0 end
    redis.call('HDEL', conns, field)
    local entry = redis.call('HGET', users, user)
    if entry then
        local count, name = string.match(entry, '^(%d+)|(.*)$')
        if tonumber(count) <= 1 then
            redis.call('HDEL', users, user)
        else
            redis.call('HSET', users, user, (tonumber(count) - 1) .. '|' .. name)
        end
    end
    return 1
end

local changed = 0
if op == 'add' then
    if redis.call('HSETNX', conns, arg, ARGV[3]) == 1 then
        local entry = redis.call('HGET', users, ARGV[3])
        local count = entry and tonumber(string.match(entry, '^(%d+)|')) or 0
        redis.call('HSET', users, ARGV[3], (count + 1) .. '|' .. ARGV[4])
    end
    redis.call('SADD', rooms, room)
    changed = 1
elseif op == 'remove' then
    changed = drop(arg)
    if ARGV[7] == '1' then redis.call('SREM', rooms, room) end
else
    for _, field in ipairs(redis.call('HKEYS', conns)) do
        if string.sub(field, 1, #arg) == arg then changed = changed + drop(field) end
    end
    redis.call('SREM', rooms, room)
end
if changed == 0 then return 0 end

local count, cap = redis.call('HLEN', users), tonumber(ARGV[8])
local entries
if count <= cap then
    entries = redis.call('HGETALL', users)
else
    entries = redis.call('HSCAN', users, 0, 'COUNT', cap)[2]
end
local listed = {}
for i = 1, #entries - 1, 2 do
    if #listed >= cap then break end
    local name = string.match(entries[i + 1], '^%d+|(.*)$')
    listed[#listed + 1] = cjson.encode({userId = entries[i], username = name})
end
redis.call('PUBLISH', ARGV[5], '{"event":"room_users","data":{"roomId":' .. cjson.encode(room)
    .. ',"users":[' .. table.concat(listed, ',') .. '],"count":' .. count .. '}}')
return 1
"""

_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], now, ARGV[1])
return {added, redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))}
"""

Membership = tuple[str, str, Principal]  # (roomId, sid, user)


def presence_key(room_id: str) -> str:
    return f"chat:presence:{room_id}"


def _users_key(room_id: str) -> str:
    return f"chat:presence-users:{room_id}"


def _rooms_key(instance_id: str) -> str:
    return f"chat:instance:{instance_id}:rooms"


class Presence:
    def __init__(
        self,
        redis: Redis,
        instance_id: str,
        room_channel: Callable[[str], str],
        *,
        heartbeat_seconds: float,
        instance_ttl_seconds: float,
        registry: str = REGISTRY,
    ) -> None:
        self.redis = redis
        # the instances that reap each other's presence: all of one deployment
        self.registry = registry
        self.instance_id = instance_id
        self.room_channel = room_channel
        self.heartbeat_seconds = heartbeat_seconds
        self.instance_ttl_ms = int(instance_ttl_seconds * 1000)
        self._change = redis.register_script(_CHANGE)
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._registered = False
        self._withdrawn = False

    async def join(self, room_id: str, sid: str, user: Principal) -> None:
        """Record the connection in the room and publish the room's new `room_users`."""
        await self._run(room_id, "add", self._field(sid), str(user.id), user.username)

    async def leave(self, room_id: str, sid: str, *, last_local: bool) -> None:
        """Remove the connection; `last_local`: no other local connection is in the room."""
        await self._run(room_id, "remove", self._field(sid), last_local=last_local)

    async def heartbeat(self, local: Callable[[], Iterable[Membership]]) -> None:
        if self._withdrawn:
            return
        added, dead = await self._heartbeat(
            keys=[self.registry], args=[self.instance_id, self.instance_ttl_ms]
        )
        if added and self._registered:
            log.warning("this instance was taken for dead; restoring its presence")
            for room_id, sid, user in list(local()):
                await self.join(room_id, sid, user)
        self._registered = True
        for instance in dead:
            if instance != self.instance_id:
                await self._reap(instance)

    async def run(self, local: Callable[[], Iterable[Membership]]) -> None:
        """Heartbeat and reap, until cancelled; Redis errors are retried at the next beat."""
        while True:
            try:
                await self.heartbeat(local)
            except RedisError as exc:
                log.warning("presence heartbeat failed: %s", exc)
            await asyncio.sleep(self.heartbeat_seconds)

    async def withdraw(self) -> None:
        """On shutdown: remove this instance's connections from every room, for good."""
        self._withdrawn = True
        await self._purge(self.instance_id)

    async def _reap(self, instance: str) -> None:
        if not await self.redis.set(
            f"chat:reap:{instance}", self.instance_id, nx=True, ex=REAP_LOCK_SECONDS
        ):
            return  # another instance is on it
        log.info("removing the presence of dead instance %s", instance)
        await self._purge(instance)

    async def _purge(self, instance: str) -> None:
        rooms = cast(set[str], await self.redis.smembers(_rooms_key(instance)))
        for room_id in rooms:
            await self._run(room_id, "purge", f"{instance}|", instance=instance)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(_rooms_key(instance))
            pipe.zrem(self.registry, instance)
            await pipe.execute()

    async def _run(
        self,
        room_id: str,
        op: str,
        field: str,
        user_id: str = "",
        username: str = "",
        *,
        last_local: bool = False,
        instance: str | None = None,
    ) -> None:
        await self._change(
            keys=[
                presence_key(room_id),
                _users_key(room_id),
                _rooms_key(instance or self.instance_id),
            ],
            args=[
                op,
                field,
                user_id,
                username,
                self.room_channel(room_id),
                room_id,
                "1" if last_local else "0",
                LISTED_USERS,
            ],
        )

    def _field(self, sid: str) -> str:
        return f"{self.instance_id}|{sid}"
