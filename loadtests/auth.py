"""Locust: logins and token checks through the gateway, next to the design document's numbers.

Three user classes, run one at a time (name it on the command line):

- `LoginUser`: `POST /auth/login`, i.e. one bcrypt cost-10 check per request. Compare with the
  bcrypt ceiling of the cores the auth service runs on (`loadtests/bcrypt_ceiling.py`; pass the
  figure as BENCH_BCRYPT_CEILING to see the ratio).
- `VerifyUser`: a protected GET (BENCH_VERIFY_PATH, default `/users/me`): the gateway's
  `auth_request` token check (cached briefly, see services/socialhub/gateway/README.md) plus the
  proxying to the route's service. Run it with a trivial upstream behind that route to measure
  the token check itself (loadtests/README.md), or with the real service to measure both.
- `MeUser`: `GET /auth/me`, the auth service checking the token itself (JWT, Redis, one SELECT):
  what every token check would cost without the gateway's cache.

    locust -f loadtests/auth.py --host http://127.0.0.1:8080 --headless -u 64 -r 64 -t 60s \\
        VerifyUser

The gateway's per-IP rate limit and the auth service's per-IP login limit must be raised for a
benchmark from one address (loadtests/README.md). At the end the report prints p50/p95/p99 and
req/s per request next to the targets, and the exit code is 1 when a p95 target or the failure
budget (1%) is missed.
"""

import itertools
import os
import threading
from typing import Any

from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.stats import StatsEntry

PASSWORD = "BenchPass123!"
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "50"))
PREFIX = os.environ.get("BENCH_ACCOUNT_PREFIX", "bench")
VERIFY_PATH = os.environ.get("BENCH_VERIFY_PATH", "/users/me")
BCRYPT_CEILING = float(os.environ.get("BENCH_BCRYPT_CEILING", "0"))
THINK = float(os.environ.get("BENCH_THINK_SECONDS", "0"))

# name -> (design p95 in ms, design req/s per instance)
TARGETS = {
    "login": (150.0, 500.0),
    "token check": (5.0, 5000.0),
    "auth/me": (5.0, 5000.0),
}
FAILURE_BUDGET = 0.01
# Answers that mean the token check did not let the request through.
REFUSED = frozenset({401, 403, 429})

_next_account = itertools.count()
_lock = threading.Lock()


def account_name() -> str:
    """Spread users over a fixed pool of accounts, so repeated runs reuse them."""
    with _lock:
        index = next(_next_account) % ACCOUNTS
    return f"{PREFIX}_{index:05d}"


class _Authenticated(FastHttpUser):
    """Logs in once (signing up on the first run); setup requests are reported apart."""

    abstract = True
    wait_time = between(THINK, THINK)
    username = ""
    token = ""

    def on_start(self) -> None:
        self.username = account_name()
        self.token = self._login("setup: login") or self._signup()

    def _login(self, name: str) -> str | None:
        with self.client.post("/auth/login", name=name, catch_response=True, json={
                "identifier": self.username, "password": PASSWORD}) as response:
            if response.status_code == 200:
                token: str = response.json()["token"]
                return token
            if response.status_code == 401:  # no such account yet
                response.success()
                return None
            response.failure(f"{response.status_code}: {response.text}")
            return None

    def _signup(self) -> str:
        with self.client.post("/auth/signup", name="setup: signup", catch_response=True, json={
                "name": "Bench User", "email": f"{self.username}@example.com",
                "username": self.username, "password": PASSWORD}) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text}")
                return ""
            token: str = response.json()["token"]
            return token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class LoginUser(_Authenticated):
    @task
    def login(self) -> None:
        self._login("login")


class VerifyUser(_Authenticated):
    @task
    def token_check(self) -> None:
        with self.client.get(VERIFY_PATH, name="token check", headers=self.auth,
                             catch_response=True) as response:
            if response.status_code in REFUSED or response.status_code >= 500:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class MeUser(_Authenticated):
    @task
    def me(self) -> None:
        self.client.get("/auth/me", name="auth/me", headers=self.auth)


def entry_rate(entry: StatsEntry) -> float:
    """Requests per second while this request type ran (setup logins excluded, unlike Locust's
    own req/s, which counts from the start of the run)."""
    elapsed = (entry.last_request_timestamp or entry.start_time) - entry.start_time
    return entry.num_requests / elapsed if elapsed > 0 else 0.0


def report(environment: Environment, **_: Any) -> None:
    """p50/p95/p99 and req/s next to the design's numbers; exit code 1 on a missed target."""
    stats = environment.stats
    if stats is None:
        return
    lines = [f"{'request':<16}{'count':>9}{'fail%':>7}{'req/s':>9}{'p50':>7}{'p95':>7}"
             f"{'p99':>7}   design (p95 ms, req/s)"]
    missed: list[str] = []
    for entry in sorted(stats.entries.values(), key=lambda e: e.name):
        if entry.num_requests == 0:
            continue
        p50, p95, p99 = (entry.get_response_time_percentile(q) for q in (0.5, 0.95, 0.99))
        rate = entry_rate(entry)
        target = TARGETS.get(entry.name)
        design = f"{target[0]:.0f} ms, {target[1]:.0f}/s" if target else "setup"
        lines.append(f"{entry.name:<16}{entry.num_requests:>9}{100 * entry.fail_ratio:>6.1f}%"
                     f"{rate:>9.0f}{p50:>7.0f}{p95:>7.0f}{p99:>7.0f}   {design}")
        if target is None:
            continue
        if p95 > target[0]:
            missed.append(f"{entry.name}: p95 {p95:.0f} ms > {target[0]:.0f} ms")
        if entry.fail_ratio > FAILURE_BUDGET:
            missed.append(f"{entry.name}: {100 * entry.fail_ratio:.1f}% failed")
    login = stats.entries.get(("login", "POST"))
    if login is not None and login.num_requests and BCRYPT_CEILING > 0:
        share = entry_rate(login) / BCRYPT_CEILING
        lines.append(f"login at {100 * share:.0f}% of the bcrypt ceiling "
                     f"({BCRYPT_CEILING:.0f} checks/s); goal: at least 90%")
        if share < 0.9:
            missed.append(f"login: {100 * share:.0f}% of the bcrypt ceiling < 90%")
    lines.extend(f"MISSED {reason}" for reason in missed)
    print("\n".join(lines), flush=True)
    if missed:
        environment.process_exit_code = 1


events.quitting.add_listener(report)  # type: ignore[no-untyped-call]  # locust leaves it untyped
