"""The token check at connect: the auth service decides, and refusals say why."""

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import socketio

from devstack.platform import Platform
from devstack.waiting import free_port
from socialhub.auth.tokens import TokenCodec
from tests.chat.helpers import ChatClient, Instance, new_user, open_room


async def _refusal(
    client: ChatClient, url: str, token: str | None, **options: str
) -> dict[str, Any]:
    """The `connect_error` payload of a refused connection."""
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, token, **options)
    assert not client.sio.connected
    refusal = client.connect_error
    assert isinstance(refusal, dict)
    return refusal


@pytest.mark.parametrize("via", ["auth", "header", "query"])
async def test_a_valid_token_connects_from_each_place(
    via: str,
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
) -> None:
    user = await new_user(auth_http)
    chat = client()
    await chat.connect(chat_pair[0].url, user.token, via=via)
    assert await chat.join(open_room()) == []


async def test_polling_transport_works_too(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
) -> None:
    user = await new_user(auth_http)
    chat = client()
    await chat.connect(chat_pair[1].url, user.token, via="header", transport="polling")
    room = open_room()
    await chat.join(room)
    ack = await chat.call("send_message", {"roomId": room, "message": "over long-polling"})
    await chat.wait_for("new_message", lambda d: d["id"] == ack["id"])


async def test_missing_forged_expired_and_revoked_tokens_are_refused(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    platform: Platform,
    client: Callable[[], ChatClient],
) -> None:
    url = chat_pair[0].url
    user = await new_user(auth_http)
    user_id = uuid.UUID(user.id)

    missing = await _refusal(client(), url, None)
    assert missing["data"] == {"code": "unauthorized", "message": missing["message"]}
    assert "missing token" in missing["message"]

    forged = TokenCodec("not-the-platform-secret-" + "x" * 24, 3600).issue(
        user_id, user.username, 0
    )
    refused = await _refusal(client(), url, forged)
    assert refused["data"] == {"code": "unauthorized", "message": "invalid token"}

    expired = TokenCodec(platform.jwt_secret, 60).issue(
        user_id, user.username, 0, now=time.time() - 3600
    )
    refused = await _refusal(client(), url, expired, via="header")
    assert refused["data"] == {"code": "unauthorized", "message": "token expired"}

    refused = await _refusal(client(), url, "not a token at all", via="query")
    assert refused["data"]["code"] == "unauthorized"

    connected = client()
    await connected.connect(url, user.token)
    logout = await auth_http.post("/auth/logout", headers={"Authorization": f"Bearer {user.token}"})
    assert logout.status_code == 204
    refused = await _refusal(client(), url, user.token)
    assert refused["data"] == {"code": "unauthorized", "message": "token revoked"}


async def test_connections_are_refused_while_the_auth_service_is_down(
    new_chat_instance: Callable[..., Instance],
    auth_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
) -> None:
    user = await new_user(auth_http)
    closed_port = f"http://127.0.0.1:{free_port()}"
    orphan = new_chat_instance(AUTH_SERVICE_URL=closed_port).start()
    try:
        refused = await _refusal(client(), orphan.url, user.token)
        assert refused["data"]["code"] == "unavailable"
    finally:
        orphan.stop()


async def test_a_token_revoked_after_connecting_ends_the_connection(
    new_chat_instance: Callable[..., Instance],
    auth_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
) -> None:
    user, other = await new_user(auth_http), await new_user(auth_http)
    quick = new_chat_instance(CHAT_TOKEN_RECHECK_SECONDS="1").start()
    try:
        revoked, kept = client(), client()
        await revoked.connect(quick.url, user.token)
        await kept.connect(quick.url, other.token)
        logout = await auth_http.post(
            "/auth/logout", headers={"Authorization": f"Bearer {user.token}"}
        )
        assert logout.status_code == 204
        told = await revoked.wait_for("error", lambda d: d["event"] == "connect", within=20)
        assert told == {"event": "connect", "code": "unauthorized", "message": "token revoked"}
        await revoked.wait_for("disconnect", within=20)
        assert not revoked.sio.connected
        assert kept.sio.connected
    finally:
        quick.stop()
