"""Every Kafka event's `data`, as one typed model per event type (docs/events.md).

Producers emit these models through the outbox (`Outbox.emit(session, PostLiked(...))`), which
takes the event type, topic and message key from the model; consumers parse with the same model
(`PostLiked.of(event.data)`), adding their own domain limits on top when they need them.
`tests/contracts` checks docs/events.md against these models, so the two cannot drift.

Field names are snake_case here and camelCase on the wire. Consumers ignore fields they do not
know, so adding an optional field is backwards compatible; renaming or removing one is not.
"""

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# The design document's topic names (a deployment prefixes them: `KafkaSettings.topic`).
POST_TOPIC = "POST_TOPIC"
USER_TOPIC = "USER_TOPIC"
DEAD_LETTER_TOPIC = "DEAD_LETTER_TOPIC"
ALL_TOPICS = (POST_TOPIC, USER_TOPIC, DEAD_LETTER_TOPIC)

# At most 2**53: exact as a double (JavaScript, Lua in Redis).
EpochMs = Annotated[int, Field(ge=0, le=2**53, description="milliseconds since the epoch")]
Text = Annotated[str, Field(min_length=1)]
Visibility = Literal["public", "followers", "private"]


class EventData(BaseModel):
    """The `data` of one event type, with where it travels."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )

    event_type: ClassVar[str]
    topic: ClassVar[str]
    producer: ClassVar[str]
    # The field whose value is the Kafka message key: events with one key stay in order.
    key_field: ClassVar[str]

    @property
    def key(self) -> str:
        return str(getattr(self, self.key_field))

    def to_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def of(cls, data: dict[str, Any]) -> Self:
        """Parse an envelope's `data`; raises pydantic's ValidationError if it breaks the
        contract."""
        return cls.model_validate(data)


# -- USER_TOPIC ----------------------------------------------------------------------------


class _UsersEvent(EventData):
    """Published by the users service (follows, blocks, profiles)."""

    topic = USER_TOPIC
    producer = "users"


class UserCreated(EventData):
    event_type = "user.created"
    topic = USER_TOPIC
    producer = "auth"
    key_field = "user_id"

    user_id: uuid.UUID
    username: Text
    name: Text
    created_at: datetime


class _FollowChange(_UsersEvent):
    key_field = "follower_id"

    follower_id: uuid.UUID
    following_id: uuid.UUID
    timestamp: EpochMs


class UserFollowed(_FollowChange):
    event_type = "user.followed"

    follower_username: Text
    following_username: Text


class UserUnfollowed(_FollowChange):
    event_type = "user.unfollowed"


class _BlockChange(_UsersEvent):
    key_field = "blocker_id"

    blocker_id: uuid.UUID
    blocked_id: uuid.UUID
    timestamp: EpochMs


class UserBlocked(_BlockChange):
    event_type = "user.blocked"


class UserUnblocked(_BlockChange):
    event_type = "user.unblocked"


class UserUpdated(_UsersEvent):
    event_type = "user.updated"
    key_field = "user_id"

    user_id: uuid.UUID
    username: Text
    name: Text
    bio: str | None
    avatar_url: str | None


# -- POST_TOPIC ----------------------------------------------------------------------------


class _PostEvent(EventData):
    """Published by the posts service, keyed by the post: one post's events stay in order."""

    topic = POST_TOPIC
    producer = "posts"
    key_field = "post_id"


class PostCreated(_PostEvent):
    event_type = "post.created"

    post_id: uuid.UUID
    user_id: uuid.UUID
    username: Text
    content: str  # empty for a post of media only
    timestamp: EpochMs
    visibility: Visibility
    media_count: int = Field(ge=0)


class PostUpdated(_PostEvent):
    event_type = "post.updated"

    post_id: uuid.UUID
    user_id: uuid.UUID
    visibility: Visibility


class PostDeleted(_PostEvent):
    event_type = "post.deleted"

    post_id: uuid.UUID
    user_id: uuid.UUID


class PostLiked(_PostEvent):
    """A new like (not sent when a like is taken back); `user_id` is who liked."""

    event_type = "post.liked"

    post_id: uuid.UUID
    post_author_id: uuid.UUID
    user_id: uuid.UUID
    username: Text
    timestamp: EpochMs


class _NewComment(_PostEvent):
    post_id: uuid.UUID
    post_author_id: uuid.UUID
    comment_id: uuid.UUID
    user_id: uuid.UUID
    username: Text
    content: Text
    timestamp: EpochMs


class PostCommented(_NewComment):
    """A top-level comment; `user_id` is who commented."""

    event_type = "post.commented"


class CommentReplied(_NewComment):
    """A reply to a comment: the parent comment's author is notified, once."""

    event_type = "comment.replied"

    parent_comment_id: uuid.UUID
    parent_author_id: uuid.UUID


EVENTS: tuple[type[EventData], ...] = (
    UserCreated,
    UserFollowed,
    UserUnfollowed,
    UserBlocked,
    UserUnblocked,
    UserUpdated,
    PostCreated,
    PostUpdated,
    PostDeleted,
    PostLiked,
    PostCommented,
    CommentReplied,
)
BY_TYPE: dict[str, type[EventData]] = {model.event_type: model for model in EVENTS}
