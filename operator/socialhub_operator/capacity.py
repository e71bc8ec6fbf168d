"""Replica bounds from capacity targets: the one per-instance capacity table.

Throughput figures are measured per core by `make bench` (loadtests/REPORT.md); concurrent
users, which no benchmark measures, keep the design document's sizing. For each component, the
replicas needed are the largest `target / per-instance capacity` over the targets it serves;
the HPA's minimum is that, its maximum that times the burst factor. Per-component overrides win.
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

# Per core, from `make bench` of 2026-12-04 (loadtests/REPORT.md; issue 12): 1 / the service's
# CPU per request at 32 users, everything it does for that request counted (its outbox relay,
# its share of event consumers), on a shared 2-core machine with the load generator, the
# databases and nginx on the same cores, so these are lower bounds for a core of its own. A
# service instance is one Python process on one event loop, using at most one core: per core is
# per instance. Logins are bcrypt
# (~130 ms of CPU each there); posts are the slower media posts; chat is deliveries per second
# (a message to a room of 10 is 10) and connections held at the design's 5,000, which held; the
# notification consumer is one instance draining a backlog (its MongoDB server needs as much CPU
# again); token checks load nginx (176 µs of gateway CPU per check), not the auth service,
# thanks to its cache.
PER_INSTANCE: Mapping[str, Mapping[str, float]] = {
    "auth": {"concurrent_users": DESIGN_USERS["auth"], "logins_per_second": 7},
    "users": {"concurrent_users": DESIGN_USERS["users"], "follows_per_second": 87},
    "posts": {"concurrent_users": DESIGN_USERS["posts"], "posts_per_second": 123},
    "chat": {
        "concurrent_users": DESIGN_USERS["chat"],
        "chat_connections": 5_000,
        "chat_messages_per_second": 5_300,
    },
    "notifications": {
        "concurrent_users": DESIGN_USERS["notifications"],
        "notification_events_per_second": 3_300,
    },
    "gateway": {"concurrent_users": 10_000, "token_checks_per_second": 5_600},
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
