"""Locust: the floor app (`floor_app.py`), hit at its own port, no gateway.

- `FloorPlainUser`: `GET /plain`, FastAPI and uvicorn alone.
- `FloorSelectUser`: `GET /select`, plus one asyncpg query: the floor routes are measured against.

`make bench` starts the app and passes its pid (`BENCH_CPU_PIDS=floor=<pid>`), so the report has
its CPU per request next to the platform's processes. The p95 bound is a sanity check, not a
design figure:

    .venv/bin/python loadtests/floor_app.py --port 15099 &
    BENCH_CPU_PIDS=floor=$! .venv/bin/locust -f loadtests/floor.py --host http://127.0.0.1:15099 \\
        --headless --only-summary -u 32 -r 32 -t 20s FloorSelectUser
"""

from common import THINK, WINDOW, Target, report_against
from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

report_against({"floor: plain": Target(p95_ms=50), "floor: select": Target(p95_ms=50)})


class FloorUser(FastHttpUser):
    abstract = True
    wait_time = between(THINK, THINK)

    def on_start(self) -> None:
        WINDOW.user_ready()  # nothing to prepare: the measured window may start


class FloorPlainUser(FloorUser):
    @task
    def plain(self) -> None:
        self.client.get("/plain", name="floor: plain")


class FloorSelectUser(FloorUser):
    @task
    def select(self) -> None:
        self.client.get("/select", name="floor: select")
