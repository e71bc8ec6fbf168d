"""Follows and the post-count consumer touch the same profile rows at once: no deadlocks."""

import asyncio
import random
import uuid

import httpx
from fastapi import FastAPI

from socialhub.kit.events.envelope import Event
from socialhub.users.events import EventHandler
from tests.users.helpers import follow, new_user, unfollow


def post_created(user_id: uuid.UUID, username: str) -> Event:
    return Event(
        event_type="post.created",
        producer="posts",
        data={
            "postId": str(uuid.uuid4()),
            "userId": str(user_id),
            "username": username,
            "content": "x",
            "timestamp": 1764061200000,
            "visibility": "public",
            "mediaCount": 0,
        },
    )


async def test_follows_racing_post_count_batches_never_fail(
    users: httpx.AsyncClient, users_app: FastAPI
) -> None:
    handler = EventHandler(users_app.state.database, users_app.state.profile_cache)
    people = [await new_user(users) for _ in range(6)]
    # Batches name the authors in descending id order: the opposite of the follows' lock order.
    by_id_desc = sorted(people, key=lambda p: p.id, reverse=True)

    async def follow_churn(seed: int) -> list[int]:
        rng = random.Random(seed)
        statuses = []
        for _ in range(15):
            a, b = rng.sample(people, 2)
            statuses.append((await follow(users, a, b)).status_code)
            statuses.append((await unfollow(users, a, b)).status_code)
        return statuses

    async def count_batches() -> None:
        for _ in range(15):
            assert await handler([post_created(p.id, p.username) for p in by_id_desc]) == []

    churns = asyncio.gather(*(follow_churn(n) for n in range(6)))
    results, _ = await asyncio.gather(churns, count_batches())
    statuses = {status for churn in results for status in churn}
    assert statuses == {200}, sorted(statuses)
