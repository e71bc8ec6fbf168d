"""Who sees, edits and deletes what: the full matrix of visibility, follows and blocks."""

from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select

from socialhub.kit.database import Database
from socialhub.kit.identity import Principal
from socialhub.posts.models import comments, reactions
from socialhub.posts.models import posts as posts_table
from tests.posts.helpers import (
    Graph,
    all_ids,
    as_user,
    assert_error,
    create_post,
    someone,
)

VISIBILITIES = ("public", "followers", "private")


@dataclass(frozen=True)
class Cast:
    author: Principal
    follower: Principal
    stranger: Principal
    blocked: Principal  # the author blocked them
    blocker: Principal  # they blocked the author
    former_follower: Principal  # followed, then the author blocked and unblocked them
    posts: dict[str, str]  # visibility -> post id

    def viewer(self, role: str) -> Principal:
        viewer: Principal = getattr(self, role)
        return viewer


# role -> the visibilities that role may see
CAN_SEE = {
    "author": {"public", "followers", "private"},
    "follower": {"public", "followers"},
    "stranger": {"public"},
    "blocked": set(),
    "blocker": set(),
    "former_follower": {"public"},
}


@pytest.fixture(scope="module")
async def cast(posts: httpx.AsyncClient, graph: Graph) -> Cast:
    author, follower, stranger = someone("author"), someone("fan"), someone("stranger")
    blocked, blocker, former = someone("blocked"), someone("blocker"), someone("former")
    await graph.follow(follower, author)
    for who in (blocked, blocker, former):
        await graph.follow(who, author)
    await graph.block(author, blocked)
    await graph.block(blocker, author)
    await graph.block(author, former)
    await graph.unblock(author, former)
    created = {v: (await create_post(posts, author, f"{v} post", v))["id"] for v in VISIBILITIES}
    return Cast(author, follower, stranger, blocked, blocker, former, created)


@pytest.mark.parametrize("role", list(CAN_SEE))
@pytest.mark.parametrize("visibility", VISIBILITIES)
async def test_reading_a_post(
    posts: httpx.AsyncClient, cast: Cast, role: str, visibility: str
) -> None:
    response = await posts.get(
        f"/posts/{cast.posts[visibility]}", headers=as_user(cast.viewer(role))
    )
    if visibility in CAN_SEE[role]:
        assert response.status_code == 200, response.text
        assert response.json()["visibility"] == visibility
    else:  # exactly like a post that does not exist
        assert_error(response, 404, "not_found")


@pytest.mark.parametrize("role", list(CAN_SEE))
async def test_user_timeline_shows_what_the_viewer_may_see(
    posts: httpx.AsyncClient, cast: Cast, role: str
) -> None:
    ids = await all_ids(posts, cast.viewer(role), f"/posts/user/{cast.author.id}")
    assert set(ids) == {cast.posts[v] for v in CAN_SEE[role]}


@pytest.mark.parametrize("role", list(CAN_SEE))
async def test_home_feed_holds_followed_authors_posts_only(
    posts: httpx.AsyncClient, cast: Cast, role: str
) -> None:
    ids = set(await all_ids(posts, cast.viewer(role), "/posts/feed"))
    follows_author = role in ("author", "follower")  # the former follower's follow ended
    expected = {cast.posts[v] for v in CAN_SEE[role]} if follows_author else set()
    assert ids == expected


@pytest.mark.parametrize("role", [r for r in CAN_SEE if r != "author"])
@pytest.mark.parametrize("visibility", VISIBILITIES)
async def test_only_the_author_edits_or_deletes(
    posts: httpx.AsyncClient, cast: Cast, role: str, visibility: str
) -> None:
    """403 for a post the caller can see, 404 for one they cannot."""
    path = f"/posts/{cast.posts[visibility]}"
    headers = as_user(cast.viewer(role))
    status = 403 if visibility in CAN_SEE[role] else 404
    assert_error(await posts.patch(path, headers=headers, json={"content": "mine now"}), status)
    assert_error(await posts.delete(path, headers=headers), status)
    unchanged = await posts.get(path, headers=as_user(cast.author))
    assert unchanged.json()["content"] == f"{visibility} post"


async def test_author_edits_content_and_visibility(posts: httpx.AsyncClient, graph: Graph) -> None:
    author, fan, stranger = someone(), someone(), someone()
    await graph.follow(fan, author)
    post = await create_post(posts, author, "first draft", "public")
    path = f"/posts/{post['id']}"
    edited = await posts.patch(
        path, headers=as_user(author), json={"content": "second draft", "visibility": "followers"}
    )
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert (body["content"], body["visibility"]) == ("second draft", "followers")
    assert (await posts.get(path, headers=as_user(fan))).status_code == 200
    assert_error(await posts.get(path, headers=as_user(stranger)), 404)
    private = await posts.patch(path, headers=as_user(author), json={"visibility": "private"})
    assert private.json()["content"] == "second draft"
    assert_error(await posts.get(path, headers=as_user(fan)), 404)


async def test_a_block_hides_existing_posts_at_once(posts: httpx.AsyncClient, graph: Graph) -> None:
    author, reader = someone(), someone()
    post = await create_post(posts, author)
    path = f"/posts/{post['id']}"
    assert (await posts.get(path, headers=as_user(reader))).status_code == 200
    await graph.block(reader, author)
    assert_error(await posts.get(path, headers=as_user(reader)), 404)
    assert_error(await posts.post(f"{path}/like", headers=as_user(reader)), 404)
    assert await all_ids(posts, reader, f"/posts/user/{author.id}") == []
    await graph.unblock(reader, author)
    assert (await posts.get(path, headers=as_user(reader))).status_code == 200


async def test_soft_delete_takes_comments_and_reactions_along(
    posts: httpx.AsyncClient, posts_db: Database
) -> None:
    author, fan = someone(), someone()
    post = await create_post(posts, author)
    path = f"/posts/{post['id']}"
    assert (await posts.post(f"{path}/like", headers=as_user(fan))).status_code == 200
    comment = await posts.post(f"{path}/comments", headers=as_user(fan), json={"content": "hi"})
    assert comment.status_code == 201
    assert (await posts.delete(path, headers=as_user(author))).status_code == 204
    for viewer in (author, fan):
        assert_error(await posts.get(path, headers=as_user(viewer)), 404)
        assert_error(await posts.get(f"{path}/comments", headers=as_user(viewer)), 404)
        assert_error(await posts.post(f"{path}/like", headers=as_user(viewer)), 404)
    assert post["id"] not in await all_ids(posts, author, f"/posts/user/{author.id}")
    assert post["id"] not in await all_ids(posts, author, "/posts/feed")
    assert_error(await posts.delete(path, headers=as_user(author)), 404)
    async with posts_db.transaction() as session:
        kept = (
            await session.execute(
                select(posts_table.c.deleted_at).where(posts_table.c.id == post["id"])
            )
        ).scalar()
        live_comments = (
            await session.execute(
                select(func.count())
                .select_from(comments)
                .where(comments.c.post_id == post["id"], comments.c.deleted_at.is_(None))
            )
        ).scalar()
        reacted = (
            await session.execute(
                select(func.count()).select_from(reactions).where(reactions.c.post_id == post["id"])
            )
        ).scalar()
    assert kept is not None  # soft: the row stays, marked deleted
    assert (live_comments, reacted) == (0, 0)
