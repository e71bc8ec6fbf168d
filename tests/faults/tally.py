"""Counting answers during an outage, and printing the figures in the test output."""

import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field

import httpx


@dataclass
class Tally:
    phase: str
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    slowest: float = 0.0
    slowest_what: str = ""

    async def send(self, what: str, request: Awaitable[httpx.Response]) -> httpx.Response:
        started = time.perf_counter()
        response = await request
        took = time.perf_counter() - started
        if took > self.slowest:
            self.slowest, self.slowest_what = took, f"{what} {response.status_code}"
        self.statuses[(what, response.status_code)] += 1
        return response

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def count(self, status: int) -> int:
        return sum(n for (_, s), n in self.statuses.items() if s == status)

    def report(self) -> str:
        rows = ", ".join(
            f"{what} {status} x{n}" for (what, status), n in sorted(self.statuses.items())
        )
        line = (
            f"{self.phase}: {self.total} requests, slowest {self.slowest:.2f}s "
            f"({self.slowest_what}): {rows}"
        )
        print(f"\n{line}", flush=True)
        return line
