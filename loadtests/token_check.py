"""Gateway token check benchmark: nginx's `auth_request` (answers cached per token) alone, with wrk.

Why: the Locust `VerifyUser` suite measures the token check plus the users service (Python,
~1,800 req/s) with Locust on the same cores, so it says nothing about the gateway's own
capacity. This script reproduces the measurement in services/socialhub/gateway/README.md
("Measured"): the protected route's upstream is a trivial nginx answering 200, the load is
`wrk -t1` rotating the Authorization header over N valid tokens.

What runs (all on 127.0.0.1; everything it starts is stopped and its files removed at the end):
- the auth service of the running `bench` profile (`.venv/bin/python -m devstack up --profile
  bench`, which `make bench` starts) answers the token checks; N accounts `<prefix>_00000`...
  are logged in for N tokens (a bcrypt check each, ~35 s per 1,000 on 2 cores; the first run
  also signs them up);
- a stand-in upstream: a second, tiny nginx answering 200 to everything;
- the gateway: nginx rendered by `socialhub.gateway.render` from the bench profile's gateway
  settings (`Platform.gateway_config`, the same template and code as `make up`) on a free port,
  with the real auth service as its auth upstream and every other upstream the stand-in;
- `wrk -t1 -c<connections> -d<seconds>s --latency` against GET `--path` (default /users/me),
  once per value of `--connections`.

Reports checks/s, p50/p90/p95/p99, non-2xx responses and socket errors (any fails the run),
CPU per check (CPU time of the gateway's nginx processes, the auth service and the stand-in, from
/proc/<pid>/stat, over the requests served; Redis, which the auth service asks once per check it
answers, is shown apart), how busy the machine was (from /proc/stat: contention from anything
else shows there; the load average, also printed, lags and still counts the logins). Reading
them:
- percentiles come from wrk's own histogram through its Lua `done` hook (`--latency` prints only
  50/75/90/99). wrk corrects that histogram for coordinated omission (for each response slower
  than connections / rate it adds samples for the requests it held back), so its tail is above
  the response times nginx logs; the gateway README's figures were taken the same way;
- wrk is closed-loop: with many connections it measures at saturation (the generator on the same
  cores), so p95 is mostly queueing; fewer connections give the latency below saturation;
- the N tokens are first seen within a moment, so their cached answers expire together every
  `--cache-seconds`: a burst of N auth calls, during which connections wait; it shows in the tail.
Goal (design document): 5,000 checks/s with p95 < 5 ms per instance; a run meets it when both
hold in that run. Exits 1 when no run meets it or a request failed.

    .venv/bin/python loadtests/token_check.py [--tokens 1000] [--connections 4,32] [--seconds 30]
"""

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from devstack.config import INFRA, PROFILES
from devstack.platform import Platform
from devstack.process import ManagedProcess, cpu_seconds
from devstack.servers.redis import Redis
from devstack.waiting import free_port, http_ok, wait_until
from socialhub.contracts.topology import SERVICES, service
from socialhub.gateway import GatewayConfig, render

NGINX = "/usr/sbin/nginx"
GOAL_RATE = 5_000
GOAL_P95_MS = 5.0
PASSWORD = "BenchPass123!"  # the Locust suites' password (common.py)
LOGIN_CONCURRENCY = 8  # bcrypt runs in the auth service's threads: enough to keep both cores busy

# One Lua state per wrk thread: `init` builds one request per token, `request` rotates over
# them, `response` counts non-2xx; `done` (main state) prints the totals and wrk's percentiles.
WRK_SCRIPT = """\
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  requests_ = {}
  for token in io.lines(args[1]) do
    requests_[#requests_ + 1] = wrk.format("GET", wrk.path,
                                           {["Authorization"] = "Bearer " .. token})
  end
  next_ = 0
end

function request()
  next_ = next_ % #requests_ + 1
  return requests_[next_]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local non2xx_total = 0
  for _, thread in ipairs(threads) do
    non2xx_total = non2xx_total + thread:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "non2xx": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "p50": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d}\\n',
    summary.requests, summary.duration, non2xx_total, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max))
end
"""

STAND_IN_CONF = """\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type application/json; return 200 '{{"ok":true}}'; }}
    }}
}}
"""


# -- tokens ------------------------------------------------------------------------------------


def tokens(auth_url: str, prefix: str, count: int) -> list[str]:
    """One token per account `<prefix>_<index>`: logged in, or signed up when it does not exist."""
    print(f"logging in {count:,} accounts ({prefix}_00000...) at {auth_url} ...", flush=True)
    started = time.monotonic()
    with httpx.Client(
        base_url=auth_url, timeout=60, limits=httpx.Limits(max_connections=LOGIN_CONCURRENCY)
    ) as client:

        def token(index: int) -> str:
            username = f"{prefix}_{index:05d}"
            response = client.post(
                "/auth/login", json={"identifier": username, "password": PASSWORD}
            )
            if response.status_code == 401:
                response = client.post(
                    "/auth/signup",
                    json={
                        "name": "Bench User",
                        "email": f"{username}@example.com",
                        "username": username,
                        "password": PASSWORD,
                    },
                )
            if response.status_code not in (200, 201):
                raise RuntimeError(f"{username}: {response.status_code} {response.text[:200]}")
            value: str = response.json()["token"]
            return value

        with ThreadPoolExecutor(LOGIN_CONCURRENCY) as pool:
            result = list(pool.map(token, range(count)))
    print(f"  {count:,} tokens in {time.monotonic() - started:.0f} s", flush=True)
    return result


# -- processes ---------------------------------------------------------------------------------


def nginx_process(name: str, prefix: Path, run_dir: Path) -> ManagedProcess:
    """nginx in the foreground on `prefix`/nginx.conf, stopped gracefully (SIGQUIT)."""
    return ManagedProcess(
        name=name,
        run_dir=run_dir,
        stop_signal=signal.SIGQUIT,
        argv=[NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
    )


@contextmanager
def running(process: ManagedProcess, health_url: str) -> Iterator[ManagedProcess]:
    """`nginx -t`, start, wait until `health_url` answers 200; stop at the end."""
    subprocess.run([*process.argv[:5], "-t", "-q"], check=True)  # nginx -p <prefix> -c <conf>
    process.start()
    try:
        wait_until(
            lambda: http_ok(health_url), timeout=15, what=process.name, on_timeout=process.tail
        )
        yield process
    finally:
        process.stop()


def stand_in(directory: Path, worker_user: str | None) -> tuple[ManagedProcess, int]:
    """A tiny nginx answering 200 to everything: every upstream but auth."""
    prefix, port = directory / "stand-in", free_port(INFRA.host)
    prefix.mkdir(parents=True)
    user = f"user {worker_user};\n" if worker_user else ""
    (prefix / "nginx.conf").write_text(STAND_IN_CONF.format(user=user, prefix=prefix, port=port))
    return nginx_process("stand-in", prefix, directory), port


def gateway(
    bench: GatewayConfig, directory: Path, auth: str, upstream: str, cache_seconds: int
) -> GatewayConfig:
    """The bench profile's gateway settings (as `make bench` runs it) on a free port, its files
    in `directory`, every upstream but auth replaced by the stand-in; rendered to nginx.conf."""
    config = dataclasses.replace(
        bench,
        listen_port=free_port(INFRA.host),
        upstreams={spec.name: [auth if spec.name == "auth" else upstream] for spec in SERVICES},
        prefix=str(directory / "gateway"),
        access_log=str(directory / "gateway-access.log"),
        error_log=str(directory / "gateway-error.log"),
        auth_cache_seconds=cache_seconds,
    )
    Path(config.prefix).mkdir(parents=True)
    (Path(config.prefix) / "nginx.conf").write_text(render(config))
    return config


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent on anything but idle and I/O wait, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def with_children(pid: int | None) -> list[int]:
    """`pid` and its direct children (an nginx master and its workers and cache processes)."""
    if not pid:
        return []
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(stat[1]) == pid:
                children.append(int(entry.name))
    return [pid, *children]


# -- the run -----------------------------------------------------------------------------------


def measure(
    wrk: str,
    lua: Path,
    token_file: Path,
    url: str,
    connections: int,
    seconds: int,
    groups: dict[str, list[int]],
) -> dict[str, Any]:
    """One wrk run; its totals and percentiles, and each process group's CPU seconds meanwhile."""
    argv = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(lua),
        url,
        "--",
        str(token_file),
    ]
    print(
        f"\n$ wrk -t1 -c{connections} -d{seconds}s --latency -s token_check.lua {url}", flush=True
    )
    load_before = os.getloadavg()
    cpu_before = {pid: cpu_seconds(pid) for pids in groups.values() for pid in pids}
    wrk_before, busy_before = os.times(), machine_busy_seconds()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    wrk_after, busy = os.times(), machine_busy_seconds() - busy_before
    # a process gone meanwhile (nginx's cache loader exits after a minute) counts as 0
    cpu = {
        name: sum(max(0.0, cpu_seconds(pid) - cpu_before[pid]) for pid in pids)
        for name, pids in groups.items()
    }
    lines = proc.stdout.splitlines()
    print("\n".join(f"  | {line}" for line in lines if not line.startswith("RESULT ")))
    results = [line for line in lines if line.startswith("RESULT ")]
    if proc.returncode != 0 or not results:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {proc.stderr.strip()}")
    result: dict[str, Any] = json.loads(results[-1].removeprefix("RESULT "))
    wrk_cpu = (wrk_after.children_user + wrk_after.children_system) - (
        wrk_before.children_user + wrk_before.children_system
    )
    return {
        **result,
        "connections": connections,
        "cpu": cpu,
        "wrk_cpu": wrk_cpu,
        "busy": busy,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def report(run: dict[str, Any]) -> tuple[bool, bool]:
    """Print one run's figures; returns (goal met, requests failed)."""
    seconds = run["duration_us"] / 1e6
    rate = run["requests"] / seconds
    p = {q: run[f"p{q}"] / 1000 for q in (50, 90, 95, 99)}
    errors = run["connect"] + run["read"] + run["write"] + run["timeout"]
    failed = run["non2xx"] > 0 or errors > 0
    per_check = {name: value / max(run["requests"], 1) * 1e6 for name, value in run["cpu"].items()}
    total = sum(per_check[name] for name in ("gateway", "auth", "stand-in"))
    misses = ([f"{rate:,.0f}/s < {GOAL_RATE:,}/s"] if rate < GOAL_RATE else []) + (
        [f"p95 {p[95]:.1f} ms >= {GOAL_P95_MS:.0f} ms"] if p[95] >= GOAL_P95_MS else []
    )
    verdict = (
        "FAILED: requests failed"
        if failed
        else f"goal missed ({', '.join(misses)})"
        if misses
        else "goal met"
    )
    load = "{:.2f}/{:.2f}/{:.2f}".format
    others = run["busy"] - sum(run["cpu"].values()) - run["wrk_cpu"]
    print(
        f"""\
  {run["connections"]} connections, {seconds:.1f} s, {run["requests"]:,} requests
  checks/s       {rate:>9,.0f}   (goal {GOAL_RATE:,}/s per instance)
  latency        p50 {p[50]:.2f} ms  p90 {p[90]:.2f} ms  p95 {p[95]:.2f} ms  p99 {p[99]:.2f} ms  \
max {run["max"] / 1000:.1f} ms   (goal p95 < {GOAL_P95_MS:.0f} ms; p95 from wrk's histogram)
  failures       {run["non2xx"]} non-2xx, {errors} socket errors \
(connect {run["connect"]}, read {run["read"]}, write {run["write"]}, timeout {run["timeout"]})
  CPU per check  {total:.0f} us (gateway {per_check["gateway"]:.0f} + auth \
{per_check["auth"]:.0f} + stand-in {per_check["stand-in"]:.0f}); Redis {per_check["Redis"]:.1f} us \
apart
  machine        {run["busy"] / seconds:.2f} of {os.cpu_count()} cores busy: wrk \
{run["wrk_cpu"] / seconds:.2f}, everything but the processes above {others / seconds:.2f}
  load average   {load(*run["load_before"])} before, {load(*run["load_after"])} after \
(1 / 5 / 15 min)
  result         {verdict}""",
        flush=True,
    )
    return not misses, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--tokens",
        type=int,
        default=1_000,
        help="accounts (tokens) to rotate over; each a cache entry",
    )
    parser.add_argument(
        "--connections",
        default="32",
        help="wrk connections, comma-separated for several runs (e.g. 4,32)",
    )
    parser.add_argument("--seconds", type=int, default=30, help="duration of each wrk run")
    parser.add_argument("--path", default="/users/me", help="the protected route to request")
    parser.add_argument(
        "--cache-seconds",
        type=int,
        default=5,
        help="auth_cache_seconds (0: ask the auth service for every request)",
    )
    parser.add_argument("--account-prefix", default="bench_token")
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]

    wrk = shutil.which("wrk")
    if wrk is None:
        print(
            "wrk is not installed: `sudo apt-get install wrk` (Debian/Ubuntu; `make bench` "
            "installs it)",
            file=sys.stderr,
        )
        return 2
    profile = PROFILES["bench"]
    auth_spec = service("auth")
    auth = f"{INFRA.host}:{profile.port(auth_spec)}"
    if not http_ok(f"http://{auth}/health"):
        print(
            f"the bench profile's auth service does not answer on {auth}: start it with "
            "`.venv/bin/python -m devstack up --profile bench`",
            file=sys.stderr,
        )
        return 2
    platform = Platform(profile)
    auth_pid = platform.service_process(auth_spec).child_pid()  # the service, not its supervisor
    bench_gateway = platform.gateway_config()

    all_tokens = tokens(f"http://{auth}", args.account_prefix, args.tokens)
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="token-check-")))
        token_file, lua = directory / "tokens.txt", directory / "token_check.lua"
        token_file.write_text("\n".join(all_tokens) + "\n")
        lua.write_text(WRK_SCRIPT)

        standin_process, standin_port = stand_in(directory, bench_gateway.worker_user)
        standin = stack.enter_context(
            running(standin_process, f"http://{INFRA.host}:{standin_port}/")
        )
        config = gateway(
            bench_gateway, directory, auth, f"{INFRA.host}:{standin_port}", args.cache_seconds
        )
        url = f"http://{INFRA.host}:{config.listen_port}"
        gateway_process = stack.enter_context(
            running(nginx_process("gateway", Path(config.prefix), directory), f"{url}/health")
        )

        check = httpx.get(
            f"{url}{args.path}", timeout=10, headers={"Authorization": f"Bearer {all_tokens[0]}"}
        )
        if check.status_code != 200:
            print(
                f"GET {args.path} with a valid token answered {check.status_code}: "
                f"{check.text[:200]}",
                file=sys.stderr,
            )
            return 1
        groups = {
            "gateway": with_children(gateway_process.pid()),
            "auth": [auth_pid] if auth_pid else [],
            "stand-in": with_children(standin.pid()),
            "Redis": [pid] if (pid := Redis().process().pid()) else [],
        }
        cache = (
            f"answers cached {args.cache_seconds} s by token"
            if args.cache_seconds
            else "no cache: the auth service answers every check"
        )
        print(
            f"""
gateway token check: GET {args.path} through nginx auth_request ({cache})
  gateway   nginx rendered by socialhub.gateway.render (bench profile settings, \
workers and cache processes: {len(groups["gateway"]) - 1}) on {url}
  auth      the bench profile's auth service on {auth} (pid {auth_pid})
  upstream  stand-in nginx answering 200 on {INFRA.host}:{standin_port}
  tokens    {args.tokens:,} valid tokens, rotated per request; {os.cpu_count()} cores, \
wrk on the same cores""",
            flush=True,
        )
        met = failed = False
        for count in connections:
            run_met, run_failed = report(
                measure(wrk, lua, token_file, f"{url}{args.path}", count, args.seconds, groups)
            )
            met, failed = met or run_met, failed or run_failed
    verdict = "FAILED: requests failed" if failed else "goal met" if met else "goal missed"
    print(
        f"\nresult: {verdict} (goal: {GOAL_RATE:,} checks/s with p95 < {GOAL_P95_MS:.0f} ms "
        "in one run)"
    )
    return 0 if met and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
