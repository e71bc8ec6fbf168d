"""The media of deleted posts leave the storage after the grace period; failures are retried."""

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from socialhub.kit.database import Database
from socialhub.posts.media import LocalMediaStorage
from socialhub.posts.models import posts as posts_table
from socialhub.posts.purge import purge_deleted_media
from tests.posts.conftest import MEDIA_BASE_URL
from tests.posts.helpers import JPEG, as_user, png, someone


@pytest.fixture
def storage(media_dir: Path) -> LocalMediaStorage:
    return LocalMediaStorage(media_dir, MEDIA_BASE_URL)


async def post_with_media(posts: httpx.AsyncClient, author: Any, count: int) -> dict[str, Any]:
    files = [("files", (f"{i}.png", png(i + 1, 1), "image/png")) for i in range(count)]
    response = await posts.post("/posts/", headers=as_user(author), files=files)
    assert response.status_code == 201, response.text
    post: dict[str, Any] = response.json()
    return post


def file_of(media_dir: Path, item: dict[str, Any]) -> Path:
    url: str = item["url"]
    return media_dir / url.removeprefix(f"{MEDIA_BASE_URL}/")


async def stored_urls(database: Database, post_id: str) -> list[str]:
    """The URLs of the media the row still lists (what the next sweep would remove)."""
    async with database.transaction() as session:
        media = await session.scalar(
            select(posts_table.c.media).where(posts_table.c.id == uuid.UUID(post_id))
        )
    return [item["url"] for item in media or []]


async def sweep_all(database: Database, storage: LocalMediaStorage, grace: timedelta) -> None:
    """Sweep until nothing is left to remove (other tests' deleted posts share the table)."""
    while await purge_deleted_media(database, storage, grace=grace, batch_size=1_000):
        pass


async def test_a_deleted_posts_files_go_after_the_grace_period_and_live_ones_stay(
    posts: httpx.AsyncClient, posts_db: Database, storage: LocalMediaStorage, media_dir: Path
) -> None:
    author = someone()
    deleted, kept = await post_with_media(posts, author, 2), await post_with_media(posts, author, 1)
    assert (
        await posts.delete(f"/posts/{deleted['id']}", headers=as_user(author))
    ).status_code == 204
    files = [file_of(media_dir, item) for item in deleted["media"]]

    await sweep_all(posts_db, storage, grace=timedelta(hours=1))
    assert all(path.exists() for path in files)  # within the grace period

    await sweep_all(posts_db, storage, grace=timedelta(0))
    assert not any(path.exists() for path in files)
    assert await stored_urls(posts_db, deleted["id"]) == []
    assert file_of(media_dir, kept["media"][0]).exists()
    assert await stored_urls(posts_db, kept["id"]) == [kept["media"][0]["url"]]
    fetched = await posts.get(f"/posts/{kept['id']}", headers=as_user(author))
    assert fetched.json()["media"] == kept["media"]


async def test_files_the_storage_cannot_remove_stay_listed_for_the_next_sweep(
    posts: httpx.AsyncClient, posts_db: Database, storage: LocalMediaStorage, media_dir: Path
) -> None:
    author = someone()
    post = await post_with_media(posts, author, 2)
    assert (await posts.delete(f"/posts/{post['id']}", headers=as_user(author))).status_code == 204
    stuck, removable = (file_of(media_dir, item) for item in post["media"])
    stuck.unlink()
    stuck.mkdir()  # unlink() of a non-empty directory fails, even for root
    (stuck / "inside").write_bytes(JPEG)

    await purge_deleted_media(posts_db, storage, grace=timedelta(0), batch_size=1_000)
    assert not removable.exists()
    assert await stored_urls(posts_db, post["id"]) == [post["media"][0]["url"]]

    (stuck / "inside").unlink()
    stuck.rmdir()
    stuck.write_bytes(JPEG)
    await sweep_all(posts_db, storage, grace=timedelta(0))
    assert not stuck.exists()
    assert await stored_urls(posts_db, post["id"]) == []


async def test_the_sweep_reads_a_partial_index_the_migrations_created(posts_db: Database) -> None:
    async with posts_db.transaction() as session:
        definition = await session.scalar(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_posts_media_to_purge'")
        )
    assert definition is not None
    assert "WHERE ((deleted_at IS NOT NULL) AND (media <> '[]'::jsonb))" in definition
