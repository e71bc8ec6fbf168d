"""A notification: what is stored in MongoDB, returned by the API and pushed to sockets.

One shape everywhere (camelCase JSON), so the pushed `data` is exactly what
`GET /notify/notifications` later returns for the same notification.
"""

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

# Namespace of notification ids: uuid5(eventId/recipient), so redelivery builds the same id.
NOTIFICATION_ID_NAMESPACE = uuid.UUID("6f0c7a52-2d0b-4f4e-9a53-3c1f0b8d7e21")


class NotificationType(StrEnum):
    FOLLOW = "follow"
    LIKE = "like"
    COMMENT = "comment"
    REPLY = "reply"
    POST = "post"  # the design document's confirmation to a post's author


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class Actor(CamelModel):
    id: str
    username: str


class Target(CamelModel):
    """What the notification is about; all empty for a follow (the actor is the subject)."""

    post_id: str | None = None
    comment_id: str | None = None
    parent_comment_id: str | None = None


class Notification(CamelModel):
    id: str
    user_id: str  # the recipient
    type: NotificationType
    actor: Actor
    target: Target
    message: str
    created_at: datetime
    read: bool = False
    event_id: str

    @staticmethod
    def id_for(event_id: str, recipient: str) -> str:
        return str(uuid.uuid5(NOTIFICATION_ID_NAMESPACE, f"{event_id}/{recipient}"))

    def to_document(self) -> dict[str, Any]:
        document = self.model_dump(by_alias=True)
        document["_id"] = document.pop("id")
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> "Notification":
        fields = {key: value for key, value in document.items() if key != "_id"}
        created_at: datetime = fields["createdAt"]
        if created_at.tzinfo is None:  # a client without tz_aware: BSON dates are UTC
            fields["createdAt"] = created_at.replace(tzinfo=UTC)
        return cls.model_validate({**fields, "id": document["_id"]})


def bson_datetime(moment: datetime) -> datetime:
    """`moment` in UTC at BSON's millisecond precision, so what is stored equals what we hold."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
