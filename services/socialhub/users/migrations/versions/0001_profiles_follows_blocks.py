"""Profiles, follows, blocks, processed events and the event outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

from socialhub.kit.events.outbox import create_outbox_table, drop_outbox_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamp(name: str) -> "sa.Column[datetime]":
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("username", sa.String(30), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("bio", sa.String(500), server_default="", nullable=False),
        sa.Column("avatar_url", sa.String(2048), nullable=True),
        sa.Column("provisional", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("followers_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("following_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("posts_count", sa.Integer(), server_default="0", nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "followers_count >= 0 AND following_count >= 0 AND posts_count >= 0",
            name="ck_profiles_counts_not_negative",
        ),
    )
    op.create_index(
        "idx_profiles_username",
        "profiles",
        ["username"],
        unique=True,
        postgresql_ops={"username": "text_pattern_ops"},
    )
    op.execute("CREATE INDEX idx_profiles_name_prefix ON profiles (lower(name) text_pattern_ops)")

    op.create_table(
        "follows",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("follower_id", sa.Uuid(), sa.ForeignKey("profiles.id"), nullable=False),
        sa.Column("following_id", sa.Uuid(), sa.ForeignKey("profiles.id"), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        _timestamp("followed_at"),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.UniqueConstraint("follower_id", "following_id", name="uq_follows_pair"),
        sa.CheckConstraint("follower_id <> following_id", name="ck_follows_not_self"),
    )
    op.create_index(
        "idx_follows_follower",
        "follows",
        ["follower_id", "is_active", "followed_at", "id"],
        postgresql_include=["following_id"],
    )
    op.create_index(
        "idx_follows_following",
        "follows",
        ["following_id", "is_active", "followed_at", "id"],
        postgresql_include=["follower_id"],
    )

    op.create_table(
        "blocks",
        sa.Column("blocker_id", sa.Uuid(), sa.ForeignKey("profiles.id"), primary_key=True),
        sa.Column("blocked_id", sa.Uuid(), sa.ForeignKey("profiles.id"), primary_key=True),
        _timestamp("created_at"),
        sa.CheckConstraint("blocker_id <> blocked_id", name="ck_blocks_not_self"),
    )
    op.create_index("idx_blocks_blocked", "blocks", ["blocked_id", "blocker_id"])

    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(100), primary_key=True),
        _timestamp("processed_at"),
    )
    op.create_index("idx_processed_events_at", "processed_events", ["processed_at"])
    create_outbox_table()


def downgrade() -> None:
    drop_outbox_table()
    op.drop_table("processed_events")
    op.drop_table("blocks")
    op.drop_table("follows")
    op.drop_table("profiles")
