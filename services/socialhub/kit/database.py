"""Async SQLAlchemy 2 on asyncpg, with one transaction per request.

The `SessionDep` dependency opens a session inside a transaction and commits when the endpoint
returns (or rolls back when it raises), before the response is sent: domain code never commits,
and a failed commit is answered as an error, not as a success.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from socialhub.kit.settings import PostgresSettings


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
            # Pre-ping: a pooled connection is tested (one empty statement) when a request takes
            # it, and replaced if PostgreSQL closed it, so the first request after a database
            # restart succeeds. While the database is down, connecting fails within
            # `database_connect_timeout_seconds` and the request answers 503 with Retry-After
            # (socialhub.kit.outages), never a 500 or a long hang.
            pool_pre_ping=True,
            pool_timeout=settings.database_pool_timeout_seconds,
            connect_args={"timeout": settings.database_connect_timeout_seconds},
            pool_recycle=1800,
        )
        try:
            yield cls(engine)
        finally:
            await engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: commit on success, roll back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.database
    async with database.transaction() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
