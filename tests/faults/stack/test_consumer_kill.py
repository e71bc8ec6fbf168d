"""The notification consumer killed with SIGKILL mid-batch (issue 10): after the supervisor has
brought it back, every event is notified exactly once (stored once, pushed at most once) and what
the owner deleted meanwhile stays deleted although its event is delivered again.

A burst builds up while the notification service is stopped: comments written through the
gateway, their events relayed to Kafka. The service starts again (supervised, as `make up` runs
it) with Redis frozen (SIGSTOP): it stores its first batch, then waits on that batch's push
(its Redis client has no command timeout), before it commits the batch's offsets. It is killed
right there, every time, with a whole batch stored and uncommitted, which Kafka must deliver
again to the restarted process. Before that
process is up, the author deletes some of the batch through the store the API uses (the API is
down with the process).
"""

import asyncio
import os
import signal
import time

import httpx
from motor.motor_asyncio import AsyncIOMotorClient

from devstack.platform import wait_healthy
from devstack.waiting import http_ok
from socialhub.notifications.store import NotificationStore
from tests.faults.stack.conftest import Stack
from tests.faults.stack.probes import (
    Account,
    Document,
    create_post,
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
from tests.support import eventually

BURST = 300
COMMENTERS = 3
DELETED = 5


async def write_burst(
    api: httpx.AsyncClient, tally: Tally, post: str, commenters: list[Account]
) -> list[str]:
    """BURST comments, the commenters writing side by side; the accepted comments' ids."""
    accepted: list[str] = []

    async def comment_as(who: Account) -> None:
        for i in range(BURST // len(commenters)):
            response = await tally.send(
                "comment",
                api.post(
                    f"/posts/{post}/comments", headers=who.headers, json={"content": f"burst {i}"}
                ),
            )
            if response.status_code == 201:
                accepted.append(response.json()["id"])

    await asyncio.gather(*(comment_as(who) for who in commenters))
    return accepted


async def first_batch(stack: Stack, author: Account) -> list[Document]:
    """The comment notifications stored so far, once there are any."""
    found: list[Document] = []

    async def arrived() -> bool:
        nonlocal found
        found = [d for d in await stored(stack, author) if d["type"] == "comment"]
        return bool(found)

    await eventually(arrived, within=60, what="the first batch stored")
    return found


async def soft_delete(stack: Stack, owner: Account, notification_ids: list[str]) -> None:
    client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(stack.mongo.address)
    try:
        store = NotificationStore(client[stack.mongo_database], ttl_days=90)
        for notification_id in notification_ids:
            assert await store.delete(owner.id, notification_id)
    finally:
        client.close()


async def test_a_consumer_killed_mid_batch_notifies_every_event_exactly_once(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    author = await new_account(api, "ca")
    commenters = [await new_account(api, f"cc{i}") for i in range(COMMENTERS)]
    post = await create_post(api, author, "about to be commented on a lot")
    await settled(stack)

    notifications = stack.process("notifications")
    health = f"{stack.url('notifications')}/health"
    await asyncio.to_thread(notifications.stop)
    try:
        tally = Tally("burst while the notification service is stopped")
        comments = await write_burst(api, tally, post, commenters)

        async def relayed() -> bool:
            return not any((await outbox_rows(stack)).values())

        await eventually(relayed, within=60, what="the burst relayed to Kafka")

        async with pushes_to(stack, author) as pushes:
            redis = stack.platform.infra.redis.process().pid()
            assert redis is not None
            os.kill(redis, signal.SIGSTOP)
            try:
                await asyncio.to_thread(notifications.start)
                await first_batch(stack, author)  # stored; its push waits on Redis
                victim = notifications.child_pid()
                assert victim is not None
                os.kill(victim, signal.SIGKILL)
                killed_at = time.monotonic()
                held = await first_batch(stack, author)  # what the killed process had stored
                deleted = [d["_id"] for d in held[:DELETED]]
                await soft_delete(stack, author, deleted)
                # the deletions came before the restarted consumer could read anything again
                assert not await asyncio.to_thread(http_ok, health)
            finally:
                os.kill(redis, signal.SIGCONT)
            await asyncio.to_thread(wait_healthy, notifications, stack.url("notifications"))
            back_after = time.monotonic() - killed_at
            drained_in = await settled(stack)
            await pushes.quiet()
    finally:
        await asyncio.to_thread(notifications.start)  # a no-op unless the test failed early

    line = tally.report()
    assert tally.statuses == {("comment", 201): BURST}, line
    supervision = notifications.supervision()
    assert supervision is not None
    assert (supervision.restarts, supervision.last_exit) == (1, "SIGKILL")
    # The whole held batch came again, and was refused: stored once is stored once.
    redelivered = int(await metric(stack, "notifications", "notifications_duplicates_total"))
    assert redelivered == len(held)

    documents = [d for d in await stored(stack, author) if d["type"] == "comment"]
    assert sorted(d["target"]["commentId"] for d in documents) == sorted(comments)  # once each
    assert sorted(d["_id"] for d in documents if d.get("deletedAt")) == sorted(deleted)
    live = [n for n in await live_notifications(api, author) if n["type"] == "comment"]
    assert len(live) == BURST - len(deleted)
    assert not set(deleted) & {n["id"] for n in live}  # nothing resurrected
    assert await unread_count(api, author) == len(live) + 1  # and the post's own
    # A push is best effort (socialhub.notifications.ingest): the held batch's died with the
    # process, and a redelivered event is never pushed again; every other one was pushed once.
    held_ids = {d["_id"] for d in held}
    assert pushes.of(d["_id"] for d in documents) == {
        d["_id"]: 0 if d["_id"] in held_ids else 1 for d in documents
    }
    assert sum(pushes.received.values()) == BURST - len(held)
    print(
        f"consumer killed mid-batch: {BURST} comments written while the notification service "
        f"was stopped; SIGKILL with a batch of {len(held)} stored and uncommitted; "
        f"supervised back in {back_after:.1f}s; the batch's {redelivered} events came again "
        f"and were refused as duplicates; all settled {drained_in:.1f}s later: {BURST} "
        f"stored once each, {BURST - len(held)} pushes (the held batch's none), "
        f"{len(deleted)} deleted meanwhile stayed deleted",
        flush=True,
    )
