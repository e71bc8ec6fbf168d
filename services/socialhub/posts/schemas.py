"""Request and response bodies of the posts API, with the input rules."""

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel
from sqlalchemy import Row

from socialhub.kit.inputs import MULTILINE, NONBLANK_TEXT
from socialhub.kit.openapi import something_to_change
from socialhub.kit.pagination import Page
from socialhub.posts.models import ReactionKind, Visibility

POST_MAX_CHARS = 5000
COMMENT_MAX_CHARS = 2000

PostText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=POST_MAX_CHARS), MULTILINE
]
CommentText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=COMMENT_MAX_CHARS),
    NONBLANK_TEXT,
]
SuggestText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=POST_MAX_CHARS),
    NONBLANK_TEXT,
]


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class OutModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class CreatePostRequest(ApiModel):
    """The text fields of a new post, as JSON or as multipart form fields next to `files`.

    Empty content is allowed here; the post as a whole needs text or at least one file.
    """

    content: PostText = ""
    visibility: Visibility = Visibility.PUBLIC


class UpdatePostRequest(ApiModel):
    model_config = ConfigDict(json_schema_extra=something_to_change("content", "visibility"))

    content: PostText | None = None
    visibility: Visibility | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if self.content is None and self.visibility is None:
            raise ValueError("give content and/or visibility to change")
        return self


class MediaOut(OutModel):
    url: str
    type: Literal["image", "video"]
    mime_type: str
    size: int


class PostOut(OutModel):
    id: uuid.UUID
    user_id: uuid.UUID
    username: str
    content: str
    visibility: Visibility
    media: list[MediaOut]
    like_count: int
    dislike_count: int
    comment_count: int
    # the caller's own reaction to this post
    my_reaction: ReactionKind | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> "PostOut":
        """From a row of `queries.post_columns` (a post plus the caller's reaction)."""
        return cls.from_values(row._mapping)

    @classmethod
    def from_values(cls, row: Mapping[Any, Any]) -> "PostOut":
        return cls(
            id=row["id"],
            user_id=row["author_id"],
            username=row["author_username"],
            content=row["content"],
            visibility=row["visibility"],
            media=[MediaOut.model_validate(m) for m in row["media"]],
            like_count=row["like_count"],
            dislike_count=row["dislike_count"],
            comment_count=row["comment_count"],
            my_reaction=row["my_reaction"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


PostPage = Page[PostOut]


class CreateCommentRequest(ApiModel):
    content: CommentText
    parent_id: uuid.UUID | None = None


class CommentOut(OutModel):
    id: uuid.UUID
    post_id: uuid.UUID
    parent_id: uuid.UUID | None
    user_id: uuid.UUID
    username: str
    content: str
    depth: int
    created_at: datetime
    # visible replies in all; `replies` holds the first ones (page the rest with ?parentId=)
    reply_count: int = 0
    replies: list["CommentOut"] = Field(default_factory=list)


CommentPage = Page[CommentOut]


class ReactionOut(OutModel):
    post_id: uuid.UUID
    # the caller's reaction after the toggle (null: none)
    reaction: ReactionKind | None
    like_count: int
    dislike_count: int


class SuggestRequest(ApiModel):
    content: SuggestText


class Moderation(OutModel):
    verdict: Literal["allow", "flag"]
    categories: list[str]


class SuggestResponse(OutModel):
    engine: Literal["gemini", "offline"]
    caption: str
    hashtags: list[str]
    moderation: Moderation
    # why the offline engine answered although Gemini is configured
    fallback_reason: str | None = None
