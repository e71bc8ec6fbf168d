"""What every Locust suite here shares: bench accounts, a signed-in user, and the report.

Suites run with `locust -f loadtests/<suite>.py` (Locust puts this directory on the path, so
`from common import ...` works) or all at once with `make bench`.

Environment:
- `BENCH_DIRECT=1`: `--host` is one service itself and users send the `x-user-payload` the
  gateway would set (no token check): the service's own capacity.
- `BENCH_ACCOUNTS`, `BENCH_ACCOUNT_PREFIX`: the pool of accounts users spread over, reused by
  later runs (the first run signs them up: bcrypt, a minute or so for a few hundred).
- `BENCH_THINK_SECONDS`: pause between a user's requests (default 0: closed-loop load).
- `BENCH_RESULT_JSON`: where the report also writes its numbers (the `make bench` runner).
"""

import itertools
import json
import os
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from locust import between, events
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.stats import StatsEntry

PASSWORD = "BenchPass123!"
DIRECT = os.environ.get("BENCH_DIRECT", "") == "1"
THINK = float(os.environ.get("BENCH_THINK_SECONDS", "0"))
FAILURE_BUDGET = 0.01


@dataclass(frozen=True)
class Target:
    """The design document's figure for one request type, per service instance."""

    p95_ms: float
    per_second: float = 0.0  # 0: the design states no throughput


class AccountPool:
    """A fixed pool of account names, handed out round-robin so repeated runs reuse them."""

    def __init__(self, default_prefix: str, default_size: int) -> None:
        # Direct mode makes up user ids: its names must never be real accounts' names.
        prefix = os.environ.get("BENCH_ACCOUNT_PREFIX", default_prefix)
        self.prefix = f"{prefix}d" if DIRECT else prefix
        self.size = int(os.environ.get("BENCH_ACCOUNTS", str(default_size)))
        self._next = itertools.count()
        self._lock = threading.Lock()

    def name(self, index: int | None = None) -> str:
        if index is None:
            with self._lock:
                index = next(self._next) % self.size
        return f"{self.prefix}_{index:05d}"


def direct_identity(username: str) -> tuple[str, dict[str, str]]:
    """A stable made-up id and the header the gateway would send for it."""
    user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"socialhub-bench:{username}"))
    return user_id, {"x-user-payload": json.dumps({"id": user_id, "username": username})}


class SignedInUser(FastHttpUser):
    """A Locust user acting as one pool account: logged in (signed up on the first run) through
    the gateway, or identified by the gateway's header in direct mode. Setup requests are named
    `setup: ...` and kept out of the targets."""

    abstract = True
    wait_time = between(THINK, THINK)
    accounts: AccountPool
    username = ""
    user_id = ""
    token = ""
    headers: dict[str, str]

    def on_start(self) -> None:
        self.username = self.accounts.name()
        if DIRECT:
            self.user_id, self.headers = direct_identity(self.username)
            return
        body = self.login() or self._signup()
        if body is None:
            self.stop()
            return
        self.token, self.user_id = body["token"], body["user"]["id"]
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def login(self, name: str = "setup: login") -> dict[str, Any] | None:
        with self.client.post(
            "/auth/login",
            name=name,
            catch_response=True,
            json={"identifier": self.username, "password": PASSWORD},
        ) as response:
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
            if response.status_code == 401 and name.startswith("setup"):  # not signed up yet
                response.success()
                return None
            response.failure(f"{response.status_code}: {response.text[:200]}")
            return None

    def _signup(self) -> dict[str, Any] | None:
        with self.client.post(
            "/auth/signup",
            name="setup: signup",
            catch_response=True,
            json={
                "name": "Bench User",
                "email": f"{self.username}@example.com",
                "username": self.username,
                "password": PASSWORD,
            },
        ) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return None
            body: dict[str, Any] = response.json()
            return body

    def expect(self, method: str, path: str, name: str, status: int = 200, **kwargs: Any) -> Any:
        """One request counted as failed unless it answers `status`; returns its JSON body."""
        kwargs.setdefault("headers", self.headers)
        with self.client.request(
            method, path, name=name, catch_response=True, **kwargs
        ) as response:
            if response.status_code != status:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return None
            return response.json() if response.text else None


@dataclass(frozen=True)
class Row:
    name: str
    count: int
    failed_percent: float
    per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    target_p95_ms: float | None
    target_per_second: float | None


def measured_rate(entry: StatsEntry) -> float:
    """Requests per second while this request type ran (Locust's own rate counts from the start
    of the run, setup included)."""
    elapsed = (entry.last_request_timestamp or entry.start_time) - entry.start_time
    return entry.num_requests / elapsed if elapsed > 0 else 0.0


def report_against(targets: dict[str, Target]) -> None:
    """At the end of a run, print p50/p95/p99 and req/s next to `targets`, write them to
    BENCH_RESULT_JSON, and exit 1 when a p95, a rate or the failure budget is missed."""

    def report(environment: Environment, **_: Any) -> None:
        if environment.stats is None:
            return
        rows: list[Row] = []
        missed: list[str] = []
        for entry in sorted(environment.stats.entries.values(), key=lambda e: e.name):
            if entry.num_requests == 0:
                continue
            target = targets.get(entry.name)
            p50, p95, p99 = (entry.get_response_time_percentile(q) for q in (0.5, 0.95, 0.99))
            row = Row(
                entry.name,
                entry.num_requests,
                round(100 * entry.fail_ratio, 2),
                round(measured_rate(entry), 1),
                p50,
                p95,
                p99,
                target.p95_ms if target else None,
                target.per_second if target and target.per_second else None,
            )
            rows.append(row)
            if target is None:
                continue
            if p95 > target.p95_ms:
                missed.append(f"{entry.name}: p95 {p95:.0f} ms > {target.p95_ms:.0f} ms")
            if target.per_second and row.per_second < target.per_second:
                missed.append(f"{entry.name}: {row.per_second:.0f}/s < {target.per_second:.0f}/s")
            if entry.fail_ratio > FAILURE_BUDGET:
                missed.append(f"{entry.name}: {row.failed_percent}% failed")
        print(format_rows(rows), flush=True)
        for reason in missed:
            print(f"MISSED {reason}", flush=True)
        if destination := os.environ.get("BENCH_RESULT_JSON"):
            Path(destination).write_text(
                json.dumps({"rows": [asdict(r) for r in rows], "missed": missed}, indent=2)
            )
        if missed:
            environment.process_exit_code = 1

    events.quitting.add_listener(report)  # type: ignore[no-untyped-call]  # untyped in locust


def format_rows(rows: list[Row]) -> str:
    lines = [
        f"{'request':<24}{'count':>8}{'fail%':>7}{'req/s':>8}{'p50':>7}{'p95':>7}{'p99':>7}"
        "   design (p95 ms, req/s)"
    ]
    for r in rows:
        design = (
            "setup"
            if r.target_p95_ms is None
            else f"{r.target_p95_ms:.0f} ms"
            + (f", {r.target_per_second:.0f}/s" if r.target_per_second else "")
        )
        lines.append(
            f"{r.name:<24}{r.count:>8}{r.failed_percent:>6.1f}%{r.per_second:>8.0f}"
            f"{r.p50_ms:>7.0f}{r.p95_ms:>7.0f}{r.p99_ms:>7.0f}   {design}"
        )
    return "\n".join(lines)
