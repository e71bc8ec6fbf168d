"""Replica bounds from capacity targets: the one per-instance capacity table.

Throughput figures are measured by `make bench` (loadtests/REPORT.md); concurrent users, which
no benchmark measures, keep the design document's sizing. For each component, the replicas
needed are the largest `target / per-instance capacity` over the targets it serves; the HPA's
minimum is that, its maximum that times the burst factor. Per-component overrides win.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

from socialhub_operator.spec import Capacity, Component

# Design document, "Infrastructure Requirements": 10,000 concurrent users -> auth 3, users 3,
# posts 5, chat 10, notifications 3 replicas.
DESIGN_USERS = {
    "auth": 10_000 / 3,
    "users": 10_000 / 3,
    "posts": 10_000 / 5,
    "chat": 10_000 / 10,
    "notifications": 10_000 / 3,
}

# `make bench` of 2026-12-01 (loadtests/REPORT.md): one instance at saturation, sharing 2 cores
# with its databases, nginx and the load generator, so these are lower bounds. Logins are bcrypt
# (91% of the 2-core ceiling); posts are the slower media posts; chat connections and messages
# were measured at the design's figures, which held, not at their ceiling. The gateway caches
# token checks, so they load nginx (2 workers: 25,000 checks/s with p95 2 ms), not the auth
# service. One gateway per 10,000 users is not measured: a conservative placeholder.
PER_INSTANCE: Mapping[str, Mapping[str, float]] = {
    "auth": {"concurrent_users": DESIGN_USERS["auth"], "logins_per_second": 31},
    "users": {"concurrent_users": DESIGN_USERS["users"], "follows_per_second": 195},
    "posts": {"concurrent_users": DESIGN_USERS["posts"], "posts_per_second": 300},
    "chat": {
        "concurrent_users": DESIGN_USERS["chat"],
        "chat_connections": 5_000,
        "chat_messages_per_second": 10_000,
    },
    "notifications": {
        "concurrent_users": DESIGN_USERS["notifications"],
        "notification_events_per_second": 7_900,
    },
    "gateway": {"concurrent_users": 10_000, "token_checks_per_second": 25_000},
}


@dataclass(frozen=True)
class ReplicaBounds:
    minimum: int
    maximum: int
    # The targets or overrides asked for more than the cap allows.
    capped: bool = False


def needed_replicas(component: str, capacity: Capacity) -> int:
    """Instances needed to carry every target this component serves (at least one)."""
    targets: dict[str, int] = capacity.model_dump()
    ratios = (
        targets[metric] / per_instance for metric, per_instance in PER_INSTANCE[component].items()
    )
    return max(1, *(math.ceil(ratio - 1e-9) for ratio in ratios))


def replica_bounds(
    component: str, capacity: Capacity, overrides: Component, cap: int
) -> ReplicaBounds:
    """The HPA's bounds; `cap` limits them whatever the targets and overrides ask."""
    needed = needed_replicas(component, capacity)
    minimum = overrides.min_replicas or min(needed, overrides.max_replicas or needed)
    maximum = max(minimum, overrides.max_replicas or needed * capacity.burst_factor)
    return ReplicaBounds(minimum=min(minimum, cap), maximum=min(maximum, cap), capped=maximum > cap)
