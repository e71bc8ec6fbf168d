"""The local fallbacks Redis outages rely on, against the private Redis: the auth service's
denylist copy (stream sync, expiry) and the rate limiter's local counters."""

import time
import uuid

import pytest
from redis.asyncio import Redis as RedisClient

from devstack.servers.redis import Redis
from socialhub.auth.revocations import STREAM, LocalDenylist
from socialhub.auth.tokens import TokenClaims
from socialhub.kit.errors import ApiError
from socialhub.kit.ratelimit import Limit, RateLimiter


def claims(token_id: str, user: uuid.UUID, version: int = 0) -> TokenClaims:
    now = int(time.time())
    return TokenClaims(
        user_id=user,
        username="x",
        issued_at=now,
        expires_at=now + 3600,
        token_id=token_id,
        version=version,
    )


async def test_a_revocation_written_by_one_instance_reaches_another(private_redis: Redis) -> None:
    client = RedisClient.from_url(private_redis.url(3), decode_responses=True)
    try:
        await client.delete(STREAM)
        writer = LocalDenylist(client, memory_seconds=60, version_ttl_seconds=3600)
        reader = LocalDenylist(client, memory_seconds=60, version_ttl_seconds=3600)
        user, other = uuid.uuid4(), uuid.uuid4()
        await writer.publish_token("jti-1", time.time() + 3600)
        await writer.publish_token("jti-expired", time.time() - 1)
        await writer.publish_version(user, 2)
        assert await reader.sync() == 3
        assert reader.revoked(claims("jti-1", other)) == "token revoked"
        assert reader.revoked(claims("jti-expired", other)) is None
        assert reader.revoked(claims("jti-2", user, version=1)) == (
            "token revoked by a password reset"
        )
        assert reader.revoked(claims("jti-2", user, version=2)) is None
        assert await reader.sync() == 0  # only new entries the next time
        await writer.publish_token("jti-3", time.time() + 3600)
        assert await reader.sync() == 1
        assert reader.revoked(claims("jti-3", other)) == "token revoked"
    finally:
        await client.aclose()


async def test_rate_limits_count_locally_while_redis_is_unreachable() -> None:
    closed = RedisClient.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = RateLimiter(closed, "faults")
    limit = Limit("failed_logins", 3, 60)
    try:
        for _ in range(3):
            await limiter.hit(limit, "someone")
        with pytest.raises(ApiError) as refused:
            await limiter.hit(limit, "someone")
        assert refused.value.status == 429
        with pytest.raises(ApiError):
            await limiter.ensure_below(limit, "someone")
        await limiter.reset(limit, "someone")
        await limiter.ensure_below(limit, "someone")
    finally:
        await closed.aclose()
