"""Async SQLAlchemy 2 on asyncpg, with one transaction per request.

The `SessionDep` dependency opens a session inside a transaction and commits when the endpoint
returns (or rolls back when it raises), before the response is sent: domain code never commits,
and a failed commit is answered as an error, not as a success.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from socialhub.kit.settings import PostgresSettings
from socialhub.kit.sql import Connection


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    @asynccontextmanager
    async def connect(cls, settings: PostgresSettings) -> AsyncIterator["Database"]:
        engine = create_async_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            # No pre-ping: with asyncpg it costs three round trips per checkout. A connection
            # PostgreSQL closed is noticed at checkout instead, for free (`_replace_if_closed`).
            # While the database is down, connecting fails within
            # `database_connect_timeout_seconds` and the request answers 503 with Retry-After
            # (socialhub.kit.outages), never a 500 or a long hang.
            pool_timeout=settings.database_pool_timeout_seconds,
            connect_args={"timeout": settings.database_connect_timeout_seconds},
            pool_recycle=1800,
        )
        event.listen(engine.sync_engine, "checkout", _replace_if_closed)
        try:
            yield cls(engine)
        finally:
            await engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: commit on success, roll back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled asyncpg connection in autocommit, for `socialhub.kit.sql` statements: one
        round trip per read, no session (see docs/decisions/0001-data-access.md)."""
        async with self.engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            yield raw

    @asynccontextmanager
    async def driver_transaction(self) -> AsyncIterator[Connection]:
        """A pooled asyncpg connection in a transaction: committed when the block ends,
        rolled back when it raises."""
        async with self.connection() as connection, connection.transaction():
            yield connection

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))


def _replace_if_closed(dbapi_connection: Any, _record: object, _proxy: object) -> None:
    """A pooled connection whose server side closed (a PostgreSQL restart: asyncpg sees the
    socket's end as soon as the event loop reads it) is replaced before a request uses it, so
    the first request after a restart succeeds. SQLAlchemy retries the checkout with a new
    connection when this raises."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.database
    async with database.transaction() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
