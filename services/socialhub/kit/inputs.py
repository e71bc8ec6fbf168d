"""What every service accepts from clients: the text rule and the request body cap.

Text: PostgreSQL refuses NUL, and other control characters or lone surrogates (valid in JSON
escapes, unencodable in UTF-8) break storage, logs or other clients. Every text field of every
request carries one of the two rules, after its length constraints:

    Name = Annotated[str, StringConstraints(max_length=100), SINGLE_LINE]
    Bio = Annotated[str, StringConstraints(max_length=500), MULTILINE]

Bodies: every body but a multipart upload is at most MAX_BODY_BYTES, refused with 413 before it
is read (a JSON decoder's work grows with what it is given; a 20 MB body is no request of ours).
"""

import re
from dataclasses import dataclass
from typing import Any

from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from socialhub.kit.errors import error_response

# C0 and C1 controls and DEL, and the surrogate range (only ever alone in a Python str)
_NOT_IN_A_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

MAX_BODY_BYTES = 64 * 1024
UNCAPPED_CONTENT_TYPES = frozenset({"multipart/form-data"})  # uploads: their service caps them


def check_text(value: str) -> str:
    """Text that may span lines: tabs and line breaks are its only control characters."""
    if _NOT_IN_TEXT.search(value):
        raise ValueError(
            "must not contain control characters (other than tabs and line "
            "breaks) or unpaired surrogates"
        )
    return value


def check_line(value: str) -> str:
    """One line of text (a name, an identifier): no control character at all."""
    if _NOT_IN_A_LINE.search(value):
        raise ValueError("must not contain control characters or unpaired surrogates")
    return value


@dataclass(frozen=True)
class TextRule(AfterValidator):
    """The check, and its `pattern` in the OpenAPI documents, so clients and fuzzers know it."""

    pattern: str = ""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        documented: dict[str, Any] = handler(schema)
        documented.setdefault("pattern", self.pattern)
        return documented


_TEXT = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
_LINE = r"[^\x00-\x1f\x7f-\x9f]"
_VISIBLE = r"[^\s\x00-\x1f\x7f-\x9f]"
MULTILINE = TextRule(check_text, pattern=rf"^{_TEXT}*$")
SINGLE_LINE = TextRule(check_line, pattern=rf"^{_LINE}*$")
# For stripped text that must not end up empty (`strip_whitespace=True, min_length=1`)
NONBLANK_TEXT = TextRule(check_text, pattern=rf"^{_TEXT}*{_VISIBLE}{_TEXT}*$")
NONBLANK_LINE = TextRule(check_line, pattern=rf"^{_LINE}*{_VISIBLE}{_LINE}*$")


class BodyLimitMiddleware:
    """Refuses a body over MAX_BODY_BYTES with 413: at once when Content-Length says so,
    otherwise (chunked) as soon as that much has arrived; smaller chunked bodies are passed on
    whole. The server drops the unread rest and keeps the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _content_type(scope) in UNCAPPED_CONTENT_TYPES:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            # the server makes the body match it (and refuses a malformed one)
            if length.isdigit() and int(length) > MAX_BODY_BYTES:
                await _too_large(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                await _too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)


def _content_type(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value).decode("latin-1").split(";")[0].strip().lower()
    return ""


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(
        413,
        "payload_too_large",
        f"request body too large; at most {MAX_BODY_BYTES} bytes "
        "(file uploads: multipart/form-data)",
    )
    await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read ahead, as one message; then whatever the server says next."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
