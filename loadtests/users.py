"""Locust: follow/unfollow and the following list, next to the design document's numbers.

- `FollowUser`: `POST /users/follow/{id}` then `DELETE /users/follow/{id}` of a random pool
  account, so every request changes the graph (counters, outbox event, cache invalidation).
- `FollowingListUser`: `GET /users/{id}/following` (first page, 20 newest) of a random Locust
  user's account; each follows BENCH_FOLLOWING pool accounts during setup.

The pool (BENCH_ACCOUNTS, default 300) is made sure of before the clock starts: follow targets
spread over it as they would over a real user base.

    locust -f loadtests/users.py --host http://127.0.0.1:18080 --headless -u 32 -r 32 -t 60s \\
        FollowUser
"""

import os
import random
from typing import Any

import requests
from common import (
    DIRECT,
    PASSWORD,
    AccountPool,
    SignedInUser,
    Target,
    direct_identity,
    report_against,
)
from locust import events, task
from locust.env import Environment
from locust.runners import WorkerRunner

FOLLOWING = int(os.environ.get("BENCH_FOLLOWING", "50"))
ACCOUNTS = AccountPool("ubench", 300)
pool_ids: list[str] = []  # ids of the pool's accounts (profiles that exist)
listed_ids: list[str] = []  # ids of the Locust users' own accounts

report_against(
    {
        "follow": Target(p95_ms=20, per_second=1000),
        "following list": Target(p95_ms=30, per_second=2000),
    }
)


def someone_else(me: str) -> str:
    while (other := random.choice(pool_ids)) == me:
        pass
    return other


@events.init.add_listener  # type: ignore[untyped-decorator]  # untyped in locust
def prepare_pool(environment: Environment, **_: Any) -> None:
    """Make sure the pool's profiles exist and learn their ids, before the clock starts."""
    if isinstance(environment.runner, WorkerRunner):
        return
    session = requests.Session()
    host = environment.host or ""
    if DIRECT:
        for index in range(ACCOUNTS.size):
            user_id, headers = direct_identity(ACCOUNTS.name(index))
            session.get(f"{host}/users/me", headers=headers, timeout=30).raise_for_status()
            pool_ids.append(user_id)
        return
    names = {ACCOUNTS.name(index) for index in range(ACCOUNTS.size)}
    token = _token(session, host, ACCOUNTS.name(0))
    found = _search_pool(session, host, token)
    for name in sorted(names - set(found)):
        _token(session, host, name)  # signs it up
    found = _search_pool(session, host, token)
    pool_ids.extend(found[name] for name in names if name in found)


def _token(session: requests.Session, host: str, username: str) -> str:
    login = session.post(
        f"{host}/auth/login", timeout=30, json={"identifier": username, "password": PASSWORD}
    )
    if login.status_code != 200:
        login = session.post(
            f"{host}/auth/signup",
            timeout=30,
            json={
                "name": "Bench User",
                "email": f"{username}@example.com",
                "username": username,
                "password": PASSWORD,
            },
        )
        login.raise_for_status()
    token: str = login.json()["token"]
    # the profile now, rather than when auth's user.created arrives
    session.get(
        f"{host}/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).raise_for_status()
    return token


def _search_pool(session: requests.Session, host: str, token: str) -> dict[str, str]:
    """username -> id of the pool accounts the users service knows."""
    found: dict[str, str] = {}
    params: dict[str, str] = {"q": f"{ACCOUNTS.prefix}_", "limit": "100"}
    while True:
        page = session.get(
            f"{host}/users/search",
            params=params,
            timeout=30,
            headers={"Authorization": f"Bearer {token}"},
        )
        page.raise_for_status()
        found.update((item["username"], item["id"]) for item in page.json()["items"])
        if not page.json()["nextCursor"]:
            return found
        params["cursor"] = page.json()["nextCursor"]


class _UsersUser(SignedInUser):
    abstract = True
    accounts = ACCOUNTS

    def prepare(self) -> None:
        super().prepare()
        # the profile at once, if auth's user.created has not arrived yet
        self.expect("GET", "/users/me", "setup: profile")


class FollowUser(_UsersUser):
    @task
    def follow_then_unfollow(self) -> None:
        target = someone_else(self.user_id)
        self.expect("POST", f"/users/follow/{target}", "follow")
        self.expect("DELETE", f"/users/follow/{target}", "unfollow")


class FollowingListUser(_UsersUser):
    def prepare(self) -> None:
        super().prepare()
        for _ in range(FOLLOWING):
            self.expect("POST", f"/users/follow/{someone_else(self.user_id)}", "setup: follow")
        listed_ids.append(self.user_id)

    @task
    def following_list(self) -> None:
        self.expect(
            "GET", f"/users/{random.choice(listed_ids)}/following?limit=20", "following list"
        )
