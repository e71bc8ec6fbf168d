"""Response bodies and the page cursor of the notification API."""

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from socialhub.kit.pagination import Page, decode_cursor, encode_cursor
from socialhub.notifications.models import Notification
from socialhub.notifications.store import PagePosition

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)
MAX_ID_LENGTH = 100


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class NotificationPage(Page[Notification]):
    unread_count: int
    notifications: list[Notification] = Field(
        deprecated=True, description="the same list as `items`, under its first name; use `items`"
    )


class ReadAllResult(ApiModel):
    updated: int
    unread_count: int


def page_cursor(last: Notification) -> str:
    """The (createdAt ms, id) of the last notification of a page."""
    return encode_cursor((last.created_at - EPOCH) // MILLISECOND, last.id)  # exact ms


def page_position(cursor: str) -> PagePosition:
    def parse(millis: str, notification_id: str) -> PagePosition:
        if not 0 < len(notification_id) <= MAX_ID_LENGTH:
            raise ValueError("notification id")
        return PagePosition(EPOCH + int(millis) * MILLISECOND, notification_id)

    return decode_cursor(cursor, parse)
