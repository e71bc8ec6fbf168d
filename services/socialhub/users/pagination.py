"""Opaque keyset cursors and the `Link: <...>; rel="next"` header.

A cursor is the sort key of the last item a page returned, base64url-encoded: the next page
starts strictly after it, so rows inserted meanwhile (newer, hence before it) never shift a page
and nothing is returned twice or skipped.
"""

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from starlette.datastructures import URL

from socialhub.kit.errors import ApiError
from socialhub.users.models import USERNAME_MAX

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 200
MAX_BIGINT = 2**63 - 1


def invalid_cursor() -> ApiError:
    return ApiError(400, "invalid_cursor", "cursor is not one this API returned",
                    fields={"cursor": "invalid"})


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _decode(cursor: str) -> str:
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid_cursor()
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError) as exc:
        raise invalid_cursor() from exc


@dataclass(frozen=True)
class FollowCursor:
    """Position in a followers/following list: (followed_at, follow id), newest first."""

    followed_at: datetime
    follow_id: int

    def encode(self) -> str:
        micros = (self.followed_at - EPOCH) // timedelta(microseconds=1)
        return _encode(f"f:{micros}:{self.follow_id}")

    @classmethod
    def decode(cls, cursor: str) -> "FollowCursor":
        kind, _, rest = _decode(cursor).partition(":")
        micros, _, follow_id = rest.partition(":")
        try:
            if kind != "f" or not 0 < int(follow_id) <= MAX_BIGINT:
                raise ValueError(kind)
            return cls(EPOCH + timedelta(microseconds=int(micros)), int(follow_id))
        except (ValueError, OverflowError) as exc:
            raise invalid_cursor() from exc


@dataclass(frozen=True)
class SearchCursor:
    """Position in search results: the last (unique) username, in ascending order."""

    username: str

    def encode(self) -> str:
        return _encode(f"s:{self.username}")

    @classmethod
    def decode(cls, cursor: str) -> "SearchCursor":
        kind, _, username = _decode(cursor).partition(":")
        if kind != "s" or not 0 < len(username) <= USERNAME_MAX or not username.isprintable():
            raise invalid_cursor()
        return cls(username)


def next_link(url: URL, cursor: str) -> str:
    """The Link header value pointing at the page after this one (same query, new cursor).

    A relative reference (RFC 8288 allows it): behind the gateway the service does not know the
    public host and port, the client resolves it against the URL it requested.
    """
    following = url.include_query_params(cursor=cursor)
    return f'<{following.path}?{following.query}>; rel="next"'
