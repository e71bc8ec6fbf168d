"""The users service's sort keys, carried in the kit's opaque cursors (socialhub.kit.pagination)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from socialhub.kit.pagination import decode_cursor, encode_cursor
from socialhub.users.models import USERNAME_MAX

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_BIGINT = 2**63 - 1


@dataclass(frozen=True)
class FollowCursor:
    """Position in a followers/following list: (followed_at, follow id), newest first."""

    followed_at: datetime
    follow_id: int

    def encode(self) -> str:
        micros = (self.followed_at - EPOCH) // timedelta(microseconds=1)
        return encode_cursor("f", micros, self.follow_id)

    @classmethod
    def decode(cls, cursor: str) -> "FollowCursor":
        def parse(kind: str, micros: str, follow_id: str) -> FollowCursor:
            if kind != "f" or not 0 < int(follow_id) <= MAX_BIGINT:
                raise ValueError(kind)
            return cls(EPOCH + timedelta(microseconds=int(micros)), int(follow_id))

        return decode_cursor(cursor, parse)


@dataclass(frozen=True)
class SearchCursor:
    """Position in search results: the last (unique) username, in ascending order."""

    username: str

    def encode(self) -> str:
        return encode_cursor("s", self.username)

    @classmethod
    def decode(cls, cursor: str) -> "SearchCursor":
        def parse(kind: str, username: str) -> SearchCursor:
            if kind != "s" or not 0 < len(username) <= USERNAME_MAX or not username.isprintable():
                raise ValueError(kind)
            return cls(username)

        return decode_cursor(cursor, parse)
