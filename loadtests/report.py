"""REPORT.md and its plots, regenerated from one `make bench` run's results.json.

    .venv/bin/python loadtests/report.py loadtests/results/<time> [--out loadtests] [--note TEXT]

Writes `<out>/REPORT.md` and `<out>/report/*.png` (matplotlib, Agg: no display needed):
throughput against concurrency, latency percentiles at light load next to the design's p95, CPU
per request of each process, and each route's multiple of the floor measured in the same run.
Everything in the report comes from results.json, so a run on another machine regenerates all of
it; `--note` adds a line about the run (say so when the machine was not quiet).
"""

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; set before pyplot is imported
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
FLOOR_CLASS = "FloorSelectUser"
LIGHT_USERS = 4  # below saturation: where the design's p95 is read
CONSUMER_GOAL_US = 100.0
# Processes drawn on their own in the CPU plot when they cost this share of any bar; the rest
# are summed as "other".
OWN_BAR_SHARE = 0.03


@dataclass(frozen=True)
class Run:
    """One Locust run of one scenario at one concurrency, as the report needs it."""

    user_class: str
    route: str
    service: str
    floor_goal: float | None
    users: int
    per_second: float
    failed_percent: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    design_p95_ms: float | None
    cpu_us: dict[str, float]

    @property
    def service_us(self) -> float | None:
        return self.cpu_us.get(self.service)

    @property
    def is_floor(self) -> bool:
        return self.service == "floor"


def load_runs(results: dict[str, Any]) -> list[Run]:
    runs = []
    for record in results["runs"]:
        result = record["result"]
        if result is None:
            continue
        measured = [row for row in result["rows"] if row["target_p95_ms"] is not None]
        total = result["measured"]
        runs.append(
            Run(
                user_class=record["user_class"],
                route=" + ".join(row["name"] for row in measured) or record["user_class"],
                service=record["service"],
                floor_goal=record["floor_goal"],
                users=record["users"],
                per_second=total["per_second"],
                failed_percent=total["failed_percent"],
                p50_ms=total["p50_ms"],
                p95_ms=total["p95_ms"],
                p99_ms=total["p99_ms"],
                design_p95_ms=None
                if record["service"] == "floor"
                else max((row["target_p95_ms"] for row in measured), default=None),
                cpu_us=result["cpu_per_request_us"],
            )
        )
    return runs


class Figures:
    """The runs of one results.json, indexed by scenario and concurrency."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.results = results
        self.runs = load_runs(results)
        self.scenarios = list(dict.fromkeys(run.user_class for run in self.runs))
        self.sweep = sorted({run.users for run in self.runs})
        self.heavy = max(self.sweep, default=0)
        self.light = LIGHT_USERS if LIGHT_USERS in self.sweep else min(self.sweep, default=0)

    def run(self, user_class: str, users: int) -> Run | None:
        return next((r for r in self.runs if r.user_class == user_class and r.users == users), None)

    def at(self, users: int) -> list[Run]:
        return [run for name in self.scenarios if (run := self.run(name, users))]

    def floor_us(self, users: int) -> float | None:
        floor = self.run(FLOOR_CLASS, users)
        return floor.service_us if floor else None

    def multiple(self, run: Run) -> float | None:
        """The route's service CPU per request over the floor's at the same concurrency."""
        floor = self.floor_us(run.users)
        if run.is_floor or not floor or run.service_us is None:
            return None
        return run.service_us / floor


# -- plots --------------------------------------------------------------------------------


def plot_throughput(figures: Figures, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = plt.get_cmap("tab20").colors  # type: ignore[attr-defined]
    for index, name in enumerate(figures.scenarios):
        runs = [run for users in figures.sweep if (run := figures.run(name, users))]
        ax.plot(
            [run.users for run in runs],
            [run.per_second for run in runs],
            marker="o",
            linestyle="--" if runs[0].is_floor else "-",
            color=colors[index % len(colors)],
            label=f"{name} ({runs[0].route})",
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(figures.sweep, [str(users) for users in figures.sweep])
    ax.set_yscale("log")
    ax.set_xlabel("concurrent users (closed loop)")
    ax.set_ylabel("requests/s")
    ax.set_title("Throughput against concurrency (dashed: the floor app)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, path)


def plot_latency(figures: Figures, path: Path) -> None:
    runs = figures.at(figures.light)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(runs) + 1.5))
    height = 0.25
    for offset, (label, key) in enumerate(
        (("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"))
    ):
        ax.barh(
            [index + (offset - 1) * height for index in range(len(runs))],
            [max(getattr(run, key), 0.5) for run in runs],
            height=height,
            label=label,
        )
    designs = [(index, run.design_p95_ms) for index, run in enumerate(runs) if run.design_p95_ms]
    ax.scatter(
        [p95 for _, p95 in designs],
        [index for index, _ in designs],
        marker="|",
        s=400,
        color="black",
        zorder=3,
        label="design p95",
    )
    ax.set_yticks(range(len(runs)), [f"{run.user_class}\n{run.route}" for run in runs], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds")
    ax.set_title(f"Latency at {figures.light} users (below saturation)")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def plot_cpu(figures: Figures, path: Path) -> None:
    # Logins (bcrypt, ~100x the rest) would flatten every other bar: they are in the tables.
    runs = [run for run in figures.at(figures.heavy) if run.user_class != "LoginUser"]
    roles = _roles_worth_a_bar(runs)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(runs) + 1.5))
    left = [0.0] * len(runs)
    colors = plt.get_cmap("tab10").colors  # type: ignore[attr-defined]
    for index, role in enumerate([*roles, "other"]):
        widths = [
            run.cpu_us.get(role, 0.0)
            if role != "other"
            else sum(us for name, us in run.cpu_us.items() if name not in roles)
            for run in runs
        ]
        ax.barh(
            range(len(runs)),
            widths,
            left=left,
            label=role,
            color="lightgrey" if role == "other" else colors[index % len(colors)],
        )
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for index, total in enumerate(left):
        ax.annotate(f"{total:,.0f}", (total, index), xytext=(3, -3), textcoords="offset points")
    ax.set_yticks(range(len(runs)), [f"{run.user_class}\n{run.route}" for run in runs], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("CPU µs per request, all processes (logins left out: see the tables)")
    ax.margins(x=0.1)
    ax.set_title(f"CPU per request of each process, {figures.heavy} users")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, path)


def _roles_worth_a_bar(runs: Iterable[Run]) -> list[str]:
    roles: dict[str, None] = {}
    for run in runs:
        total = sum(run.cpu_us.values()) or 1.0
        for role, us in sorted(run.cpu_us.items(), key=lambda item: -item[1]):
            if us / total >= OWN_BAR_SHARE:
                roles[role] = None
    return list(roles)


def plot_floor_multiple(figures: Figures, path: Path) -> None:
    runs = [
        run
        for run in figures.at(figures.heavy)
        if run.floor_goal is not None and figures.multiple(run) is not None
    ]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(runs) + 1.5))
    multiples = [figures.multiple(run) or 0.0 for run in runs]
    ax.barh(
        range(len(runs)),
        multiples,
        color=[
            "tab:green" if multiple <= (run.floor_goal or 0) else "tab:red"
            for run, multiple in zip(runs, multiples, strict=True)
        ],
    )
    for index, multiple in enumerate(multiples):
        ax.annotate(
            f"{multiple:.1f}x", (multiple, index), xytext=(3, -3), textcoords="offset points"
        )
    ax.axvline(3, color="black", linestyle="--", label="goal 3x")
    ax.axvline(2, color="black", linestyle=":", label="goal 2x (GET /auth/me, list reads)")
    labels = [f"{run.user_class} ({run.service})\n{run.route}" for run in runs]
    ax.set_yticks(range(len(runs)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("service CPU per request / the floor's GET /select (same run, same users)")
    ax.margins(x=0.1)
    ax.set_title(f"Multiple of the floor, {figures.heavy} users (green: goal met; logins: none)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- REPORT.md -----------------------------------------------------------------------------


def render(figures: Figures, note: str) -> str:
    results = figures.results
    machine = results["machine"]
    load = "/".join(f"{x:.2f}" for x in machine["load_before"])
    parts = [
        "# Benchmark report",
        "",
        "Generated by `loadtests/report.py` from one `make bench` run's `results.json`; "
        "every figure and plot below is that run's. Regenerate with "
        "`.venv/bin/python loadtests/report.py loadtests/results/<time>`.",
        "",
        *([f"**This run:** {note}", ""] if note else []),
        "## Machine and run",
        "",
        f"- {machine['cores']} cores ({machine['model']}), {machine['memory_gib']} GiB, "
        f"Python {machine['python']}; load average before the run {load}.",
        f"- Started {results['started_at']}, {results.get('minutes', '?')} minutes: "
        f"`{results['command']}`; each Locust run {results['seconds']} s at "
        f"{', '.join(map(str, results['users']))} users.",
        "- One process per service (uvicorn, one worker), nginx with 2 workers, every backing "
        "server and the load generator (Locust `FastHttpUser`, one process; wrk; the scripts) on "
        "the same cores, `bench` profile (own databases and ports, per-IP limits raised, no "
        "access logs).",
        "",
        READING,
        "",
        *(PLOTS.splitlines() if figures.runs else []),
        *([goals_table(figures), "", scenarios_table(figures), ""] if figures.runs else []),
        login_section(figures),
        notifications_section(results),
        scripts_section(results),
        REPRODUCE,
    ]
    return "\n".join(parts).rstrip() + "\n"


PLOTS = """\
## Plots

![Throughput against concurrency](report/throughput.png)

![Latency percentiles at light load](report/latency.png)

![CPU per request of each process](report/cpu.png)

![Multiple of the floor](report/floor_multiple.png)

"""

READING = """\
## Reading the figures

- **Closed loop.** Each simulated user sends its next request when the last one answers, so at
  saturation p95 is mostly queueing: read latency from the light-load rows (4 users) and
  throughput from the heavy ones.
- **CPU per request** is each process's CPU time (user + system, with all its children: nginx's
  workers, PostgreSQL's backends) over the measured window, divided by the requests completed in
  it. The window starts once every user finished its setup (sign-up, logins, setup posts and
  follows) and ends with the run, so setup is left out. Everything a process did in the window
  counts: a service's background work (outbox relays, event consumers) included, and on a
  shared machine any other load those processes served.
- **The floor** (`floor_app.py`) is a minimal FastAPI + uvicorn (uvloop, httptools) + asyncpg
  app in its own process, hit directly at its port: `GET /plain` answers without a query,
  `GET /select` reads one row. A route's **multiple of the floor** is its service's CPU per
  request over the floor's `/select` in the same run at the same concurrency: the overhead our
  code adds to what the stack costs anyway. Goal (issue 12): at most 3x, `GET /auth/me` and list
  reads 2x; event consumers at most 0.1 ms of CPU per event. Logins have no such goal: bcrypt is
  their cost by design, measured against the bcrypt ceiling instead.
- **One machine.** Locust needs most of a core near 1,000 req/s and shares the cores with nginx,
  the services and their databases, so requests/s are lower bounds for an instance with cores
  of its own; CPU per request depends much less on that.
- **The token check.** `VerifyUser` goes through the gateway's `auth_request`, whose answers are
  cached for a few seconds (`services/socialhub/gateway/README.md`), then to the users service:
  it measures the users service more than the check. `MeUser` shows the auth service verifying
  every token itself. The gateway's own capacity comes from `token_check.py` below (wrk, its own
  nginx from the gateway template, a stand-in upstream); its percentiles are wrk's, corrected
  for coordinated omission, and the cached answers of all tokens expire together every 5 s,
  which shows in the tail at saturation."""

REPRODUCE = """\
## Reproduce

```bash
make bench                                                   # everything; about 20 minutes
.venv/bin/python -m loadtests --only floor,users --users 4,32 --seconds 30   # a subset
.venv/bin/python loadtests/report.py loadtests/results/<time>   # this file and its plots
```

How to run one suite by hand and read its output: [README.md](README.md). The operator's
per-instance capacity table (`operator/socialhub_operator/capacity.py`) takes its throughput
figures from this report."""


def goals_table(figures: Figures) -> str:
    floor = figures.floor_us(figures.heavy)
    lines = [
        f"## CPU per request against the floor ({figures.heavy} users)",
        "",
        f"The floor's `GET /select` cost **{_us(floor)}** of its process's CPU per request in "
        f"this run (`GET /plain`: {_us(_floor_plain(figures))}).",
        "",
        "| scenario | route | service | service CPU per request | x floor | goal | |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in figures.at(figures.heavy):
        if run.is_floor:
            continue
        multiple = figures.multiple(run)
        verdict = (
            ""
            if run.floor_goal is None or multiple is None
            else ("met" if multiple <= run.floor_goal else "**missed**")
        )
        lines.append(
            f"| {run.user_class} | {run.route} | {run.service} | {_us(run.service_us)} | "
            f"{_times(multiple)} | {_times(run.floor_goal) if run.floor_goal else '—'} | "
            f"{verdict} |"
        )
    return "\n".join(lines)


def _floor_plain(figures: Figures) -> float | None:
    plain = figures.run("FloorPlainUser", figures.heavy)
    return plain.service_us if plain else None


def scenarios_table(figures: Figures) -> str:
    lines = [
        "## Every run",
        "",
        "CPU columns are microseconds of CPU per request; `service` is the process named in the "
        "third column (the floor app for the floor).",
        "",
        "| scenario | users | service | req/s | p50 ms | p95 ms | p99 ms | design p95 | failed "
        "| service µs | x floor | gateway µs | postgres µs | redis µs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in figures.scenarios:
        for users in figures.sweep:
            run = figures.run(name, users)
            if run is None:
                continue
            design = f"{run.design_p95_ms:.0f}" if run.design_p95_ms else "—"
            lines.append(
                f"| {name} ({run.route}) | {users} | {run.service} | {run.per_second:,.0f} | "
                f"{run.p50_ms:.0f} | {run.p95_ms:.0f} | {run.p99_ms:.0f} | {design} | "
                f"{run.failed_percent}% | {_num(run.service_us)} | "
                f"{_times(figures.multiple(run))} | {_num(run.cpu_us.get('gateway'))} | "
                f"{_num(run.cpu_us.get('postgres'))} | {_num(run.cpu_us.get('redis'))} |"
            )
    return "\n".join(lines)


def login_section(figures: Figures) -> str:
    ceiling = figures.results.get("bcrypt_ceiling")
    logins = [run for users in figures.sweep if (run := figures.run("LoginUser", users))]
    if not ceiling or not logins:
        return ""
    cores = figures.results["machine"]["cores"] or 1
    best = max(logins, key=lambda run: run.per_second)
    return (
        "## Logins\n\n"
        f"bcrypt cost 10 on this machine: {ceiling:.1f} checks/s on {cores} cores "
        f"({ceiling / cores:.1f} per core), so the design's 500 logins/s needs about "
        f"{500 / (ceiling / cores):.0f} cores of hashing, whatever the language. Logins reached "
        f"{best.per_second:.1f}/s at {best.users} user{'s' if best.users > 1 else ''}, "
        f"{100 * best.per_second / ceiling:.0f}% of the ceiling (goal: 90%).\n"
    )


def notifications_section(results: dict[str, Any]) -> str:
    script = next((s for s in results["scripts"] if s["name"] == "notifications"), None)
    if script is None or script["result"] is None:
        return ""
    result = script["result"]
    per_event = result["cpu_per_event_us"]
    service = per_event.get("service", 0.0)
    verdict = "met" if service <= CONSUMER_GOAL_US else "**missed**"
    others = ", ".join(f"{name} {us:.0f} µs" for name, us in per_event.items() if name != "service")
    latency = result["latency_ms"]
    return (
        "## Notification consumer\n\n"
        f"One consumer instance drained a backlog at {result['events_per_second']:,.0f} events/s "
        f"(design: 10,000/s) at **{service:.0f} µs of CPU per event** (goal "
        f"{CONSUMER_GOAL_US:.0f} µs: {verdict}); per event the other processes spent: {others}. "
        f"At {result['rate']:,}/s, send -> stored -> pushed took p50 {latency['p50']:,.1f} ms, "
        f"p95 {latency['p95']:,.1f} ms, p99 {latency['p99']:,.1f} ms (design p95 50 ms).\n"
    )


def scripts_section(results: dict[str, Any]) -> str:
    """The scripts' own summaries, as they printed them (token check, notifications, chat)."""
    if not results["scripts"]:
        return ""
    parts = ["## The scripts' output\n"]
    for script in results["scripts"]:
        output = script["output"] or f"(nothing on stdout; exit {script['exit_code']})"
        if error := script.get("error"):
            output += f"\n{error}"
        parts.append(f"### {script['name']}\n\n`{script['command']}`\n\n```\n{output}\n```\n")
    return "\n".join(parts)


def _us(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} µs"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a loadtests/results/<time> directory")
    parser.add_argument("--out", type=Path, default=HERE, help="where REPORT.md and report/ go")
    parser.add_argument("--note", default="", help="a line about the run, shown at the top")
    args = parser.parse_args()
    figures = Figures(json.loads((args.results / "results.json").read_text()))
    plots = args.out / "report"
    plots.mkdir(parents=True, exist_ok=True)
    if figures.runs:
        plot_throughput(figures, plots / "throughput.png")
        plot_latency(figures, plots / "latency.png")
        plot_cpu(figures, plots / "cpu.png")
        plot_floor_multiple(figures, plots / "floor_multiple.png")
    (args.out / "REPORT.md").write_text(render(figures, args.note))
    print(f"wrote {args.out / 'REPORT.md'} and {plots}/*.png")


if __name__ == "__main__":
    main()
