"""Locust: the posts service, next to the design document's numbers.

User classes, run one at a time (name it on the command line):

- `TextPostUser`: `POST /posts/` with JSON text (design: p95 30 ms; goal 1,000/s per instance).
- `MediaPostUser`: `POST /posts/` multipart with one image (BENCH_IMAGE_KB, default 64 KB;
  design: p95 500 ms, 200/s with Cloudinary, here the local disk unless the service is
  configured otherwise).
- `ReactionUser`: `POST /posts/{id}/like` or `/dislike` on a shared pool of posts, so users
  contend on the same posts (design: p95 15 ms, 2,000/s).
- `FeedUser`: `GET /posts/feed` after following BENCH_FOLLOWS other bench accounts through the
  users service (`POST /users/follow/{id}`) and posting BENCH_FEED_POSTS posts each (design:
  "post feed < 50 ms").

Through the gateway (the default), users log in once (signing up on the first run) and send
their bearer token; the gateway's per-IP rate limit must be raised for a benchmark from one
address (loadtests/README.md). With BENCH_DIRECT=1, `--host` is the posts service itself and
each user sends the `x-user-payload` header the gateway would add (no token check, no follows):
the service alone.

    locust -f loadtests/posts.py --host http://127.0.0.1:8080 --headless --only-summary \\
        -u 32 -r 32 -t 60s TextPostUser

The report prints p50/p95/p99 and req/s per request next to the targets; the exit code is 1 when
a p95 target or the failure budget (1%) is missed.
"""

import itertools
import json
import os
import random
import threading
import uuid
from typing import Any

from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment

PASSWORD = "BenchPass123!"
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "50"))
DIRECT = os.environ.get("BENCH_DIRECT", "") == "1"
# Direct mode makes up user ids: its names must never collide with real accounts'.
PREFIX = os.environ.get("BENCH_ACCOUNT_PREFIX", "bench_direct" if DIRECT else "bench_posts")
IMAGE_KB = int(os.environ.get("BENCH_IMAGE_KB", "64"))
FOLLOWS = int(os.environ.get("BENCH_FOLLOWS", "10"))
FEED_POSTS = int(os.environ.get("BENCH_FEED_POSTS", "3"))
THINK = float(os.environ.get("BENCH_THINK_SECONDS", "0"))

# name -> (design p95 in ms, design req/s per instance; 0: none stated)
TARGETS = {
    "create text post": (30.0, 1000.0),
    "create post with media": (500.0, 200.0),
    "like/dislike": (15.0, 2000.0),
    "home feed": (50.0, 0.0),
}
FAILURE_BUDGET = 0.01

_next_account = itertools.count()
_lock = threading.Lock()
# Ids of the bench accounts seen so far (followed by FeedUser) and posts to react to.
KNOWN_USERS: dict[str, str] = {}
POST_POOL: list[str] = []

# A JPEG by its signature (the service checks content, not names), padded to the wanted size.
IMAGE = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(
    random.Random(7).getrandbits(8) for _ in range(IMAGE_KB * 1024))
BOUNDARY = "socialhubbench7b1f"


def multipart(content: str) -> bytes:
    """`-F content=... -F visibility=public -F files=@photo.jpg` as one body."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="content"\r\n\r\n{content}\r\n',
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="visibility"\r\n\r\npublic\r\n',
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="photo.jpg"'
        "\r\nContent-Type: image/jpeg\r\n\r\n",
    ]
    return "".join(parts).encode() + IMAGE + f"\r\n--{BOUNDARY}--\r\n".encode()


MEDIA_BODY = multipart("a photo from the benchmark")


def account_name() -> str:
    """Spread users over a fixed pool of accounts, so repeated runs reuse them."""
    with _lock:
        index = next(_next_account) % ACCOUNTS
    return f"{PREFIX}_{index:05d}"


class _PostsUser(FastHttpUser):
    """Authenticated once (gateway: login or signup; direct: the gateway's header)."""

    abstract = True
    wait_time = between(THINK, THINK)
    username = ""
    user_id = ""
    headers: dict[str, str] = {}

    def on_start(self) -> None:
        self.username = account_name()
        if DIRECT:
            self.user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"socialhub:{self.username}"))
            self.headers = {"x-user-payload": json.dumps(
                {"id": self.user_id, "username": self.username})}
        else:
            token, self.user_id = self._login() or self._signup()
            self.headers = {"Authorization": f"Bearer {token}"}
        KNOWN_USERS[self.username] = self.user_id

    def _login(self) -> tuple[str, str] | None:
        with self.client.post("/auth/login", name="setup: login", catch_response=True, json={
                "identifier": self.username, "password": PASSWORD}) as response:
            if response.status_code == 200:
                body = response.json()
                return body["token"], body["user"]["id"]
            if response.status_code == 401:  # no such account yet
                response.success()
                return None
            response.failure(f"{response.status_code}: {response.text}")
            return None

    def _signup(self) -> tuple[str, str]:
        with self.client.post("/auth/signup", name="setup: signup", catch_response=True, json={
                "name": "Bench User", "email": f"{self.username}@example.com",
                "username": self.username, "password": PASSWORD}) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text}")
                return "", ""
            body = response.json()
            return body["token"], body["user"]["id"]

    def create_text_post(self, name: str) -> str | None:
        with self.client.post("/posts/", name=name, headers=self.headers, catch_response=True,
                              json={"content": f"bench post by {self.username}",
                                    "visibility": "public"}) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return None
            post_id: str = response.json()["id"]
            return post_id


class TextPostUser(_PostsUser):
    @task
    def text_post(self) -> None:
        self.create_text_post("create text post")


class MediaPostUser(_PostsUser):
    @task
    def media_post(self) -> None:
        headers = {**self.headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        with self.client.post("/posts/", name="create post with media", headers=headers,
                              data=MEDIA_BODY,  # type: ignore[arg-type]  # bytes work (docs)
                              catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class ReactionUser(_PostsUser):
    def on_start(self) -> None:
        super().on_start()
        post_id = self.create_text_post("setup: create post")
        if post_id:
            POST_POOL.append(post_id)

    @task
    def react(self) -> None:
        if not POST_POOL:
            return
        kind = random.choice(("like", "dislike"))
        with self.client.post(f"/posts/{random.choice(POST_POOL)}/{kind}", name="like/dislike",
                              headers=self.headers, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class FeedUser(_PostsUser):
    def on_start(self) -> None:
        super().on_start()
        for _ in range(FEED_POSTS):
            self.create_text_post("setup: create post")
        if DIRECT:
            return
        others = [user_id for name, user_id in list(KNOWN_USERS.items())
                  if name != self.username and user_id]
        for user_id in random.sample(others, min(FOLLOWS, len(others))):
            with self.client.post(f"/users/follow/{user_id}", name="setup: follow",
                                  headers=self.headers, catch_response=True) as response:
                if response.status_code not in (200, 201):
                    response.failure(f"{response.status_code}: {response.text[:200]}")

    @task
    def feed(self) -> None:
        with self.client.get("/posts/feed", name="home feed", headers=self.headers,
                             catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")


def report(environment: Environment, **_: Any) -> None:
    """p50/p95/p99 and req/s next to the design's numbers; exit code 1 on a missed target."""
    stats = environment.stats
    if stats is None:
        return
    lines = [f"{'request':<24}{'count':>9}{'fail%':>7}{'req/s':>9}{'p50':>7}{'p95':>7}"
             f"{'p99':>7}   design (p95 ms, req/s)"]
    missed: list[str] = []
    for entry in sorted(stats.entries.values(), key=lambda e: e.name):
        if entry.num_requests == 0:
            continue
        p50, p95, p99 = (entry.get_response_time_percentile(q) for q in (0.5, 0.95, 0.99))
        target = TARGETS.get(entry.name)
        if target is None:
            design = "setup"
        else:
            design = f"{target[0]:.0f} ms, {target[1]:.0f}/s" if target[1] else \
                f"{target[0]:.0f} ms"
        lines.append(f"{entry.name:<24}{entry.num_requests:>9}{100 * entry.fail_ratio:>6.1f}%"
                     f"{entry.total_rps:>9.0f}{p50:>7.0f}{p95:>7.0f}{p99:>7.0f}   {design}")
        if target is None:
            continue
        if p95 > target[0]:
            missed.append(f"{entry.name}: p95 {p95:.0f} ms > {target[0]:.0f} ms")
        if entry.fail_ratio > FAILURE_BUDGET:
            missed.append(f"{entry.name}: {100 * entry.fail_ratio:.1f}% failed")
    lines.extend(f"MISSED {reason}" for reason in missed)
    print("\n".join(lines), flush=True)
    if missed:
        environment.process_exit_code = 1


events.quitting.add_listener(report)  # type: ignore[no-untyped-call]  # locust leaves it untyped
