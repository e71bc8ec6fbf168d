"""Hot statements: built with SQLAlchemy once, run as plain asyncpg calls per request.

Building and executing a statement through SQLAlchemy costs far more Python time than
PostgreSQL spends on these (about 1 ms of CPU per statement through `AsyncSession.execute`,
against 0.1-0.3 ms through asyncpg: loadtests/REPORT.md), so a route on a published rate
compiles its statements at import (`Statement(...)` module constants) and runs them here, on

- a connection of its own from `Database.connection()` (autocommit: one round trip for a
  read) or `Database.transaction()`'s asyncpg transaction, or
- the request session's connection (`AsyncSession`), joining its transaction, where the rest
  of the route uses the ORM. SQLAlchemy begins that transaction lazily, with the first statement
  that goes through it, so a write here must follow one (`write=True` checks).

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

    async def begin_with(self, session: AsyncSession, params: Mapping[str, Any]) -> list[Record]:
        """Run as the session transaction's first statement, through SQLAlchemy's connection."""
        connection = await session.connection()
        result = await connection.exec_driver_sql(self.sql, tuple(self.arguments(params)))
        return [dict(row._mapping) for row in result.all()]

    async def fetch(
        self, on: Runner, params: Mapping[str, Any], *, write: bool = False
    ) -> list[Record]:
        connection = await _driver_connection(on, write=write)
        rows: list[Record] = await connection.fetch(self.sql, *self.arguments(params))
        return rows

    async def fetchrow(
        self, on: Runner, params: Mapping[str, Any], *, write: bool = False
    ) -> Record | None:
        connection = await _driver_connection(on, write=write)
        row: Record | None = await connection.fetchrow(self.sql, *self.arguments(params))
        return row

    async def fetchval(self, on: Runner, params: Mapping[str, Any], *, write: bool = False) -> Any:
        connection = await _driver_connection(on, write=write)
        return await connection.fetchval(self.sql, *self.arguments(params))

    async def execute(self, on: Runner, params: Mapping[str, Any], *, write: bool = True) -> None:
        connection = await _driver_connection(on, write=write)
        await connection.execute(self.sql, *self.arguments(params))


async def _driver_connection(on: Runner, *, write: bool) -> Connection:
    if not isinstance(on, AsyncSession):
        return on
    connection = await on.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    if write and not raw.is_in_transaction():
        raise RuntimeError(
            "a write on the session's connection needs its transaction to have begun "
            "(run an ordinary session statement first)"
        )
    return raw
