"""The chat's HTTP API (behind the gateway's token check): history pages and private groups.

Refusals are the kit's ApiErrors, answered in its error envelope.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from socialhub.chat.schemas import (
    AddMembersRequest,
    ChatMessageOut,
    CreateGroupRequest,
    DirectRoom,
    GroupOut,
    MessageId,
    MessagePage,
)
from socialhub.chat.service import ChatService
from socialhub.chat.store import Group, message_cursor, message_position
from socialhub.kit.identity import CurrentUser
from socialhub.kit.openapi import errors
from socialhub.kit.pagination import INVALID_CURSOR, CursorQuery, LimitQuery, set_next_link

router = APIRouter(prefix="/chat", tags=["chat"])
BAD_ROOM = (400, "not a room id")
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
RoomId = Annotated[
    str,
    Path(
        description="an open room (1-64 letters, digits, `_`, `-`, `.`), `dm:<userId>:<userId>` or "
        "`group:<uuid>`",
        json_schema_extra={
            "pattern": rf"^([A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}|dm:{_UUID}:{_UUID}"
            rf"|group:{_UUID})$"
        },
    ),
]
NOT_A_MEMBER = (
    403,
    "the caller is not a member of the room, or a block closes the direct-message room",
)
NO_GROUP = (404, "no such group room")
NOT_THE_OWNER = (403, "the caller is not the group's owner")
HISTORY_PAGE_DEFAULT = 50


async def _service(request: Request) -> ChatService:
    service: ChatService = request.app.state.chat
    return service


Chat = Annotated[ChatService, Depends(_service)]


def _out(group: Group) -> GroupOut:
    return GroupOut.model_validate(group.as_json())


@router.get(
    "/rooms/{room_id}/messages",
    response_model=MessagePage,
    responses=errors(BAD_ROOM, INVALID_CURSOR, NOT_A_MEMBER, NO_GROUP),
)
async def history(
    request: Request,
    response: Response,
    room_id: RoomId,
    user: CurrentUser,
    chat: Chat,
    cursor: CursorQuery = None,
    before: Annotated[
        MessageId | None,
        Query(deprecated=True, description="older than this message id; use `cursor`"),
    ] = None,
    limit: LimitQuery = HISTORY_PAGE_DEFAULT,
) -> MessagePage:
    """Older messages page by page, newest first."""
    older_than = message_position(cursor) if cursor is not None else before
    page = await chat.history(room_id, user.id, older_than, limit)
    next_cursor = message_cursor(page.last_id) if page.last_id is not None else None
    set_next_link(request, response, next_cursor)
    messages = [ChatMessageOut.model_validate(m) for m in page.messages]
    return MessagePage(room_id=room_id, items=messages, messages=messages, next_cursor=next_cursor)


@router.post(
    "/rooms",
    status_code=status.HTTP_201_CREATED,
    response_model=GroupOut,
    responses=errors((400, "more members than a group may have")),
)
async def create_group(body: CreateGroupRequest, user: CurrentUser, chat: Chat) -> GroupOut:
    """A private group room owned by the caller, who is always a member."""
    return _out(await chat.create_group(user.id, body.name, set(body.members)))


@router.get(
    "/rooms/{room_id}", response_model=GroupOut, responses=errors(BAD_ROOM, NOT_A_MEMBER, NO_GROUP)
)
async def get_group(room_id: RoomId, user: CurrentUser, chat: Chat) -> GroupOut:
    return _out(await chat.group(room_id, user.id))


@router.post(
    "/rooms/{room_id}/members",
    response_model=GroupOut,
    responses=errors(
        BAD_ROOM, NOT_THE_OWNER, NO_GROUP, (409, "more members than a group may have")
    ),
)
async def add_members(
    room_id: RoomId, body: AddMembersRequest, user: CurrentUser, chat: Chat
) -> GroupOut:
    return _out(await chat.add_members(room_id, user.id, set(body.members)))


@router.delete(
    "/rooms/{room_id}/members/{member_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(
        BAD_ROOM,
        (403, "the caller is neither the owner nor the member leaving"),
        (404, "no such group room, or no such member"),
        (409, "the owner cannot leave their group"),
    ),
)
async def remove_member(
    room_id: RoomId, member_id: uuid.UUID, user: CurrentUser, chat: Chat
) -> None:
    """The owner removes a member, or a member leaves; their open sockets leave the room."""
    await chat.remove_member(room_id, user.id, member_id)


@router.get(
    "/dms/{user_id}",
    response_model=DirectRoom,
    responses=errors(
        (400, "the user is the caller"), (403, "a block between the two users, either way")
    ),
)
async def direct_room(user_id: uuid.UUID, user: CurrentUser, chat: Chat) -> DirectRoom:
    """The id of the caller's direct-message room with `user_id`, unless a block closes it."""
    return DirectRoom(room_id=await chat.direct_room(user.id, user_id))
