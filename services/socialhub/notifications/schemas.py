"""Response bodies and the page cursor of the notification API."""

import base64
import binascii
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from socialhub.kit.errors import ApiError
from socialhub.notifications.models import Notification
from socialhub.notifications.store import PagePosition

PAGE_SIZE_DEFAULT = 20
PAGE_SIZE_MAX = 100


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class NotificationPage(ApiModel):
    notifications: list[Notification]
    next_cursor: str | None
    unread_count: int


class ReadAllResult(ApiModel):
    updated: int
    unread_count: int


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def encode_cursor(last: Notification) -> str:
    """Opaque to clients: the (createdAt ms, id) of the last notification of a page."""
    millis = (last.created_at - EPOCH) // MILLISECOND  # exact: no float rounding
    return base64.urlsafe_b64encode(f"{millis}:{last.id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> PagePosition:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        millis, notification_id = raw.split(":", 1)
        created_at = EPOCH + int(millis) * MILLISECOND
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise _bad_cursor() from None
    if not notification_id or len(notification_id) > 100:
        raise _bad_cursor()
    return PagePosition(created_at, notification_id)


def _bad_cursor() -> ApiError:
    return ApiError(422, "validation_error", "invalid input (cursor: not a cursor we issued)",
                    fields={"cursor": "not a cursor we issued"})
