"""Like and dislike toggles, one reaction per user per post, counts exact under concurrency."""

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from socialhub.kit.database import Database
from socialhub.kit.identity import Principal
from socialhub.posts.models import reactions
from tests.posts.helpers import as_user, create_post, someone


async def react(
    posts: httpx.AsyncClient, user: Principal, post_id: str, kind: str
) -> dict[str, Any]:
    response = await posts.post(f"/posts/{post_id}/{kind}", headers=as_user(user))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored(database: Database, post_id: str) -> dict[str, int]:
    async with database.transaction() as session:
        rows = (
            await session.execute(
                select(reactions.c.kind, func.count())
                .where(reactions.c.post_id == uuid.UUID(post_id))
                .group_by(reactions.c.kind)
            )
        ).all()
    return dict(rows)


async def test_toggles_and_switches(posts: httpx.AsyncClient) -> None:
    author, fan = someone(), someone()
    post_id = (await create_post(posts, author))["id"]

    def state(body: dict[str, Any]) -> tuple[Any, int, int]:
        return body["reaction"], body["likeCount"], body["dislikeCount"]

    assert state(await react(posts, fan, post_id, "like")) == ("like", 1, 0)
    assert state(await react(posts, fan, post_id, "like")) == (None, 0, 0)
    assert state(await react(posts, fan, post_id, "dislike")) == ("dislike", 0, 1)
    assert state(await react(posts, fan, post_id, "like")) == ("like", 1, 0)
    assert state(await react(posts, author, post_id, "dislike")) == ("dislike", 1, 1)
    seen_by_fan = (await posts.get(f"/posts/{post_id}", headers=as_user(fan))).json()
    assert (seen_by_fan["myReaction"], seen_by_fan["likeCount"], seen_by_fan["dislikeCount"]) == (
        "like",
        1,
        1,
    )
    feed = await posts.get(f"/posts/user/{author.id}", headers=as_user(author))
    assert feed.json()["items"][0]["myReaction"] == "dislike"


async def test_many_users_at_once_are_all_counted(
    posts: httpx.AsyncClient, posts_db: Database
) -> None:
    post_id = (await create_post(posts, someone()))["id"]
    fans = [someone() for _ in range(40)]
    await asyncio.gather(
        *(react(posts, fan, post_id, "like") for fan in fans[:30]),
        *(react(posts, fan, post_id, "dislike") for fan in fans[30:]),
    )
    post = (await posts.get(f"/posts/{post_id}", headers=as_user(fans[0]))).json()
    assert (post["likeCount"], post["dislikeCount"]) == (30, 10)
    assert await stored(posts_db, post_id) == {"like": 30, "dislike": 10}
    # Everyone switches at once.
    await asyncio.gather(
        *(react(posts, fan, post_id, "dislike") for fan in fans[:30]),
        *(react(posts, fan, post_id, "like") for fan in fans[30:]),
    )
    post = (await posts.get(f"/posts/{post_id}", headers=as_user(fans[0]))).json()
    assert (post["likeCount"], post["dislikeCount"]) == (10, 30)
    assert await stored(posts_db, post_id) == {"like": 10, "dislike": 30}


async def test_one_user_racing_with_themself_stays_consistent(
    posts: httpx.AsyncClient, posts_db: Database
) -> None:
    post_id = (await create_post(posts, someone()))["id"]
    fan = someone()
    results = await asyncio.gather(
        *(react(posts, fan, post_id, kind) for kind in ["like", "dislike"] * 6 + ["like"])
    )
    rows = await stored(posts_db, post_id)
    assert sum(rows.values()) <= 1  # one reaction per user per post
    post = (await posts.get(f"/posts/{post_id}", headers=as_user(fan))).json()
    assert (post["likeCount"], post["dislikeCount"]) == (
        rows.get("like", 0),
        rows.get("dislike", 0),
    )
    assert post["myReaction"] == next(iter(rows), None)
    assert all(r["likeCount"] + r["dislikeCount"] <= 1 for r in results)
