"""The floor: the least one request costs on this stack, to measure every route against.

A minimal FastAPI app on uvicorn (uvloop, httptools, one worker, no access log) with an asyncpg
pool to the bench profile's PostgreSQL. `GET /plain` answers a small JSON body without a query;
`GET /select` reads one row by primary key from a 100-row table. A route doing its own work can
only cost more, so its CPU per request divided by `/select`'s, measured in the same run, is the
overhead our code adds to the stack (issue 12's goal: at most 3x).

The table is a temporary one, created on each pooled connection, so nothing is left behind.
`make bench` starts this (its own process, so its CPU time is its own) and `floor.py` loads it:

    .venv/bin/python loadtests/floor_app.py --port 15099
"""

import argparse
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]
import uvicorn
from fastapi import FastAPI, Request

from devstack.config import INFRA, PROFILES
from devstack.platform import Platform
from socialhub.contracts.topology import service

ROWS = 100
POOL_SIZE = 10


def database_url() -> str:
    """The bench profile's users database, as devstack gives it to the users service."""
    profile = PROFILES["bench"]
    database = profile.database(service("users"))
    return Platform(profile).infra.postgres.url(database, driver="postgresql")


async def _create_table(connection: asyncpg.Connection) -> None:
    await connection.execute(
        "CREATE TEMP TABLE floor_item (id int PRIMARY KEY, name text NOT NULL);"
        f"INSERT INTO floor_item SELECT n, 'item ' || n FROM generate_series(0, {ROWS - 1}) n"
    )


def create_app(url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with asyncpg.create_pool(
            url, min_size=POOL_SIZE, max_size=POOL_SIZE, init=_create_table
        ) as pool:
            app.state.pool = pool
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/select")
    async def select(request: Request) -> dict[str, object]:
        pool: asyncpg.Pool = request.app.state.pool
        row = await pool.fetchrow(
            "SELECT id, name FROM floor_item WHERE id = $1", random.randrange(ROWS)
        )
        return {"id": row["id"], "name": row["name"]}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=15099)
    args = parser.parse_args()
    uvicorn.run(
        create_app(database_url()),
        host=INFRA.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
