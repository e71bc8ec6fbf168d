"""Which event notifies whom: pure mapping rules, no servers."""

from datetime import UTC, datetime

import pytest

from socialhub.kit.events.envelope import Event
from socialhub.notifications.models import Notification, NotificationType
from socialhub.notifications.rules import (
    IGNORED_EVENT_TYPES,
    UnprocessableEventError,
    notification_for,
)
from tests.notifications.helpers import (
    commented,
    followed,
    liked,
    post_created,
    replied,
    simple,
    uid,
)


def _notification(event: Event) -> Notification:
    notification = notification_for(event)
    assert notification is not None
    return notification


def test_follow_notifies_the_followed_user() -> None:
    follower, following = uid(), uid()
    event = followed(follower, following, username="alice")
    n = _notification(event)
    assert (n.user_id, n.type, n.actor.id, n.actor.username) == (
        following,
        NotificationType.FOLLOW,
        follower,
        "alice",
    )
    assert n.message == "alice started following you"
    assert n.event_id == event.event_id
    assert not n.read
    assert n.target.post_id is None


def test_like_comment_and_reply_notify_the_author_with_the_target() -> None:
    actor, author = uid(), uid()
    like = liked(actor, author, username="carol")
    n = _notification(like)
    assert (n.user_id, n.type, n.target.post_id) == (
        author,
        NotificationType.LIKE,
        like.data["postId"],
    )
    assert n.message == "carol liked your post"

    comment = commented(actor, author)
    n = _notification(comment)
    assert (n.type, n.target.post_id, n.target.comment_id) == (
        NotificationType.COMMENT,
        comment.data["postId"],
        comment.data["commentId"],
    )

    reply = replied(actor, author)
    n = _notification(reply)
    assert (n.user_id, n.type) == (author, NotificationType.REPLY)
    assert n.target.comment_id == reply.data["commentId"]
    assert n.target.parent_comment_id == reply.data["parentCommentId"]


def test_post_created_confirms_to_the_author_as_the_design_document_does() -> None:
    author = uid()
    event = post_created(author)
    n = _notification(event)
    assert (n.user_id, n.type, n.actor.id) == (author, NotificationType.POST, author)
    assert n.message == "You created a new post!"
    assert n.target.post_id == event.data["postId"]


def test_nobody_is_notified_of_their_own_action() -> None:
    me = uid()
    assert notification_for(followed(me, me)) is None
    assert notification_for(liked(me, me)) is None
    assert notification_for(commented(me, me)) is None
    assert notification_for(replied(me, me)) is None


@pytest.mark.parametrize("event_type", sorted(IGNORED_EVENT_TYPES))
def test_known_events_that_notify_nobody_are_skipped(event_type: str) -> None:
    assert notification_for(simple(event_type, userId=uid())) is None


def test_unknown_types_and_broken_data_are_unprocessable() -> None:
    with pytest.raises(UnprocessableEventError, match="unknown event type"):
        notification_for(simple("post.exploded", postId=uid()))
    with pytest.raises(UnprocessableEventError, match="postAuthorId"):
        notification_for(simple("post.liked", postId=uid(), userId=uid(), username="x"))
    with pytest.raises(UnprocessableEventError, match="followingId"):
        notification_for(
            simple(
                "user.followed", followerId=uid(), followerUsername="x", followingId="not-a-uuid"
            )
        )


def test_the_id_is_the_same_for_a_redelivered_event_and_times_are_bson_precise() -> None:
    event = followed(uid(), uid(), occurred_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
    again = Event.from_bytes(event.to_bytes())
    first, second = _notification(event), _notification(again)
    assert first.id == second.id
    assert first.created_at == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
