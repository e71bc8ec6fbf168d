"""The kit's Redis factory across a restart of a private Redis (issue 10, item 11)."""

from devstack.servers.redis import Redis
from socialhub.kit.redis_client import connect_redis
from socialhub.kit.settings import RedisSettings


async def test_a_pooled_client_survives_a_redis_restart(private_redis: Redis) -> None:
    """Item 11: a connection idle across a restart is checked and replaced, not reused dead."""
    settings = RedisSettings(redis_url=private_redis.url(2))
    store, cache = connect_redis(settings), connect_redis(settings, fail_fast_seconds=0.5)
    try:
        await store.set("faults:key", "kept")
        assert await cache.get("faults:key") == "kept"
        private_redis.stop()
        private_redis.start()
        # the very first command on each pooled (now dead) connection succeeds
        assert await store.get("faults:key") == "kept"
        assert await cache.get("faults:key") == "kept"
        assert await store.incr("faults:counter") >= 1
        print(
            "\nredis restart: store and cache clients answered their first commands "
            "after the restart without an error",
            flush=True,
        )
    finally:
        await store.aclose()
        await cache.aclose()
