"""Room ids and who may use a room.

Three kinds, told apart by the id alone so a check needs no lookup for two of them:

- open rooms: any id of letters, digits, `_`, `-` and `.` (the design document's `room-123`);
  every signed-in user may join and read them;
- direct messages: `dm:<userId>:<userId>`, the two ids sorted; only those two users;
- private groups: `group:<uuid>`, created over HTTP; only their members.
"""

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum

OPEN_ROOM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DM_PREFIX = "dm:"
GROUP_PREFIX = "group:"


class RoomKind(StrEnum):
    OPEN = "open"
    DM = "dm"
    GROUP = "group"


@dataclass(frozen=True)
class Room:
    id: str
    kind: RoomKind
    # the two participants of a direct-message room
    participants: tuple[uuid.UUID, uuid.UUID] | None = None


class InvalidRoomIdError(ValueError):
    pass


def dm_room_id(a: uuid.UUID, b: uuid.UUID) -> str:
    first, second = sorted((str(a), str(b)))
    return f"{DM_PREFIX}{first}:{second}"


def new_group_id() -> str:
    return f"{GROUP_PREFIX}{uuid.uuid4()}"


def parse_room(room_id: object) -> Room:
    """The room an id names; raises InvalidRoomIdError with a message a client can act on."""
    if not isinstance(room_id, str) or not room_id:
        raise InvalidRoomIdError("roomId must be a non-empty string")
    if room_id.startswith(DM_PREFIX):
        return _parse_dm(room_id)
    if room_id.startswith(GROUP_PREFIX):
        try:
            group = uuid.UUID(room_id.removeprefix(GROUP_PREFIX))
        except ValueError:
            raise InvalidRoomIdError("a group roomId is group:<uuid>") from None
        if f"{GROUP_PREFIX}{group}" != room_id:
            raise InvalidRoomIdError(f"use the canonical group id {GROUP_PREFIX}{group}")
        return Room(room_id, RoomKind.GROUP)
    if not OPEN_ROOM.fullmatch(room_id):
        raise InvalidRoomIdError(
            "an open roomId is 1-64 characters of letters, digits, '_', '-', "
            "'.' (starting with a letter or digit); direct messages are "
            "dm:<userId>:<userId>, private groups group:<uuid>"
        )
    return Room(room_id, RoomKind.OPEN)


def _parse_dm(room_id: str) -> Room:
    parts = room_id.removeprefix(DM_PREFIX).split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        a, b = uuid.UUID(parts[0]), uuid.UUID(parts[1])
    except ValueError:
        raise InvalidRoomIdError("a direct-message roomId is dm:<userId>:<userId>") from None
    if a == b:
        raise InvalidRoomIdError("a direct-message room needs two different users")
    canonical = dm_room_id(a, b)
    if canonical != room_id:
        raise InvalidRoomIdError(f"use the canonical id {canonical} (user ids sorted, lowercase)")
    first, second = sorted((a, b), key=str)
    return Room(room_id, RoomKind.DM, participants=(first, second))
