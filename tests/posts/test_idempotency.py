"""Idempotency-Key: a retried create returns the first result, once, whatever the timing."""

import asyncio
import uuid
from pathlib import Path

import httpx

from socialhub.kit.database import Database
from socialhub.kit.identity import Principal
from socialhub.posts.settings import PostsSettings
from tests.posts.helpers import as_user, assert_error, png, post_rows, someone
from tests.support import EventProbe


def stored_pngs(root: Path) -> set[Path]:
    return set(root.rglob("*.png"))


def keyed(user: Principal, key: str) -> dict[str, str]:
    return {**as_user(user), "Idempotency-Key": key}


async def test_a_retry_returns_the_first_post(
    posts: httpx.AsyncClient, posts_db: Database, posts_settings: PostsSettings, post_topic: str
) -> None:
    author, key = someone(), uuid.uuid4().hex
    async with EventProbe.on(posts_settings.kafka_bootstrap_servers, post_topic) as probe:
        first = await posts.post("/posts/", headers=keyed(author, key), json={"content": "once"})
        again = await posts.post("/posts/", headers=keyed(author, key), json={"content": "once"})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert "idempotent-replayed" not in first.headers
        assert again.headers["idempotent-replayed"] == "true"
        await probe.wait_for(lambda e: e["data"].get("postId") == first.json()["id"])
        later = await probe.drain(seconds=1.0)
    assert not [e for e in later if e["data"].get("userId") == str(author.id)]
    assert await post_rows(posts_db, author.id) == 1


async def test_concurrent_retries_make_one_post(
    posts: httpx.AsyncClient, posts_db: Database
) -> None:
    author, key = someone(), uuid.uuid4().hex
    answers = await asyncio.gather(
        *(
            posts.post("/posts/", headers=keyed(author, key), json={"content": "raced"})
            for _ in range(8)
        )
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert await post_rows(posts_db, author.id) == 1


async def test_keys_belong_to_their_user(posts: httpx.AsyncClient) -> None:
    key = uuid.uuid4().hex
    one = await posts.post("/posts/", headers=keyed(someone(), key), json={"content": "a"})
    two = await posts.post("/posts/", headers=keyed(someone(), key), json={"content": "a"})
    assert one.json()["id"] != two.json()["id"]


async def test_a_key_reused_for_another_post_is_refused(posts: httpx.AsyncClient) -> None:
    author, key = someone(), uuid.uuid4().hex
    assert (
        await posts.post("/posts/", headers=keyed(author, key), json={"content": "first"})
    ).status_code == 201
    for body in ({"content": "second"}, {"content": "first", "visibility": "private"}):
        other = await posts.post("/posts/", headers=keyed(author, key), json=body)
        assert_error(other, 422, "idempotency_key_reused")


async def test_a_retried_media_post_stores_its_files_once(
    posts: httpx.AsyncClient, media_dir: Path
) -> None:
    author, key = someone(), uuid.uuid4().hex
    before = stored_pngs(media_dir)
    files = {"files": ("a.png", png(3, 3), "image/png")}
    answers = [
        await posts.post(
            "/posts/", headers=keyed(author, key), files=files, data={"content": "pic"}
        )
        for _ in range(2)
    ]
    answers += await asyncio.gather(
        *(
            posts.post("/posts/", headers=keyed(author, key), files=files, data={"content": "pic"})
            for _ in range(4)
        )
    )
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(stored_pngs(media_dir) - before) == 1
    different = await posts.post(
        "/posts/",
        headers=keyed(author, key),
        data={"content": "pic"},
        files={"files": ("a.png", png(4, 4), "image/png")},
    )
    assert_error(different, 422, "idempotency_key_reused")


async def test_a_key_whose_post_was_deleted(posts: httpx.AsyncClient) -> None:
    author, key = someone(), uuid.uuid4().hex
    post = (
        await posts.post("/posts/", headers=keyed(author, key), json={"content": "gone"})
    ).json()
    assert (await posts.delete(f"/posts/{post['id']}", headers=as_user(author))).status_code == 204
    assert_error(
        await posts.post("/posts/", headers=keyed(author, key), json={"content": "gone"}),
        409,
        "conflict",
    )
