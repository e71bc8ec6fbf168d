"""`make bench`: every benchmark against a local platform, and one report.

    python -m loadtests [--seconds 30] [--only auth,users,posts,gateway,notifications,chat]
                        [--strict]

Starts the `bench` profile (devstack: its own databases and ports, per-IP limits raised because
all load comes from 127.0.0.1, no access logs), measures the bcrypt ceiling, runs each Locust
scenario headless for `--seconds`, then the gateway's token check with wrk (installed if
missing; its own nginx in front of the profile's auth service) and the notification and chat
benchmarks (they start their own service processes), and writes
`loadtests/results/<time>/report.md` with every figure next to the design document's, plus each
run's full output. The load generator shares the machine's cores with the platform: the figures
are what this machine does, generator included.
Exits 1 with --strict when a target is missed, or whenever a run fails outright.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.config import PROFILES
from devstack.install import apt_install
from devstack.paths import ROOT
from devstack.platform import Platform

HERE = Path(__file__).resolve().parent
LOCUST = Path(sys.executable).with_name("locust")


@dataclass(frozen=True)
class Scenario:
    suite: str
    user_class: str
    users: int


# Each request type twice: a few users (latency when the service is not saturated, the
# design's p95 column) and many (throughput at saturation, the req/s column). Closed-loop load,
# so at saturation latency is mostly queueing.
LIGHT, HEAVY = 4, 32
SCENARIOS = (
    Scenario("auth", "LoginUser", 8),  # bcrypt-bound: 8 users keep both cores hashing
    *(
        Scenario(suite, user_class, users)
        for suite, user_class in (
            ("auth", "VerifyUser"),
            ("auth", "MeUser"),
            ("users", "FollowUser"),
            ("users", "FollowingListUser"),
            ("posts", "TextPostUser"),
            ("posts", "MediaPostUser"),
            ("posts", "ReactionUser"),
            ("posts", "FeedUser"),
        )
        for users in (LIGHT, HEAVY)
    ),
)
SCRIPTS = {
    # wrk, closed loop: 4 connections for latency below saturation, 32 for throughput
    "gateway": [["token_check.py", "--connections", "4,32"]],
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
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--only", default="auth,users,posts,gateway,notifications,chat")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the bench platform up afterwards"
    )
    args = parser.parse_args()
    suites = set(args.only.split(","))
    out = HERE / "results" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True)

    platform = Platform(PROFILES["bench"])
    platform.up()
    if "gateway" in suites:
        apt_install("wrk")  # only the token check needs it; `make test` does not
    sections = [_machine()]
    failed = missed = False
    try:
        if "auth" in suites:
            ceiling = _bcrypt_ceiling(out)
            sections.append(f"bcrypt cost-10 ceiling on this machine: {ceiling:.1f} checks/s")
        for scenario in SCENARIOS:
            if scenario.suite not in suites:
                continue
            text, result, code = _locust(scenario, platform.gateway_url, args.seconds, out)
            sections.append(text)
            failed |= result is None
            missed |= code != 0
            if scenario.user_class == "LoginUser" and result and "auth" in suites:
                sections.append(_login_share(result, ceiling))
        for suite, runs in SCRIPTS.items():
            if suite in suites:
                for argv in runs:
                    text, code = _script(argv, out)
                    sections.append(text)
                    missed |= code != 0
    finally:
        if not args.keep_running:
            platform.down(infra=False)
    report = out / "report.md"
    report.write_text("# SocialHub benchmark run\n\n" + "\n\n".join(sections) + "\n")
    print(f"\nreport: {report}")
    return 1 if failed or (args.strict and missed) else 0


def _machine() -> str:
    load = os.getloadavg()
    return (
        f"Machine: {os.cpu_count()} cores, load average before the run "
        f"{load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}; load generator on the same cores."
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


def _locust(
    scenario: Scenario, host: str, seconds: int, out: Path
) -> tuple[str, dict[str, object] | None, int]:
    name = f"{scenario.suite}-{scenario.user_class}-{scenario.users}u"
    result_file = out / f"{name}.json"
    argv = [
        str(LOCUST),
        "-f",
        str(HERE / f"{scenario.suite}.py"),
        "--host",
        host,
        "--headless",
        "--only-summary",
        "-u",
        str(scenario.users),
        "-r",
        str(scenario.users),
        "-t",
        f"{seconds}s",
        scenario.user_class,
    ]
    print(f"running {name} ({scenario.users} users, {seconds}s) ...", flush=True)
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "BENCH_RESULT_JSON": str(result_file)},
    )
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    command = " ".join(["locust", *argv[1:]]).replace(str(ROOT) + "/", "")
    if not result_file.exists():
        return f"## {name}\n\nfailed to run (exit {proc.returncode}); see {name}.log", None, 1
    result: dict[str, object] = json.loads(result_file.read_text())
    table = _markdown_table(result)
    misses = "".join(f"\n- missed: {m}" for m in result["missed"])  # type: ignore[attr-defined]
    return (f"## {name}\n\n`{command}`\n\n{table}{misses}", result, proc.returncode)


def _markdown_table(result: dict[str, object]) -> str:
    lines = [
        "| request | count | failed | req/s | p50 ms | p95 ms | p99 ms | design |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:  # type: ignore[attr-defined]
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


def _login_share(result: dict[str, object], ceiling: float) -> str:
    logins = [r for r in result["rows"] if r["name"] == "login"]  # type: ignore[attr-defined]
    if not logins or ceiling <= 0:
        return ""
    share = logins[0]["per_second"] / ceiling
    verdict = "meets" if share >= 0.9 else "misses"
    return f"Logins ran at {100 * share:.0f}% of the bcrypt ceiling ({verdict} the 90% goal)."


def _script(argv: list[str], out: Path) -> tuple[str, int]:
    mode = [] if argv[1].startswith("-") else [argv[1]]
    name = "-".join([argv[0].removesuffix(".py"), *mode])
    print(f"running {' '.join(argv)} ...", flush=True)
    proc = subprocess.run(
        [sys.executable, str(HERE / argv[0]), *argv[1:]], capture_output=True, text=True, cwd=ROOT
    )
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    return (
        f"## {name}\n\n`python loadtests/{' '.join(argv)}`\n\n```\n{proc.stdout.strip()}\n```",
        proc.returncode,
    )


if __name__ == "__main__":
    sys.exit(main())
