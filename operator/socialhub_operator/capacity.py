"""Replica bounds from capacity targets: the one per-instance capacity table.

Seeded with the design document's per-instance claims; replace a number here when a benchmark
(`make bench`) measures it. For each component, the replicas needed are the largest
`target / per-instance capacity` over the targets it serves; the HPA's minimum is that, its
maximum that times the burst factor. Per-component overrides win.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

from socialhub_operator.spec import Capacity, Component

# Design document, "Scalability Metrics" and "Infrastructure Requirements" (10,000 concurrent
# users -> auth 3, users 3, posts 5, chat 10, notifications 3 replicas).
PER_INSTANCE: Mapping[str, Mapping[str, float]] = {
    "auth": {"concurrent_users": 10_000 / 3, "logins_per_second": 500,
             "token_checks_per_second": 5_000},
    "users": {"concurrent_users": 10_000 / 3, "follows_per_second": 1_000},
    "posts": {"concurrent_users": 10_000 / 5, "posts_per_second": 200},
    "chat": {"concurrent_users": 10_000 / 10, "chat_connections": 5_000,
             "chat_messages_per_second": 10_000},
    "notifications": {"concurrent_users": 10_000 / 3, "notification_events_per_second": 10_000},
    # Not in the design document: nginx proxies far more than one Python service, so one
    # gateway per 10,000 users is a conservative placeholder until measured.
    "gateway": {"concurrent_users": 10_000},
}


@dataclass(frozen=True)
class ReplicaBounds:
    minimum: int
    maximum: int


def needed_replicas(component: str, capacity: Capacity) -> int:
    """Instances needed to carry every target this component serves (at least one)."""
    targets: dict[str, int] = capacity.model_dump()
    ratios = (targets[metric] / per_instance
              for metric, per_instance in PER_INSTANCE[component].items())
    return max(1, *(math.ceil(ratio - 1e-9) for ratio in ratios))


def replica_bounds(component: str, capacity: Capacity, overrides: Component) -> ReplicaBounds:
    needed = needed_replicas(component, capacity)
    minimum = overrides.min_replicas or min(needed, overrides.max_replicas or needed)
    maximum = overrides.max_replicas or max(minimum, needed * capacity.burst_factor)
    return ReplicaBounds(minimum=minimum, maximum=max(minimum, maximum))
