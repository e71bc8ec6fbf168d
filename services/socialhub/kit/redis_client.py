"""Redis clients, made one way for every service.

A store (auth's limits, chat's rooms) waits for a pooled connection in a burst instead of
failing. A cache (users' profiles, posts' feeds) fails fast and never retries for long, so the
caller answers from its database; that is why caches are no readiness check.

Both kinds survive a Redis restart without an error: a pooled connection idle for longer than
`HEALTH_CHECK_SECONDS` is pinged before it is reused, and a failed ping, connect or command is
retried on a new connection (`Retry` on ConnectionError and TimeoutError). Stores retry a few
times with a short exponential backoff (about 0.6 s in all), caches once at once, stores with
`timeout_seconds` twice on a refused connection and never on a timeout. A retry re-sends
the command; for a non-idempotent one (INCR, XADD) that applies it twice only if Redis applied it
and the connection then broke before the reply, which the ping before reuse makes rare (a
restart is noticed by the ping, before the command is sent). When every attempt fails the
ConnectionError or TimeoutError reaches the kit's error handling: a 503 with Retry-After
(`socialhub.kit.outages`), never a 500.

`timeout_seconds` bounds each command of a store client (socket timeout): a frozen Redis then
fails in that time instead of hanging the request (auth uses it). It is off by default because a
store's pub/sub reader (chat) blocks on purpose.
"""

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError, TimeoutError

from socialhub.kit.settings import RedisSettings

HEALTH_CHECK_SECONDS = 5
RETRY_ERRORS = (ConnectionError, TimeoutError)
STORE_RETRIES = 3


def _retries(timeout_seconds: float | None) -> dict[str, Any]:
    """A store retries 3 times after 0.1, 0.2 and 0.3 s: a restart's refused connects are
    absorbed. With a timeout, a refused connect is retried twice, quickly, and a timeout never:
    redis-py nests the connect's retries inside the command's, so a retried timeout would cost
    it many times over (measured: 11 s for a 0.5 s timeout against a frozen Redis)."""
    if timeout_seconds is None:
        return {
            "retry": Retry(ExponentialBackoff(cap=0.3, base=0.05), STORE_RETRIES, RETRY_ERRORS),
            "retry_on_error": list(RETRY_ERRORS),
        }
    return {
        "retry": Retry(ExponentialBackoff(cap=0.1, base=0.05), 2, (ConnectionError,)),
        "retry_on_error": [],
    }


def connect_redis(
    settings: RedisSettings,
    *,
    fail_fast_seconds: float | None = None,
    timeout_seconds: float | None = None,
) -> Redis:
    """A client with decoded strings; `fail_fast_seconds` makes it a cache client."""
    if fail_fast_seconds is None:
        pool = BlockingConnectionPool.from_url(
            settings.redis_url,
            decode_responses=True,
            health_check_interval=HEALTH_CHECK_SECONDS,
            max_connections=settings.redis_max_connections,
            timeout=settings.redis_pool_wait_seconds,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            **_retries(timeout_seconds),
        )
    else:
        pool = BlockingConnectionPool.from_url(
            settings.redis_url,
            decode_responses=True,
            health_check_interval=HEALTH_CHECK_SECONDS,
            max_connections=settings.redis_max_connections,
            timeout=fail_fast_seconds,
            socket_timeout=fail_fast_seconds,
            socket_connect_timeout=fail_fast_seconds,
            # one immediate reconnect: a connection Redis closed (a restart) is not an outage
            retry=Retry(NoBackoff(), 1, RETRY_ERRORS),
            retry_on_error=list(RETRY_ERRORS),
        )
    return Redis.from_pool(pool)
