"""The notification API on notifications that really came through Kafka and FerretDB."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from socialhub.notifications.settings import NotificationSettings
from tests.notifications.helpers import (
    as_user,
    commented,
    followed,
    liked,
    listed,
    produce,
    uid,
    wait_for_count,
)

# Yesterday noon: within the TTL whenever the suite runs (older events store nothing).
BASE = (datetime.now(UTC) - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)


async def seed(
    client: httpx.AsyncClient,
    producer: AIOKafkaProducer,
    settings: NotificationSettings,
    user: str,
    count: int,
) -> list[str]:
    """`count` like notifications for `user`, one second apart; their ids newest first."""
    events = [liked(uid(), user, occurred_at=BASE + timedelta(seconds=i)) for i in range(count)]
    await produce(producer, settings, events)
    body = await wait_for_count(client, user, count)
    return [n["id"] for n in body["items"]]


async def test_pages_are_newest_first_and_the_cursor_walks_all_without_gaps(
    notifications: httpx.AsyncClient,
    producer: AIOKafkaProducer,
    notification_settings: NotificationSettings,
) -> None:
    user = uid()
    same_time = BASE + timedelta(seconds=3)  # ties are ordered by id, never lost or repeated
    events = [liked(uid(), user, occurred_at=BASE + timedelta(seconds=i)) for i in range(5)]
    events += [commented(uid(), user, occurred_at=same_time) for _ in range(2)]
    await produce(producer, notification_settings, events)
    await wait_for_count(notifications, user, 7)

    seen: list[dict[str, object]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = await listed(notifications, user, **params)
        seen += body["items"]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == 7
    assert len({n["id"] for n in seen}) == 7
    keys = [(n["createdAt"], n["id"]) for n in seen]
    assert keys == sorted(keys, reverse=True)
    assert seen[0]["createdAt"] == f"{BASE.date().isoformat()}T12:00:04Z"
    assert all(n["userId"] == user for n in seen)
    assert set(seen[0]) == {
        "id",
        "userId",
        "type",
        "actor",
        "target",
        "message",
        "createdAt",
        "read",
        "eventId",
    }


async def test_filters_by_type_and_read_state(
    notifications: httpx.AsyncClient,
    producer: AIOKafkaProducer,
    notification_settings: NotificationSettings,
) -> None:
    user = uid()
    await produce(
        producer,
        notification_settings,
        [liked(uid(), user), liked(uid(), user), followed(uid(), user), commented(uid(), user)],
    )
    body = await wait_for_count(notifications, user, 4)
    follow = next(n for n in body["items"] if n["type"] == "follow")

    likes = await listed(notifications, user, type="like")
    assert [n["type"] for n in likes["items"]] == ["like", "like"]

    response = await notifications.patch(
        f"/notify/notifications/{follow['id']}/read", headers=as_user(user)
    )
    assert response.status_code == 200
    unread = await listed(notifications, user, unread="true")
    assert {n["type"] for n in unread["items"]} == {"like", "comment"}
    assert unread["unreadCount"] == 3
    read = await listed(notifications, user, unread="false")
    assert [n["id"] for n in read["items"]] == [follow["id"]]
    assert (await listed(notifications, user, type="follow", unread="true"))["items"] == []


async def test_mark_read_on_fetch_marks_exactly_the_returned_page(
    notifications: httpx.AsyncClient,
    producer: AIOKafkaProducer,
    notification_settings: NotificationSettings,
) -> None:
    user = uid()
    ids = await seed(notifications, producer, notification_settings, user, 5)
    first = await listed(notifications, user, limit=2, markRead="true")
    # returned as they were, so a client can highlight what is new
    assert [n["read"] for n in first["items"]] == [False, False]
    assert first["unreadCount"] == 3
    after = await listed(notifications, user)
    assert [n["read"] for n in after["items"]] == [True, True, False, False, False]
    assert [n["id"] for n in after["items"]] == ids
    assert after["unreadCount"] == 3


async def test_mark_one_read_only_for_its_owner(
    notifications: httpx.AsyncClient,
    producer: AIOKafkaProducer,
    notification_settings: NotificationSettings,
) -> None:
    user, stranger = uid(), uid()
    ids = await seed(notifications, producer, notification_settings, user, 2)
    response = await notifications.patch(
        f"/notify/notifications/{ids[0]}/read", headers=as_user(stranger)
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert (await listed(notifications, user))["unreadCount"] == 2

    for _ in range(2):  # idempotent
        response = await notifications.patch(
            f"/notify/notifications/{ids[0]}/read", headers=as_user(user)
        )
        assert response.status_code == 200
        assert response.json()["read"] is True
        assert response.json()["id"] == ids[0]
    assert (await listed(notifications, user))["unreadCount"] == 1


async def test_read_all_touches_only_the_callers_notifications(
    notifications: httpx.AsyncClient,
    producer: AIOKafkaProducer,
    notification_settings: NotificationSettings,
) -> None:
    user, other = uid(), uid()
    await seed(notifications, producer, notification_settings, user, 3)
    await seed(notifications, producer, notification_settings, other, 1)
    response = await notifications.post("/notify/notifications/read-all", headers=as_user(user))
    assert response.status_code == 200
    assert response.json() == {"updated": 3, "unreadCount": 0}
    assert all(n["read"] for n in (await listed(notifications, user))["items"])
    assert (await listed(notifications, other))["unreadCount"] == 1
    again = await notifications.post("/notify/notifications/read-all", headers=as_user(user))
    assert again.json() == {"updated": 0, "unreadCount": 0}


async def test_delete_only_your_own(
    notifications: httpx.AsyncClient,
    producer: AIOKafkaProducer,
    notification_settings: NotificationSettings,
) -> None:
    user, stranger = uid(), uid()
    ids = await seed(notifications, producer, notification_settings, user, 2)
    response = await notifications.delete(
        f"/notify/notifications/{ids[0]}", headers=as_user(stranger)
    )
    assert response.status_code == 404
    assert len((await listed(notifications, user))["items"]) == 2

    response = await notifications.delete(f"/notify/notifications/{ids[0]}", headers=as_user(user))
    assert response.status_code == 204
    page = await listed(notifications, user)
    assert [n["id"] for n in page["items"]] == ids[1:]
    assert page["unreadCount"] == 1
    again = await notifications.delete(f"/notify/notifications/{ids[0]}", headers=as_user(user))
    assert again.status_code == 404
    read = await notifications.patch(f"/notify/notifications/{ids[0]}/read", headers=as_user(user))
    assert read.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "params", "field"),
    [
        ("GET", "/notify/notifications", {"limit": "0"}, "limit"),
        ("GET", "/notify/notifications", {"limit": "101"}, "limit"),
        ("GET", "/notify/notifications", {"limit": "ten"}, "limit"),
        ("GET", "/notify/notifications", {"type": "poke"}, "type"),
        ("GET", "/notify/notifications", {"unread": "maybe"}, "unread"),
        ("GET", "/notify/notifications", {"markRead": "please"}, "markRead"),
        ("PATCH", "/notify/notifications/not-a-uuid/read", {}, "notification_id"),
        ("DELETE", "/notify/notifications/12345", {}, "notification_id"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    notifications: httpx.AsyncClient, method: str, path: str, params: dict[str, str], field: str
) -> None:
    response = await notifications.request(method, path, params=params, headers=as_user(uid()))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "MTIzOg",  # "123:", an old-style cursor without an id
        "WyIxMjMiLCIiXQ",  # ["123", ""]: no id
        "x" * 201,
    ],
)
async def test_a_cursor_this_api_did_not_give_is_400_invalid_cursor(
    notifications: httpx.AsyncClient, cursor: str
) -> None:
    response = await notifications.get(
        "/notify/notifications", params={"cursor": cursor}, headers=as_user(uid())
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_cursor"


async def test_pages_link_to_the_next_one(
    notifications: httpx.AsyncClient,
    producer: AIOKafkaProducer,
    notification_settings: NotificationSettings,
) -> None:
    user = uid()
    await seed(notifications, producer, notification_settings, user, 3)
    first = await notifications.get(
        "/notify/notifications", params={"limit": 2}, headers=as_user(user)
    )
    cursor = first.json()["nextCursor"]
    assert cursor
    assert first.headers["link"] == (f'</notify/notifications?limit=2&cursor={cursor}>; rel="next"')
    last = await notifications.get(
        "/notify/notifications", params={"limit": 2, "cursor": cursor}, headers=as_user(user)
    )
    assert "link" not in last.headers
    assert last.json()["items"] == last.json()["notifications"]  # the deprecated name
    assert len(last.json()["items"]) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [("PATCH", "/notify/notifications/{}/read"), ("DELETE", "/notify/notifications/{}")],
)
async def test_unknown_ids_are_404(
    notifications: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await notifications.request(method, path.format(uid()), headers=as_user(uid()))
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "notification not found"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/notify/notifications"),
        ("POST", "/notify/notifications/read-all"),
        ("PATCH", f"/notify/notifications/{uid()}/read"),
        ("DELETE", f"/notify/notifications/{uid()}"),
    ],
)
async def test_without_the_gateways_identity_is_401(
    notifications: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await notifications.request(method, path)
    assert response.status_code == 401
    forged = await notifications.request(method, path, headers={"x-user-payload": "{not json"})
    assert forged.status_code == 401


async def test_a_new_user_has_an_empty_page(notifications: httpx.AsyncClient) -> None:
    body = await listed(notifications, uid())
    assert body == {"items": [], "notifications": [], "nextCursor": None, "unreadCount": 0}
