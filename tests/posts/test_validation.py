"""Every kind of bad input gets a 4xx in the JSON error envelope naming the problem, never 5xx."""

import uuid
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import httpx
import pytest

from socialhub.posts.app import create_app
from socialhub.posts.settings import PostsSettings
from tests.posts.conftest import api_instance
from tests.posts.helpers import (
    MP3,
    MP4,
    PDF,
    as_user,
    assert_error,
    create_post,
    png,
    someone,
)
from tests.support import escaped_json

ALICE = someone("alice")


@pytest.fixture(scope="module")
async def small_limits(posts_settings: PostsSettings) -> AsyncIterator[httpx.AsyncClient]:
    """An instance with tiny media limits, so size refusals need no big uploads."""
    async with api_instance(
        posts_settings,
        max_image_bytes=1000,
        max_video_bytes=2000,
        max_post_media_bytes=2500,
        max_files_per_post=3,
    ) as client:
        yield client


def _files(*items: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "application/octet-stream")) for name, data in items]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "content"),
        ({"content": "   "}, "content"),
        ({"content": "x" * 5001}, "content"),
        ({"content": "hi", "visibility": "friends"}, "visibility"),
        ({"content": "hi", "visibility": None}, "visibility"),
        ({"content": 42}, "content"),
        ({"content": "hi", "author": "someone-else"}, "author"),
    ],
)
async def test_invalid_json_posts_are_422_naming_the_field(
    posts: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await posts.post("/posts/", headers=as_user(ALICE), json=body)
    error = assert_error(response, 422)["error"]
    assert field in error["fields"], error


async def test_malformed_bodies(posts: httpx.AsyncClient) -> None:
    headers = as_user(ALICE)
    assert_error(
        await posts.post(
            "/posts/", headers={**headers, "content-type": "application/json"}, content=b"{nope"
        ),
        400,
        "invalid_json",
    )
    assert_error(await posts.post("/posts/", headers=headers, json=["a", "list"]), 422)
    assert_error(
        await posts.post(
            "/posts/", headers={**headers, "content-type": "text/plain"}, content=b"hello"
        ),
        415,
        "unsupported_media_type",
    )
    assert_error(await posts.post("/posts/", headers=headers, content=b"no type"), 415)
    truncated = await posts.post(
        "/posts/",
        headers={**headers, "content-type": "multipart/form-data; boundary=xyz"},
        content=b"--xyz\r\nbroken",
    )
    assert_error(truncated, truncated.status_code)
    assert 400 <= truncated.status_code < 500
    no_boundary = await posts.post(
        "/posts/", headers={**headers, "content-type": "multipart/form-data"}, content=b"x"
    )
    assert_error(no_boundary, 400)


async def test_form_fields_are_checked_like_json(posts: httpx.AsyncClient) -> None:
    headers = as_user(ALICE)
    bad_visibility = await posts.post(
        "/posts/",
        headers=headers,
        files={"content": (None, "hi"), "visibility": (None, "everyone")},
    )
    assert "visibility" in assert_error(bad_visibility, 422)["error"]["fields"]
    empty = await posts.post("/posts/", headers=headers, files={"content": (None, "  ")})
    assert "content" in assert_error(empty, 422)["error"]["fields"]
    unknown = await posts.post(
        "/posts/", headers=headers, files={"content": (None, "hi"), "mood": (None, "happy")}
    )
    assert "mood" in assert_error(unknown, 422)["error"]["fields"]
    twice = await posts.post(
        "/posts/", headers=headers, files=[("content", (None, "a")), ("content", (None, "b"))]
    )
    assert "content" in assert_error(twice, 422)["error"]["fields"]
    text_as_file = await posts.post(
        "/posts/", headers=headers, data={"files": "not a file"}, files={"content": (None, "hi")}
    )
    assert "files" in assert_error(text_as_file, 422)["error"]["fields"]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("document.jpg", PDF),
        ("song.mp4", MP3),
        ("notes.png", b"just some text" * 40),
    ],
)
async def test_files_are_judged_by_content_not_name(
    posts: httpx.AsyncClient, name: str, data: bytes
) -> None:
    response = await posts.post(
        "/posts/", headers=as_user(ALICE), files=_files(("ok.png", png()), (name, data))
    )
    error = assert_error(response, 415, "unsupported_media_type")["error"]
    assert name in error["message"]
    assert "images" in error["message"]
    assert "files.1" in error["fields"]


async def test_empty_file_is_422(posts: httpx.AsyncClient) -> None:
    response = await posts.post("/posts/", headers=as_user(ALICE), files=_files(("e.png", b"")))
    assert_error(response, 422, "empty_file")


@pytest.mark.parametrize("count", [11, 12, 30])
async def test_more_than_ten_files_is_422(posts: httpx.AsyncClient, count: int) -> None:
    response = await posts.post(
        "/posts/",
        headers=as_user(ALICE),
        files=_files(*[(f"{i}.png", png()) for i in range(count)]),
    )
    error = assert_error(response, 422, "too_many_files")["error"]
    assert "at most 10" in error["message"]


async def test_size_limits_per_file_kind_and_per_post(small_limits: httpx.AsyncClient) -> None:
    headers = as_user(ALICE)
    big_image = png() + bytes(1500)
    assert len(big_image) > 1000
    too_big = await small_limits.post(
        "/posts/", headers=headers, files=_files(("big.png", big_image))
    )
    message = assert_error(too_big, 413, "payload_too_large")["error"]["message"]
    assert "big.png" in message
    assert "images may be at most 1000 bytes" in message
    video = MP4 + bytes(1200)  # 1.5 KB: over the image limit, under the video limit
    assert (
        await small_limits.post("/posts/", headers=headers, files=_files(("v.mp4", video)))
    ).status_code == 201
    total = await small_limits.post(
        "/posts/", headers=headers, files=_files(("v.mp4", video), ("w.mp4", video))
    )
    assert "total" in assert_error(total, 413, "payload_too_large")["error"]["message"]
    four = await small_limits.post(
        "/posts/", headers=headers, files=_files(*[(f"{i}.png", png()) for i in range(4)])
    )
    assert "at most 3" in assert_error(four, 422, "too_many_files")["error"]["message"]
    declared = await small_limits.post(
        "/posts/",
        headers={
            **headers,
            "content-type": "application/json",
            "content-length": str(5 * 1024 * 1024),
        },
        content=b"{}" + bytes(5 * 1024 * 1024 - 2),
    )
    assert_error(declared, 413, "payload_too_large")


BAD_TEXT = ["nul\x00byte", "escape \x1b[2J", "lone \ud800 surrogate", "\udfff"]


@pytest.mark.parametrize("text", BAD_TEXT)
async def test_control_characters_and_lone_surrogates_are_422_everywhere(
    posts: httpx.AsyncClient, text: str
) -> None:
    """Create (JSON and form), edit, comment and suggest share the kit's text rule."""
    headers = as_user(ALICE)
    post = await create_post(posts, ALICE)
    created = await posts.post("/posts/", **escaped_json({"content": text}, headers))
    assert assert_error(created, 422)["error"]["fields"].keys() == {"content"}
    if "\x00" in text:  # a form field carries raw bytes, which cannot hold a lone surrogate
        form = await posts.post("/posts/", headers=headers, files={"content": (None, text)})
        assert "content" in assert_error(form, 422)["error"]["fields"]
    edited = await posts.patch(f"/posts/{post['id']}", **escaped_json({"content": text}, headers))
    assert "content" in assert_error(edited, 422)["error"]["fields"]
    comment = await posts.post(
        f"/posts/{post['id']}/comments", **escaped_json({"content": text}, headers)
    )
    assert "content" in assert_error(comment, 422)["error"]["fields"]
    suggest = await posts.post("/posts/ai/suggest", **escaped_json({"content": text}, headers))
    assert "content" in assert_error(suggest, 422)["error"]["fields"]
    assert (await posts.get(f"/posts/{post['id']}", headers=headers)).json()["content"] == "hello"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1000 + b"]" * 1000,
        b'{"content": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"content": "hi", "n": ' + b"9" * 5000 + b"}",
        b'{"content": "hi", "n": 1e99999}',
    ],
    ids=["nested-1000", "nested-100000", "5000-digit-int", "huge-float"],
)
async def test_json_the_decoder_refuses_is_a_4xx(posts: httpx.AsyncClient, body: bytes) -> None:
    response = await posts.post(
        "/posts/", headers={**as_user(ALICE), "content-type": "application/json"}, content=body
    )
    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code)


async def test_json_bodies_over_the_kit_cap_are_413_before_they_are_read(
    posts: httpx.AsyncClient,
) -> None:
    response = await posts.post(
        "/posts/", headers=as_user(ALICE), json={"content": "hi", "padding": "x" * 70_000}
    )
    assert_error(response, 413, "payload_too_large")


async def test_missing_or_forged_identity_is_401(posts: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"x-user-payload": "not json"},
        {"x-user-payload": '{"id": "not-a-uuid", "username": "x"}'},
    ):
        response = await posts.post("/posts/", headers=headers, json={"content": "hi"})
        assert_error(response, 401, "unauthorized")
        assert_error(await posts.get("/posts/feed", headers=headers), 401)


async def test_bad_ids_and_limits_are_422_and_bad_cursors_400(posts: httpx.AsyncClient) -> None:
    headers = as_user(ALICE)
    post = await create_post(posts, ALICE)
    some_id = str(uuid.uuid4())
    for method, path in [
        ("GET", "/posts/not-a-uuid"),
        ("PATCH", "/posts/123"),
        ("DELETE", "/posts/xyz"),
        ("POST", "/posts/xyz/like"),
        ("POST", "/posts/xyz/dislike"),
        ("GET", "/posts/user/nobody"),
        ("GET", "/posts/xyz/comments"),
        ("POST", "/posts/xyz/comments"),
        ("DELETE", f"/posts/{some_id}/comments/xyz"),
    ]:
        response = await posts.request(method, path, headers=headers, json={"content": "x"})
        assert_error(response, 422, "validation_error")
    paged = ("/posts/feed", f"/posts/user/{ALICE.id}", f"/posts/{post['id']}/comments")
    for params in ({"limit": 0}, {"limit": 101}, {"limit": "ten"}):
        for path in paged:
            response = await posts.get(path, headers=headers, params=params)
            error = assert_error(response, 422, "validation_error")["error"]
            assert set(error["fields"]) == {"limit"}, (path, params, error)
    for cursor in ("garbage", "bm90LmEuY3Vyc29y", ""):
        for path in paged:
            response = await posts.get(path, headers=headers, params={"cursor": cursor})
            error = assert_error(response, 400, "invalid_cursor")["error"]
            assert set(error["fields"]) == {"cursor"}, (path, cursor, error)
    bad_parent = await posts.get(
        f"/posts/{post['id']}/comments", headers=headers, params={"parentId": "nope"}
    )
    assert "parentId" in assert_error(bad_parent, 422)["error"]["fields"]


@pytest.mark.parametrize("key", ["x" * 256, "has space", "tab\there", "é"])
async def test_bad_idempotency_keys_are_422(posts: httpx.AsyncClient, key: str) -> None:
    headers = [(name.encode(), value.encode()) for name, value in as_user(ALICE).items()]
    response = await posts.post(
        "/posts/", json={"content": "hi"}, headers=[*headers, (b"Idempotency-Key", key.encode())]
    )
    assert "Idempotency-Key" in assert_error(response, 422)["error"]["fields"]


async def test_bad_edits_comments_and_suggestions(posts: httpx.AsyncClient) -> None:
    headers = as_user(ALICE)
    post = await create_post(posts, ALICE)
    path = f"/posts/{post['id']}"
    assert_error(await posts.patch(path, headers=headers, json={}), 422)
    assert_error(await posts.patch(path, headers=headers, json={"content": ""}), 422)
    assert_error(await posts.patch(path, headers=headers, json={"visibility": "x"}), 422)
    assert_error(await posts.patch(path, headers=headers, json={"content": "x" * 5001}), 422)
    assert_error(await posts.patch(path, headers=headers, json={"likeCount": 1000}), 422)
    comments = f"{path}/comments"
    assert_error(await posts.post(comments, headers=headers, json={}), 422)
    assert_error(await posts.post(comments, headers=headers, json={"content": " "}), 422)
    assert_error(await posts.post(comments, headers=headers, json={"content": "x" * 2001}), 422)
    assert_error(
        await posts.post(comments, headers=headers, json={"content": "x", "parentId": "nope"}), 422
    )
    assert_error(
        await posts.post(
            comments, headers=headers, json={"content": "x", "parentId": str(uuid.uuid4())}
        ),
        404,
    )
    assert_error(await posts.post("/posts/ai/suggest", headers=headers, json={}), 422)
    assert_error(
        await posts.post("/posts/ai/suggest", headers=headers, json={"content": "x" * 5001}), 422
    )


async def test_unknown_posts_are_404(posts: httpx.AsyncClient) -> None:
    headers = as_user(ALICE)
    missing = f"/posts/{uuid.uuid4()}"
    for method, path in [
        ("GET", missing),
        ("DELETE", missing),
        ("POST", f"{missing}/like"),
        ("POST", f"{missing}/dislike"),
        ("GET", f"{missing}/comments"),
    ]:
        assert_error(await posts.request(method, path, headers=headers), 404, "not_found")
    assert_error(await posts.patch(missing, headers=headers, json={"content": "x"}), 404)
    assert_error(
        await posts.post(f"{missing}/comments", headers=headers, json={"content": "x"}), 404
    )


async def test_a_client_gone_mid_body_is_no_server_error(posts_settings: PostsSettings) -> None:
    app = create_app(PostsSettings(**{**posts_settings.model_dump(), "run_workers": False}))
    sent: list[MutableMapping[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": "/posts/",
        "raw_path": b"/posts/",
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 4000),
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", b"100"),
            *[(k.encode(), v.encode()) for k, v in as_user(ALICE).items()],
        ],
    }
    messages: Iterator[dict[str, Any]] = iter(
        [
            {"type": "http.request", "body": b'{"content": "hal', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 400
