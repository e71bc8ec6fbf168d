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
- `BENCH_PROFILE` (default `bench`): the devstack profile whose processes' CPU time is measured;
  `BENCH_CPU_PIDS=name=pid,...` adds processes of its own (the floor app), `BENCH_CPU=0` none.
- `BENCH_WINDOW_SECONDS`: end the run that long after the measured window starts (`make bench`:
  every run measures the same span however long its setup took; `-t` is then only a safety net).

The measured window starts once every user has finished `prepare()` (sign-up, logins, setup
posts and follows): Locust's statistics are reset then and each process's CPU time read, so the
figures, CPU per request included, are the scenario's requests alone.
"""

import itertools
import json
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]  # Locust's own; no stubs
from locust import between, events
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.stats import StatsEntry
from processes import CpuMeter, CpuSnapshot, platform_roles

from devstack.config import PROFILES

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


class MeasuredWindow:
    """From the moment every user is ready to the end of the run: the statistics and the CPU
    time of each process over that span."""

    READY_TIMEOUT_SECONDS = 300.0

    def __init__(self) -> None:
        self.ready_users = 0
        self.meter: CpuMeter | None = None
        self.started: CpuSnapshot | None = None
        self.ended: CpuSnapshot | None = None
        self.started_at = self.ended_at = 0.0

    def user_ready(self) -> None:
        self.ready_users += 1

    def install(self) -> None:
        events.spawning_complete.add_listener(self._on_spawned)  # type: ignore[no-untyped-call]
        events.test_stop.add_listener(self._on_stop)  # type: ignore[no-untyped-call]

    def _on_spawned(self, user_count: int, **_: Any) -> None:
        environment = _ENVIRONMENT[0] if _ENVIRONMENT else None
        gevent.spawn(self._start_when_ready, environment, user_count)

    def _start_when_ready(self, environment: Environment | None, user_count: int) -> None:
        deadline = time.monotonic() + self.READY_TIMEOUT_SECONDS
        while self.ready_users < user_count and time.monotonic() < deadline:
            gevent.sleep(0.05)
        if environment is not None and environment.stats is not None:
            environment.stats.reset_all()
        self.meter = _cpu_meter()
        self.started = self.meter.snapshot() if self.meter else None
        self.started_at = time.monotonic()
        if (seconds := os.environ.get("BENCH_WINDOW_SECONDS")) and environment is not None:
            gevent.sleep(float(seconds))
            if environment.runner is not None:
                environment.runner.quit()

    def _on_stop(self, **_: Any) -> None:
        if self.meter is not None:
            self.ended = self.meter.snapshot()
        self.ended_at = time.monotonic()

    def cpu_per_request_us(self, requests: int) -> dict[str, float]:
        """Each process's CPU microseconds per request over the window ({} when not measured)."""
        if self.started is None or self.ended is None or requests == 0:
            return {}
        spent = self.ended.minus(self.started)
        return {role: round(1e6 * seconds / requests, 1) for role, seconds in spent.items()}


def _cpu_meter() -> CpuMeter | None:
    if os.environ.get("BENCH_CPU", "1") == "0":
        return None
    roles = platform_roles(PROFILES[os.environ.get("BENCH_PROFILE", "bench")])
    for pair in filter(None, os.environ.get("BENCH_CPU_PIDS", "").split(",")):
        name, pid = pair.split("=")
        roles[name] = int(pid)
    return CpuMeter(roles)


WINDOW = MeasuredWindow()
WINDOW.install()
_ENVIRONMENT: list[Environment] = []
events.init.add_listener(lambda environment, **_: _ENVIRONMENT.append(environment))  # type: ignore[no-untyped-call]


def _refresh_loop_time(**_: Any) -> None:
    """gevent's loop caches the time, and a loop that has not turned since it was created at
    import still holds that time when Locust starts its `--run-time` timer: after a slow start
    (a busy machine: 10 s seen) the run ended within a second of starting. Locust fires `init`
    just before it starts that timer."""
    gevent.get_hub().loop.update_now()


events.init.add_listener(_refresh_loop_time)  # type: ignore[no-untyped-call]


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
        """Sign in, then the suite's own `prepare()`; subclasses override that, not this."""
        try:
            if self._sign_in():
                self.prepare()
        finally:
            WINDOW.user_ready()

    def prepare(self) -> None:
        """Setup before the measured requests (posts to react to, accounts to follow)."""

    def _sign_in(self) -> bool:
        self.username = self.accounts.name()
        if DIRECT:
            self.user_id, self.headers = direct_identity(self.username)
            return True
        body = self.login() or self._signup()
        if body is None:
            self.stop()
            return False
        self.token, self.user_id = body["token"], body["user"]["id"]
        self.headers = {"Authorization": f"Bearer {self.token}"}
        return True

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
    failures: int = 0  # exact, where failed_percent rounds a single failure in 10,000 to 0


def measured_rate(entry: StatsEntry) -> float:
    """Requests per second while this request type ran (Locust's own rate counts from the start
    of the run, setup included)."""
    elapsed = (entry.last_request_timestamp or entry.start_time) - entry.start_time
    return entry.num_requests / elapsed if elapsed > 0 else 0.0


def measured_total(environment: Environment, entries: list[StatsEntry]) -> Row:
    """All of a run's measured request types as one row: the scenario's own req/s and
    percentiles, setup requests left out."""
    total = StatsEntry(environment.stats, "measured", "", use_response_times_cache=False)
    for entry in entries:
        total.extend(entry)
    p50, p95, p99 = (total.get_response_time_percentile(q) for q in (0.5, 0.95, 0.99))
    failed = round(100 * total.fail_ratio, 2)
    rate = round(measured_rate(total), 1) if entries else 0.0
    return Row(
        "measured", total.num_requests, failed, rate, p50, p95, p99, None, None, total.num_failures
    )


def report_against(targets: dict[str, Target]) -> None:
    """At the end of a run, print p50/p95/p99 and req/s next to `targets`, write them to
    BENCH_RESULT_JSON, and exit 1 when a p95, a rate or the failure budget is missed."""

    def report(environment: Environment, **_: Any) -> None:
        if environment.stats is None:
            return
        rows: list[Row] = []
        missed: list[str] = []
        entries = [e for e in environment.stats.entries.values() if e.num_requests]
        for entry in sorted(entries, key=lambda e: e.name):
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
                entry.num_failures,
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
        measured = sum(r.count for r in rows if r.target_p95_ms is not None)
        total = measured_total(environment, [e for e in entries if e.name in targets])
        cpu = WINDOW.cpu_per_request_us(measured)
        print(format_rows(rows), flush=True)
        if cpu:
            print(format_cpu(cpu, measured, WINDOW.ended_at - WINDOW.started_at), flush=True)
        for reason in missed:
            print(f"MISSED {reason}", flush=True)
        if destination := os.environ.get("BENCH_RESULT_JSON"):
            result = {
                "rows": [asdict(r) for r in rows],
                "missed": missed,
                "measured": asdict(total),
                "window_seconds": round(WINDOW.ended_at - WINDOW.started_at, 2),
                "cpu_per_request_us": cpu,
            }
            Path(destination).write_text(json.dumps(result, indent=2))
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


def format_cpu(per_request_us: dict[str, float], requests: int, seconds: float) -> str:
    busy = {role: us for role, us in per_request_us.items() if us >= 1}
    by_cost = sorted(busy.items(), key=lambda item: -item[1])
    return f"CPU per request over {requests} requests in {seconds:.1f} s: " + ", ".join(
        f"{role} {us:,.0f} µs" for role, us in by_cost
    )
