"""Chat benchmark: messages delivered per second per instance, send-to-deliver latency, concurrent
connections per instance with memory per connection, and the fan-out choice behind the design.

It starts its own processes on free ports and stops them at the end: the auth service (database
`socialhub_auth_bench`, created and migrated if missing) and chat instances
(`python -m socialhub.chat serve`) on Redis database `--redis-db` with a channel prefix of their
own, so nothing else on the machine sees the traffic (the rooms' keys are deleted at the end;
logs in /tmp/chat-bench-<tag>/). Clients are minimal Socket.IO v5 clients
over raw websockets (much cheaper than python-socketio's client, so one load process can drive
an instance), all on 127.0.0.1, and every phase is bounded in time.

Modes:

  throughput   rooms of --members sockets on one instance (--instances 2: members alternate
               between two instances, messages cross Redis); one sender per room sends at each
               of --rates (messages/s, all rooms together) for --seconds. Reports deliveries/s
               (every member receives every message: deliveries = messages x members),
               send-to-deliver p50/p95/p99 and the CPU of each process.
               Goal (issue 4): at 10,000 deliveries/s offered per instance, every one
               delivered with p95 <= 10 ms.
  connections  --connections sockets to one instance, each joining a room of --members;
               reports connect rate, the instance's memory per connection (RSS growth / count)
               and how long a burst of one message to every room takes to reach everyone.
               Goal: 5,000 connections per instance.
  fanout       the choice between python-socketio's AsyncRedisManager (one channel that every
               instance decodes) and the chat's per-room channels: two instances, all clients
               and traffic on the first; the second instance's CPU is what the approach costs
               an instance for traffic that is none of its business.

    .venv/bin/python loadtests/chat.py throughput --rooms 100 --members 10 --rates 500,1000,1250
    .venv/bin/python loadtests/chat.py connections --connections 5000
    .venv/bin/python loadtests/chat.py fanout --rate 500

Exits 1 when a goal of the chosen mode is missed.
"""

import argparse
import asyncio
import gc
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis import Redis as SyncRedis
from websockets.asyncio.client import ClientConnection, connect

from devstack.config import INFRA
from devstack.process import cpu_seconds
from devstack.servers.postgres import Postgres
from devstack.waiting import free_port
from socialhub.contracts.topology import Env

ROOT = Path(__file__).resolve().parents[1]
GOAL_DELIVERIES = 10_000
GOAL_P95_MS = 10.0
GOAL_CONNECTIONS = 5_000
AUTH_DATABASE = "socialhub_auth_bench"
PASSWORD = "SecurePass123!"
CONNECT_CONCURRENCY = 50


# -- processes ---------------------------------------------------------------------------------


@dataclass
class Service:
    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{INFRA.host}:{self.port}"

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


class Stack:
    """The processes of one benchmark run; all stopped by `close`."""

    def __init__(self, redis_db: int) -> None:
        tag = uuid.uuid4().hex[:8]
        self.redis_url = f"redis://{INFRA.host}:{INFRA.redis_port}/{redis_db}"
        self.channel_prefix = f"bench{tag}."
        self.jwt_secret = secrets.token_urlsafe(48)
        self.services: list[Service] = []
        self.logs = Path(f"/tmp/chat-bench-{tag}")
        self.logs.mkdir(parents=True, exist_ok=True)

    def base_env(self, port: int) -> dict[str, str]:
        return {
            **os.environ,
            Env.SERVICE_PORT: str(port),
            Env.SOCIALHUB_ENV: "test",
            Env.REDIS_URL: self.redis_url,
            Env.REDIS_CHANNEL_PREFIX: self.channel_prefix,
            Env.JWT_SECRET: self.jwt_secret,
            "ACCESS_LOG": "false",
            Env.LOG_LEVEL: "WARNING",
            "PYTHONUNBUFFERED": "1",
        }

    def start_auth(self) -> Service:
        postgres = Postgres()
        postgres.create_database(AUTH_DATABASE)
        port = free_port(INFRA.host)
        env = {
            **self.base_env(port),
            Env.DATABASE_URL: postgres.url(AUTH_DATABASE),
            # events stay in the outbox: Kafka is not part of this benchmark
            Env.KAFKA_BOOTSTRAP_SERVERS: f"{INFRA.host}:{free_port(INFRA.host)}",
            Env.MAIL_BACKEND: "log",
            "SIGNUP_LIMIT_PER_IP": "1000000",
            "LOGIN_LIMIT_PER_IP": "1000000",
            "BCRYPT_ROUNDS": "4",
        }
        subprocess.run(
            [sys.executable, "-m", "socialhub.auth", "migrate"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        return self._start("auth", [sys.executable, "-m", "socialhub.auth", "serve"], env)

    def start_chat(self, auth: Service, **extra: str) -> Service:
        port = free_port(INFRA.host)
        env = {
            **self.base_env(port),
            Env.AUTH_SERVICE_URL: auth.url,
            "CHAT_SEND_LIMIT": "1000000000",
            # no Kafka: the block replica must not join a platform's consumer group
            Env.KAFKA_BOOTSTRAP_SERVERS: f"{INFRA.host}:{free_port(INFRA.host)}",
            **extra,
        }
        return self._start("chat", [sys.executable, "-m", "socialhub.chat", "serve"], env)

    def start_redis_manager_server(self) -> Service:
        """The alternative under comparison: python-socketio's AsyncRedisManager."""
        port = free_port(INFRA.host)
        return self._start(
            "redis-manager",
            [sys.executable, __file__, "redis-manager-server", "--port", str(port)],
            self.base_env(port),
        )

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> Service:
        port = int(env[Env.SERVICE_PORT])
        log = (self.logs / f"{name}-{port}.log").open("wb")
        proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        service = Service(name, port, proc)
        self.services.append(service)
        deadline = time.monotonic() + 60
        while not _answers(f"{service.url}/health"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {log.name}")
            time.sleep(0.1)
        return service

    def close(self) -> None:
        self._stop_services()
        # the streams, presence and groups of the benchmark's rooms (all named bench-...)
        redis = SyncRedis.from_url(self.redis_url)
        try:
            batch: list[bytes] = []
            for key in redis.scan_iter(match="chat:*bench-*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    redis.unlink(*batch)
                    batch.clear()
            if batch:
                redis.unlink(*batch)
        finally:
            redis.close()

    def _stop_services(self) -> None:
        for service in reversed(self.services):
            with suppress(ProcessLookupError):
                os.killpg(service.proc.pid, signal.SIGTERM)
        for service in self.services:
            try:
                service.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(service.proc.pid, signal.SIGKILL)
                service.proc.wait()


@contextmanager
def stack(redis_db: int) -> Iterator[Stack]:
    running = Stack(redis_db)
    try:
        yield running
    finally:
        running.close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


async def make_tokens(auth: Service, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=auth.url, timeout=60) as client:

        async def one() -> str:
            name = f"bench_{uuid.uuid4().hex[:12]}"
            response = await client.post(
                "/auth/signup",
                json={
                    "name": "Bench",
                    "email": f"{name}@example.com",
                    "username": name,
                    "password": PASSWORD,
                },
            )
            response.raise_for_status()
            token: str = response.json()["token"]
            return token

        return list(await asyncio.gather(*(one() for _ in range(count))))


# -- a minimal Socket.IO client ------------------------------------------------------------------


@dataclass(eq=False)
class Client:
    """Engine.IO 4 / Socket.IO 5 over one websocket: connect with a token, emit, receive."""

    ws: ClientConnection
    on_event: Callable[[str, Any], None]
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        base_url: str,
        token: str,
        on_event: Callable[[str, Any], None],
        *,
        compression: bool = False,
    ) -> "Client":
        url = base_url.replace("http://", "ws://") + "/chat/socket.io/?EIO=4&transport=websocket"
        ws = await connect(
            url,
            compression="deflate" if compression else None,
            max_size=2**22,
            ping_interval=None,
            open_timeout=60,
        )
        opened = await ws.recv()
        if not (isinstance(opened, str) and opened.startswith("0")):
            raise RuntimeError(f"not an Engine.IO open packet: {opened!r}")
        await ws.send("40" + json.dumps({"token": token}))
        answer = await ws.recv()
        if not (isinstance(answer, str) and answer.startswith("40")):
            await ws.close()
            raise RuntimeError(f"connection refused: {answer!r}")
        client = cls(ws, on_event)
        client.reader = asyncio.create_task(client._read())
        return client

    async def emit(self, event: str, data: Any) -> None:
        await self.ws.send("42" + json.dumps([event, data], separators=(",", ":")))

    async def _read(self) -> None:
        with suppress(Exception):
            async for frame in self.ws:
                if frame == "2":
                    await self.ws.send("3")
                elif isinstance(frame, str) and frame.startswith("42"):
                    event, *data = json.loads(frame[2:])
                    self.on_event(event, data[0] if data else None)

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        with suppress(Exception):
            await self.ws.close()


# -- measurements -------------------------------------------------------------------------------


@dataclass
class Deliveries:
    """Counts `new_message` deliveries and their send-to-deliver latency inside a window."""

    window_start: float = float("inf")
    window_end: float = float("inf")
    count: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    histories: int = 0  # joins answered
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        self.window_start = self.window_end = float("inf")
        self.count = 0
        self.latencies = []
        self.errors = Counter()

    def on_event(self, event: str, data: Any) -> None:
        if event == "new_message":
            now = time.monotonic()
            sent = float(data["message"].split("|", 1)[0])
            if self.window_start <= sent < self.window_end:
                self.count += 1
                self.latencies.append(now - sent)
        elif event == "message_history":
            self.histories += 1
        elif event == "error":
            self.errors[f"{data.get('event')}:{data.get('code')}"] += 1
        self.arrived.set()

    async def until(self, done: Callable[[], bool], within: float) -> None:
        """Wait until `done()` (checked as events arrive), failing on errors or timeout."""
        async with asyncio.timeout(within):
            while not done():
                if self.errors:
                    raise RuntimeError(f"errors from the server: {dict(self.errors)}")
                self.arrived.clear()
                await self.arrived.wait()


@dataclass
class Load:
    """Sockets in rooms of `members` (socket i in room i % rooms); socket r sends to room r."""

    rooms: int
    members: int
    deliveries: Deliveries = field(default_factory=Deliveries)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    clients: list[Client] = field(default_factory=list)

    def room(self, i: int) -> str:
        return f"bench-{self.tag}-{i % self.rooms}"

    async def connect(
        self,
        urls: list[str],
        tokens: list[str],
        count: int | None = None,
        compression: bool = False,
    ) -> list[Client]:
        """`count` more clients (default: rooms x members), the i-th on urls[i % len(urls)]."""
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(i: int) -> Client:
            async with gate:
                return await Client.open(
                    urls[i % len(urls)],
                    tokens[i % len(tokens)],
                    self.deliveries.on_event,
                    compression=compression,
                )

        opened = await asyncio.gather(*(one(i) for i in range(count or self.rooms * self.members)))
        self.clients.extend(opened)
        return list(opened)

    async def join(self) -> None:
        """Every client joins its room; returns once every history arrived."""
        joiners = self.clients[: self.rooms * self.members]
        answered = self.deliveries.histories
        for i, client in enumerate(joiners):
            await client.emit("join_room", {"roomId": self.room(i)})
        await self.deliveries.until(
            lambda: self.deliveries.histories - answered == len(joiners),
            within=60 + len(joiners) / 50,
        )
        await asyncio.sleep(1)  # the last presence lists settle

    async def send(self, i: int) -> None:
        await self.clients[i % self.rooms].emit(
            "send_message", {"roomId": self.room(i), "message": f"{time.monotonic()!r}|x"}
        )

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def paced(rate: float, seconds: float, send: Callable[[int], Awaitable[None]]) -> int:
    """Call `send(i)` `rate` times a second for `seconds` (open loop, catching up in bursts)."""
    started = time.monotonic()
    done = 0
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate) - done
        for _ in range(due):
            await send(done)
            done += 1
        await asyncio.sleep(0.001)
    return done


def cpu_shares(services: list[Service], before: list[float], elapsed: float) -> str:
    return ", ".join(
        f"{s.name}:{s.port} {(s.cpu_seconds() - b) / elapsed:.0%}"
        for s, b in zip(services, before, strict=True)
    )


# -- modes --------------------------------------------------------------------------------------


async def throughput(args: argparse.Namespace) -> bool:
    with stack(args.redis_db) as running:
        auth = running.start_auth()
        chats = [running.start_chat(auth) for _ in range(args.instances)]
        load = Load(args.rooms, args.members)
        await load.connect(
            [c.url for c in chats],
            await make_tokens(auth, args.users),
            compression=args.compression,
        )
        await load.join()
        deliveries = load.deliveries
        print(
            f"chat throughput: {args.instances} instance(s), {args.rooms} rooms x "
            f"{args.members} members ({len(load.clients)} sockets), {os.cpu_count()} cores, "
            f"client compression {'on' if args.compression else 'off'}"
        )
        ok = False
        for rate in args.rates:
            deliveries.reset()
            await paced(rate, 1.0, load.send)  # warm-up
            measured = [*chats, auth]
            before = [s.cpu_seconds() for s in measured]
            generator_before = time.process_time()
            deliveries.window_start = time.monotonic()
            sent = await paced(rate, args.seconds, load.send)
            deliveries.window_end = time.monotonic()
            elapsed = deliveries.window_end - deliveries.window_start
            cpu = cpu_shares(measured, before, elapsed)
            cpu += f", load generator {(time.process_time() - generator_before) / elapsed:.0%}"
            chat_cpu = sum(c.cpu_seconds() - b for c, b in zip(chats, before, strict=False))
            await asyncio.sleep(2)  # stragglers of the window
            expected = sent * args.members
            per_second = deliveries.count / elapsed / args.instances
            p50, p95, p99 = (quantile(deliveries.latencies, q) * 1000 for q in (0.5, 0.95, 0.99))
            cost = chat_cpu / max(deliveries.count, 1)
            print(
                f"  {rate:>6} msg/s offered: {deliveries.count}/{expected} delivered, "
                f"{per_second:,.0f} deliveries/s per instance, p50 {p50:.1f} ms, "
                f"p95 {p95:.1f} ms, p99 {p99:.1f} ms, errors {dict(deliveries.errors) or 0};"
                f" CPU {cpu}; chat CPU {cost * 1e6:.0f} us per delivery (= {1 / cost:,.0f} "
                f"deliveries/s per busy core); load average {os.getloadavg()[0]:.1f}"
            )
            offered = rate * args.members / args.instances  # deliveries/s per instance
            if offered >= GOAL_DELIVERIES and p95 <= GOAL_P95_MS and deliveries.count == expected:
                ok = True
        await load.close()
        print(
            f"  goal ({GOAL_DELIVERIES:,} deliveries/s per instance, p95 <= {GOAL_P95_MS} ms):",
            "met" if ok else "missed",
        )
        return ok


async def connections(args: argparse.Namespace) -> bool:
    with stack(args.redis_db) as running:
        auth = running.start_auth()
        chat = running.start_chat(auth)
        tokens = await make_tokens(auth, args.users)
        load = Load(max(1, args.connections // args.members), args.members)
        await asyncio.sleep(1)
        idle_rss = chat.rss_bytes()
        before = [chat.cpu_seconds(), auth.cpu_seconds()]
        generator_before = time.process_time()
        started = time.monotonic()
        await load.connect([chat.url], tokens, args.connections)
        connect_seconds = time.monotonic() - started
        connect_cpu = cpu_shares([chat, auth], before, connect_seconds)
        connect_cpu += (
            f", load generator {(time.process_time() - generator_before) / connect_seconds:.0%}"
        )
        await asyncio.sleep(2)
        connected_rss = chat.rss_bytes()
        await load.join()
        joined_rss = chat.rss_bytes()

        deliveries = load.deliveries
        deliveries.window_start = time.monotonic()
        for room in range(load.rooms):
            await load.send(room)
        deliveries.window_end = time.monotonic()
        expected = load.rooms * load.members
        await deliveries.until(lambda: deliveries.count >= expected, within=60)
        p95 = quantile(deliveries.latencies, 0.95) * 1000
        await load.close()
        per_connection = (connected_rss - idle_rss) / args.connections
        per_joined = (joined_rss - idle_rss) / args.connections
        print(
            f"chat connections: {args.connections} sockets on one instance, rooms of "
            f"{args.members}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"  connected in {connect_seconds:.1f} s ({args.connections / connect_seconds:,.0f}"
            f"/s, each token checked by the auth service); CPU {connect_cpu}"
        )
        print(
            f"  instance RSS: {idle_rss / 2**20:.0f} MiB idle, {connected_rss / 2**20:.0f} MiB "
            f"connected, {joined_rss / 2**20:.0f} MiB after joining"
        )
        print(
            f"  memory per connection: {per_connection / 1024:.1f} KiB connected, "
            f"{per_joined / 1024:.1f} KiB connected and in a room"
        )
        print(
            f"  a burst of one message in each of the {load.rooms} rooms, sent at once: "
            f"{deliveries.count} deliveries, p95 {p95:.1f} ms"
        )
        ok = deliveries.count == expected and args.connections >= GOAL_CONNECTIONS
        print(f"  goal ({GOAL_CONNECTIONS:,} connections per instance):", "met" if ok else "missed")
        return ok


async def fanout_variant(args: argparse.Namespace, variant: str) -> tuple[float, float]:
    """CPU shares of the busy instance and of the bystander for one fan-out approach."""
    with stack(args.redis_db) as running:
        if variant == "AsyncRedisManager":
            pair = [running.start_redis_manager_server() for _ in range(2)]
            tokens = ["unchecked"]
        else:
            auth = running.start_auth()
            pair = [running.start_chat(auth) for _ in range(2)]
            tokens = await make_tokens(auth, args.users)
        load = Load(args.rooms, args.members)
        await load.connect([pair[0].url], tokens)
        # one idle client on the bystander: python-socketio starts a manager's listener with
        # the first connection, and a real instance has clients of its own
        await load.connect([pair[1].url], tokens, 1)
        await load.join()
        await paced(args.rate, 1.0, load.send)
        before = [s.cpu_seconds() for s in pair]
        started = time.monotonic()
        await paced(args.rate, args.seconds, load.send)
        elapsed = time.monotonic() - started
        busy, bystander = (
            (s.cpu_seconds() - b) / elapsed for s, b in zip(pair, before, strict=True)
        )
        await load.close()
        return busy, bystander


async def fanout(args: argparse.Namespace) -> bool:
    variants = ("per-room channels (the chat service)", "AsyncRedisManager")
    results = {variant: await fanout_variant(args, variant) for variant in variants}
    print(
        f"fan-out: two instances, {args.rooms} rooms x {args.members} members all on the "
        f"first, {args.rate} messages/s for {args.seconds} s, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    for variant, (busy, bystander) in results.items():
        print(
            f"  {variant}: busy instance {busy:.0%} CPU, bystander instance {bystander:.1%} "
            f"CPU = {bystander * 1e6 / args.rate:.0f} us per message it had no client for"
        )
    return True


# -- the AsyncRedisManager server under comparison ----------------------------------------------


def redis_manager_server(port: int) -> None:
    """The design's flow on python-socketio's AsyncRedisManager: every emit of every instance
    goes through one channel that every instance decodes. No auth, history or presence:
    only the fan-out is compared."""
    import socketio
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    manager = socketio.AsyncRedisManager(
        os.environ[Env.REDIS_URL], channel=os.environ[Env.REDIS_CHANNEL_PREFIX] + "socketio"
    )
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager)

    @sio.on("join_room")  # type: ignore[untyped-decorator]
    async def join_room(sid: str, data: dict[str, str]) -> None:
        await sio.enter_room(sid, data["roomId"])
        await sio.emit("message_history", {"roomId": data["roomId"], "messages": []}, to=sid)

    @sio.on("send_message")  # type: ignore[untyped-decorator]
    async def send_message(sid: str, data: dict[str, str]) -> None:
        await sio.emit(
            "new_message",
            {
                "id": uuid.uuid4().hex,
                "roomId": data["roomId"],
                "userId": sid,
                "username": "bench",
                "message": data["message"],
                "createdAt": "",
            },
            room=data["roomId"],
        )

    async def health(_: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = socketio.ASGIApp(
        sio,
        other_asgi_app=Starlette(routes=[Route("/health", health)]),
        socketio_path="chat/socket.io",
    )
    uvicorn.run(app, host=INFRA.host, port=port, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--users", type=int, default=20, help="accounts the sockets share")
    modes = parser.add_subparsers(dest="mode", required=True)
    tp = modes.add_parser("throughput")
    tp.add_argument("--instances", type=int, default=1, choices=(1, 2))
    tp.add_argument("--rooms", type=int, default=100)
    tp.add_argument("--members", type=int, default=10)
    tp.add_argument(
        "--rates", type=lambda v: [int(r) for r in v.split(",")], default=[500, 1000, 1250]
    )
    tp.add_argument("--seconds", type=float, default=10)
    tp.add_argument(
        "--compression", action="store_true", help="negotiate permessage-deflate, as browsers do"
    )
    cn = modes.add_parser("connections")
    cn.add_argument("--connections", type=int, default=GOAL_CONNECTIONS)
    cn.add_argument("--members", type=int, default=10)
    fo = modes.add_parser("fanout")
    fo.add_argument("--rooms", type=int, default=50)
    fo.add_argument("--members", type=int, default=10)
    fo.add_argument("--rate", type=int, default=300)
    fo.add_argument("--seconds", type=float, default=10)
    rm = modes.add_parser("redis-manager-server", help=argparse.SUPPRESS)
    rm.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.mode == "redis-manager-server":
        redis_manager_server(args.port)
        return
    # The load generator's own garbage-collector pauses would show up as delivery latency.
    gc.freeze()
    gc.set_threshold(10_000, 20, 1_000)
    run = {"throughput": throughput, "connections": connections, "fanout": fanout}[args.mode]
    sys.exit(0 if asyncio.run(run(args)) else 1)


if __name__ == "__main__":
    main()
