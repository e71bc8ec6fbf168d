"""HTTP bodies of the chat API."""

import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from socialhub.chat.store import check_cursor, message_position
from socialhub.kit.errors import ApiError
from socialhub.kit.inputs import NONBLANK_LINE
from socialhub.kit.pagination import MAX_CURSOR_LENGTH, Page

GroupName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NONBLANK_LINE
]


def _message_id_or_cursor(value: str) -> str:
    """The deprecated `before=` takes a message id, as documented before `cursor` existed, or
    the previous `nextCursor`, which is what clients written then pass."""
    try:
        return check_cursor(value)
    except ValueError:
        pass
    try:
        return message_position(value)
    except ApiError:
        raise ValueError("must be a message id such as 1700000000000-0, or a nextCursor") from None


MessageId = Annotated[
    str,
    StringConstraints(max_length=MAX_CURSOR_LENGTH),
    AfterValidator(_message_id_or_cursor),
    Field(json_schema_extra={"pattern": "^[0-9]{1,19}-[0-9]{1,19}$"}),
]


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class CreateGroupRequest(ApiModel):
    name: GroupName
    members: list[uuid.UUID] = Field(default_factory=list, max_length=1000)


class AddMembersRequest(ApiModel):
    members: list[uuid.UUID] = Field(min_length=1, max_length=1000)


class GroupOut(ApiModel):
    room_id: str
    name: str
    owner_id: uuid.UUID
    created_at: str
    members: list[uuid.UUID]


class ChatMessageOut(ApiModel):
    id: str
    room_id: str
    user_id: uuid.UUID
    username: str
    message: str
    created_at: str


class MessagePage(Page[ChatMessageOut]):
    """Newest first; `nextCursor` is passed as `cursor` for the next (older) page."""

    room_id: str
    messages: list[ChatMessageOut] = Field(
        deprecated=True, description="the same list as `items`, under its first name; use `items`"
    )


class DirectRoom(ApiModel):
    room_id: str
