"""Hot statements: built with SQLAlchemy once, run as plain asyncpg calls per request.

Building and executing a statement through SQLAlchemy costs far more Python time than
PostgreSQL spends on these (about 1 ms of CPU per statement through `AsyncSession.execute`,
against 0.1-0.3 ms through asyncpg: loadtests/REPORT.md), so a route on a published rate
compiles its statements at import (`Statement(...)` module constants) and runs them here, on

- a connection of its own from `Database.connection()` (autocommit: one round trip for a
  read) or `Database.transaction()`'s asyncpg transaction, or
- the request session's connection (`AsyncSession`), where the rest of the route uses the
  ORM: it joins the session's transaction once SQLAlchemy began it (lazily, with the first
  statement through the session); before that it runs on its own, in autocommit.

docs/decisions/0001-data-access.md says when to use which.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped

# asyncpg ships no type information: its Record is a read-only mapping, its Connection opaque.
Record = Mapping[str, Any]
Connection = Any
Runner = AsyncSession | Connection


class Statement:
    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        self._order: Sequence[str] = compiled.positiontup or ()
        self._defaults = dict(compiled.params)  # values bound at build time (literals)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] if name in params else self._defaults[name] for name in self._order]

    async def fetch(self, on: Runner, params: Mapping[str, Any]) -> list[Record]:
        connection = await driver_connection(on)
        rows: list[Record] = await connection.fetch(self.sql, *self.arguments(params))
        return rows

    async def fetchrow(self, on: Runner, params: Mapping[str, Any]) -> Record | None:
        connection = await driver_connection(on)
        row: Record | None = await connection.fetchrow(self.sql, *self.arguments(params))
        return row

    async def fetchval(self, on: Runner, params: Mapping[str, Any]) -> Any:
        connection = await driver_connection(on)
        return await connection.fetchval(self.sql, *self.arguments(params))

    async def execute(self, on: Runner, params: Mapping[str, Any]) -> None:
        connection = await driver_connection(on)
        await connection.execute(self.sql, *self.arguments(params))


async def driver_connection(on: Runner) -> Connection:
    """The asyncpg connection under `on` (a session's, or `on` itself)."""
    if not isinstance(on, AsyncSession):
        return on
    raw = (await (await on.connection()).get_raw_connection()).driver_connection
    assert raw is not None
    return raw
