"""The posts API (`/posts/...` through the gateway, which supplies the verified caller)."""

import logging
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from redis.exceptions import RedisError

from socialhub.kit.database import SessionDep
from socialhub.kit.identity import CurrentUser
from socialhub.kit.inputs import NONBLANK_TEXT
from socialhub.kit.openapi import errors
from socialhub.kit.pagination import (
    DEFAULT_LIMIT,
    INVALID_CURSOR,
    CursorQuery,
    LimitQuery,
    set_next_link,
)
from socialhub.kit.ratelimit import Limit, RateLimiter
from socialhub.kit.responses import json_model
from socialhub.posts.ai import SuggestionEngine
from socialhub.posts.comments import CommentService
from socialhub.posts.drafts import read_draft
from socialhub.posts.media import ACCEPTED_SUMMARY, MediaPolicy
from socialhub.posts.models import ReactionKind, Visibility
from socialhub.posts.pagination import Position, decode_optional, to_ms
from socialhub.posts.reactions import ReactionService
from socialhub.posts.schemas import (
    POST_MAX_CHARS,
    CommentOut,
    CommentPage,
    CreateCommentRequest,
    PostOut,
    PostPage,
    ReactionOut,
    SuggestRequest,
    SuggestResponse,
    UpdatePostRequest,
)
from socialhub.posts.service import PostService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PostsApi:
    """What the routes use, built once in the app's lifespan."""

    posts: PostService
    comments: CommentService
    reactions: ReactionService
    ai: SuggestionEngine
    media_policy: MediaPolicy
    limiter: RateLimiter
    ai_limit: Limit


async def _api(request: Request) -> PostsApi:
    """async: a plain function dependency would cost a thread-pool hop per request."""
    api: PostsApi = request.app.state.posts
    return api


Api = Annotated[PostsApi, Depends(_api)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="retrying a create with the same key returns the first result",
    ),
]

router = APIRouter(prefix="/posts", tags=["posts"])
NOT_THE_AUTHOR = (403, "the caller is not the author")
NO_POST = (404, "no such post, or not visible to the caller")

_POST_TEXT = {"type": "string", "maxLength": POST_MAX_CHARS, "pattern": NONBLANK_TEXT.pattern}
_VISIBILITY = {"enum": [v.value for v in Visibility]}
_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["content"],
                    "properties": {"content": _POST_TEXT, "visibility": _VISIBILITY},
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "content": _POST_TEXT,
                        "visibility": _VISIBILITY,
                        "files": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 10,
                            "items": {"type": "string", "format": "binary"},
                            "description": ACCEPTED_SUMMARY,
                        },
                    },
                    "additionalProperties": False,
                    "anyOf": [{"required": ["content"]}, {"required": ["files"]}],
                    "description": "content, files, or both",
                }
            },
        },
    }
}


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=PostOut,
    openapi_extra=_CREATE_BODY,
    responses=errors(
        (400, "a malformed form, or a body that did not arrive whole"),
        (409, "the post created with this Idempotency-Key has been deleted"),
        (413, "the body, a file or the files together are too large"),
        (415, "neither JSON nor a form, or a file that is no accepted image or video"),
    ),
)
async def create_post(
    request: Request,
    user: CurrentUser,
    api: Api,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Text (1-5,000 characters), up to 10 images or videos, or both."""
    async with read_draft(request, api.media_policy) as draft:
        created = await api.posts.create(user, draft, idempotency_key)
    answer = json_model(created.post, status_code=status.HTTP_201_CREATED)
    if created.replayed:
        answer.headers["Idempotent-Replayed"] = "true"
    return answer


@router.get("/feed", response_model=PostPage, responses=errors(INVALID_CURSOR))
async def home_feed(
    request: Request,
    user: CurrentUser,
    api: Api,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Response:
    """Your posts and those of the people you follow that you may see, newest first."""
    items = await api.posts.home_feed(user.id, decode_optional(cursor), limit)
    return _post_page(request, items, limit)


@router.get("/user/{user_id}", response_model=PostPage, responses=errors(INVALID_CURSOR))
async def user_timeline(
    user_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    api: Api,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Response:
    """One user's posts that you may see, newest first."""
    items = await api.posts.timeline(session, user.id, user_id, decode_optional(cursor), limit)
    return _post_page(request, items, limit)


@router.post(
    "/ai/suggest",
    response_model=SuggestResponse,
    responses=errors((429, "too many suggestions for the caller (a paid API), or requests")),
)
async def suggest(body: SuggestRequest, user: CurrentUser, api: Api) -> SuggestResponse:
    """Caption and hashtag ideas and a moderation verdict for a draft."""
    try:
        await api.limiter.hit(api.ai_limit, str(user.id))
    except RedisError as exc:  # the limit protects a paid API; without Redis, serve anyway
        log.warning("AI suggestion limit not counted (Redis unavailable): %r", exc)
    return await api.ai.suggest(body.content)


@router.get("/{post_id}", response_model=PostOut, responses=errors(NO_POST))
async def get_post(post_id: uuid.UUID, user: CurrentUser, session: SessionDep, api: Api) -> PostOut:
    return await api.posts.get(session, user.id, post_id)


@router.patch("/{post_id}", response_model=PostOut, responses=errors(NOT_THE_AUTHOR, NO_POST))
async def update_post(
    post_id: uuid.UUID, body: UpdatePostRequest, user: CurrentUser, session: SessionDep, api: Api
) -> PostOut:
    """The author only: content and/or visibility."""
    return await api.posts.update(session, user, post_id, body)


@router.delete(
    "/{post_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(NOT_THE_AUTHOR, NO_POST)
)
async def delete_post(
    post_id: uuid.UUID, user: CurrentUser, session: SessionDep, api: Api
) -> Response:
    """The author only; the post's comments and reactions go with it."""
    await api.posts.delete(session, user, post_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{post_id}/like", response_model=ReactionOut, responses=errors(NO_POST))
async def like(post_id: uuid.UUID, user: CurrentUser, api: Api) -> Response:
    """Toggle: like, or take the like back; replaces a dislike."""
    return json_model(await api.reactions.toggle(user, post_id, ReactionKind.LIKE))


@router.post("/{post_id}/dislike", response_model=ReactionOut, responses=errors(NO_POST))
async def dislike(post_id: uuid.UUID, user: CurrentUser, api: Api) -> Response:
    """Toggle: dislike, or take the dislike back; replaces a like."""
    return json_model(await api.reactions.toggle(user, post_id, ReactionKind.DISLIKE))


@router.get(
    "/{post_id}/comments",
    response_model=CommentPage,
    responses=errors(
        INVALID_CURSOR, (404, "no such post or parent comment, or not visible to the caller")
    ),
)
async def list_comments(
    post_id: uuid.UUID,
    request: Request,
    response: Response,
    user: CurrentUser,
    session: SessionDep,
    api: Api,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    parent_id: Annotated[
        uuid.UUID | None, Query(alias="parentId", description="page this comment's replies instead")
    ] = None,
) -> CommentPage:
    """Top-level comments oldest first, each with its first replies as a tree."""
    items = await api.comments.page(
        session, user.id, post_id, parent_id, decode_optional(cursor), limit
    )
    next_cursor = _next_cursor(items, limit)
    set_next_link(request, response, next_cursor)
    return CommentPage(items=items[:limit], next_cursor=next_cursor)


@router.post(
    "/{post_id}/comments",
    status_code=status.HTTP_201_CREATED,
    response_model=CommentOut,
    responses=errors((404, "no such post or parent comment, or not visible to the caller")),
)
async def add_comment(
    post_id: uuid.UUID, body: CreateCommentRequest, user: CurrentUser, session: SessionDep, api: Api
) -> CommentOut:
    return await api.comments.add(session, user, post_id, body)


@router.delete(
    "/{post_id}/comments/{comment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(
        (403, "the caller wrote neither the comment nor the post"),
        (404, "no such post or comment, or not visible to the caller"),
    ),
)
async def delete_comment(
    post_id: uuid.UUID, comment_id: uuid.UUID, user: CurrentUser, session: SessionDep, api: Api
) -> Response:
    """The comment's author or the post's author; replies go with it."""
    await api.comments.delete(session, user, post_id, comment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _next_cursor(items: list[PostOut] | list[CommentOut], limit: int) -> str | None:
    if len(items) <= limit:
        return None
    last = items[limit - 1]
    return Position(to_ms(last.created_at), last.id).encode()


def _post_page(request: Request, items: list[PostOut], limit: int) -> Response:
    next_cursor = _next_cursor(items, limit)
    answer = json_model(PostPage(items=items[:limit], next_cursor=next_cursor))
    set_next_link(request, answer, next_cursor)
    return answer
