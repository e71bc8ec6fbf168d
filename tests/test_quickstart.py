"""The design document's Quick Start (steps A-F), as written, against the real gateway.

Everything runs as it does after `make up`: every service as a process behind nginx, on real
PostgreSQL, Redis, Kafka and the MongoDB-compatible server. tests/cluster runs the same steps
through the gateway of a SocialHub on the real node.
"""

import asyncio
from typing import Any

import httpx
import socketio

from tests.support import PASSWORD, unique


async def register_and_login(gateway: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    username = unique("john")
    # A. Register a user
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
    # B. Login (identifier = email)
    login = await gateway.post(
        "/auth/login", json={"identifier": f"{username}@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    assert token
    return login.json()["user"], token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_b_register_and_login(gateway: httpx.AsyncClient) -> None:
    user, token = await register_and_login(gateway)
    me = await gateway.get("/auth/me", headers=bearer(token))
    assert me.json()["id"] == user["id"]


async def test_c_create_a_post(gateway: httpx.AsyncClient) -> None:
    _, token = await register_and_login(gateway)
    # curl -X POST /posts/ -H "Authorization: Bearer $TOKEN"
    #      -F "content=My first post on SocialHub!" -F "visibility=public"
    response = await gateway.post(
        "/posts/",
        headers=bearer(token),
        files={"content": (None, "My first post on SocialHub!"), "visibility": (None, "public")},
    )
    assert response.status_code == 201, response.text
    assert response.json()["content"] == "My first post on SocialHub!"


async def test_d_e_follow_a_user_and_they_get_notified(gateway: httpx.AsyncClient) -> None:
    follower, token = await register_and_login(gateway)
    followed, followed_token = await register_and_login(gateway)
    # D. curl -X POST /users/follow/USER_ID -H "Authorization: Bearer $TOKEN"
    response = await gateway.post(f"/users/follow/{followed['id']}", headers=bearer(token))
    assert response.status_code in (200, 201), response.text
    # E. curl -X GET /notify/notifications -H "Authorization: Bearer $TOKEN"
    async with asyncio.timeout(15):
        while True:
            listing = await gateway.get("/notify/notifications", headers=bearer(followed_token))
            assert listing.status_code == 200, listing.text
            follows = [n for n in listing.json()["items"] if n["type"] == "follow"]
            if follows:
                break
            await asyncio.sleep(0.1)
    assert follows[0]["actor"]["username"] == follower["username"]


async def test_f_chat_through_the_gateway(gateway: httpx.AsyncClient) -> None:
    _, token = await register_and_login(gateway)
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    client = socketio.AsyncClient()
    client.on("new_message", received.put)
    await client.connect(
        str(gateway.base_url),
        socketio_path="/chat/socket.io",
        headers=bearer(token),
        transports=["websocket"],
    )
    try:
        room = unique("room")
        await client.call("join_room", {"roomId": room}, timeout=5)
        await client.emit("send_message", {"roomId": room, "message": "Hello!"})
        message = await asyncio.wait_for(received.get(), 5)
    finally:
        await client.disconnect()
    assert message["message"] == "Hello!"
    assert message["roomId"] == room
