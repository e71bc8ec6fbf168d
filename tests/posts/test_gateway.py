"""The posts service as `make up` runs it: a process behind the real nginx gateway.

The design document's Quick Start step C is run as written, with curl.
"""

import asyncio
import json
import shutil
from typing import Any

import httpx
import pytest

from devstack.platform import Platform
from tests.posts.helpers import png
from tests.support import PASSWORD, unique

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


async def login(gateway: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    """Quick Start steps A and B: sign up, then log in with the email."""
    username = unique("john")
    signup = await gateway.post(
        "/auth/signup",
        json={
            "name": "John Doe",
            "email": f"{username}@example.com",
            "username": username,
            "password": PASSWORD,
        },
    )
    assert signup.status_code == 201, signup.text
    response = await gateway.post(
        "/auth/login", json={"identifier": f"{username}@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return response.json()["user"], response.json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def curl(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-sS",
        "-w",
        "\n%{http_code}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    body, status = out.decode().rsplit("\n", 1)
    return int(status), body


async def test_quick_start_step_c_as_written(
    gateway: httpx.AsyncClient, running_platform: Platform
) -> None:
    user, token = await login(gateway)
    status, body = await curl(
        "-X",
        "POST",
        f"{running_platform.gateway_url}/posts/",
        "-H",
        f"Authorization: Bearer {token}",
        "-F",
        "content=My first post on SocialHub!",
        "-F",
        "visibility=public",
    )
    assert status == 201, body
    post = json.loads(body)
    assert (post["content"], post["visibility"]) == ("My first post on SocialHub!", "public")
    assert (post["userId"], post["username"]) == (user["id"], user["username"])
    feed = await gateway.get("/posts/feed", headers=bearer(token))
    assert feed.status_code == 200, feed.text
    assert feed.json()["items"][0]["id"] == post["id"]


async def test_media_are_served_by_the_gateway(
    gateway: httpx.AsyncClient, running_platform: Platform
) -> None:
    _, token = await login(gateway)
    image = png(3, 2)
    created = await gateway.post(
        "/posts/",
        headers=bearer(token),
        data={"content": "pic"},
        files={"files": ("photo.png", image, "image/png")},
    )
    assert created.status_code == 201, created.text
    url = created.json()["media"][0]["url"]
    assert url.startswith(f"{running_platform.gateway_url}/media/")
    served = await gateway.get(url)
    assert served.status_code == 200
    assert served.content == image
    assert served.headers["content-type"] == "image/png"
    assert "immutable" in served.headers["cache-control"]


async def test_the_api_through_the_gateway(gateway: httpx.AsyncClient) -> None:
    author, token = await login(gateway)
    _, other = await login(gateway)
    post = (
        await gateway.post("/posts/", headers=bearer(token), json={"content": "hello #gateway"})
    ).json()
    path = f"/posts/{post['id']}"
    like = await gateway.post(f"{path}/like", headers=bearer(other))
    assert (like.status_code, like.json()["likeCount"]) == (200, 1)
    comment = await gateway.post(
        f"{path}/comments", headers=bearer(other), json={"content": "nice"}
    )
    assert comment.status_code == 201
    thread = await gateway.get(f"{path}/comments", headers=bearer(token))
    assert [c["content"] for c in thread.json()["items"]] == ["nice"]
    timeline = await gateway.get(f"/posts/user/{author['id']}", headers=bearer(other))
    assert [p["id"] for p in timeline.json()["items"]] == [post["id"]]
    suggestion = await gateway.post(
        "/posts/ai/suggest", headers=bearer(token), json={"content": "hello gateway world"}
    )
    assert suggestion.json()["engine"] == "offline"
    assert (await gateway.delete(path, headers=bearer(other))).status_code == 403
    assert (await gateway.delete(path, headers=bearer(token))).status_code == 204


async def test_no_token_no_posts(gateway: httpx.AsyncClient) -> None:
    spoofed = {"x-user-payload": '{"id":"00000000-0000-0000-0000-000000000000","username":"x"}'}
    for headers in ({}, spoofed, bearer("not-a-token")):
        response = await gateway.post("/posts/", headers=headers, json={"content": "hi"})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
