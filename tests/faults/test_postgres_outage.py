"""PostgreSQL stopped and restarted under the real auth service and gateway: 503 with
Retry-After while it is away (never a 500), and the first request after the restart succeeds
(the pool pings a connection before handing it out)."""

import asyncio

import httpx

from devstack.servers.postgres import Postgres
from tests.faults.tally import Tally
from tests.support import PASSWORD, sign_up, unique

ROUNDS = 5


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_postgres_stopped_answers_503_then_the_first_request_succeeds(
    http: httpx.AsyncClient, private_postgres: Postgres
) -> None:
    user, token = await sign_up(http, "pg")
    login = {"identifier": user["username"], "password": PASSWORD}
    assert (await http.post("/auth/login", json=login)).status_code == 200

    private_postgres.stop()
    try:
        down = Tally("postgres stopped")
        for _ in range(ROUNDS):
            for what, request in (
                ("login", http.post("/auth/login", json=login)),
                (
                    "signup",
                    http.post(
                        "/auth/signup",
                        json={
                            "name": "Down",
                            "email": f"{unique('pg')}@example.com",
                            "username": unique("pg"),
                            "password": PASSWORD,
                        },
                    ),
                ),
                ("me", http.get("/auth/me", headers=bearer(token))),
            ):
                response = await down.send(what, request)
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == "2"
                assert response.json()["error"]["code"] == "service_unavailable"
            # the token check needs no database: protected routes keep working
            await down.send("protected", http.get("/users/me", headers=bearer(token)))
        line = down.report()
        assert down.count(500) == 0, line
        assert down.statuses[("protected", 200)] == ROUNDS, line
        assert down.slowest < 6, line  # within the connect timeout (5 s), no hang
    finally:
        private_postgres.start()

    after = Tally("postgres restarted")
    first = await after.send("login", http.post("/auth/login", json=login))
    assert first.status_code == 200, first.text
    assert (await after.send("me", http.get("/auth/me", headers=bearer(token)))).status_code == 200
    after.report()


async def test_a_restart_under_load_gives_only_successes_and_503s(
    http: httpx.AsyncClient, private_postgres: Postgres
) -> None:
    """A bounded writer loop (signups) while PostgreSQL restarts: every answer is a 201 or a
    503 with Retry-After, and every 201's account can sign in afterwards."""
    tally = Tally("postgres restart under load")
    created: list[str] = []
    stop = asyncio.Event()

    async def writer() -> None:
        for _ in range(400):
            if stop.is_set():
                return
            name = unique("ld")
            response = await tally.send(
                "signup",
                http.post(
                    "/auth/signup",
                    json={
                        "name": "Load",
                        "email": f"{name}@example.com",
                        "username": name,
                        "password": PASSWORD,
                    },
                ),
            )
            assert response.status_code in (201, 503), response.text
            if response.status_code == 201:
                created.append(name)
            else:
                assert response.headers["retry-after"] == "2"
                await asyncio.sleep(0.1)

    task = asyncio.create_task(writer())
    await asyncio.sleep(1.0)
    await asyncio.to_thread(private_postgres.stop)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(private_postgres.start)
    await asyncio.sleep(1.0)
    stop.set()
    await task
    line = tally.report()
    assert tally.count(500) == 0, line
    assert tally.count(503) > 0, line  # the outage was seen
    after = tally.statuses.copy()
    for name in created[-3:] + created[:3]:
        response = await http.post("/auth/login", json={"identifier": name, "password": PASSWORD})
        assert response.status_code == 200, response.text
    print(
        f"postgres restart under load: {len(created)} accepted signups, "
        f"{after[('signup', 503)]} answered 503; samples sign in after the restart",
        flush=True,
    )
