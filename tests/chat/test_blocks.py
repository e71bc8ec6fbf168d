"""A block (users service) closes the two users' direct-message room both ways until it is
lifted: opening, joining, reading and sending are refused, and sockets already in it leave.

The blocks travel as they do in production: the users service (a real process) emits them
through its outbox to Kafka, and the chat instances' `chat-service` consumer applies them.
"""

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from devstack.platform import Platform
from socialhub.chat.blocks import BlockChange, BlockStore
from socialhub.chat.rooms import dm_room_id
from socialhub.chat.service import BLOCKED_YOU, YOU_BLOCKED
from socialhub.contracts.events import USER_TOPIC
from socialhub.kit.events.envelope import Event
from tests.chat.helpers import ChatClient, Instance, User, new_user, refused_join
from tests.support import eventually, unique

WITHIN = 30.0  # a consumer-group rebalance (instances of other tests joining) pauses consuming


@pytest.fixture(scope="module")
def users_instance(platform: Platform) -> Iterator[Instance]:
    instance = Instance.create(platform, "users").start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
async def users_http(users_instance: Instance) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=users_instance.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def chat_http(chat_pair: tuple[Instance, Instance]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=chat_pair[0].url, timeout=30) as client:
        yield client


def _dm(a: User, b: User) -> str:
    return dm_room_id(uuid.UUID(a.id), uuid.UUID(b.id))


async def _profiles(users_http: httpx.AsyncClient, *users: User) -> None:
    """Each user's profile, created just in time, so a block need not wait for user.created."""
    for user in users:
        response = await users_http.get("/users/me", headers=user.header)
        assert response.status_code == 200, response.text


async def _block(
    users_http: httpx.AsyncClient, blocker: User, blocked: User, *, lift: bool = False
) -> None:
    method = "DELETE" if lift else "POST"
    response = await users_http.request(
        method, f"/users/block/{blocked.id}", headers=blocker.header
    )
    assert response.status_code == 200, response.text
    assert response.json()["isBlocking"] is not lift


async def _opens(chat_http: httpx.AsyncClient, user: User, other: User) -> httpx.Response:
    return await chat_http.get(f"/chat/dms/{other.id}", headers=user.header)


def _refusal(response: httpx.Response, message: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"] == {"status": 403, "code": "forbidden", "message": message}


async def _is_open(chat_http: httpx.AsyncClient, user: User, other: User) -> bool:
    return (await _opens(chat_http, user, other)).status_code == 200


async def test_a_block_closes_the_direct_messages_both_ways_until_it_is_lifted(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    users_http: httpx.AsyncClient,
    chat_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
) -> None:
    first, second = chat_pair
    alice, bob = await new_user(auth_http), await new_user(auth_http)
    await _profiles(users_http, alice, bob)
    room = _dm(alice, bob)
    a, b = client(), client()
    await a.connect(first.url, alice.token)
    await b.connect(second.url, bob.token)
    await a.join(room)
    await b.join(room)
    before = await b.call("send_message", {"roomId": room, "message": "before the block"})
    assert before["ok"], before
    marks = len(a.events), len(b.events)

    await _block(users_http, alice, bob)
    for socket, mark in zip((a, b), marks, strict=True):
        removed = await socket.wait_for(
            "error", lambda d: d.get("roomId") == room, since=mark, within=WITHIN
        )
        assert removed == {
            "event": "join_room",
            "code": "removed",
            "roomId": room,
            "message": "a block between you and this user closed this direct-message room",
        }

    for user, other, socket, why in ((alice, bob, a, YOU_BLOCKED), (bob, alice, b, BLOCKED_YOU)):
        _refusal(await _opens(chat_http, user, other), why)
        _refusal(await chat_http.get(f"/chat/rooms/{room}/messages", headers=user.header), why)
        assert await refused_join(socket, room) == {
            "event": "join_room",
            "code": "forbidden",
            "message": why,
            "roomId": room,
        }
        sent = await socket.call("send_message", {"roomId": room, "message": "still there?"})
        assert sent["ok"] is False
        assert sent["error"]["code"] == "forbidden"

    await _block(users_http, alice, bob, lift=True)
    await eventually(
        lambda: _is_open(chat_http, bob, alice),
        within=WITHIN,
        what="the direct-message room reopening after the unblock",
    )
    assert (await _opens(chat_http, alice, bob)).json() == {"roomId": room}
    assert [m["id"] for m in await a.join(room)] == [before["id"]]
    await b.join(room)
    mark = len(a.events)
    after = await b.call("send_message", {"roomId": room, "message": "after the unblock"})
    assert after["ok"], after
    received = await a.wait_for("new_message", lambda m: m["id"] == after["id"], since=mark)
    assert received["message"] == "after the unblock"


async def test_the_room_stays_closed_until_both_blocks_are_lifted(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    users_http: httpx.AsyncClient,
    chat_http: httpx.AsyncClient,
    redis: Redis,
) -> None:
    alice, bob = await new_user(auth_http), await new_user(auth_http)
    await _profiles(users_http, alice, bob)
    store, room = BlockStore(redis), _dm(alice, bob)

    async def blockers_are(*users: User) -> bool:
        return await store.blockers(room) == {uuid.UUID(u.id) for u in users}

    await _block(users_http, bob, alice)  # the blocked side blocks too
    await _block(users_http, alice, bob)
    await eventually(lambda: blockers_are(alice, bob), within=WITHIN, what="both blocks")
    await _block(users_http, alice, bob, lift=True)
    await eventually(lambda: blockers_are(bob), within=WITHIN, what="alice's unblock")
    _refusal(await _opens(chat_http, alice, bob), BLOCKED_YOU)
    _refusal(await _opens(chat_http, bob, alice), YOU_BLOCKED)

    await _block(users_http, bob, alice, lift=True)
    await eventually(
        lambda: _is_open(chat_http, alice, bob), within=WITHIN, what="the room reopening"
    )
    assert await _is_open(chat_http, bob, alice)


async def test_a_socket_the_block_has_not_reached_yet_cannot_send(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
    redis: Redis,
) -> None:
    """The send checks the block itself: the eviction travels by pub/sub and may come late.
    The block is written straight into the replica here, so no eviction is published."""
    first, second = chat_pair
    alice, bob = await new_user(auth_http), await new_user(auth_http)
    room, store = _dm(alice, bob), BlockStore(redis)
    a, b = client(), client()
    await a.connect(first.url, alice.token)
    await b.connect(second.url, bob.token)
    await a.join(room)
    await b.join(room)
    now_us = time.time_ns() // 1000

    def change(active: bool, at_us: int) -> BlockChange:
        return BlockChange(uuid.UUID(alice.id), uuid.UUID(bob.id), active, at_us // 1000, at_us)

    await store.apply(room, [change(True, now_us)])
    for socket, why in ((a, YOU_BLOCKED), (b, BLOCKED_YOU)):
        mark = len(socket.events)
        sent = await socket.call("send_message", {"roomId": room, "message": "sneaking in"})
        expected = {"event": "send_message", "code": "forbidden", "message": why, "roomId": room}
        assert sent == {"ok": False, "error": expected}
        assert await socket.wait_for("error", since=mark) == expected

    await store.apply(room, [change(False, now_us + 1000)])
    sent = await b.call("send_message", {"roomId": room, "message": "allowed again"})
    assert sent["ok"], sent
    await a.wait_for("new_message", lambda m: m["id"] == sent["id"])


async def test_redelivered_and_late_block_events_change_nothing(
    chat_pair: tuple[Instance, Instance],
    chat_http: httpx.AsyncClient,
    platform: Platform,
    redis: Redis,
) -> None:
    """Events of one blocker share a partition and arrive in order: the last one, on another
    room, proves the ones before it were consumed."""
    alice, bob, carol = (User(str(uuid.uuid4()), unique("c"), "") for _ in range(3))
    store = BlockStore(redis)
    base_ms = int(time.time() * 1000)

    def event(event_type: str, blocked: User, at_ms: int) -> Event:
        return Event(
            event_type=event_type,
            producer="users",
            data={"blockerId": alice.id, "blockedId": blocked.id, "timestamp": at_ms},
        )

    block = event("user.blocked", bob, base_ms + 2000)
    await _publish(
        platform,
        alice.id,
        [
            block,
            event("user.unblocked", bob, base_ms + 1000),  # older than the block: arrives late
            block,  # redelivered
            event("user.blocked", alice, base_ms),  # invalid (dead-lettered): nothing stops
            event("user.blocked", carol, base_ms),  # the marker
        ],
    )
    await eventually(
        lambda: _has_blockers(store, _dm(alice, carol), alice),
        within=WITHIN,
        what="the marker block",
    )
    assert await store.blockers(_dm(alice, bob)) == {uuid.UUID(alice.id)}
    _refusal(await _opens(chat_http, bob, alice), BLOCKED_YOU)

    await _publish(
        platform,
        alice.id,
        [
            event("user.unblocked", bob, base_ms + 3000),
            event("user.unblocked", carol, base_ms + 3000),
        ],
    )
    await eventually(
        lambda: _has_blockers(store, _dm(alice, carol)), within=WITHIN, what="the marker unblock"
    )
    assert await _is_open(chat_http, bob, alice)


async def _has_blockers(store: BlockStore, room: str, *users: User) -> bool:
    return await store.blockers(room) == {uuid.UUID(u.id) for u in users}


async def _publish(platform: Platform, key: str, events: list[Event]) -> None:
    """As the users service's outbox relay sends them."""
    producer = AIOKafkaProducer(bootstrap_servers=platform.infra.kafka.address)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                platform.profile.topic_prefix + USER_TOPIC, event.to_bytes(), key=key.encode()
            )
    finally:
        await producer.stop()
