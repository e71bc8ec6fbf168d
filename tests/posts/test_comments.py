"""Comments: nested replies to a bounded depth, trees paged at the top level, deletion, blocks."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from socialhub.kit.identity import Principal
from socialhub.posts.settings import PostsSettings
from tests.posts.conftest import api_instance
from tests.posts.helpers import Graph, as_user, assert_error, create_post, someone


async def comment(
    posts: httpx.AsyncClient, user: Principal, post_id: str, content: str, parent: str | None = None
) -> dict[str, Any]:
    body = {"content": content, **({"parentId": parent} if parent else {})}
    response = await posts.post(f"/posts/{post_id}/comments", headers=as_user(user), json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def tree(
    posts: httpx.AsyncClient, viewer: Principal, post_id: str, **params: Any
) -> dict[str, Any]:
    response = await posts.get(f"/posts/{post_id}/comments", headers=as_user(viewer), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def shape(nodes: list[dict[str, Any]]) -> list[Any]:
    """The tree as nested (content, replies) pairs."""
    return [(n["content"], shape(n["replies"])) for n in nodes]


@pytest.fixture(scope="module")
async def short_previews(posts_settings: PostsSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_instance(posts_settings, comment_replies_preview=2) as client:
        yield client


async def test_threads_nest_three_levels(posts: httpx.AsyncClient) -> None:
    author, a, b = someone(), someone(), someone()
    post_id = (await create_post(posts, author))["id"]
    first = await comment(posts, a, post_id, "first")
    reply = await comment(posts, b, post_id, "reply", first["id"])
    deep = await comment(posts, a, post_id, "deep", reply["id"])
    await comment(posts, b, post_id, "second")
    assert (first["depth"], reply["depth"], deep["depth"]) == (1, 2, 3)
    assert (reply["parentId"], deep["parentId"]) == (first["id"], reply["id"])
    too_deep = await posts.post(
        f"/posts/{post_id}/comments",
        headers=as_user(b),
        json={"content": "deeper", "parentId": deep["id"]},
    )
    assert "at most 3 levels" in assert_error(too_deep, 422, "too_deep")["error"]["message"]
    page = await tree(posts, author, post_id)
    assert shape(page["items"]) == [("first", [("reply", [("deep", [])])]), ("second", [])]
    assert page["items"][0]["replyCount"] == 1
    assert page["items"][0]["username"] == a.username
    assert page["nextCursor"] is None
    post = (await posts.get(f"/posts/{post_id}", headers=as_user(author))).json()
    assert post["commentCount"] == 4


async def test_top_level_pages_and_reply_pages(
    short_previews: httpx.AsyncClient, posts: httpx.AsyncClient
) -> None:
    author = someone()
    post_id = (await create_post(posts, author))["id"]
    roots = [await comment(posts, author, post_id, f"root {n}") for n in range(5)]
    replies = [
        await comment(posts, author, post_id, f"reply {n}", roots[0]["id"]) for n in range(3)
    ]
    page = await tree(short_previews, author, post_id, limit=2)
    assert [n["content"] for n in page["items"]] == ["root 0", "root 1"]
    head = page["items"][0]
    assert [r["content"] for r in head["replies"]] == ["reply 0", "reply 1"]
    assert head["replyCount"] == 3
    rest = await tree(short_previews, author, post_id, parentId=roots[0]["id"], limit=1)
    assert [r["id"] for r in rest["items"]] == [replies[0]["id"]]
    after = await tree(
        short_previews, author, post_id, parentId=roots[0]["id"], cursor=rest["nextCursor"]
    )
    assert [r["id"] for r in after["items"]] == [replies[1]["id"], replies[2]["id"]]
    # a new comment meanwhile lands at the end, not in the middle of the pages
    await comment(posts, author, post_id, "late")
    contents = [n["content"] for n in page["items"]]
    cursor = page["nextCursor"]
    while cursor:
        page = await tree(short_previews, author, post_id, limit=2, cursor=cursor)
        contents += [n["content"] for n in page["items"]]
        cursor = page["nextCursor"]
    assert contents == ["root 0", "root 1", "root 2", "root 3", "root 4", "late"]


async def test_deleting_a_comment_deletes_its_replies(posts: httpx.AsyncClient) -> None:
    author, a, b, c = someone(), someone(), someone(), someone()
    post_id = (await create_post(posts, author))["id"]
    top = await comment(posts, a, post_id, "top")
    mid = await comment(posts, b, post_id, "mid", top["id"])
    await comment(posts, c, post_id, "leaf", mid["id"])
    other = await comment(posts, c, post_id, "other")
    path = f"/posts/{post_id}/comments"
    assert_error(await posts.delete(f"{path}/{mid['id']}", headers=as_user(c)), 403)
    assert_error(await posts.delete(f"{path}/{top['id']}", headers=as_user(b)), 403)
    assert (await posts.delete(f"{path}/{mid['id']}", headers=as_user(b))).status_code == 204
    assert shape((await tree(posts, author, post_id))["items"]) == [("top", []), ("other", [])]
    # the post's author may delete anyone's comment
    assert (await posts.delete(f"{path}/{top['id']}", headers=as_user(author))).status_code == 204
    assert_error(await posts.delete(f"{path}/{top['id']}", headers=as_user(author)), 404)
    assert_error(
        await posts.post(path, headers=as_user(a), json={"content": "x", "parentId": top["id"]}),
        404,
    )
    assert [n["id"] for n in (await tree(posts, author, post_id))["items"]] == [other["id"]]
    post = (await posts.get(f"/posts/{post_id}", headers=as_user(author))).json()
    assert post["commentCount"] == 1


async def test_a_comment_belongs_to_its_post(posts: httpx.AsyncClient) -> None:
    author = someone()
    one, two = (await create_post(posts, author))["id"], (await create_post(posts, author))["id"]
    on_one = await comment(posts, author, one, "on one")
    assert_error(
        await posts.post(
            f"/posts/{two}/comments",
            headers=as_user(author),
            json={"content": "x", "parentId": on_one["id"]},
        ),
        404,
    )
    assert_error(
        await posts.delete(f"/posts/{two}/comments/{on_one['id']}", headers=as_user(author)), 404
    )


async def test_blocks_hide_comments_both_ways(posts: httpx.AsyncClient, graph: Graph) -> None:
    author, reader, troll, bystander = someone(), someone(), someone(), someone()
    post_id = (await create_post(posts, author))["id"]
    by_troll = await comment(posts, troll, post_id, "troll")
    await comment(posts, bystander, post_id, "answer to troll", by_troll["id"])
    await comment(posts, bystander, post_id, "fine")
    await graph.block(reader, troll)
    assert shape((await tree(posts, reader, post_id))["items"]) == [("fine", [])]
    assert shape((await tree(posts, troll, post_id))["items"]) == [
        ("troll", [("answer to troll", [])]),
        ("fine", []),
    ]
    assert_error(
        await posts.post(
            f"/posts/{post_id}/comments",
            headers=as_user(reader),
            json={"content": "x", "parentId": by_troll["id"]},
        ),
        404,
    )
    # the post's author blocks the troll: the troll loses the post; the author can still
    # remove the troll's comment for everyone else
    await graph.block(author, troll)
    assert_error(await posts.get(f"/posts/{post_id}/comments", headers=as_user(troll)), 404)
    assert_error(
        await posts.post(
            f"/posts/{post_id}/comments", headers=as_user(troll), json={"content": "x"}
        ),
        404,
    )
    deleted = await posts.delete(
        f"/posts/{post_id}/comments/{by_troll['id']}", headers=as_user(author)
    )
    assert deleted.status_code == 204
    assert shape((await tree(posts, bystander, post_id))["items"]) == [("fine", [])]


async def test_comments_need_a_visible_post(posts: httpx.AsyncClient, graph: Graph) -> None:
    author, fan, stranger = someone(), someone(), someone()
    await graph.follow(fan, author)
    post_id = (await create_post(posts, author, visibility="followers"))["id"]
    await comment(posts, fan, post_id, "as a follower")
    assert_error(
        await posts.post(
            f"/posts/{post_id}/comments", headers=as_user(stranger), json={"content": "x"}
        ),
        404,
    )
    assert_error(await posts.get(f"/posts/{post_id}/comments", headers=as_user(stranger)), 404)
