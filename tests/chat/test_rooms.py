"""Room ids (pure logic): which strings name which kind of room."""

import uuid

import pytest

from socialhub.chat.rooms import InvalidRoomIdError, RoomKind, dm_room_id, parse_room

A = uuid.UUID("00000000-0000-4000-8000-000000000001")
B = uuid.UUID("ffffffff-0000-4000-8000-000000000002")


def test_open_rooms_are_plain_names() -> None:
    for name in ("room-123", "general", "a", "Team_1.dev"):
        assert parse_room(name).kind is RoomKind.OPEN


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-room",
        "room 1",
        "x" * 65,
        "room/1",
        "user:1",
        "a:b",
        "ümlaut",
        "dm:",
        "group:nope",
        42,
        None,
    ],
)
def test_malformed_ids_are_refused(name: object) -> None:
    with pytest.raises(InvalidRoomIdError):
        parse_room(name)


def test_dm_ids_are_the_two_users_sorted() -> None:
    room_id = dm_room_id(B, A)
    assert room_id == f"dm:{A}:{B}" == dm_room_id(A, B)
    room = parse_room(room_id)
    assert room.kind is RoomKind.DM
    assert room.participants == (A, B)


def test_dm_ids_must_be_canonical_and_between_two_users() -> None:
    with pytest.raises(InvalidRoomIdError, match="canonical"):
        parse_room(f"dm:{B}:{A}")
    with pytest.raises(InvalidRoomIdError, match="two different users"):
        parse_room(f"dm:{A}:{A}")
    with pytest.raises(InvalidRoomIdError, match="canonical"):
        parse_room(f"dm:{A}:{str(B).upper()}")
    with pytest.raises(InvalidRoomIdError):
        parse_room(f"dm:{A}:{B}:{A}")


def test_group_ids_are_canonical_uuids() -> None:
    group = uuid.uuid4()
    assert parse_room(f"group:{group}").kind is RoomKind.GROUP
    with pytest.raises(InvalidRoomIdError, match="canonical"):
        parse_room(f"group:{group.hex}")
