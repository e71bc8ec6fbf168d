"""Hot statements run straight on the session's asyncpg connection.

SQLAlchemy builds and compiles them once (`queries.py`); each request then costs one asyncpg
call: about 60 us of CPU for a page of a following list, against about 450 us through
`AsyncSession.execute` (measured here), on the same connection and in the same transaction as
the rest of the request.

SQLAlchemy begins a transaction lazily, with the first statement that goes through it. A write
through `Prepared` must therefore follow one: `begin_with` runs a statement through SQLAlchemy's
connection (which begins the transaction, still without the ORM's per-statement cost), and
`write=True` checks that a transaction is open, so a write never runs outside the request's
transaction unnoticed.
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


class Prepared:
    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        self._order: Sequence[str] = compiled.positiontup or ()
        self._defaults = dict(compiled.params)  # values bound at build time (literals)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] if name in params else self._defaults[name] for name in self._order]

    async def begin_with(self, session: AsyncSession, params: Mapping[str, Any]) -> list[Record]:
        """Run as the transaction's first statement, through SQLAlchemy's connection."""
        connection = await session.connection()
        result = await connection.exec_driver_sql(self.sql, tuple(self.arguments(params)))
        return [dict(row._mapping) for row in result.all()]

    async def fetch(
        self, session: AsyncSession, params: Mapping[str, Any], *, write: bool = False
    ) -> list[Record]:
        connection = await _driver_connection(session, write=write)
        rows: list[Record] = await connection.fetch(self.sql, *self.arguments(params))
        return rows

    async def fetchrow(
        self, session: AsyncSession, params: Mapping[str, Any], *, write: bool = False
    ) -> Record | None:
        connection = await _driver_connection(session, write=write)
        row: Record | None = await connection.fetchrow(self.sql, *self.arguments(params))
        return row


async def _driver_connection(session: AsyncSession, *, write: bool) -> Any:
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    if write and not raw.is_in_transaction():
        raise RuntimeError(
            "a prepared write needs the session's transaction to have begun "
            "(run an ordinary session statement first)"
        )
    return raw
