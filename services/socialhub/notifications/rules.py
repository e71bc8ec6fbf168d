"""Which event notifies whom (docs/events.md is the contract).

Recipients are the ids the events name (`followingId`, `postAuthorId`, `parentAuthorId`); nobody
is notified of their own action, except the design document's "You created a new post!"
confirmation to a post's author. Events that notify nobody (`user.created`, `post.deleted`, ...)
are known and skipped; an unknown event type or invalid data raises `UnprocessableEventError`
(the consumer dead-letters it).
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from socialhub.contracts.events import (
    BY_TYPE,
    CommentReplied,
    EventData,
    PostCommented,
    PostCreated,
    PostLiked,
    UserFollowed,
)
from socialhub.kit.events.envelope import Event
from socialhub.notifications.models import (
    Actor,
    Notification,
    NotificationType,
    Target,
    bson_datetime,
)


class UnprocessableEventError(Exception):
    """An event this service can never process: unknown type or data that breaks the contract."""


@dataclass(frozen=True)
class Draft:
    """A notification before it has its id and time, which come from the envelope."""

    recipient: uuid.UUID
    type: NotificationType
    actor_id: uuid.UUID
    actor_username: str
    message: str
    target: Target


D = TypeVar("D", bound=EventData)


def _follow(data: UserFollowed) -> Draft:
    return Draft(
        data.following_id,
        NotificationType.FOLLOW,
        data.follower_id,
        data.follower_username,
        f"{data.follower_username} started following you",
        Target(),
    )


def _post(data: PostCreated) -> Draft:
    return Draft(
        data.user_id,
        NotificationType.POST,
        data.user_id,
        data.username,
        "You created a new post!",
        Target(post_id=str(data.post_id)),
    )


def _like(data: PostLiked) -> Draft:
    return Draft(
        data.post_author_id,
        NotificationType.LIKE,
        data.user_id,
        data.username,
        f"{data.username} liked your post",
        Target(post_id=str(data.post_id)),
    )


def _comment(data: PostCommented) -> Draft:
    return Draft(
        data.post_author_id,
        NotificationType.COMMENT,
        data.user_id,
        data.username,
        f"{data.username} commented on your post",
        Target(post_id=str(data.post_id), comment_id=str(data.comment_id)),
    )


def _reply(data: CommentReplied) -> Draft:
    return Draft(
        data.parent_author_id,
        NotificationType.REPLY,
        data.user_id,
        data.username,
        f"{data.username} replied to your comment",
        Target(
            post_id=str(data.post_id),
            comment_id=str(data.comment_id),
            parent_comment_id=str(data.parent_comment_id),
        ),
    )


@dataclass(frozen=True)
class _Rule(Generic[D]):
    data: type[D]
    draft: Callable[[D], Draft]

    def apply(self, payload: dict[str, Any]) -> Draft:
        return self.draft(self.data.of(payload))


RULES: dict[str, _Rule[Any]] = {
    rule.data.event_type: rule
    for rule in (
        _Rule(UserFollowed, _follow),
        _Rule(PostCreated, _post),
        _Rule(PostLiked, _like),
        _Rule(PostCommented, _comment),
        _Rule(CommentReplied, _reply),
    )
}
# Every other event of the contract notifies nobody.
IGNORED_EVENT_TYPES = frozenset(BY_TYPE) - frozenset(RULES)


def notification_for(event: Event) -> Notification | None:
    """The notification `event` gives, or None if it notifies nobody (see the module doc)."""
    if event.event_type in IGNORED_EVENT_TYPES:
        return None
    rule = RULES.get(event.event_type)
    if rule is None:
        raise UnprocessableEventError(f"unknown event type {event.event_type!r}")
    try:
        draft = rule.apply(event.data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UnprocessableEventError(f"invalid {event.event_type} data: {problems}") from exc
    if draft.type is not NotificationType.POST and draft.actor_id == draft.recipient:
        return None
    recipient = str(draft.recipient)
    return Notification(
        id=Notification.id_for(event.event_id, recipient),
        user_id=recipient,
        type=draft.type,
        actor=Actor(id=str(draft.actor_id), username=draft.actor_username),
        target=draft.target,
        message=draft.message,
        created_at=bson_datetime(event.occurred_at),
        event_id=event.event_id,
    )
