"""Direct messages and private groups: only their members join or read them, and a refused
join leaks no history. The HTTP API is called directly with the header the gateway sets."""

import uuid
from collections.abc import Callable

import httpx

from socialhub.chat.rooms import dm_room_id
from tests.chat.helpers import ChatClient, Instance, User, new_user, refused_join

NO_SUCH_GROUP = "group:00000000-0000-4000-8000-000000000000"


def _dm(a: User, b: User) -> str:
    return dm_room_id(uuid.UUID(a.id), uuid.UUID(b.id))


async def test_only_the_two_users_join_and_read_a_direct_message_room(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
) -> None:
    first, second = chat_pair
    alice = await new_user(auth_http)
    bob = await new_user(auth_http)
    mallory = await new_user(auth_http)
    room = _dm(alice, bob)
    async with httpx.AsyncClient(base_url=first.url) as http:
        assert (await http.get(f"/chat/dms/{bob.id}", headers=alice.header)).json() == {
            "roomId": room
        }

    a, b, m = client(), client(), client()
    await a.connect(first.url, alice.token)
    await b.connect(second.url, bob.token)
    await m.connect(second.url, mallory.token)
    await a.join(room)
    sent = await a.call("send_message", {"roomId": room, "message": "just for you"})
    history = await b.join(room)
    assert [msg["id"] for msg in history] == [sent["id"]]

    error = await refused_join(m, room)
    assert error["code"] == "forbidden"
    first_id, second_id = room.removeprefix("dm:").split(":")
    reversed_id = f"dm:{second_id}:{first_id}"
    assert (await refused_join(a, reversed_id))["code"] == "bad_request"
    denied = await m.call("send_message", {"roomId": room, "message": "let me in"})
    assert denied["error"]["code"] == "forbidden"

    async with httpx.AsyncClient(base_url=second.url) as http:
        response = await http.get(f"/chat/rooms/{room}/messages", headers=mallory.header)
        assert response.status_code == 403
        assert "messages" not in response.text
        response = await http.get(f"/chat/rooms/{room}/messages", headers=bob.header)
        assert response.status_code == 200
        assert [msg["message"] for msg in response.json()["items"]] == ["just for you"]
        assert (await http.get(f"/chat/rooms/{room}/messages")).status_code == 401


async def test_a_private_group_admits_its_members_only(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
) -> None:
    first, second = chat_pair
    owner = await new_user(auth_http)
    member = await new_user(auth_http)
    outsider = await new_user(auth_http)
    async with httpx.AsyncClient(base_url=first.url) as http:
        created = await http.post(
            "/chat/rooms", headers=owner.header, json={"name": "Planning", "members": [member.id]}
        )
        assert created.status_code == 201, created.text
        group = created.json()
        room = group["roomId"]
        assert room.startswith("group:")
        assert group["ownerId"] == owner.id
        assert sorted(group["members"]) == sorted([owner.id, member.id])
        assert (await http.get(f"/chat/rooms/{room}", headers=outsider.header)).status_code == 403
        assert (await http.get(f"/chat/rooms/{room}", headers=member.header)).json() == group
        refused = await http.post(
            f"/chat/rooms/{room}/members", headers=member.header, json={"members": [outsider.id]}
        )
        assert refused.status_code == 403
        assert (
            await http.get(f"/chat/rooms/{NO_SUCH_GROUP}/messages", headers=owner.header)
        ).status_code == 404

    o, mem, out = client(), client(), client()
    await o.connect(first.url, owner.token)
    await mem.connect(second.url, member.token)
    await out.connect(second.url, outsider.token)
    await o.join(room)
    secret = await o.call("send_message", {"roomId": room, "message": "the plan"})
    assert [m["id"] for m in await mem.join(room)] == [secret["id"]]
    assert (await refused_join(out, room))["code"] == "forbidden"
    assert (await refused_join(out, NO_SUCH_GROUP))["code"] == "not_found"

    async with httpx.AsyncClient(base_url=second.url) as http:
        response = await http.get(f"/chat/rooms/{room}/messages", headers=outsider.header)
        assert response.status_code == 403
        # the owner removes the member: their socket leaves the room and is told
        mark = len(mem.events)
        removed = await http.delete(f"/chat/rooms/{room}/members/{member.id}", headers=owner.header)
        assert removed.status_code == 204
        notice = await mem.wait_for("error", lambda d: d.get("code") == "removed", since=mark)
        assert notice["roomId"] == room
        after = await o.call("send_message", {"roomId": room, "message": "after removal"})
        await o.wait_for("new_message", lambda d: d["id"] == after["id"])
        await mem.round_trip()
        assert not mem.received("new_message", lambda d: d["id"] == after["id"])
        assert (await refused_join(mem, room))["code"] == "forbidden"
        # the owner adds the outsider, who may now join
        added = await http.post(
            f"/chat/rooms/{room}/members", headers=owner.header, json={"members": [outsider.id]}
        )
        assert added.status_code == 200
        assert outsider.id in added.json()["members"]
    history = await out.join(room)
    assert [m["message"] for m in history] == ["the plan", "after removal"]


async def test_history_pages_over_http_with_a_cursor(
    chat_pair: tuple[Instance, Instance],
    auth_http: httpx.AsyncClient,
    client: Callable[[], ChatClient],
) -> None:
    first, _ = chat_pair
    writer = await new_user(auth_http)
    sender = client()
    await sender.connect(first.url, writer.token)
    room = f"room-pages-{writer.id[:8]}"
    await sender.join(room)
    ids = [
        (await sender.call("send_message", {"roomId": room, "message": f"m{i}"}))["id"]
        for i in range(7)
    ]

    async with httpx.AsyncClient(base_url=first.url) as http:
        pages, cursor = [], None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            response = await http.get(
                f"/chat/rooms/{room}/messages", params=params, headers=writer.header
            )
            assert response.status_code == 200, response.text
            body = response.json()
            pages.append([m["id"] for m in body["items"]])
            assert body["messages"] == body["items"]  # the deprecated name
            cursor = body["nextCursor"]
            if cursor is None:
                assert "link" not in response.headers
                break
            assert response.headers["link"] == (
                f'</chat/rooms/{room}/messages?limit=3&cursor={cursor}>; rel="next"'
            )
        assert pages == [ids[6:3:-1], ids[3:0:-1], ids[0:1]]
        # Clients written for `before=` pass the previous nextCursor there: still the same pages.
        second = await http.get(
            f"/chat/rooms/{room}/messages",
            headers=writer.header,
            params={
                "limit": 3,
                "before": body_cursor(
                    await http.get(
                        f"/chat/rooms/{room}/messages", params={"limit": 3}, headers=writer.header
                    )
                ),
            },
        )
        assert [m["id"] for m in second.json()["items"]] == ids[3:0:-1]
        for foreign in ("yesterday", ids[1], "", "x" * 201):
            refused = await http.get(
                f"/chat/rooms/{room}/messages", params={"cursor": foreign}, headers=writer.header
            )
            assert refused.status_code == 400, (foreign, refused.text)
            assert refused.json()["error"]["code"] == "invalid_cursor"
        too_many = await http.get(
            f"/chat/rooms/{room}/messages", params={"limit": 101}, headers=writer.header
        )
        assert too_many.status_code == 422
        first_message = (
            await http.get(
                f"/chat/rooms/{room}/messages", params={"before": ids[1]}, headers=writer.header
            )
        ).json()["items"][0]
        assert first_message["message"] == "m0"
        assert first_message["userId"] == writer.id
        for bad_cursor in (
            "yesterday",
            "0-0",
            "18446744073709551616-0",
            "1-18446744073709551616",
            "99999999999999999999-1",
        ):
            bad = await http.get(
                f"/chat/rooms/{room}/messages", params={"before": bad_cursor}, headers=writer.header
            )
            assert bad.status_code == 422, (bad_cursor, bad.text)
            assert list(bad.json()["error"]["fields"]) == ["before"]
        largest = await http.get(
            f"/chat/rooms/{room}/messages",
            params={"before": "18446744073709551615-18446744073709551615"},
            headers=writer.header,
        )
        assert [m["id"] for m in largest.json()["items"]][:1] == [ids[-1]]
        assert (
            await http.get("/chat/rooms/bad room/messages", headers=writer.header)
        ).status_code == 400


def body_cursor(response: httpx.Response) -> str:
    cursor: str = response.json()["nextCursor"]
    return cursor
