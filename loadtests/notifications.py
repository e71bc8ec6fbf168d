"""Notification consumer benchmark: events/s per instance and event-to-stored latency.

Runs ONE real notification service process (`python -m socialhub.notifications serve`) on the
running backing servers (Kafka, the MongoDB-compatible server, Redis), on topics, a consumer
group, a MongoDB database and a Redis database of its own, then:

1. throughput: produces `--events` events while the service is stopped, starts it and times how
   fast it drains the backlog (stored notifications per second, from the first stored to the
   last), with the CPU seconds the service and the MongoDB server spent meanwhile: that split
   says which of the two is the limit;
2. latency: produces at `--rate` events/s for `--seconds` and measures, per event, the time from
   the producer's send to the notification's real-time push on Redis (the service publishes it
   right after storing the batch: an upper bound of event-to-stored), plus the service's own
   `notification_event_to_stored_seconds` histogram over the same window;
3. ceiling (`--ceiling`): `insert_many` of the same documents straight into the server, in the
   consumer's batch size: the most any consumer on this server can store.

Goals (issue 4): 10,000 events/s per instance, event-to-stored p95 <= 50 ms; issue 12: the
consumer's CPU per event (its process and children, `processes.CpuMeter`, over the drain) at most
0.1 ms. Exits 1 when a goal is missed. `BENCH_RESULT_JSON`: where the figures are also written
(`make bench`). Everything it creates is removed at the end.

    .venv/bin/python loadtests/notifications.py --events 50000 --rate 2000 --seconds 20 --ceiling
"""

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from motor.motor_asyncio import AsyncIOMotorClient
from processes import CpuMeter
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from devstack.config import INFRA
from socialhub.contracts.channels import USER_PUSH_PREFIX
from socialhub.contracts.events import ALL_TOPICS, POST_TOPIC, USER_TOPIC
from socialhub.contracts.topology import Env
from socialhub.kit.events.envelope import Event
from socialhub.kit.events.topics import ensure_topics
from socialhub.kit.settings import KafkaSettings
from socialhub.notifications.rules import notification_for
from socialhub.notifications.store import INDEXES

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATE = 10_000
GOAL_P95_MS = 50.0
GOAL_SERVICE_US_PER_EVENT = 100.0
RECIPIENTS = [str(uuid.uuid4()) for _ in range(10_000)]
Document = dict[str, Any]


def make_event(sent_at: datetime | None = None) -> Event:
    """A random notifying event (follow, like, comment, reply, post) in the shared envelope."""
    recipient, actor, post = random.choice(RECIPIENTS), str(uuid.uuid4()), str(uuid.uuid4())
    at = sent_at or datetime.now(UTC)
    kind = random.randrange(5)
    if kind == 0:
        return Event(
            event_type="user.followed",
            producer="users",
            occurred_at=at,
            data={
                "followerId": actor,
                "followerUsername": "bench_actor",
                "followingId": recipient,
                "followingUsername": "bench_user",
                "timestamp": 0,
            },
        )
    if kind == 4:
        return Event(
            event_type="post.created",
            producer="posts",
            occurred_at=at,
            data={
                "postId": post,
                "userId": recipient,
                "username": "bench_user",
                "content": "hi",
                "timestamp": 0,
                "visibility": "public",
                "mediaCount": 0,
            },
        )
    event_type = ("post.liked", "post.commented", "comment.replied")[kind - 1]
    data = {
        "postId": post,
        "postAuthorId": recipient,
        "parentAuthorId": recipient,
        "commentId": str(uuid.uuid4()),
        "parentCommentId": str(uuid.uuid4()),
        "userId": actor,
        "username": "bench_actor",
        "content": "nice",
        "timestamp": 0,
    }
    return Event(event_type=event_type, producer="posts", occurred_at=at, data=data)


def topic_key(event: Event) -> tuple[str, bytes]:
    if event.event_type.startswith("user."):
        return USER_TOPIC, event.data["followerId"].encode()
    return POST_TOPIC, event.data["postId"].encode()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        tag = uuid.uuid4().hex[:8]
        self.kafka = KafkaSettings(
            kafka_bootstrap_servers=INFRA.kafka_bootstrap, kafka_topic_prefix=f"bench{tag}."
        )
        self.mongo_url = args.mongo_url
        self.database = f"socialhub_bench_{tag}"
        self.redis_url = f"redis://{INFRA.host}:{INFRA.redis_port}/{args.redis_db}"
        self.channel_prefix = f"bench{tag}."
        self.port = args.port
        self.producer: AIOKafkaProducer | None = None

    # -- the service process ---------------------------------------------------------------

    @contextmanager
    def service(self) -> Iterator[subprocess.Popen[bytes]]:
        env = {
            **os.environ,
            Env.SERVICE_PORT: str(self.port),
            Env.SOCIALHUB_ENV: "test",
            Env.KAFKA_BOOTSTRAP_SERVERS: self.kafka.kafka_bootstrap_servers,
            Env.KAFKA_TOPIC_PREFIX: self.kafka.kafka_topic_prefix,
            Env.MONGO_URL: self.mongo_url,
            Env.MONGO_DATABASE: self.database,
            Env.REDIS_URL: self.redis_url,
            Env.REDIS_CHANNEL_PREFIX: self.channel_prefix,
            "CONSUMER_BATCH_SIZE": str(self.args.batch_size),
            "ACCESS_LOG": "false",
            Env.LOG_LEVEL: "WARNING",
            "PYTHONPATH": f"{ROOT}/services:{ROOT}/scripts",
        }
        log = Path(f"/tmp/notifications-bench-{self.port}.log").open("wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "socialhub.notifications", "serve"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while not self._ready():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"service did not start; see {log.name}")
                time.sleep(0.1)
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{INFRA.host}:{self.port}/ready", timeout=1):
                return True
        except OSError:
            return False

    def metrics(self) -> dict[str, float]:
        """The service's counters and histogram buckets, summed over label sets but `le`."""
        with urllib.request.urlopen(f"http://{INFRA.host}:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name = sample.name
                if "le" in sample.labels:
                    name = f"{name}|{sample.labels['le']}"
                values[name] = values.get(name, 0.0) + sample.value
        return values

    # -- Kafka -----------------------------------------------------------------------------

    async def produce(self, events: list[Event]) -> None:
        assert self.producer is not None
        futures = []
        for event in events:
            topic, key = topic_key(event)
            futures.append(
                await self.producer.send(self.kafka.topic(topic), event.to_bytes(), key=key)
            )
        await asyncio.gather(*futures)

    # -- phases ----------------------------------------------------------------------------

    async def throughput(self) -> dict[str, float]:
        count = self.args.events
        print(f"throughput: producing {count} events with the service stopped ...", flush=True)
        for start in range(0, count, 5000):
            await self.produce([make_event() for _ in range(min(5000, count - start))])
        mongo_port = int(self.mongo_url.rstrip("/").rsplit(":", 1)[1])
        servers = {
            "MongoDB server": _pid_listening(mongo_port),
            "Kafka": _pid_listening(INFRA.kafka_port),
            "Redis": _pid_listening(INFRA.redis_port),
        }
        with self.service() as proc:
            meter = CpuMeter(
                {name: pid for name, pid in {"service": proc.pid, **servers}.items() if pid}
            )
            first_at, first_count, stored = 0.0, 0.0, 0.0
            cpu_before = meter.snapshot()
            deadline = time.monotonic() + 600
            while stored < count and time.monotonic() < deadline:
                stored = self.metrics().get("notifications_stored_total", 0.0)
                if not first_at and stored > 0:
                    first_at, first_count = time.monotonic(), stored
                    cpu_before = meter.snapshot()
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - first_at
            cpu = meter.snapshot().minus(cpu_before)
        assert first_at, "nothing was stored"
        drained = stored - first_count
        return {
            "events": stored,
            "seconds": elapsed,
            "rate": drained / elapsed,
            **{f"cpu:{name}": seconds / elapsed for name, seconds in cpu.items()},
            **{f"us:{name}": seconds / drained * 1e6 for name, seconds in cpu.items()},
        }

    async def latency(self) -> dict[str, float]:
        rate, seconds = self.args.rate, self.args.seconds
        print(f"latency: {rate} events/s for {seconds} s ...", flush=True)
        sent: dict[str, float] = {}
        latencies: list[float] = []
        producing = True
        all_pushed = asyncio.Event()
        redis: Redis = Redis.from_url(self.redis_url)
        with self.service():
            async with redis.pubsub() as pubsub:
                await pubsub.psubscribe(f"{self.channel_prefix}{USER_PUSH_PREFIX}*")

                async def receive() -> None:
                    async for message in pubsub.listen():
                        if message["type"] != "pmessage":
                            continue
                        event_id = json.loads(message["data"])["data"]["eventId"]
                        latencies.append(time.perf_counter() - sent.pop(event_id))
                        if not producing and not sent:
                            all_pushed.set()

                receiver = asyncio.create_task(receive())

                async def drained(within: float) -> None:
                    nonlocal producing
                    producing = False
                    if sent:
                        with suppress(TimeoutError):
                            await asyncio.wait_for(all_pushed.wait(), within)
                    all_pushed.clear()
                    producing = True

                # warm-up, not measured: the consumer has joined its group and stored something
                await self._paced(100, 1, sent)
                await drained(60)
                latencies.clear()
                before = self.metrics()
                produced = await self._paced(rate, seconds, sent)
                await drained(30)
                receiver.cancel()
                await asyncio.gather(receiver, return_exceptions=True)
                after = self.metrics()
        await redis.aclose()
        latencies.sort()
        histogram = _histogram_quantiles(before, after, "notification_event_to_stored_seconds")
        return {
            "produced": produced,
            "pushed": len(latencies),
            "lost": len(sent),
            "p50": _quantile(latencies, 0.50) * 1000,
            "p95": _quantile(latencies, 0.95) * 1000,
            "p99": _quantile(latencies, 0.99) * 1000,
            "mean": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
            "stored_p50": histogram[0] * 1000,
            "stored_p95": histogram[1] * 1000,
        }

    async def _paced(self, rate: int, seconds: int, sent: dict[str, float]) -> int:
        """Send at `rate` events/s (every 10 ms, catching up on lag) without waiting for acks
        in between; returns how many were sent."""
        assert self.producer is not None
        deliveries = []
        count = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            for _ in range(int(rate * elapsed) - count):
                event = make_event()
                topic, key = topic_key(event)
                sent[event.event_id] = time.perf_counter()
                deliveries.append(
                    await self.producer.send(self.kafka.topic(topic), event.to_bytes(), key=key)
                )
                count += 1
            await asyncio.sleep(0.01)
        await asyncio.gather(*deliveries)
        return count

    async def ceiling(self) -> float:
        """insert_many of notification documents straight into the server: docs/s."""
        client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(self.mongo_url, tz_aware=True)
        collection = client[self.database]["ceiling"]
        for index in INDEXES:
            await collection.create_indexes([index])
        batch = self.args.batch_size
        documents = []
        for _ in range(self.args.events):
            notification = notification_for(make_event())
            assert notification is not None
            documents.append(notification.to_document())
        started = time.perf_counter()
        for start in range(0, len(documents), batch):
            await collection.insert_many(documents[start : start + batch], ordered=False)
        elapsed = time.perf_counter() - started
        client.close()
        return len(documents) / elapsed

    async def cleanup(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.kafka.kafka_bootstrap_servers)
        await admin.start()
        try:
            await admin.delete_topics([self.kafka.topic(name) for name in ALL_TOPICS])
        finally:
            await admin.close()
        client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(self.mongo_url)
        await client.drop_database(self.database)
        client.close()

    async def run(self) -> int:
        load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
        await ensure_topics(self.kafka)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.kafka.kafka_bootstrap_servers,
            linger_ms=5,
            max_batch_size=256 * 1024,
            acks=1,
        )
        await self.producer.start()
        try:
            drained = await self.throughput()
            timed = await self.latency()
            ceiling = await self.ceiling() if self.args.ceiling else None
        finally:
            await self.producer.stop()
            await self.cleanup()
        load_after = " ".join(f"{x:.1f}" for x in os.getloadavg())
        cpu = ", ".join(
            f"{key[4:]} {value:.0%}" for key, value in drained.items() if key.startswith("cpu:")
        )
        per_event = ", ".join(
            f"{key[3:]} {value:.0f} us" for key, value in drained.items() if key.startswith("us:")
        )
        ok = (
            drained["rate"] >= GOAL_RATE
            and drained["us:service"] <= GOAL_SERVICE_US_PER_EVENT
            and timed["p95"] <= GOAL_P95_MS
            and not timed["lost"]
        )
        print(f"""
notification consumer, one instance, batch size {self.args.batch_size}, {os.cpu_count()} cores
  throughput  {drained["rate"]:>9,.0f} events/s   (goal {GOAL_RATE:,}/s; {drained["events"]:,.0f} \
events drained in {drained["seconds"]:.1f} s)
              CPU while draining (share of one core): {cpu}
              CPU per event: {per_event}   (goal service <= {GOAL_SERVICE_US_PER_EVENT:.0f} us)
              load average before/after: {load_before} / {load_after}
  latency at {self.args.rate:,}/s for {self.args.seconds} s: send -> stored -> pushed
              p50 {timed["p50"]:.1f} ms  p95 {timed["p95"]:.1f} ms  p99 {timed["p99"]:.1f} ms  \
mean {timed["mean"]:.1f} ms   (goal p95 <= {GOAL_P95_MS:.0f} ms)
              {timed["pushed"]:,} of {timed["produced"]:,.0f} pushed, {timed["lost"]} missing
              service histogram (occurredAt -> stored, bucket-interpolated): \
p50 {timed["stored_p50"]:.1f} ms  p95 {timed["stored_p95"]:.1f} ms""")
        if ceiling is not None:
            print(
                f"  ceiling     {ceiling:>9,.0f} docs/s    (insert_many of {self.args.batch_size}"
                f" straight into the server, same documents and indexes)"
            )
        print("  result:", "goals met" if ok else "goal missed")
        _write_result(
            {
                "events_per_second": round(drained["rate"], 1),
                "cpu_per_event_us": {
                    key[3:]: round(value, 1)
                    for key, value in drained.items()
                    if key.startswith("us:")
                },
                "latency_ms": {q: round(timed[q], 2) for q in ("p50", "p95", "p99")},
                "rate": self.args.rate,
                "lost": timed["lost"],
                "ceiling_docs_per_second": ceiling and round(ceiling),
            }
        )
        return 0 if ok else 1


def _write_result(result: dict[str, object]) -> None:
    """The figures for `make bench`, to BENCH_RESULT_JSON when it is set."""
    if destination := os.environ.get("BENCH_RESULT_JSON"):
        Path(destination).write_text(json.dumps(result, indent=2))


def _pid_listening(port: int) -> int:
    """The pid of the local server listening on `port` (for its CPU time), 0 if unknown."""
    with suppress(OSError, ValueError, subprocess.SubprocessError):
        out = subprocess.run(
            ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True
        ).stdout
        return int(out.split("pid=")[1].split(",")[0])
    return 0


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def _histogram_quantiles(
    before: dict[str, float], after: dict[str, float], name: str
) -> tuple[float, float]:
    """p50 and p95 of a Prometheus histogram's increase, interpolated within buckets."""
    prefix = f"{name}_bucket|"
    bounds = sorted(
        (float(key[len(prefix) :]), after[key] - before.get(key, 0.0))
        for key in after
        if key.startswith(prefix)
    )
    total = bounds[-1][1] if bounds else 0.0
    result = []
    for q in (0.5, 0.95):
        rank, lower, below = q * total, 0.0, 0.0
        value = float("nan")
        for upper, cumulative in bounds:
            if cumulative >= rank and total:
                if upper == float("inf"):
                    value = lower
                else:
                    share = (rank - below) / max(cumulative - below, 1e-9)
                    value = lower + (upper - lower) * share
                break
            lower, below = upper, cumulative
        result.append(value)
    return result[0], result[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="backlog to drain")
    parser.add_argument("--rate", type=int, default=2_000, help="events/s in the latency run")
    parser.add_argument("--seconds", type=int, default=20, help="duration of the latency run")
    parser.add_argument("--batch-size", type=int, default=1000, help="CONSUMER_BATCH_SIZE")
    parser.add_argument("--port", type=int, default=16002)
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument(
        "--mongo-url",
        default=f"mongodb://{INFRA.host}:{INFRA.mongo_port}/",
        help="the server to store in (default: the devstack one)",
    )
    parser.add_argument(
        "--ceiling", action="store_true", help="also measure the server's own insert_many rate"
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(Bench(args).run()))


if __name__ == "__main__":
    main()
