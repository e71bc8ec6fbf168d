"""Request and response bodies of the users API, with the input rules."""

import uuid
from datetime import datetime
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    HttpUrl,
    StringConstraints,
    UrlConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

from socialhub.kit.inputs import MULTILINE, NONBLANK_LINE
from socialhub.kit.openapi import something_to_change
from socialhub.kit.pagination import Page
from socialhub.users.models import AVATAR_URL_MAX, BIO_MAX, NAME_MAX, USERNAME_MAX

USERNAME_PATTERN = r"^[A-Za-z0-9_]{1,30}$"
SEARCH_MAX = 50


def _fits_the_column(url: HttpUrl) -> HttpUrl:
    """The stored form is percent-encoded, so it can be longer than what was sent."""
    if len(str(url)) > AVATAR_URL_MAX:
        raise ValueError(f"must be at most {AVATAR_URL_MAX} characters once percent-encoded")
    return url


Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX), NONBLANK_LINE
]
Bio = Annotated[str, StringConstraints(strip_whitespace=True, max_length=BIO_MAX), MULTILINE]
AvatarUrl = Annotated[
    HttpUrl,
    UrlConstraints(max_length=AVATAR_URL_MAX, allowed_schemes=["http", "https"]),
    AfterValidator(_fits_the_column),
]
SearchQuery = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=SEARCH_MAX),
    NONBLANK_LINE,
]
Username = Annotated[
    str, StringConstraints(to_lower=True, max_length=USERNAME_MAX, pattern=USERNAME_PATTERN)
]


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ProfileUpdate(ApiModel):
    """PATCH /users/me: only the fields sent change; `null` clears bio or avatar."""

    model_config = ConfigDict(json_schema_extra=something_to_change("name"))

    name: Name | None = None
    bio: Bio | None = None
    avatar_url: AvatarUrl | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("nothing to update: send name, bio or avatarUrl")
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        return self


class ProfileOut(ApiModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    name: str
    bio: str
    avatar_url: str | None
    followers_count: int
    following_count: int
    posts_count: int
    created_at: datetime


class UserSummary(ApiModel):
    id: uuid.UUID
    username: str
    name: str
    avatar_url: str | None


class FollowListItem(UserSummary):
    followed_at: datetime


FollowPage = Page[FollowListItem]
SearchPage = Page[UserSummary]


class FollowState(ApiModel):
    follower_id: uuid.UUID
    following_id: uuid.UUID
    is_following: bool


class BlockState(ApiModel):
    blocker_id: uuid.UUID
    blocked_id: uuid.UUID
    is_blocking: bool
