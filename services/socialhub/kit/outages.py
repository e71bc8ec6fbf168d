"""A store that is down or restarting is answered as 503 with Retry-After, never as a 500.

`install_outage_handlers` maps the errors that mean "the store is not reachable now" to the
envelope `{"error": {"status": 503, "code": "service_unavailable", ...}}` with
`Retry-After: 2`:

* Redis: ConnectionError and TimeoutError (after the client's own retries,
  `socialhub.kit.redis_client`), and BusyLoadingError (a restarted Redis loading its data);
* PostgreSQL: SQLAlchemy's DBAPIError when it reports a lost connection (`connection_invalidated`,
  e.g. "terminating connection due to administrator command"), or when asyncpg says the server
  is starting or shutting down or cannot be reached; a refused, reset or timed-out connect
  (asyncpg raises the builtin ConnectionError or TimeoutError unwrapped) and a pool that stayed
  empty (`sqlalchemy.exc.TimeoutError`);
* MongoDB: pymongo's ConnectionFailure (no server selected within `MONGO_TIMEOUT_MS`, a lost or
  timed-out connection).

Any other database error is still a bug: it is re-raised and becomes the kit's 500. The handlers
run inside the request (Starlette's ExceptionMiddleware), so the 503 carries the request id and
the connection stays usable. Each answer counts in `store_unavailable_total{store}`.

`degraded(store, what)` is for code that carries on without a store (auth's token check and
rate limits without Redis): one warning a minute per (store, what) and
`degraded_operations_total{store,what}` for every occurrence.
"""

import logging
import time

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pymongo import errors as mongo_errors
from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors

from socialhub.kit.errors import error_response

log = logging.getLogger("socialhub.outages")

RETRY_AFTER_SECONDS = 2
UNAVAILABLE = Counter(
    "store_unavailable_total", "Requests answered 503 because a store was unreachable", ["store"]
)
DEGRADED = Counter(
    "degraded_operations_total",
    "Operations that went on without a store (degraded mode)",
    ["store", "what"],
)

REDIS_DOWN = (redis_errors.ConnectionError, redis_errors.TimeoutError)
_POSTGRES_DOWN = (
    asyncpg.exceptions.CannotConnectNowError,  # starting up, shutting down, in recovery
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,  # "connection is closed"
    ConnectionError,
    TimeoutError,
)
_last_warning: dict[tuple[str, str], float] = {}


def postgres_unreachable(exc: BaseException) -> bool:
    """Whether a database error means the server is unreachable (not a bad statement)."""
    if isinstance(exc, sa_errors.DBAPIError):
        if exc.connection_invalidated:
            return True
        return any(isinstance(cause, _POSTGRES_DOWN) for cause in _causes(exc.orig))
    return isinstance(exc, (ConnectionError, TimeoutError, sa_errors.TimeoutError))


def _causes(exc: BaseException | None) -> list[BaseException]:
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


class Breaker:
    """After a store failed, callers that can go on without it skip it for `open_seconds`, so a
    frozen or refusing store costs one timeout every few seconds, not one per request."""

    def __init__(self, open_seconds: float = 2.0) -> None:
        self.open_seconds = open_seconds
        self._open_until = 0.0

    @property
    def closed(self) -> bool:
        return time.monotonic() >= self._open_until

    def failed(self) -> None:
        self._open_until = time.monotonic() + self.open_seconds


def unavailable(store: str) -> JSONResponse:
    UNAVAILABLE.labels(store).inc()
    return error_response(
        503,
        "service_unavailable",
        f"{store} is unavailable; retry in {RETRY_AFTER_SECONDS}s",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def degraded(store: str, what: str, exc: BaseException) -> None:
    DEGRADED.labels(store, what).inc()
    now = time.monotonic()
    if now - _last_warning.get((store, what), -3600.0) >= 60:
        _last_warning[(store, what)] = now
        log.warning("%s unreachable: %s goes on without it (degraded): %r", store, what, exc)


async def _on_redis_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("redis unreachable, answering 503: %r", exc)
    return unavailable("redis")


async def _on_mongo_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("mongo unreachable, answering 503: %r", exc)
    return unavailable("mongo")


async def _on_database_error(_: Request, exc: Exception) -> JSONResponse:
    if not postgres_unreachable(exc):
        raise exc
    log.warning("postgres unreachable, answering 503: %r", exc)
    return unavailable("postgres")


def install_outage_handlers(app: FastAPI) -> None:
    for redis_error in (*REDIS_DOWN, redis_errors.BusyLoadingError):
        app.add_exception_handler(redis_error, _on_redis_down)
    for database_error in (
        sa_errors.DBAPIError,
        sa_errors.TimeoutError,
        ConnectionError,
        TimeoutError,
    ):
        app.add_exception_handler(database_error, _on_database_error)
    app.add_exception_handler(mongo_errors.ConnectionFailure, _on_mongo_down)
