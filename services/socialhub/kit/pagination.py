"""One way to page every list of every service.

- `limit`: 1 to `MAX_LIMIT` items (`LimitQuery`); anything else answers 422 like any bad parameter.
- `cursor`: opaque to clients (`CursorQuery`): the sort key of the last item a page returned,
  so the next page starts strictly after it, and rows inserted meanwhile never shift, repeat or
  hide items. A cursor this API did not return answers 400 `invalid_cursor` (`decode_cursor`).
- the body is `{"items": [...], "nextCursor": ...}` (`Page`), `nextCursor` null on the last page,
  and a `Link: <...>; rel="next"` header points at the next page (`set_next_link`).

Each service keeps its own sort key (what a position is depends on the list); this module owns
how a key travels and how a bad one is refused.
"""

import base64
import binascii
import json
from collections.abc import Callable
from typing import Annotated, Generic, TypeVar

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from starlette.datastructures import URL

from socialhub.kit.errors import ApiError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 200

LimitQuery = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"items per page, 1 to {MAX_LIMIT}")
]
CursorQuery = Annotated[
    str | None,
    Query(
        description="`nextCursor` of the previous page (opaque; 400 `invalid_cursor` otherwise)",
        json_schema_extra={"pattern": "^[A-Za-z0-9_-]+$"},
    ),
]  # unpadded base64url (encode_cursor)
# For `responses=errors(...)` of every paged route.
INVALID_CURSOR = (400, "the cursor is not one this API returned (`invalid_cursor`)")

T = TypeVar("T")
K = TypeVar("K")


def invalid_cursor() -> ApiError:
    return ApiError(
        400, "invalid_cursor", "cursor is not one this API returned", fields={"cursor": "invalid"}
    )


def encode_cursor(*key: str | int) -> str:
    """A sort key as an opaque cursor."""
    raw = json.dumps([str(part) for part in key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, parse: Callable[..., K]) -> K:
    """`parse(*key)` rebuilds the position from the key's parts (strings); a cursor that is not
    one `encode_cursor` made, or whose parts `parse` refuses (ValueError, TypeError,
    OverflowError), answers 400 `invalid_cursor`."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid_cursor()
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(key, list) or not all(isinstance(part, str) for part in key):
            raise ValueError("not a list of strings")
        return parse(*key)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, OverflowError):
        raise invalid_cursor() from None


class Page(BaseModel, Generic[T]):
    """`{"items": [...], "nextCursor": ...}`; a list with more to say subclasses it."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    items: list[T]
    next_cursor: str | None


def next_link(url: URL, cursor: str) -> str:
    """The `Link` value for the page after this one: the same query with the new cursor.

    A relative reference (RFC 8288 allows it): behind the gateway the service does not know the
    public host and port; the client resolves it against the URL it requested.
    """
    following = url.include_query_params(cursor=cursor)
    return f'<{following.path}?{following.query}>; rel="next"'


def set_next_link(request: Request, response: Response, cursor: str | None) -> None:
    if cursor is not None:
        response.headers["Link"] = next_link(request.url, cursor)
