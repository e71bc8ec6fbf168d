"""`make bench`: every benchmark against a local platform, its figures, and the report.

    python -m loadtests [--users 1,4,16,32] [--seconds 12]
                        [--only floor,auth,users,posts,gateway,notifications,chat] [--strict]

Starts the `bench` profile (devstack: its own databases and ports, per-IP limits raised because
all load comes from 127.0.0.1, no access logs) and the floor app (`floor_app.py`: the least a
FastAPI + asyncpg request costs, measured in the same run), measures the bcrypt ceiling, runs
each Locust scenario headless at every concurrency of `--users`, each run measuring `--seconds`
once every user finished its setup (req/s, p50/p95/p99, failures, every process's CPU per
request), then the gateway's token check with wrk (installed if missing) and the notification
and chat benchmarks (they start their own service processes). Writes
`loadtests/results/<time>/`: `results.json` (every figure), `report.md` (each run next to the
design's figures) and each run's full output; then `report.py` turns results.json into plots and
REPORT.md: `loadtests/REPORT.md` when every suite ran, the results directory otherwise. The load
generator shares the machine's cores with the platform: the figures are what this machine does,
generator included.
Exits 1 with --strict when a target is missed, or whenever a run fails outright.
"""

import argparse
import json
import os
import platform as python_platform
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devstack.config import INFRA, PROFILES
from devstack.install import apt_install
from devstack.paths import ROOT
from devstack.platform import Platform

HERE = Path(__file__).resolve().parent
LOCUST = Path(sys.executable).with_name("locust")
SUITES = ("floor", "auth", "users", "posts", "gateway", "notifications", "chat")
FLOOR_PORT = 15099


@dataclass(frozen=True)
class Scenario:
    """One Locust user class, run at every concurrency of the sweep."""

    suite: str
    user_class: str
    service: str  # the process whose CPU per request is the route's own cost
    # Issue 12's goal: the service's CPU per request at most this many times the floor's
    # `/select` (None: no such goal, as for the floor itself and bcrypt-bound logins).
    floor_goal: float | None = 3.0


SCENARIOS = (
    Scenario("floor", "FloorPlainUser", "floor", None),
    Scenario("floor", "FloorSelectUser", "floor", None),
    Scenario("auth", "LoginUser", "auth", None),  # bcrypt: against the bcrypt ceiling instead
    Scenario("auth", "VerifyUser", "users"),
    Scenario("auth", "MeUser", "auth", 2.0),
    Scenario("users", "FollowUser", "users"),
    Scenario("users", "FollowingListUser", "users", 2.0),
    Scenario("posts", "TextPostUser", "posts"),
    Scenario("posts", "MediaPostUser", "posts"),
    Scenario("posts", "ReactionUser", "posts"),
    Scenario("posts", "FeedUser", "posts"),
)
SCRIPTS = {
    # wrk, closed loop: 4 connections for latency below saturation, 32 for throughput
    "gateway": [["token_check.py", "--connections", "4,32", "--seconds", "15"]],
    "notifications": [
        ["notifications.py", "--events", "20000", "--rate", "1000", "--seconds", "15", "--ceiling"]
    ],
    "chat": [
        [
            "chat.py",
            "throughput",
            "--rooms",
            "100",
            "--members",
            "10",
            "--rates",
            "500,1000",
            "--seconds",
            "10",
        ],
        ["chat.py", "connections", "--connections", "5000"],
    ],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="1,4,16,32", help="the concurrency sweep")
    parser.add_argument(
        "--seconds", type=int, default=12, help="each Locust run's measured span, after setup"
    )
    parser.add_argument("--only", default=",".join(SUITES))
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the bench platform up afterwards"
    )
    args = parser.parse_args()
    suites = set(args.only.split(","))
    sweep = [int(users) for users in args.users.split(",")]
    out = HERE / "results" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    results: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join(["python -m loadtests", *sys.argv[1:]]),
        "machine": _machine(),
        "users": sweep,
        "seconds": args.seconds,
        "suites": sorted(suites),
        "bcrypt_ceiling": None,
        "runs": [],
        "scripts": [],
    }
    started = time.monotonic()

    platform = Platform(PROFILES["bench"])
    platform.up()
    if "gateway" in suites:
        apt_install("wrk")  # only the token check needs it; `make test` does not
    sections = [_machine_line(results["machine"])]
    failed = missed = False
    try:
        if "auth" in suites:
            ceiling = results["bcrypt_ceiling"] = _bcrypt_ceiling(out)
            sections.append(f"bcrypt cost-10 ceiling on this machine: {ceiling:.1f} checks/s")
        with _floor_app(out) if "floor" in suites else _no_floor() as floor_pid:
            for scenario in SCENARIOS:
                if scenario.suite not in suites:
                    continue
                for users in sweep:
                    run, text = _locust(scenario, users, platform.gateway_url, floor_pid, args, out)
                    results["runs"].append(run)
                    sections.append(text)
                    failed |= run["result"] is None
                    missed |= run["exit_code"] != 0
        for suite, runs in SCRIPTS.items():
            if suite in suites:
                for argv in runs:
                    script = _script(argv, out)
                    results["scripts"].append(script)
                    sections.append(
                        f"## {script['name']}\n\n`{script['command']}`\n\n"
                        f"```\n{script['output']}\n```"
                    )
                    missed |= script["exit_code"] != 0
    finally:
        if not args.keep_running:
            platform.down(infra=False)
    results["minutes"] = round((time.monotonic() - started) / 60, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    report = out / "report.md"
    report.write_text("# SocialHub benchmark run\n\n" + "\n\n".join(sections) + "\n")
    # Only a run of every suite replaces the committed report; a partial one stays beside its data.
    destination = HERE if suites >= set(SUITES) else out
    subprocess.run(
        [sys.executable, str(HERE / "report.py"), str(out), "--out", str(destination)], check=True
    )
    print(f"\nresults: {out / 'results.json'}\nreport: {report}, {destination / 'REPORT.md'}")
    return 1 if failed or (args.strict and missed) else 0


def _machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    memory = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    return {
        "cores": os.cpu_count(),
        "model": model.group(1).strip() if model else "unknown",
        "memory_gib": round(int(memory.group(1)) / 2**20, 1) if memory else None,
        "python": python_platform.python_version(),
        "load_before": [round(load, 2) for load in os.getloadavg()],
    }


def _machine_line(machine: dict[str, Any]) -> str:
    load = "/".join(f"{x:.2f}" for x in machine["load_before"])
    return (
        f"Machine: {machine['cores']} cores ({machine['model']}), load average before the run "
        f"{load}; load generator on the same cores."
    )


def _bcrypt_ceiling(out: Path) -> float:
    result = subprocess.run(
        [
            sys.executable,
            str(HERE / "bcrypt_ceiling.py"),
            "--threads",
            str(os.cpu_count() or 1),
            "--seconds",
            "5",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    (out / "bcrypt_ceiling.txt").write_text(result.stdout)
    rates = re.findall(r"([\d.]+) checks/s", result.stdout)
    return float(rates[-1])


@contextmanager
def _floor_app(out: Path) -> Iterator[int]:
    """The floor app in a process of its own (its pid, for its CPU time), stopped by that pid."""
    with (out / "floor_app.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "floor_app.py"), "--port", str(FLOOR_PORT)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while not _answers(f"http://{INFRA.host}:{FLOOR_PORT}/select"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the floor app did not start; see {log.name}")
                time.sleep(0.1)
            yield proc.pid
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def _no_floor() -> Iterator[int]:
    yield 0


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


def _locust(
    scenario: Scenario,
    users: int,
    gateway_url: str,
    floor_pid: int,
    args: argparse.Namespace,
    out: Path,
) -> tuple[dict[str, Any], str]:
    """One headless Locust run: its record for results.json and its section of report.md."""
    name = f"{scenario.suite}-{scenario.user_class}-{users}u"
    result_file = out / f"{name}.json"
    on_floor = scenario.suite == "floor"
    argv = [
        str(LOCUST),
        "-f",
        str(HERE / f"{scenario.suite}.py"),
        "--host",
        f"http://{INFRA.host}:{FLOOR_PORT}" if on_floor else gateway_url,
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",  # a safety net: the run ends BENCH_WINDOW_SECONDS after every user's setup
        f"{args.seconds + 600}s",
        scenario.user_class,
    ]
    env = {
        **os.environ,
        "BENCH_RESULT_JSON": str(result_file),
        "BENCH_WINDOW_SECONDS": str(args.seconds),
    }
    if on_floor:
        env["BENCH_CPU_PIDS"] = f"floor={floor_pid}"
    print(f"running {name} ({users} users, {args.seconds}s) ...", flush=True)
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    command = " ".join(["locust", *argv[1:]]).replace(str(ROOT) + "/", "")
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    run = {
        **asdict(scenario),
        "users": users,
        "command": command,
        "exit_code": proc.returncode,
        "log": f"{name}.log",
        "result": result,
    }
    if result is None:
        return run, f"## {name}\n\nfailed to run (exit {proc.returncode}); see {name}.log"
    misses = "".join(f"\n- missed: {m}" for m in result["missed"])
    cpu = ", ".join(
        f"{role} {us:,.0f} µs"
        for role, us in sorted(result["cpu_per_request_us"].items(), key=lambda item: -item[1])
        if us >= 1
    )
    return (
        run,
        f"## {name}\n\n`{command}`\n\n{_markdown_table(result)}\n\nCPU per request: {cpu}{misses}",
    )


def _markdown_table(result: dict[str, Any]) -> str:
    lines = [
        "| request | count | failed | req/s | p50 ms | p95 ms | p99 ms | design |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        design = (
            "setup"
            if row["target_p95_ms"] is None
            else (
                f"p95 {row['target_p95_ms']:.0f} ms"
                + (f", {row['target_per_second']:.0f}/s" if row["target_per_second"] else "")
            )
        )
        lines.append(
            f"| {row['name']} | {row['count']} | {row['failed_percent']}% | "
            f"{row['per_second']:.0f} | {row['p50_ms']:.0f} | {row['p95_ms']:.0f} | "
            f"{row['p99_ms']:.0f} | {design} |"
        )
    return "\n".join(lines)


def _script(argv: list[str], out: Path) -> dict[str, Any]:
    """One of the scripts, with its output and the figures it writes to BENCH_RESULT_JSON."""
    mode = [] if argv[1].startswith("-") else [argv[1]]
    name = "-".join([argv[0].removesuffix(".py"), *mode])
    result_file = out / f"{name}.json"
    print(f"running {' '.join(argv)} ...", flush=True)
    proc = subprocess.run(
        [sys.executable, str(HERE / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "BENCH_RESULT_JSON": str(result_file)},
    )
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    return {
        "name": name,
        "command": f"python loadtests/{' '.join(argv)}",
        "exit_code": proc.returncode,
        "output": proc.stdout.strip(),
        # why it failed, when it did: the end of what it printed to stderr
        "error": "\n".join(proc.stderr.strip().splitlines()[-3:]) if proc.returncode else "",
        "result": json.loads(result_file.read_text()) if result_file.exists() else None,
    }


if __name__ == "__main__":
    sys.exit(main())
