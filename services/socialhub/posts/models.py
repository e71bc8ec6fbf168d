"""The posts database: posts, comments, reactions, and this service's replica of the follow graph.

Times are stored to the millisecond: a post's `created_at` is exactly the `timestamp` of its
`post.created` event and the score of its entry in the Redis feeds, so cursors mean the same
thing whichever store answers.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Visibility(StrEnum):
    PUBLIC = "public"
    FOLLOWERS = "followers"
    PRIVATE = "private"


class ReactionKind(StrEnum):
    LIKE = "like"
    DISLIKE = "dislike"


LIVE = text("deleted_at IS NULL")
MEDIA_TO_PURGE = text("deleted_at IS NOT NULL AND media <> '[]'::jsonb")


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (
        CheckConstraint(
            "visibility IN ('public', 'followers', 'private')", name="ck_posts_visibility"
        ),
        # The design document's indexes, partial on live posts.
        Index(
            "idx_posts_user_created",
            "author_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=LIVE,
        ),
        Index("idx_posts_visibility", "visibility", text("created_at DESC"), postgresql_where=LIVE),
        # A retried create (same user, same Idempotency-Key) finds the first post.
        Index(
            "uq_posts_idempotency_key",
            "author_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        # Deleted posts whose files are still in the media storage (socialhub.posts.purge).
        Index("idx_posts_media_to_purge", "deleted_at", postgresql_where=MEDIA_TO_PURGE),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    author_id: Mapped[uuid.UUID]
    author_username: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(16))
    # [{"url", "type", "mimeType", "size", "key"}]: what the media storage returned
    media: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    like_count: Mapped[int] = mapped_column(Integer, server_default="0")
    dislike_count: Mapped[int] = mapped_column(Integer, server_default="0")
    comment_count: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # sha256 of the request that used the key: the same key with another request is refused
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = (
        # a page of a post's top-level comments, oldest first
        Index(
            "idx_comments_post_top",
            "post_id",
            "created_at",
            "id",
            postgresql_where=text("parent_id IS NULL AND deleted_at IS NULL"),
        ),
        # a page of one comment's replies; the subtree of a deleted comment
        Index("idx_comments_parent", "parent_id", "created_at", "id", postgresql_where=LIVE),
        # every reply under a page of top-level comments, in one query
        Index("idx_comments_root", "root_id", "created_at", "id", postgresql_where=LIVE),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    post_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("posts.id"))
    author_id: Mapped[uuid.UUID]
    author_username: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("comments.id"))
    root_id: Mapped[uuid.UUID]  # the top-level comment of the thread (itself when top-level)
    depth: Mapped[int] = mapped_column(SmallInteger)  # 1 for top-level comments
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Reaction(Base):
    """One reaction per user per post: the primary key is what makes toggles race-free."""

    __tablename__ = "reactions"
    __table_args__ = (CheckConstraint("kind IN ('like', 'dislike')", name="ck_reactions_kind"),)

    post_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("posts.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class Follow(Base):
    """Replica of the users service's follows, from USER_TOPIC events.

    A row keeps the state of the latest event applied (by event time), so replays, duplicates
    and reordered events all converge on the same state.
    """

    __tablename__ = "follows"
    __table_args__ = (
        Index(
            "idx_follows_following", "following_id", "follower_id", postgresql_where=text("active")
        ),
    )

    follower_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    following_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)
    event_ms: Mapped[int] = mapped_column(BigInteger)  # the event's `timestamp`
    event_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # tie-break: occurredAt


class Block(Base):
    """Replica of the users service's blocks; a block hides each user from the other."""

    __tablename__ = "blocks"
    __table_args__ = (
        Index("idx_blocks_blocked", "blocked_id", "blocker_id", postgresql_where=text("active")),
    )

    blocker_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    blocked_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)
    event_ms: Mapped[int] = mapped_column(BigInteger)
    event_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FollowerCount(Base):
    """Active followers per author: decides fan-out on write or on read for that author."""

    __tablename__ = "follower_counts"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    followers: Mapped[int] = mapped_column(Integer)


# The tables, for Core statements (the hot paths skip ORM object loading).
posts = cast(Table, Post.__table__)
comments = cast(Table, Comment.__table__)
reactions = cast(Table, Reaction.__table__)
follows = cast(Table, Follow.__table__)
blocks = cast(Table, Block.__table__)
follower_counts = cast(Table, FollowerCount.__table__)
