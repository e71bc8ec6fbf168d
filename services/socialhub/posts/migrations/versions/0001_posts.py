"""Posts, comments, reactions, the follow-graph replica and the event outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from socialhub.kit.events.outbox import create_outbox_table, drop_outbox_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("author_username", sa.String(100), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("media", JSONB(), server_default="[]", nullable=False),
        sa.Column("like_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("dislike_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("comment_count", sa.Integer(), server_default="0", nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _time("deleted_at", nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_fingerprint", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "visibility IN ('public', 'followers', 'private')", name="ck_posts_visibility"
        ),
    )
    op.create_index(
        "idx_posts_user_created",
        "posts",
        ["author_id", sa.text("created_at DESC"), sa.text("id DESC")],
        postgresql_where=LIVE,
    )
    op.create_index(
        "idx_posts_visibility",
        "posts",
        ["visibility", sa.text("created_at DESC")],
        postgresql_where=LIVE,
    )
    op.create_index(
        "uq_posts_idempotency_key",
        "posts",
        ["author_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )

    op.create_table(
        "comments",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("post_id", sa.Uuid(), sa.ForeignKey("posts.id"), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("author_username", sa.String(100), nullable=False),
        sa.Column("parent_id", sa.Uuid(), sa.ForeignKey("comments.id"), nullable=True),
        sa.Column("root_id", sa.Uuid(), nullable=False),
        sa.Column("depth", sa.SmallInteger(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        _time("created_at"),
        _time("deleted_at", nullable=True),
    )
    op.create_index(
        "idx_comments_post_top",
        "comments",
        ["post_id", "created_at", "id"],
        postgresql_where=sa.text("parent_id IS NULL AND deleted_at IS NULL"),
    )
    op.create_index(
        "idx_comments_parent", "comments", ["parent_id", "created_at", "id"], postgresql_where=LIVE
    )
    op.create_index(
        "idx_comments_root", "comments", ["root_id", "created_at", "id"], postgresql_where=LIVE
    )

    op.create_table(
        "reactions",
        sa.Column("post_id", sa.Uuid(), sa.ForeignKey("posts.id"), primary_key=True),
        sa.Column("user_id", sa.Uuid(), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('like', 'dislike')", name="ck_reactions_kind"),
    )

    op.create_table(
        "follows",
        sa.Column("follower_id", sa.Uuid(), primary_key=True),
        sa.Column("following_id", sa.Uuid(), primary_key=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("event_ms", sa.BigInteger(), nullable=False),
        _time("event_at"),
    )
    op.create_index(
        "idx_follows_following",
        "follows",
        ["following_id", "follower_id"],
        postgresql_where=sa.text("active"),
    )

    op.create_table(
        "blocks",
        sa.Column("blocker_id", sa.Uuid(), primary_key=True),
        sa.Column("blocked_id", sa.Uuid(), primary_key=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("event_ms", sa.BigInteger(), nullable=False),
        _time("event_at"),
    )
    op.create_index(
        "idx_blocks_blocked",
        "blocks",
        ["blocked_id", "blocker_id"],
        postgresql_where=sa.text("active"),
    )

    op.create_table(
        "follower_counts",
        sa.Column("user_id", sa.Uuid(), primary_key=True),
        sa.Column("followers", sa.Integer(), nullable=False),
    )
    create_outbox_table()


def downgrade() -> None:
    drop_outbox_table()
    for table in ("follower_counts", "blocks", "follows", "reactions", "comments", "posts"):
        op.drop_table(table)
