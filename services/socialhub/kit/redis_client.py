"""Redis clients, made one way for every service.

A store (auth's limits, chat's rooms) waits for a pooled connection in a burst instead of
failing. A cache (users' profiles, posts' feeds) fails fast and never retries for long, so the
caller answers from its database; that is why caches are no readiness check.
"""

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from socialhub.kit.settings import RedisSettings


def connect_redis(settings: RedisSettings, *, fail_fast_seconds: float | None = None) -> Redis:
    """A client with decoded strings; `fail_fast_seconds` makes it a cache client."""
    if fail_fast_seconds is None:
        pool = BlockingConnectionPool.from_url(
            settings.redis_url, decode_responses=True, health_check_interval=30,
            max_connections=settings.redis_max_connections,
            timeout=settings.redis_pool_wait_seconds)
    else:
        pool = BlockingConnectionPool.from_url(
            settings.redis_url, decode_responses=True, health_check_interval=30,
            max_connections=settings.redis_max_connections, timeout=fail_fast_seconds,
            socket_timeout=fail_fast_seconds, socket_connect_timeout=fail_fast_seconds,
            # one immediate reconnect: a connection Redis closed (a restart) is not an outage
            retry=Retry(NoBackoff(), 1))
    return Redis.from_pool(pool)
