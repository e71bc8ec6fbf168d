"""The posts service's sort key: a position (time in ms, id) in a list ordered by
(created_at, id), carried in the kit's opaque cursors (socialhub.kit.pagination).

Pages continue strictly after the last item shown, so rows inserted meanwhile (always newer
than the first page of a newest-first list) never shift, repeat or hide later pages.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from socialhub.kit.pagination import decode_cursor, encode_cursor

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
    def of(cls, row: Mapping[str, Any]) -> "Position":
        return cls(to_ms(row["created_at"]), row["id"])

    def encode(self) -> str:
        return encode_cursor(self.ms, self.id.hex)

    @classmethod
    def decode(cls, cursor: str) -> "Position":
        """Raises 400 `invalid_cursor` for anything `encode` did not produce."""

        def parse(ms: str, hex_id: str) -> Position:
            if not 0 <= int(ms) <= MAX_MS:
                raise ValueError(ms)
            return cls(int(ms), uuid.UUID(hex=hex_id))

        return decode_cursor(cursor, parse)


def decode_optional(cursor: str | None) -> Position | None:
    return Position.decode(cursor) if cursor is not None else None
