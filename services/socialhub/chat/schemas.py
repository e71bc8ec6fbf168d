"""HTTP bodies of the chat API."""

import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from socialhub.chat.store import check_cursor
from socialhub.kit.inputs import SINGLE_LINE

GroupName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
                      SINGLE_LINE]
Cursor = Annotated[str, StringConstraints(max_length=45), AfterValidator(check_cursor)]


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


class MessagePage(ApiModel):
    room_id: str
    messages: list[ChatMessageOut]  # newest first
    next_cursor: str | None  # pass as `before` for the next (older) page


class DirectRoom(ApiModel):
    room_id: str
