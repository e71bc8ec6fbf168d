"""CPU time of each process of a running platform, read from /proc, for CPU per request.

A role is one process with everything it forked (nginx's workers, PostgreSQL's backends,
uvicorn's children), so a role's figure is what that part of the platform cost, whichever of
its processes did the work. The benchmarks take a `CpuMeter.snapshot()` before and after a run
and divide each role's difference by the requests the run completed.
"""

import os
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.config import Profile
from devstack.platform import Infra, Platform

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def platform_roles(profile: Profile) -> dict[str, int]:
    """Role name -> root pid of every running process of `profile` and the shared servers:
    one per service (the supervised child, not its supervisor), `gateway`, and each backing
    server (`postgres`, `redis`, `kafka`, `mongo`, ...). Missing processes are left out."""
    platform = Platform(profile)
    roles: dict[str, int] = {}
    for proc in platform.service_processes():
        if pid := proc.child_pid():
            service = proc.name.rsplit("-", 1)[0]  # "posts-15001"; an extra instance keeps its port
            roles[proc.name if service in roles else service] = pid
    if gateway := platform.gateway_process().pid():
        roles["gateway"] = gateway
    for server in Infra.default().servers:
        if pid := server.process().pid():
            roles[server.name] = pid
    return roles


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds per role at one moment."""

    seconds: Mapping[str, float]

    def minus(self, before: "CpuSnapshot") -> dict[str, float]:
        """CPU seconds each role spent since `before` (a role gone meanwhile counts as 0)."""
        return {
            role: max(0.0, spent - before.seconds.get(role, 0.0))
            for role, spent in self.seconds.items()
        }


class CpuMeter:
    """Reads the CPU time of a fixed set of roles, each with all its descendants."""

    def __init__(self, roles: Mapping[str, int]) -> None:
        self.roles = dict(roles)

    def snapshot(self) -> CpuSnapshot:
        own, children = _process_table()
        return CpuSnapshot(
            {role: _tree_seconds(pid, own, children) for role, pid in self.roles.items()}
        )


def _process_table() -> tuple[dict[int, float], dict[int, list[int]]]:
    """Every process's own CPU seconds (plus its reaped children's) and its children's pids."""
    own: dict[int, float] = {}
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        pid, parent = int(entry.name), int(fields[1])
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), here 11-14 after the name
        own[pid] = sum(int(f) for f in fields[11:15]) / CLOCK_TICKS
        children[parent].append(pid)
    return own, children


def _tree_seconds(root: int, own: dict[int, float], children: dict[int, list[int]]) -> float:
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        total += own.get(pid, 0.0)
        pending.extend(children.get(pid, ()))
    return total
