"""Reading `POST /posts/`: JSON for text-only posts, or a form with up to N `files`.

    curl -X POST http://localhost/posts/ -H "Authorization: Bearer $TOKEN" \\
      -F "content=My first post on SocialHub!" -F "visibility=public"

The body is parsed here rather than by FastAPI's form parameters so that every way a body can
be wrong gets its own clear 4xx: 413 (too large; a JSON body over the kit's cap never gets
here), 415 (not JSON or a form; a file that is no image or video), 422 (invalid fields, too many
files, nothing to post).
"""

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from socialhub.kit.errors import ApiError, bad_request, invalid_input
from socialhub.posts.media import MediaFile, MediaPolicy, Upload
from socialhub.posts.models import Visibility
from socialhub.posts.schemas import CreatePostRequest

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
TEXT_FIELDS = ("content", "visibility")
FILES_FIELD = "files"
# Room for the text fields and multipart framing on top of the media limit.
BODY_OVERHEAD_BYTES = 1024 * 1024


@dataclass(frozen=True)
class PostDraft:
    content: str
    visibility: Visibility
    media: list[MediaFile]

    def fingerprint(self) -> str:
        """What makes two create requests "the same" for Idempotency-Key."""
        digest = hashlib.sha256()
        digest.update(json.dumps([self.content, self.visibility.value]).encode())
        for media in self.media:
            digest.update(hashlib.sha256(media.read()).digest())
        return digest.hexdigest()


@asynccontextmanager
async def read_draft(request: Request, policy: MediaPolicy) -> AsyncIterator[PostDraft]:
    """The validated draft; uploaded files stay readable until the context exits."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = request.headers.get("content-length")
    if (
        length is not None
        and length.isdigit()
        and int(length) > policy.max_total_bytes + BODY_OVERHEAD_BYTES
    ):
        raise ApiError(
            413,
            "payload_too_large",
            f"request body too large ({int(length)} bytes); a post's files may total "
            f"at most {policy.max_total_bytes} bytes",
        )
    if content_type == "application/json":
        yield _draft(_validated(await _json_body(request)), [], policy)
    elif content_type in FORM_TYPES:
        async with _form(request, policy) as form:
            fields, uploads = _split_form(form)
            yield _draft(_validated(fields), uploads, policy)
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the post as application/json (text only) or multipart/form-data "
            "(fields content, visibility and files)",
        )


@asynccontextmanager
async def _form(request: Request, policy: MediaPolicy) -> AsyncIterator[FormData]:
    # One file over the limit is parsed so the answer can say how many were sent; more than
    # that is refused by the parser before it spools them.
    try:
        form = await request.form(max_files=policy.max_files + 1, max_fields=20)
    except ClientDisconnect:
        raise _incomplete() from None
    except StarletteHTTPException as exc:
        if "Too many files" in str(exc.detail):
            raise policy.too_many_files(f"more than {policy.max_files + 1}") from None
        raise bad_request(f"malformed form body: {exc.detail}") from None
    try:
        yield form
    finally:
        await form.close()


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ClientDisconnect:
        raise _incomplete() from None
    except (ValueError, RecursionError):
        # ValueError: malformed, not UTF-8, or an integer past Python's 4,300-digit limit;
        # RecursionError: nested deeper than the decoder goes
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from None


def _incomplete() -> ApiError:
    """The client went away mid-body: nobody reads this answer, but it is no server error."""
    return bad_request("the request body did not arrive completely")


def _split_form(form: FormData) -> tuple[dict[str, Any], list[Upload]]:
    fields: dict[str, Any] = {}
    uploads: list[Upload] = []
    for name, value in form.multi_items():
        if name == FILES_FIELD:
            if not isinstance(value, UploadFile):
                raise invalid_input(files="must be file uploads")
            uploads.append(
                Upload(filename=value.filename or "", size=value.size or 0, file=value.file)
            )
        elif name in fields:
            raise invalid_input(**{name: "given twice"})
        elif isinstance(value, UploadFile):
            raise invalid_input(**{name: "must be text, not a file"})
        else:
            fields[name] = value
    return fields, uploads


def _validated(body: Any) -> CreatePostRequest:
    try:
        return CreatePostRequest.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None


def _draft(fields: CreatePostRequest, uploads: list[Upload], policy: MediaPolicy) -> PostDraft:
    media = policy.inspect(uploads)
    if not fields.content and not media:
        raise invalid_input(content="a post needs 1-5000 characters of text, media files, or both")
    return PostDraft(fields.content, fields.visibility, media)
