"""Two chat instances, clients on each: messages, presence, typing, history and pushes reach
everyone through Redis."""

import asyncio
import json
from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from tests.chat.helpers import (
    WAIT_SECONDS,
    ChatClient,
    Instance,
    new_user,
    open_room,
    user_ids,
)


async def test_clients_on_two_instances_exchange_messages_presence_and_typing(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
) -> None:
    first, second = chat_pair
    alice, bob = await new_user(auth_http), await new_user(auth_http)
    a, b = client(), client()
    await a.connect(first.url, alice.token)
    await b.connect(second.url, bob.token)
    room = open_room()

    assert await a.join(room) == []
    await a.wait_for("room_users", lambda d: user_ids(d) == {alice.id})
    mark = len(a.events)
    assert await b.join(room) == []
    both = {alice.id, bob.id}
    for seen in (a, b):
        users = await seen.wait_for(
            "room_users", lambda d: user_ids(d) == both, since=mark if seen is a else 0
        )
        assert users["roomId"] == room
        assert users["count"] == 2
        assert {u["username"] for u in users["users"]} == {alice.username, bob.username}

    ack = await a.call("send_message", {"roomId": room, "message": "Hi from instance one!"})
    assert ack["ok"] is True
    expected = {
        "id": ack["id"],
        "roomId": room,
        "userId": alice.id,
        "username": alice.username,
        "message": "Hi from instance one!",
    }
    for receiver in (a, b):
        delivered = await receiver.wait_for("new_message", lambda d: d["id"] == ack["id"])
        assert {k: v for k, v in delivered.items() if k != "createdAt"} == expected
        assert delivered["createdAt"].endswith("Z")

    reply = await b.call("send_message", {"roomId": room, "message": "Hello back"})
    await a.wait_for("new_message", lambda d: d["id"] == reply["id"])

    assert (await b.call("typing", {"roomId": room}))["ok"] is True
    typing = await a.wait_for("user_typing")
    assert typing == {"roomId": room, "userId": bob.id, "username": bob.username}
    await b.round_trip()
    assert b.received("user_typing") == []  # the typist is not told about themself

    mark = len(a.events)
    assert (await b.call("leave_room", {"roomId": room}))["ok"] is True
    await a.wait_for("room_users", lambda d: user_ids(d) == {alice.id}, since=mark)
    after_leave = await a.call("send_message", {"roomId": room, "message": "still there?"})
    await a.wait_for("new_message", lambda d: d["id"] == after_leave["id"])
    await b.round_trip()
    assert not b.received("new_message", lambda d: d["id"] == after_leave["id"])


async def test_joining_sends_the_last_50_messages_oldest_first(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
) -> None:
    first, second = chat_pair
    room = open_room()
    senders = []
    for _ in range(3):  # 3 x 19 messages stays under the per-connection send limit
        user = await new_user(auth_http)
        sender = client()
        await sender.connect(first.url, user.token)
        await sender.join(room)
        senders.append(sender)
    sent: list[str] = []
    for sender in senders:
        for _ in range(19):
            ack = await sender.call(
                "send_message", {"roomId": room, "message": f"message {len(sent)}"}
            )
            assert ack["ok"], ack
            sent.append(ack["id"])

    reader = client()
    await reader.connect(second.url, (await new_user(auth_http)).token)
    history = await reader.join(room)
    assert [m["id"] for m in history] == sent[-50:]
    assert [m["message"] for m in history] == [f"message {i}" for i in range(7, 57)]


async def test_messages_sent_while_someone_joins_arrive_exactly_once_in_order(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
) -> None:
    """The join protocol: history, then every later message once, never a gap."""
    first, second = chat_pair
    room = open_room()
    writers = []
    for _ in range(2):
        writer = client()
        await writer.connect(first.url, (await new_user(auth_http)).token)
        await writer.join(room)
        writers.append(writer)

    async def write(writer: ChatClient, count: int) -> list[str]:
        ids = []
        for i in range(count):
            ack = await writer.call("send_message", {"roomId": room, "message": f"m{i}"})
            ids.append(ack["id"])
        return ids

    joiners = [client() for _ in range(4)]
    for joiner in joiners:
        await joiner.connect(second.url, (await new_user(auth_http)).token)
    writing = asyncio.gather(*(write(w, 19) for w in writers))
    histories = await asyncio.gather(*(j.join(room) for j in joiners))
    all_ids = sorted(
        (i for ids in await writing for i in ids), key=lambda i: tuple(map(int, i.split("-")))
    )
    for joiner, history in zip(joiners, histories, strict=True):
        if all_ids[-1] not in {m["id"] for m in history}:  # a slow join sees it all as history
            await joiner.wait_for("new_message", lambda d: d["id"] == all_ids[-1])
        seen = [m["id"] for m in history] + [m["id"] for m in joiner.received("new_message")]
        assert seen == all_ids, "every message exactly once, in stream order"


async def test_a_push_on_the_users_channel_reaches_all_their_sockets_only(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    redis: Redis,
    client: Callable[[], ChatClient],
) -> None:
    first, second = chat_pair
    carol, dave = await new_user(auth_http), await new_user(auth_http)
    on_first, on_second, other = client(), client(), client()
    await on_first.connect(first.url, carol.token)
    await on_second.connect(second.url, carol.token)
    await other.connect(second.url, dave.token)

    notification = {"id": "n1", "type": "follow", "actorUsername": dave.username}
    channel = f"test.push:user:{carol.id}"
    receivers = await redis.publish(
        channel, json.dumps({"event": "notification", "data": notification})
    )
    assert receivers == 2  # one subscription per instance holding a socket of hers
    for socket in (on_first, on_second):
        assert await socket.wait_for("notification") == notification
    await redis.publish(channel, json.dumps({"event": "disconnect", "data": {}}))
    await redis.publish(channel, "not json")
    await other.round_trip()
    await on_first.round_trip()
    assert other.received("notification") == []
    assert on_first.sio.connected
    assert on_first.received("disconnect") == []

    await on_first.close()
    await on_second.close()
    async with asyncio.timeout(WAIT_SECONDS):  # both instances let go of her channel
        while True:
            if (await redis.pubsub_numsub(channel))[0][1] == 0:
                break
            await asyncio.sleep(0.05)


async def test_a_disconnect_removes_the_user_from_presence_everywhere(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    redis: Redis,
    client: Callable[[], ChatClient],
) -> None:
    first, second = chat_pair
    erin, frank = await new_user(auth_http), await new_user(auth_http)
    e, f = client(), client()
    await e.connect(first.url, erin.token)
    await f.connect(second.url, frank.token)
    room = open_room()
    await e.join(room)
    await f.join(room)
    await e.wait_for("room_users", lambda d: user_ids(d) == {erin.id, frank.id})
    assert len(await redis.hgetall(f"chat:presence:{room}")) == 2

    mark = len(e.events)
    await f.close()
    await e.wait_for("room_users", lambda d: user_ids(d) == {erin.id}, since=mark)
    assert await redis.hvals(f"chat:presence:{room}") == [erin.id]
    assert list(await redis.hgetall(f"chat:presence-users:{room}")) == [erin.id]
