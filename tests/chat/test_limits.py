"""Limits on what one connection may send: message size, send rate, and rooms it is not in."""

from collections.abc import Callable

import httpx

from tests.chat.helpers import ChatClient, Instance, new_user, open_room


async def test_oversized_empty_and_unjoined_messages_are_refused(
        chat_pair: tuple[Instance, Instance], auth_http: httpx.AsyncClient,
        client: Callable[[], ChatClient]) -> None:
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
    assert error == {"event": "send_message", "roomId": room, "code": "payload_too_large",
                     "message": too_big["error"]["message"]}

    assert (await chat.call("send_message", {"roomId": room, "message": "  "}))[
        "error"]["code"] == "bad_request"
    assert (await chat.call("send_message", {"roomId": room}))["error"]["code"] == "bad_request"
    assert (await chat.call("send_message", "hello"))["error"]["code"] == "bad_request"
    assert (await chat.call("send_message", {"roomId": open_room(), "message": "hi"}))[
        "error"]["code"] == "forbidden"
    assert (await chat.call("typing", {"roomId": open_room()}))["error"]["code"] == "forbidden"

    await chat.round_trip()
    stored = [m for m in chat.received("new_message") if m["roomId"] == room]
    assert [m["message"] for m in stored] == ["é" * 2048]


async def test_sending_faster_than_the_rate_limit_is_refused(
        chat_pair: tuple[Instance, Instance], auth_http: httpx.AsyncClient,
        client: Callable[[], ChatClient]) -> None:
    user = await new_user(auth_http)
    chat, other_tab = client(), client()
    await chat.connect(chat_pair[0].url, user.token)
    await other_tab.connect(chat_pair[0].url, user.token)
    room = open_room()
    await chat.join(room)
    await other_tab.join(room)

    acks = [await chat.call("send_message", {"roomId": room, "message": f"m{i}"})
            for i in range(21)]
    assert [a["ok"] for a in acks] == [True] * 20 + [False]
    assert acks[20]["error"]["code"] == "rate_limited"
    assert "at most 20 messages per 5s" in acks[20]["error"]["message"]
    # the limit is per connection: another connection of the same user still sends
    assert (await other_tab.call("send_message", {"roomId": room, "message": "tab 2"}))["ok"]
