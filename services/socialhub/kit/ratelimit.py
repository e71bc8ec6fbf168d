"""Fixed-window rate limits counted in Redis, shared by every instance of a service.

While Redis is unreachable the limits fail over to counters in this process (same limits, same
windows), with a warning a minute and `degraded_operations_total{store="redis",what="rate
limit"}`: sign-in keeps working, and guessing passwords stays bounded, per instance instead of
per deployment (N instances allow at most N times the limit). Fail closed (503) would turn a
Redis outage into a sign-in outage; fail open with no count at all would leave the failed-login
limit off exactly when nobody watches. The local counts are forgotten when Redis answers again.
"""

import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from socialhub.kit.errors import ApiError, rate_limited
from socialhub.kit.outages import REDIS_DOWN, Breaker, degraded

LOCAL_MAX_KEYS = 100_000


@dataclass(frozen=True)
class Limit:
    name: str
    max_hits: int
    window_seconds: int


class LocalCounters:
    """In-process fixed windows: key -> (count, window end), bounded in size."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}

    def hit(self, key: str, window_seconds: int) -> tuple[int, int]:
        now = time.monotonic()
        count, ends = self._counts.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + window_seconds
            if len(self._counts) >= LOCAL_MAX_KEYS:
                self._forget_expired(now)
        self._counts[key] = (count + 1, ends)
        return count + 1, int(ends - now) + 1

    def get(self, key: str) -> tuple[int, int]:
        now = time.monotonic()
        count, ends = self._counts.get(key, (0, 0.0))
        return (count, int(ends - now) + 1) if ends > now else (0, 0)

    def reset(self, key: str) -> None:
        self._counts.pop(key, None)

    def clear(self) -> None:
        self._counts.clear()

    def _forget_expired(self, now: float) -> None:
        self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        while len(self._counts) >= LOCAL_MAX_KEYS:  # all live: drop the oldest windows
            self._counts.pop(next(iter(self._counts)))


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str, breaker: Breaker | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.breaker = breaker or Breaker()
        self.local = LocalCounters()
        self._degraded = False

    async def hit(self, limit: Limit, subject: str) -> None:
        """Count one hit for `subject`; over the limit answer 429 with Retry-After."""
        key = self._key(limit, subject)
        try:
            self._ensure_closed()
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, limit.window_seconds, nx=True)
                pipe.ttl(key)
                count, _, ttl = await pipe.execute()
            self._recovered()
        except REDIS_DOWN as exc:
            self._degrade(exc)
            count, ttl = self.local.hit(key, limit.window_seconds)
        if count > limit.max_hits:
            raise _too_many(limit, ttl)

    async def ensure_below(self, limit: Limit, subject: str) -> None:
        """Refuse with 429 if `subject` already used up the limit, without counting a hit."""
        key = self._key(limit, subject)
        try:
            self._ensure_closed()
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.ttl(key)
                count, ttl = await pipe.execute()
            self._recovered()
        except REDIS_DOWN as exc:
            self._degrade(exc)
            count, ttl = self.local.get(key)
        if count is not None and int(count) >= limit.max_hits:
            raise _too_many(limit, ttl)

    async def reset(self, limit: Limit, subject: str) -> None:
        key = self._key(limit, subject)
        self.local.reset(key)
        try:
            self._ensure_closed()
            await self.redis.delete(key)
        except REDIS_DOWN as exc:
            self._degrade(exc)

    def _ensure_closed(self) -> None:
        if not self.breaker.closed:
            raise RedisConnectionError("skipped: redis failed moments ago")

    def _degrade(self, exc: BaseException) -> None:
        if not isinstance(exc, RedisConnectionError) or "skipped:" not in str(exc):
            self.breaker.failed()
        self._degraded = True
        degraded("redis", "rate limit", exc)

    def _recovered(self) -> None:
        if self._degraded:
            self._degraded = False
            self.local.clear()

    def _key(self, limit: Limit, subject: str) -> str:
        return f"{self.prefix}:rl:{limit.name}:{subject}"


def _too_many(limit: Limit, ttl: int) -> ApiError:
    retry_after = max(int(ttl), 1)
    return rate_limited(
        f"too many {limit.name.replace('_', ' ')}; retry in {retry_after}s", retry_after=retry_after
    )
