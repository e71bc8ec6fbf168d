"""Fixed-window rate limits counted in Redis, shared by every instance of a service."""

from dataclasses import dataclass

from redis.asyncio import Redis

from socialhub.kit.errors import ApiError


@dataclass(frozen=True)
class Limit:
    name: str
    max_hits: int
    window_seconds: int


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    async def hit(self, limit: Limit, subject: str) -> None:
        """Count one hit for `subject`; over the limit answer 429 with Retry-After."""
        key = self._key(limit, subject)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, limit.window_seconds, nx=True)
            pipe.ttl(key)
            count, _, ttl = await pipe.execute()
        if count > limit.max_hits:
            raise _too_many(limit, ttl)

    async def ensure_below(self, limit: Limit, subject: str) -> None:
        """Refuse with 429 if `subject` already used up the limit, without counting a hit."""
        key = self._key(limit, subject)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.ttl(key)
            count, ttl = await pipe.execute()
        if count is not None and int(count) >= limit.max_hits:
            raise _too_many(limit, ttl)

    async def reset(self, limit: Limit, subject: str) -> None:
        await self.redis.delete(self._key(limit, subject))

    def _key(self, limit: Limit, subject: str) -> str:
        return f"{self.prefix}:rl:{limit.name}:{subject}"


def _too_many(limit: Limit, ttl: int) -> ApiError:
    retry_after = max(int(ttl), 1)
    return ApiError(429, "rate_limited",
                    f"too many {limit.name.replace('_', ' ')}; retry in {retry_after}s",
                    headers={"Retry-After": str(retry_after)})
