"""Limits on what one connection may send: message size, send rate, and rooms it is not in."""

from collections.abc import Callable

import httpx

from tests.chat.helpers import ChatClient, Instance, new_user, open_room
from tests.support import escaped_json


async def test_oversized_empty_and_unjoined_messages_are_refused(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
) -> None:
    chat = client()
    await chat.connect(chat_pair[0].url, (await new_user(auth_http)).token)
    room = open_room()
    await chat.join(room)

    fits = await chat.call("send_message", {"roomId": room, "message": "é" * 2048})  # 4096 B
    assert fits["ok"] is True
    too_big = await chat.call("send_message", {"roomId": room, "message": "x" * 4097})
    assert too_big["error"]["code"] == "payload_too_large"
    assert "4096 bytes" in too_big["error"]["message"]
    error = await chat.wait_for("error", lambda d: d["code"] == "payload_too_large")
    assert error == {
        "event": "send_message",
        "roomId": room,
        "code": "payload_too_large",
        "message": too_big["error"]["message"],
    }

    assert (await chat.call("send_message", {"roomId": room, "message": "  "}))["error"][
        "code"
    ] == "bad_request"
    assert (await chat.call("send_message", {"roomId": room}))["error"]["code"] == "bad_request"
    assert (await chat.call("send_message", "hello"))["error"]["code"] == "bad_request"
    assert (await chat.call("send_message", {"roomId": open_room(), "message": "hi"}))["error"][
        "code"
    ] == "forbidden"
    assert (await chat.call("typing", {"roomId": open_room()}))["error"]["code"] == "forbidden"

    await chat.round_trip()
    stored = [m for m in chat.received("new_message") if m["roomId"] == room]
    assert [m["message"] for m in stored] == ["é" * 2048]


async def test_text_breaking_the_kit_rule_is_refused_with_an_ack(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
) -> None:
    """A lone surrogate once crashed the handler: the client waited for an ack forever."""
    user = await new_user(auth_http)
    chat = client()
    await chat.connect(chat_pair[0].url, user.token)
    room = open_room()
    await chat.join(room)
    for message in ("lone \ud800 surrogate", "\udfff", "nul\x00byte", "bell\x07"):
        ack = await chat.call("send_message", {"roomId": room, "message": message})
        assert ack["ok"] is False
        assert ack["error"]["code"] == "bad_request"
        assert "message" in ack["error"]["message"]
    for bad_room in ("room\ud800", "room\x00"):
        ack = await chat.call("join_room", {"roomId": bad_room})
        assert ack["error"]["code"] == "bad_request", ack
    assert (await chat.call("send_message", {"roomId": room, "message": "two\nlines\t!"}))["ok"]
    await chat.round_trip()
    stored = [m["message"] for m in chat.received("new_message") if m["roomId"] == room]
    assert stored == ["two\nlines\t!"]

    async with httpx.AsyncClient(base_url=chat_pair[0].url) as http:
        for name in ("nul\x00name", "two\nlines", "lone \ud800"):
            refused = await http.post("/chat/rooms", **escaped_json({"name": name}, user.header))
            assert refused.status_code == 422, refused.text
            assert list(refused.json()["error"]["fields"]) == ["name"]


async def test_sending_faster_than_the_rate_limit_is_refused(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
) -> None:
    user = await new_user(auth_http)
    chat, other_tab = client(), client()
    await chat.connect(chat_pair[0].url, user.token)
    await other_tab.connect(chat_pair[0].url, user.token)
    room = open_room()
    await chat.join(room)
    await other_tab.join(room)

    acks = [
        await chat.call("send_message", {"roomId": room, "message": f"m{i}"}) for i in range(21)
    ]
    assert [a["ok"] for a in acks] == [True] * 20 + [False]
    assert acks[20]["error"]["code"] == "rate_limited"
    assert "at most 20 messages per 5s" in acks[20]["error"]["message"]
    # the limit is per connection: another connection of the same user still sends
    assert (await other_tab.call("send_message", {"roomId": room, "message": "tab 2"}))["ok"]
