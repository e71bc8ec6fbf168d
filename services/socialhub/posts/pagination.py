"""Keyset cursors: a position (time in ms, id) in a list ordered by (created_at, id).

Pages continue strictly after the last item shown, so rows inserted meanwhile (always newer
than the first page of a newest-first list) never shift, repeat or hide later pages. The cursor
is opaque to clients: base64url of `<ms>.<uuid hex>`.
"""

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request, Response

from socialhub.kit.errors import ApiError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """Exact milliseconds since the epoch (integer arithmetic: no float rounding)."""
    return (moment - EPOCH) // ONE_MS


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


MAX_MS = to_ms(datetime.max.replace(tzinfo=UTC))  # the last time Python holds (year 9999)


def now_ms_precision() -> datetime:
    """The current time truncated to the millisecond, the precision every post time has."""
    return from_ms(to_ms(datetime.now(UTC)))


@dataclass(frozen=True, order=True)
class Position:
    ms: int
    id: uuid.UUID

    @property
    def at(self) -> datetime:
        return from_ms(self.ms)

    @classmethod
    def of(cls, row: Any) -> "Position":
        return cls(to_ms(row.created_at), row.id)

    def encode(self) -> str:
        raw = f"{self.ms}.{self.id.hex}".encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, cursor: str) -> "Position":
        """Raises a 422 naming `cursor` for anything this module did not produce."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            ms, hex_id = raw.split(".")
            position = cls(int(ms), uuid.UUID(hex=hex_id))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise invalid_cursor() from None
        if not 0 <= position.ms <= MAX_MS:
            raise invalid_cursor()
        return position


def invalid_cursor() -> ApiError:
    return ApiError(422, "validation_error", "invalid input (cursor: not a cursor this API gave)",
                    fields={"cursor": "not a cursor this API gave"})


def decode_optional(cursor: str | None) -> Position | None:
    return Position.decode(cursor) if cursor is not None else None


def next_link(request: Request, response: Response, cursor: str | None) -> None:
    """RFC 8288 `Link: <...>; rel="next"`, the same URL with the next cursor."""
    if cursor is not None:
        url = request.url.include_query_params(cursor=cursor)
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
