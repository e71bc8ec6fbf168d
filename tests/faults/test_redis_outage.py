"""Redis stopped, frozen and restarted under the real auth service and gateway.

Decided behaviour (services/socialhub/auth/README.md, docs/outages.md): without Redis, login,
signup, `/auth/me` and the gateway's token check keep working (the check from the token and the
local denylist copy, the rate limits from local counters); logout and password reset answer 503
with Retry-After; nothing answers 500, nothing waits longer than a short bound.
"""

import os
import signal

import httpx

from devstack.servers.redis import Redis
from tests.faults.tally import Tally
from tests.support import PASSWORD, sign_up, unique

ROUNDS = 5
# a frozen Redis costs one command timeout (0.5 s) per few seconds, plus bcrypt on a busy machine
BOUND_SECONDS = 3.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def one_round(
    http: httpx.AsyncClient, tally: Tally, username: str, token: str, revoked: str
) -> None:
    """Every kind of request once; what each answers is asserted by the caller's tally."""
    await tally.send(
        "login", http.post("/auth/login", json={"identifier": username, "password": PASSWORD})
    )
    name = unique("o")
    await tally.send(
        "signup",
        http.post(
            "/auth/signup",
            json={
                "name": "Outage",
                "email": f"{name}@example.com",
                "username": name,
                "password": PASSWORD,
            },
        ),
    )
    await tally.send("protected", http.get("/users/me", headers=bearer(token)))
    await tally.send("protected-revoked", http.get("/users/me", headers=bearer(revoked)))
    await tally.send("me", http.get("/auth/me", headers=bearer(token)))
    await tally.send(
        "forgot", http.post("/auth/password/forgot", json={"email": f"{username}@example.com"})
    )
    await tally.send(
        "forgot-unknown",
        http.post("/auth/password/forgot", json={"email": f"{unique('nobody')}@example.com"}),
    )
    await tally.send(
        "reset",
        http.post(
            "/auth/password/reset",
            json={"email": f"{username}@example.com", "code": "000000", "newPassword": PASSWORD},
        ),
    )


DEGRADED = {
    "login": 200,
    "signup": 201,
    "protected": 200,
    "protected-revoked": 401,
    "me": 200,
    "forgot": 503,
    "forgot-unknown": 503,
    "reset": 503,
}
HEALTHY = {**DEGRADED, "forgot": 202, "forgot-unknown": 202, "reset": 400}


def assert_answers(tally: Tally, expected: dict[str, int]) -> None:
    line = tally.report()
    assert tally.count(500) == 0, line
    for what, status in tally.statuses:
        assert status == expected[what], line
    assert tally.slowest < BOUND_SECONDS, line


async def test_auth_and_token_check_without_redis_then_recovery(
    http: httpx.AsyncClient, private_redis: Redis
) -> None:
    user, token = await sign_up(http, "red")
    _, revoked = await sign_up(http, "rev")
    assert (await http.post("/auth/logout", headers=bearer(revoked))).status_code == 204

    healthy = Tally("redis up")
    for _ in range(2):
        await one_round(http, healthy, user["username"], token, revoked)
    assert_answers(healthy, HEALTHY)

    private_redis.stop()
    try:
        down = Tally("redis stopped")
        for _ in range(ROUNDS):
            await one_round(http, down, user["username"], token, revoked)
        logout = await down.send("logout", http.post("/auth/logout", headers=bearer(token)))
        assert_answers(down, {**DEGRADED, "logout": 503})
        assert logout.headers["retry-after"] == "2"
        assert logout.json()["error"]["code"] == "service_unavailable"
        assert logout.json()["requestId"]
    finally:
        private_redis.start()

    after = Tally("redis restarted")
    for _ in range(ROUNDS):
        await one_round(http, after, user["username"], token, revoked)
    assert (
        await after.send("logout", http.post("/auth/logout", headers=bearer(token)))
    ).status_code == 204
    assert (
        await after.send("protected-revoked", http.get("/users/me", headers=bearer(token)))
    ).status_code == 401
    assert_answers(after, {**HEALTHY, "logout": 204})


async def test_a_frozen_redis_costs_a_bounded_wait_not_a_hang(
    http: httpx.AsyncClient, private_redis: Redis
) -> None:
    user, token = await sign_up(http, "frz")
    _, revoked = await sign_up(http, "rev")
    assert (await http.post("/auth/logout", headers=bearer(revoked))).status_code == 204
    pid = private_redis.process().pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        frozen = Tally("redis frozen (SIGSTOP)")
        for _ in range(3):
            await one_round(http, frozen, user["username"], token, revoked)
        assert_answers(frozen, DEGRADED)
    finally:
        os.kill(pid, signal.SIGCONT)
    thawed = Tally("redis thawed")
    for _ in range(2):
        await one_round(http, thawed, user["username"], token, revoked)
    assert_answers(thawed, HEALTHY)
