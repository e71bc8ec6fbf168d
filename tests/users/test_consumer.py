"""What the users service consumes: user.created, and post counts exactly once per event."""

import asyncio
import itertools
import json
import uuid
from typing import Any

import httpx

from devstack.platform import Platform
from socialhub.contracts.events import DEAD_LETTER_TOPIC, POST_TOPIC
from socialhub.kit.events.envelope import Event
from socialhub.kit.identity import Principal
from socialhub.users.events import CONSUMER_GROUP, PostCountChange
from tests.support import EventProbe, eventually
from tests.users.helpers import UsersDb, counts, new_user, profile, publish, someone


def post_created(author: Principal, post_id: str) -> Event:
    return Event(
        event_type="post.created",
        producer="posts",
        data={
            "postId": post_id,
            "userId": str(author.id),
            "username": author.username,
            "content": "hello",
            "timestamp": 1764061200000,
            "visibility": "public",
            "mediaCount": 0,
        },
    )


def post_deleted(author: Principal, post_id: str) -> Event:
    return Event(
        event_type="post.deleted",
        producer="posts",
        data={"postId": post_id, "userId": str(author.id)},
    )


async def send_posts(platform: Platform, events: list[Event], key: str) -> None:
    await publish(
        platform.infra.kafka.address, platform.profile.topic_prefix + POST_TOPIC, events, key=key
    )


async def wait_for_posts(users: httpx.AsyncClient, author: Principal, expected: int) -> None:
    async def counted() -> bool:
        return (await counts(users, author, author))[2] == expected

    await eventually(counted, what=f"{expected} posts counted")


async def test_post_counts_move_once_per_event_even_when_redelivered(
    users: httpx.AsyncClient, platform: Platform, users_db: UsersDb
) -> None:
    author = await new_user(users)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    created = post_created(author, first)
    await send_posts(platform, [created, created, post_created(author, second)], key=first)
    await wait_for_posts(users, author, 2)
    deleted = post_deleted(author, first)
    await send_posts(platform, [deleted], key=first)
    await wait_for_posts(users, author, 1)
    # Redelivery (as after a consumer crash) and a marker behind it on the same partition.
    marker = await new_user(users)
    await send_posts(platform, [created, deleted, post_created(marker, first)], key=first)
    await wait_for_posts(users, marker, 1)
    assert (await counts(users, author, author))[2] == 1
    assert (
        await users_db.scalar(
            "SELECT count(*) FROM processed_events WHERE event_id IN (:a, :b)",
            a=created.event_id,
            b=deleted.event_id,
        )
        == 2
    )


async def test_post_count_never_goes_below_zero(
    users: httpx.AsyncClient, platform: Platform
) -> None:
    author = await new_user(users)
    post_id = str(uuid.uuid4())
    await send_posts(
        platform, [post_deleted(author, post_id), post_created(author, post_id)], key=post_id
    )
    await wait_for_posts(users, author, 1)


def test_a_batch_of_post_count_steps_ends_where_one_at_a_time_would() -> None:
    for length in range(1, 7):
        for steps in itertools.product((+1, -1), repeat=length):
            change = PostCountChange()
            for step in steps:
                change.step(step)
            for start in range(4):
                one_at_a_time = start
                for step in steps:
                    one_at_a_time = max(one_at_a_time + step, 0)
                batched = max(start + change.total, change.from_zero)  # what new_count computes
                assert batched == one_at_a_time, (start, steps)


async def test_a_post_by_an_author_not_seen_yet_creates_the_profile(
    users: httpx.AsyncClient, platform: Platform
) -> None:
    viewer, author = await new_user(users), someone()
    post_id = str(uuid.uuid4())
    await send_posts(platform, [post_created(author, post_id)], key=post_id)

    async def created() -> bool:
        response = await users.get(
            f"/users/{author.id}", headers={"x-user-payload": viewer.header_value()}
        )
        return response.status_code == 200

    await eventually(created, what="profile of a new author")
    body = await profile(users, viewer, author)
    assert (body["username"], body["postsCount"]) == (author.username, 1)


async def dead_letters_of(probe: EventProbe, group: str, seconds: float) -> list[dict[str, Any]]:
    """Dead letters written by one consumer group (others share the topic) during `seconds`,
    each with its `reason` header."""
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(seconds + 5):
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            batches = await probe.consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    headers = {key: value.decode() for key, value in record.headers}
                    if headers.get("group") == group:
                        found.append({**json.loads(record.value), "reason": headers["reason"]})
    return found


async def test_invalid_events_go_to_the_dead_letter_topic_and_others_are_skipped(
    users: httpx.AsyncClient, platform: Platform
) -> None:
    author = await new_user(users)
    prefix = platform.profile.topic_prefix
    broken = Event(
        event_type="post.created",
        producer="posts",
        data={"postId": str(uuid.uuid4()), "userId": "not-a-uuid", "username": "x"},
    )
    not_ours = Event(event_type="post.liked", producer="posts", data={"postId": "p"})
    marker = post_created(author, str(uuid.uuid4()))
    async with EventProbe.on(
        platform.infra.kafka.address, prefix + DEAD_LETTER_TOPIC
    ) as dead_letters:
        await send_posts(platform, [not_ours, broken, marker], key="same-partition")
        # The marker counted: the batches before it were handled and dead-lettered already.
        await wait_for_posts(users, author, 1)
        letters = await dead_letters_of(dead_letters, prefix + CONSUMER_GROUP, seconds=1.0)
    ids = [e.get("eventId") for e in letters]
    assert ids.count(broken.event_id) == 1
    assert "userId" in letters[ids.index(broken.event_id)]["reason"]
    assert not_ours.event_id not in ids
    assert marker.event_id not in ids
