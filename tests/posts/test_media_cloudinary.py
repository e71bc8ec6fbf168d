"""Media on Cloudinary through the official SDK, against a local double of the Upload API."""

import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from socialhub.kit.database import Database
from socialhub.posts.settings import PostsSettings
from tests.posts.conftest import api_instance
from tests.posts.doubles import CloudinaryDouble, serving
from tests.posts.helpers import JPEG, MP4, as_user, assert_error, png, post_rows, someone


@pytest.fixture(scope="module")
def double() -> Iterator[CloudinaryDouble]:
    fake = CloudinaryDouble(cloud="socialhub-test", api_key="483920174", api_secret="s3cr3t-ab")
    with serving(fake):
        yield fake


@pytest.fixture(scope="module")
async def cloudinary_posts(
    posts_settings: PostsSettings, double: CloudinaryDouble
) -> AsyncIterator[httpx.AsyncClient]:
    url = (
        f"cloudinary://{double.api_key}:{double.api_secret}@{double.cloud}"
        f"?upload_prefix={double.url}"
    )
    async with api_instance(posts_settings, cloudinary_url=url) as client:
        yield client


@pytest.fixture(autouse=True)
def fresh(double: CloudinaryDouble) -> None:
    double.uploads.clear()
    double.destroyed.clear()
    double.barrier = None
    double.failing_resource_types.clear()


async def test_a_posts_files_upload_in_parallel(
    cloudinary_posts: httpx.AsyncClient, double: CloudinaryDouble
) -> None:
    files = [("a.png", png(2, 2)), ("b.jpg", JPEG), ("c.mp4", MP4)]
    double.barrier = threading.Barrier(len(files))  # answers only once all three are in
    response = await cloudinary_posts.post(
        "/posts/",
        headers=as_user(someone()),
        data={"content": "to the cloud"},
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
    )
    assert response.status_code == 201, response.text
    media = response.json()["media"]
    assert [(m["type"], m["size"]) for m in media] == [
        ("image", len(files[0][1])),
        ("image", len(JPEG)),
        ("video", len(MP4)),
    ]
    by_data = {upload.data: upload for upload in double.uploads}
    assert set(by_data) == {data for _, data in files}
    for item, (_, data) in zip(media, files, strict=True):
        upload = by_data[data]
        assert upload.resource_type == item["type"]
        assert upload.params["folder"] == "socialhub/posts"
        assert item["url"] == (
            f"https://res.cloudinary.com/{double.cloud}/{item['type']}/"
            f"upload/{item['url'].split('/upload/')[1]}"
        )
        assert f"socialhub/posts/{upload.params['public_id']}" in item["url"]


async def test_a_failed_upload_stores_nothing(
    cloudinary_posts: httpx.AsyncClient, double: CloudinaryDouble, posts_db: Database
) -> None:
    double.failing_resource_types.add("video")
    author = someone()
    response = await cloudinary_posts.post(
        "/posts/",
        headers=as_user(author),
        files=[("files", ("a.png", png(), "image/png")), ("files", ("c.mp4", MP4, "video/mp4"))],
    )
    assert_error(response, 502, "media_storage_unavailable")
    assert [u.resource_type for u in double.uploads] == ["image"]
    uploaded = double.uploads[0].params
    assert double.destroyed == [f"{uploaded['folder']}/{uploaded['public_id']}"]
    assert await post_rows(posts_db, author.id) == 0


async def test_wrong_credentials_are_refused_by_the_double(
    posts_settings: PostsSettings, double: CloudinaryDouble
) -> None:
    """The double checks signatures: a wrong secret fails, so the passes above mean something."""
    url = f"cloudinary://{double.api_key}:wrong-secret@{double.cloud}?upload_prefix={double.url}"
    async with api_instance(posts_settings, cloudinary_url=url) as client:
        response = await client.post(
            "/posts/", headers=as_user(someone()), files={"files": ("a.png", png(), "image/png")}
        )
    assert_error(response, 502, "media_storage_unavailable")
    assert double.uploads == []
