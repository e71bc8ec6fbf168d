"""Chat through the real nginx gateway (`/chat/`), every service running as a process: the
design document's "Testing Chat with Postman" steps, the HTTP API, and a notification pushed to
an online user."""

from collections.abc import Callable

import httpx
import pytest
import socketio

from devstack.platform import Platform
from tests.chat.helpers import ChatClient, open_room, user_ids
from tests.support import sign_up


async def test_the_postman_steps_through_the_gateway(
    running_platform: Platform, gateway: httpx.AsyncClient, client: Callable[[], ChatClient]
) -> None:
    alice, alice_token = await sign_up(gateway, "chat")
    bob, bob_token = await sign_up(gateway, "chat")
    # URL http://localhost:8080/chat/socket.io/ with an Authorization: Bearer header
    a, b = client(), client()
    await a.connect(running_platform.gateway_url, alice_token, via="header")
    await b.connect(running_platform.gateway_url, bob_token, via="header", transport="polling")
    room = open_room()
    assert await a.join(room) == []
    await b.join(room)
    await a.wait_for("room_users", lambda d: user_ids(d) == {alice["id"], bob["id"]})

    sent = await a.call("send_message", {"roomId": room, "message": "Hello!"})
    message = await b.wait_for("new_message", lambda d: d["id"] == sent["id"])
    assert (message["userId"], message["username"], message["message"]) == (
        alice["id"],
        alice["username"],
        "Hello!",
    )
    await b.call("typing", {"roomId": room})
    assert (await a.wait_for("user_typing"))["userId"] == bob["id"]

    refused = client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(running_platform.gateway_url, "forged.token.value", via="header")
    assert refused.connect_error["data"]["code"] == "unauthorized"


async def test_history_and_groups_over_http_through_the_gateway(
    running_platform: Platform, gateway: httpx.AsyncClient, client: Callable[[], ChatClient]
) -> None:
    owner, owner_token = await sign_up(gateway, "chat")
    _, outsider_token = await sign_up(gateway, "chat")
    owner_auth = {"Authorization": f"Bearer {owner_token}"}
    created = await gateway.post(
        "/chat/rooms", headers=owner_auth, json={"name": "Gateway group", "members": []}
    )
    assert created.status_code == 201, created.text
    room = created.json()["roomId"]
    assert created.json()["ownerId"] == owner["id"]

    chat = client()
    await chat.connect(running_platform.gateway_url, owner_token)
    await chat.join(room)
    sent = await chat.call("send_message", {"roomId": room, "message": "kept"})

    history = await gateway.get(f"/chat/rooms/{room}/messages", headers=owner_auth)
    assert history.status_code == 200, history.text
    assert [m["id"] for m in history.json()["items"]] == [sent["id"]]
    assert (await gateway.get(f"/chat/rooms/{room}/messages")).status_code == 401
    outsider = await gateway.get(
        f"/chat/rooms/{room}/messages", headers={"Authorization": f"Bearer {outsider_token}"}
    )
    assert outsider.status_code == 403
    assert outsider.json()["error"]["code"] == "forbidden"


async def test_following_an_online_user_pushes_them_a_notification(
    running_platform: Platform, gateway: httpx.AsyncClient, client: Callable[[], ChatClient]
) -> None:
    (followed, followed_token), (follower, follower_token) = (
        await sign_up(gateway, "chat"),
        await sign_up(gateway, "chat"),
    )
    online = client()
    await online.connect(running_platform.gateway_url, followed_token)
    response = await gateway.post(
        f"/users/follow/{followed['id']}", headers={"Authorization": f"Bearer {follower_token}"}
    )
    assert response.status_code == 200, response.text
    pushed = await online.wait_for("notification", within=30)
    assert follower["id"] in str(pushed)
