"""Locust: follow/unfollow and the following list, next to the design document's numbers.

Two user classes, run one at a time (name it on the command line):

- `FollowUser`: `POST /users/follow/{id}` then `DELETE /users/follow/{id}` of a random account
  of the pool, so every request changes the graph (counters, outbox event, cache
  invalidation), never a no-op.
- `FollowingListUser`: `GET /users/{id}/following` (first page, 20 newest) of a random Locust
  user's account; each follows BENCH_FOLLOWING accounts of the pool during setup.

The pool is BENCH_ACCOUNTS accounts (default 300): follow targets spread over it, as they would
over a real user base (a handful of accounts would make every follow wait for the same rows).
Through the gateway (the default) every Locust user signs up once (or logs in on later runs) in
`on_start`, exactly as a client would, and the gateway checks its bearer token on every request
(cached briefly); the rest of the pool is signed up once by the first run and found again by
search on later runs. With BENCH_DIRECT=1 the host is the users service itself and the users send
the `x-user-payload` the gateway would have set: the service's own capacity, without nginx and
auth.

    python -m devstack up --profile bench     # gateway on :38080, per-IP limits relaxed
    locust -f loadtests/users.py --host http://127.0.0.1:38080 --headless --only-summary \\
        -u 32 -r 32 -t 60s FollowUser

Everything comes from one address: the gateway's per-IP rate limit and the auth service's per-IP
signup and login limits must be raised, as the `bench` profile does (the `dev` gateway on :8080
allows 50 requests/s per address). At the end the report prints
p50/p95/p99 and req/s per request next to the targets; the exit code is 1 when a p95 or
throughput target or the failure budget (1%) is missed.
"""

import itertools
import json
import os
import random
import threading
import uuid
from typing import Any

import requests
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.runners import WorkerRunner

PASSWORD = "BenchPass123!"
DIRECT = os.environ.get("BENCH_DIRECT", "") == "1"
# Direct mode makes up its own ids: its accounts must never share a username with real ones.
PREFIX = os.environ.get("BENCH_ACCOUNT_PREFIX", "ubenchd" if DIRECT else "ubench")
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "300"))
FOLLOWING = int(os.environ.get("BENCH_FOLLOWING", "50"))
THINK = float(os.environ.get("BENCH_THINK_SECONDS", "0"))

# name -> (design p95 in ms, design req/s per instance)
TARGETS = {
    "follow": (20.0, 1000.0),
    "following list": (30.0, 2000.0),
}
FAILURE_BUDGET = 0.01

_next_account = itertools.count()
_lock = threading.Lock()
# ids of the pool's accounts (profiles that exist), and of the Locust users' own accounts
pool_ids: list[str] = []
listed_ids: list[str] = []


def account_name(index: int | None = None) -> str:
    """Spread users over a fixed pool of accounts, so repeated runs reuse them."""
    if index is None:
        with _lock:
            index = next(_next_account) % ACCOUNTS
    return f"{PREFIX}_{index:05d}"


def direct_payload(username: str) -> tuple[str, dict[str, str]]:
    user_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{username}.bench"))
    return user_id, {"x-user-payload": json.dumps({"id": user_id, "username": username})}


def someone_else(me: str) -> str:
    while (other := random.choice(pool_ids)) == me:
        pass
    return other


def prepare_pool(environment: Environment, **_: Any) -> None:
    """Make sure the pool's profiles exist and learn their ids, before the clock starts (the
    first run through the gateway signs the pool up: bcrypt, a minute or so)."""
    if isinstance(environment.runner, WorkerRunner):
        return
    session = requests.Session()
    host = environment.host or ""
    if DIRECT:
        for index in range(ACCOUNTS):
            user_id, headers = direct_payload(account_name(index))
            session.get(f"{host}/users/me", headers=headers, timeout=30).raise_for_status()
            pool_ids.append(user_id)
        return
    names = {account_name(index) for index in range(ACCOUNTS)}
    token = _token(session, host, account_name(0))
    found = _search_pool(session, host, token)
    for name in sorted(names - set(found)):
        _token(session, host, name)  # signs it up
    found = _search_pool(session, host, token)
    pool_ids.extend(found[name] for name in names if name in found)


def _token(session: requests.Session, host: str, username: str) -> str:
    login = session.post(f"{host}/auth/login", timeout=30,
                         json={"identifier": username, "password": PASSWORD})
    if login.status_code != 200:
        login = session.post(f"{host}/auth/signup", timeout=30, json={
            "name": "Bench User", "email": f"{username}@example.com", "username": username,
            "password": PASSWORD})
        login.raise_for_status()
    token: str = login.json()["token"]
    # the profile now, rather than when auth's user.created arrives
    session.get(f"{host}/users/me", headers={"Authorization": f"Bearer {token}"},
                timeout=30).raise_for_status()
    return token


def _search_pool(session: requests.Session, host: str, token: str) -> dict[str, str]:
    """username -> id of the pool accounts the users service knows."""
    found: dict[str, str] = {}
    params: dict[str, str] = {"q": f"{PREFIX}_", "limit": "100"}
    while True:
        page = session.get(f"{host}/users/search", params=params, timeout=30,
                           headers={"Authorization": f"Bearer {token}"})
        page.raise_for_status()
        found.update((item["username"], item["id"]) for item in page.json()["items"])
        if not page.json()["nextCursor"]:
            return found
        params["cursor"] = page.json()["nextCursor"]


class _Account(FastHttpUser):
    """One bench account per Locust user; setup requests are reported apart."""

    abstract = True
    wait_time = between(THINK, THINK)
    username = ""
    user_id = ""
    headers: dict[str, str]

    def on_start(self) -> None:
        self.username = account_name()
        if DIRECT:
            self.user_id, self.headers = direct_payload(self.username)
        else:
            body = self._login() or self._signup()
            if body is None:
                self.stop()
                return
            self.user_id = body["user"]["id"]
            self.headers = {"Authorization": f"Bearer {body['token']}"}
        # Creates the profile at once if auth's user.created has not arrived yet.
        with self.client.get("/users/me", name="setup: profile", headers=self.headers,
                             catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text}")
                self.stop()

    def _login(self) -> dict[str, Any] | None:
        with self.client.post("/auth/login", name="setup: login", catch_response=True, json={
                "identifier": self.username, "password": PASSWORD}) as response:
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
            if response.status_code == 401:  # no such account yet
                response.success()
                return None
            response.failure(f"{response.status_code}: {response.text}")
            return None

    def _signup(self) -> dict[str, Any] | None:
        with self.client.post("/auth/signup", name="setup: signup", catch_response=True, json={
                "name": "Bench User", "email": f"{self.username}@example.com",
                "username": self.username, "password": PASSWORD}) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text}")
                return None
            body: dict[str, Any] = response.json()
            return body


class FollowUser(_Account):
    @task
    def follow_then_unfollow(self) -> None:
        target = someone_else(self.user_id)
        self.client.post(f"/users/follow/{target}", name="follow", headers=self.headers)
        self.client.delete(f"/users/follow/{target}", name="unfollow", headers=self.headers)


class FollowingListUser(_Account):
    def on_start(self) -> None:
        super().on_start()
        for _ in range(FOLLOWING):
            self.client.post(f"/users/follow/{someone_else(self.user_id)}",
                             name="setup: follow", headers=self.headers)
        listed_ids.append(self.user_id)

    @task
    def following_list(self) -> None:
        user_id = random.choice(listed_ids)
        with self.client.get(f"/users/{user_id}/following?limit=20", name="following list",
                             headers=self.headers, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")


def report(environment: Environment, **_: Any) -> None:
    """p50/p95/p99 and req/s next to the design's numbers; exit code 1 on a missed target."""
    stats = environment.stats
    if stats is None:
        return
    lines = [f"{'request':<18}{'count':>9}{'fail%':>7}{'req/s':>9}{'p50':>7}{'p95':>7}"
             f"{'p99':>7}   design (p95 ms, req/s)"]
    missed: list[str] = []
    for entry in sorted(stats.entries.values(), key=lambda e: e.name):
        if entry.num_requests == 0:
            continue
        p50, p95, p99 = (entry.get_response_time_percentile(q) for q in (0.5, 0.95, 0.99))
        target = TARGETS.get(entry.name)
        design = f"{target[0]:.0f} ms, {target[1]:.0f}/s" if target else "-"
        lines.append(f"{entry.name:<18}{entry.num_requests:>9}{100 * entry.fail_ratio:>6.1f}%"
                     f"{entry.total_rps:>9.0f}{p50:>7.0f}{p95:>7.0f}{p99:>7.0f}   {design}")
        if target is None:
            continue
        if p95 > target[0]:
            missed.append(f"{entry.name}: p95 {p95:.0f} ms > {target[0]:.0f} ms")
        if entry.total_rps < target[1]:
            missed.append(f"{entry.name}: {entry.total_rps:.0f}/s < {target[1]:.0f}/s")
        if entry.fail_ratio > FAILURE_BUDGET:
            missed.append(f"{entry.name}: {100 * entry.fail_ratio:.1f}% failed")
    lines.extend(f"MISSED {reason}" for reason in missed)
    print("\n".join(lines), flush=True)
    if missed:
        environment.process_exit_code = 1


# locust leaves these untyped
events.init.add_listener(prepare_pool)  # type: ignore[no-untyped-call]
events.quitting.add_listener(report)  # type: ignore[no-untyped-call]
