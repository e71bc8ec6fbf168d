"""Restarts and crashes: history survives a restart, a killed instance's users leave presence."""

from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from tests.chat.helpers import ChatClient, Instance, new_user, open_room, user_ids


async def test_history_survives_a_restart_of_the_chat_service(
    spare_chat: Instance, auth_http: httpx.AsyncClient, client: Callable[[], ChatClient]
) -> None:
    user = await new_user(auth_http)
    room = open_room()
    before = client()
    await before.connect(spare_chat.url, user.token)
    await before.join(room)
    sent = [
        (await before.call("send_message", {"roomId": room, "message": text}))["id"]
        for text in ("first", "second")
    ]

    spare_chat.stop()
    await before.close()
    spare_chat.start()

    after = client()
    await after.connect(spare_chat.url, user.token)
    assert [(m["id"], m["message"]) for m in await after.join(room)] == [
        (sent[0], "first"),
        (sent[1], "second"),
    ]


async def test_a_killed_instances_users_disappear_from_presence(
    chat_pair: tuple[Instance, Instance],
    spare_chat: Instance,
    auth_http: httpx.AsyncClient,
    redis: Redis,
    client: Callable[[], ChatClient],
) -> None:
    survivor_user, doomed_user = await new_user(auth_http), await new_user(auth_http)
    room = open_room()
    survivor, doomed = client(), client()
    await survivor.connect(chat_pair[0].url, survivor_user.token)
    await doomed.connect(spare_chat.url, doomed_user.token)
    await survivor.join(room)
    await doomed.join(room)
    both = {survivor_user.id, doomed_user.id}
    await survivor.wait_for("room_users", lambda d: user_ids(d) == both)

    mark = len(survivor.events)
    spare_chat.kill()
    # gone after the instance TTL (2 s in these tests) plus a heartbeat of a survivor
    alone = await survivor.wait_for(
        "room_users", lambda d: user_ids(d) == {survivor_user.id}, since=mark, within=30
    )
    assert alone["count"] == 1
    assert len(await redis.hgetall(f"chat:presence:{room}")) == 1
