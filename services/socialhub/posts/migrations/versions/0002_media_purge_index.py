"""The index the media purge sweeps: deleted posts whose files are still stored.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "idx_posts_media_to_purge",
        "posts",
        ["deleted_at"],
        postgresql_where=sa.text("deleted_at IS NOT NULL AND media <> '[]'::jsonb"),
    )


def downgrade() -> None:
    op.drop_index("idx_posts_media_to_purge", table_name="posts")
