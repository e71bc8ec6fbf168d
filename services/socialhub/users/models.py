"""Profiles, the follow graph and blocks as stored in the users database."""

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

USERNAME_MAX = 30
NAME_MAX = 100
BIO_MAX = 500
AVATAR_URL_MAX = 2048


class Base(DeclarativeBase):
    pass


class Profile(Base):
    """One row per account (same id as in auth), with denormalised counters."""

    __tablename__ = "profiles"
    __table_args__ = (
        # text_pattern_ops: equality for uniqueness and lookups, and `LIKE 'prefix%'` for search
        # (the cluster's C.UTF-8 collation is not "C" to the planner).
        Index(
            "idx_profiles_username",
            "username",
            unique=True,
            postgresql_ops={"username": "text_pattern_ops"},
        ),
        CheckConstraint(
            "followers_count >= 0 AND following_count >= 0 AND posts_count >= 0",
            name="ck_profiles_counts_not_negative",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX))
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    bio: Mapped[str] = mapped_column(String(BIO_MAX), server_default="")
    avatar_url: Mapped[str | None] = mapped_column(String(AVATAR_URL_MAX))
    # Created just in time (from the gateway's payload or a post event) before auth's
    # `user.created` arrived: the event then fills in the real name.
    provisional: Mapped[bool] = mapped_column(Boolean, server_default="false")
    followers_count: Mapped[int] = mapped_column(Integer, server_default="0")
    following_count: Mapped[int] = mapped_column(Integer, server_default="0")
    posts_count: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


Index(
    "idx_profiles_name_prefix",
    func.lower(Profile.name).label("name_lower"),
    postgresql_ops={"name_lower": "text_pattern_ops"},
)


class Follow(Base):
    """A follow edge; unfollowing clears `is_active` (soft delete), following again sets it."""

    __tablename__ = "follows"
    __table_args__ = (
        UniqueConstraint("follower_id", "following_id", name="uq_follows_pair"),
        CheckConstraint("follower_id <> following_id", name="ck_follows_not_self"),
        # The design document's two indexes, extended with the keyset (followed_at, id) and the
        # listed user's id, so a page of a list is one index-only range scan.
        Index(
            "idx_follows_follower",
            "follower_id",
            "is_active",
            "followed_at",
            "id",
            postgresql_include=["following_id"],
        ),
        Index(
            "idx_follows_following",
            "following_id",
            "is_active",
            "followed_at",
            "id",
            postgresql_include=["follower_id"],
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    follower_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id"))
    following_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id"))
    is_active: Mapped[bool] = mapped_column(Boolean)
    # When the follow (last) became active: lists are ordered by it, newest first.
    followed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Block(Base):
    __tablename__ = "blocks"
    __table_args__ = (
        CheckConstraint("blocker_id <> blocked_id", name="ck_blocks_not_self"),
        # "is anyone blocking anyone between A and B" probes both directions
        Index("idx_blocks_blocked", "blocked_id", "blocker_id"),
    )

    blocker_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id"), primary_key=True)
    blocked_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProcessedEvent(Base):
    """Ids of consumed events: Kafka delivers at least once, counters must move exactly once."""

    __tablename__ = "processed_events"
    __table_args__ = (Index("idx_processed_events_at", "processed_at"),)

    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
