"""Kafka stopped while users write (issue 10): every write is still accepted, its event waits in
the service's outbox, and once Kafka is back every one is stored and notified exactly once, each
pushed once, and notifications deleted before the outage stay deleted.

The writers are bounded loops of real requests through the gateway: comments, like toggles
(every other one a new like), follow/unfollow pairs and new posts, side by side, each pausing
between writes as users do.
"""

import asyncio
import time
from collections import Counter

import httpx

from tests.faults.stack.conftest import Stack
from tests.faults.stack.probes import (
    Account,
    create_post,
    known_to_users,
    live_notifications,
    metric,
    new_account,
    outbox_rows,
    pushes_to,
    settled,
    stored,
    unread_count,
)
from tests.faults.tally import Tally

COMMENTS = 60
LIKE_TOGGLES = 40  # like, take back, like, ...: half of them are new likes
FOLLOWS = 25  # each followed by an unfollow, so every follow is a new one
POSTS = 20
# Users pause between writes, so the outage (~14 s) outlasts the clients' Kafka request timeout
# (10 s): producers and consumers are left waiting and reconnecting, not merely seeing a blip.
PACE_SECONDS = 0.2


class Writers:
    """The bounded writer loops; what each accepted write should notify."""

    def __init__(
        self,
        api: httpx.AsyncClient,
        tally: Tally,
        author: Account,
        fan: Account,
        follower: Account,
        post: str,
    ) -> None:
        self.api, self.tally = api, tally
        self.author, self.fan, self.follower, self.post = author, fan, follower, post
        self.comments: list[str] = []
        self.likes = 0
        self.follows = 0
        self.posts: list[str] = []

    async def run(self) -> None:
        await asyncio.gather(self.comment(), self.like(), self.follow(), self.write_posts())

    async def comment(self) -> None:
        for i in range(COMMENTS):
            response = await self.tally.send(
                "comment",
                self.api.post(
                    f"/posts/{self.post}/comments",
                    headers=self.fan.headers,
                    json={"content": f"during the outage {i}"},
                ),
            )
            if response.status_code == 201:
                self.comments.append(response.json()["id"])
            await asyncio.sleep(PACE_SECONDS)

    async def like(self) -> None:
        for _ in range(LIKE_TOGGLES):
            response = await self.tally.send(
                "like toggle", self.api.post(f"/posts/{self.post}/like", headers=self.fan.headers)
            )
            if response.status_code == 200 and response.json()["reaction"] == "like":
                self.likes += 1
            await asyncio.sleep(PACE_SECONDS)

    async def follow(self) -> None:
        for _ in range(FOLLOWS):
            followed = await self.tally.send(
                "follow",
                self.api.post(f"/users/follow/{self.author.id}", headers=self.follower.headers),
            )
            unfollowed = await self.tally.send(
                "unfollow",
                self.api.delete(f"/users/follow/{self.author.id}", headers=self.follower.headers),
            )
            if followed.status_code == 200 and unfollowed.status_code == 200:
                self.follows += 1
            await asyncio.sleep(PACE_SECONDS)

    async def write_posts(self) -> None:
        for i in range(POSTS):
            response = await self.tally.send(
                "post",
                self.api.post(
                    "/posts/",
                    headers=self.fan.headers,
                    json={"content": f"while Kafka is away {i}"},
                ),
            )
            if response.status_code == 201:
                self.posts.append(response.json()["id"])
            await asyncio.sleep(PACE_SECONDS)


async def relay_failures(stack: Stack) -> Counter[str]:
    """Relay attempts that failed and were retried so far, per service that writes here. (The
    relay's producer is idempotent: aiokafka never expires its batches, so a relay waits for
    Kafka rather than failing; the figure says whether that held.)"""
    return Counter(
        {
            name: int(await metric(stack, name, "outbox_relay_failures_total"))
            for name in ("users", "posts")
        }
    )


async def test_writes_during_a_kafka_outage_are_notified_exactly_once_after_it(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    author, fan, follower = (
        await new_account(api, "ka"),
        await new_account(api, "kf"),
        await new_account(api, "kw"),
    )
    await known_to_users(api, author)
    post = await create_post(api, author, "Kafka is about to go away")

    # Before the outage: a comment and a follow reach the author, who deletes both.
    assert (
        await api.post(f"/posts/{post}/comments", headers=fan.headers, json={"content": "before"})
    ).status_code == 201
    assert (
        await api.post(f"/users/follow/{author.id}", headers=follower.headers)
    ).status_code == 200
    assert (
        await api.delete(f"/users/follow/{author.id}", headers=follower.headers)
    ).status_code == 200
    await settled(stack)
    before = await live_notifications(api, author)
    assert sorted(n["type"] for n in before) == ["comment", "follow", "post"]
    deleted = [n["id"] for n in before if n["type"] != "post"]
    for notification_id in deleted:
        response = await api.delete(
            f"/notify/notifications/{notification_id}", headers=author.headers
        )
        assert response.status_code == 204, response.text

    tally = Tally("kafka stopped")
    writers = Writers(api, tally, author, fan, follower, post)
    failures_before = await relay_failures(stack)
    async with pushes_to(stack, author, fan) as pushes:
        started = time.monotonic()
        await asyncio.to_thread(stack.kafka.stop)
        try:
            await writers.run()
            held = await outbox_rows(stack)
        finally:
            down_for = time.monotonic() - started
            await asyncio.to_thread(stack.kafka.start)
        back_after = time.monotonic() - started
        drained_in = await settled(stack)
        await pushes.quiet()
    failures = await relay_failures(stack) - failures_before

    line = tally.report()
    assert all(200 <= status < 300 for _, status in tally.statuses), line
    expected = {"comment": COMMENTS, "like": LIKE_TOGGLES // 2, "follow": FOLLOWS}
    assert (len(writers.comments), writers.likes, writers.follows, len(writers.posts)) == (
        COMMENTS,
        LIKE_TOGGLES // 2,
        FOLLOWS,
        POSTS,
    ), line
    # Every accepted write's event waited in its outbox (unfollows have events too).
    assert held == {
        "auth": 0,
        "users": 2 * FOLLOWS,
        "posts": COMMENTS + LIKE_TOGGLES // 2 + POSTS,
    }, held

    author_live = await live_notifications(api, author)
    outage = [n for n in author_live if n["type"] != "post"]
    assert Counter(n["type"] for n in outage) == expected
    assert Counter(n["target"]["commentId"] for n in outage if n["type"] == "comment") == (
        Counter(writers.comments)
    )  # each accepted comment once, and nothing else
    assert not set(deleted) & {n["id"] for n in author_live}  # nothing resurrected
    assert await unread_count(api, author) == len(author_live)

    fan_live = [n for n in await live_notifications(api, fan) if n["type"] == "post"]
    assert Counter(n["target"]["postId"] for n in fan_live) == Counter(writers.posts)

    # The store holds exactly these, plus the two deleted ones (still refusing redelivery).
    documents = await stored(stack, author)
    assert len(documents) == len(author_live) + len(deleted)
    assert len({d["eventId"] for d in documents}) == len(documents)
    assert sorted(d["_id"] for d in documents if d.get("deletedAt")) == sorted(deleted)

    notified = outage + fan_live
    assert set(pushes.of(n["id"] for n in notified).values()) == {1}  # every one pushed, none twice
    assert sum(pushes.received.values()) == len(notified)  # and nothing else pushed
    print(
        f"kafka outage: Kafka down {down_for:.1f}s (back after {back_after:.1f}s); "
        f"{tally.total} writes accepted while down: {len(writers.comments)} comments, "
        f"{writers.likes} likes, {writers.follows} follows, {len(writers.posts)} posts; "
        f"outboxes held {held}; relay attempts failed and retried: users {failures['users']}, "
        f"posts {failures['posts']}; "
        f"all stored {drained_in:.1f}s after Kafka was back: "
        f"{len(notified)} notified, each once, {len(notified)} pushes; "
        f"{len(deleted)} deleted before the outage stayed deleted",
        flush=True,
    )
