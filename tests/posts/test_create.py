"""Creating posts: the Quick Start form, JSON, media on the local disk, and reading them back."""

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.posts.conftest import MEDIA_BASE_URL
from tests.posts.helpers import GIF, JPEG, MP4, WEBM, as_user, create_post, png, someone


async def test_quick_start_form_post(posts: httpx.AsyncClient) -> None:
    # curl -X POST http://localhost/posts/ -H "Authorization: Bearer $TOKEN" \
    #   -F "content=My first post on SocialHub!" -F "visibility=public"
    author = someone()
    response = await posts.post(
        "/posts/",
        headers=as_user(author),
        files={"content": (None, "My first post on SocialHub!"), "visibility": (None, "public")},
    )
    assert response.status_code == 201, response.text
    post = response.json()
    assert post["content"] == "My first post on SocialHub!"
    assert post["visibility"] == "public"
    assert (post["userId"], post["username"]) == (str(author.id), author.username)
    assert post["media"] == []
    assert (post["likeCount"], post["dislikeCount"], post["commentCount"]) == (0, 0, 0)
    assert post["myReaction"] is None
    fetched = await posts.get(f"/posts/{post['id']}", headers=as_user(author))
    assert fetched.json() == post


async def test_json_text_post_defaults_to_public_and_trims(posts: httpx.AsyncClient) -> None:
    author = someone()
    post = await posts.post("/posts/", headers=as_user(author), json={"content": "  text only  "})
    assert post.status_code == 201, post.text
    assert (post.json()["content"], post.json()["visibility"]) == ("text only", "public")


@pytest.mark.parametrize("visibility", ["public", "followers", "private"])
async def test_each_visibility_is_accepted(posts: httpx.AsyncClient, visibility: str) -> None:
    post = await create_post(posts, someone(), visibility=visibility)
    assert post["visibility"] == visibility


async def test_content_of_exactly_5000_characters(posts: httpx.AsyncClient) -> None:
    post = await create_post(posts, someone(), content="é" * 5000)
    assert len(post["content"]) == 5000


async def test_media_are_stored_on_disk_and_served_under_the_media_url(
    posts: httpx.AsyncClient, media_dir: Path
) -> None:
    uploads = [
        ("photo.png", png(2, 2)),
        ("clip.mp4", MP4),
        ("x.gif", GIF),
        ("y", JPEG),
        ("z.webm", WEBM),
    ]
    response = await posts.post(
        "/posts/",
        headers=as_user(someone()),
        data={"content": "with media", "visibility": "followers"},
        files=[("files", (name, data, "application/octet-stream")) for name, data in uploads],
    )
    assert response.status_code == 201, response.text
    media: list[dict[str, Any]] = response.json()["media"]
    assert [(m["type"], m["mimeType"]) for m in media] == [
        ("image", "image/png"),
        ("video", "video/mp4"),
        ("image", "image/gif"),
        ("image", "image/jpeg"),
        ("video", "video/webm"),
    ]
    for item, (_, data) in zip(media, uploads, strict=True):
        assert item["url"].startswith(f"{MEDIA_BASE_URL}/")
        assert item["size"] == len(data)
        stored = media_dir / item["url"].removeprefix(f"{MEDIA_BASE_URL}/")
        assert stored.read_bytes() == data
        assert (
            stored.suffix
            == {
                "image/png": ".png",
                "video/mp4": ".mp4",
                "image/gif": ".gif",
                "image/jpeg": ".jpg",
                "video/webm": ".webm",
            }[item["mimeType"]]
        )
        assert stored.stat().st_mode & 0o444 == 0o444  # readable by the gateway's workers
    assert "key" not in media[0]
    assert len({m["url"] for m in media}) == len(media)


async def test_media_alone_make_a_post(posts: httpx.AsyncClient) -> None:
    response = await posts.post(
        "/posts/", headers=as_user(someone()), files={"files": ("a.png", png(), "image/png")}
    )
    assert response.status_code == 201, response.text
    assert response.json()["content"] == ""
    assert len(response.json()["media"]) == 1


async def test_ten_files_are_the_maximum(posts: httpx.AsyncClient) -> None:
    response = await posts.post(
        "/posts/",
        headers=as_user(someone()),
        files=[("files", (f"{i}.png", png(), "image/png")) for i in range(10)],
    )
    assert response.status_code == 201, response.text
    assert len(response.json()["media"]) == 10


async def test_url_encoded_form_makes_a_text_post(posts: httpx.AsyncClient) -> None:
    response = await posts.post(
        "/posts/",
        headers=as_user(someone()),
        data={"content": "plain form", "visibility": "private"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["visibility"] == "private"
