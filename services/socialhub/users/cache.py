"""Profiles (with their counts) cached in Redis, invalidated on every change, optional.

Correctness never depends on Redis:

- Every write deletes the changed profiles' entries *after* its transaction committed, and bumps
  a per-profile version. A reader that missed the cache notes the version before reading
  PostgreSQL and stores what it read only if the version is still the same (one Lua script), so a
  slow reader can never put back a value from before a concurrent write.
- If Redis fails, reads go to PostgreSQL and Redis is left alone for a short while (no timeout
  paid on every request). Invalidations that could not be sent are remembered and sent first
  when Redis answers again; beyond that, the TTL bounds staleness.
"""

import logging
import time
import uuid
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from socialhub.users.settings import UsersSettings

log = logging.getLogger(__name__)

VERSION_TTL_SECONDS = 3600
MAX_PENDING_INVALIDATIONS = 100_000

# KEYS: entry, version; ARGV: version seen before reading PostgreSQL, value, ttl
_SET_IF_UNCHANGED = """
local current = redis.call('GET', KEYS[2]) or '0'
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


class ProfileCache:
    def __init__(self, redis: Redis, settings: UsersSettings, prefix: str = "users") -> None:
        self.redis = redis
        self.ttl = settings.profile_cache_ttl_seconds
        self.retry_after = settings.redis_retry_after_seconds
        self.prefix = prefix
        self._set_if_unchanged = redis.register_script(_SET_IF_UNCHANGED)
        self._unavailable_until = 0.0
        self._pending: set[uuid.UUID] = set()

    def key(self, user_id: uuid.UUID) -> str:
        return f"{self.prefix}:profile:{user_id}"

    def version_key(self, user_id: uuid.UUID) -> str:
        return f"{self.prefix}:profile-version:{user_id}"

    async def get(self, user_id: uuid.UUID) -> tuple[str | None, str | None]:
        """The cached profile (JSON), or None and the version token for `fill` (None: skip)."""
        if not await self._usable():
            return None, None
        try:
            raw, version = await self.redis.mget(self.key(user_id), self.version_key(user_id))
        except RedisError as exc:
            self._failed("read", exc)
            return None, None
        if raw is not None:
            return str(raw), None
        return None, str(version or "0")

    async def fill(self, user_id: uuid.UUID, version: str | None, profile: str) -> None:
        if version is None or not await self._usable():
            return
        try:
            await self._set_if_unchanged(
                keys=[self.key(user_id), self.version_key(user_id)],
                args=[version, profile, self.ttl],
            )
        except RedisError as exc:
            self._failed("fill", exc)

    async def invalidate(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Call after the change committed."""
        ids = set(user_ids)
        if not ids:
            return
        if not await self._usable() or not await self._send_invalidations(ids):
            self._remember(ids)

    async def _usable(self) -> bool:
        if time.monotonic() < self._unavailable_until:
            return False
        if self._pending:  # Redis is back: first catch up with what it missed
            pending, self._pending = self._pending, set()
            if not await self._send_invalidations(pending):
                self._remember(pending)
                return False
            log.info("profile cache reachable again; sent %d missed invalidations", len(pending))
        return True

    async def _send_invalidations(self, ids: set[uuid.UUID]) -> bool:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for user_id in ids:
                    pipe.incr(self.version_key(user_id))
                    pipe.expire(self.version_key(user_id), VERSION_TTL_SECONDS)
                    pipe.delete(self.key(user_id))
                await pipe.execute()
        except RedisError as exc:
            self._failed("invalidate", exc)
            return False
        return True

    def _remember(self, ids: set[uuid.UUID]) -> None:
        if len(self._pending) + len(ids) > MAX_PENDING_INVALIDATIONS:
            log.warning("too many missed cache invalidations; entries expire within %ds", self.ttl)
            return
        self._pending |= ids

    def _failed(self, what: str, exc: RedisError) -> None:
        if time.monotonic() >= self._unavailable_until:
            log.warning(
                "profile cache %s failed, using PostgreSQL for %.1fs: %r",
                what,
                self.retry_after,
                exc,
            )
        self._unavailable_until = time.monotonic() + self.retry_after
