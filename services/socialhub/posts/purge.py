"""Media of deleted posts leave the media storage some time after the post is deleted.

Deleting a post is a soft delete in one transaction and never waits on the storage; a background
sweep removes the files later, after MEDIA_PURGE_GRACE_SECONDS (so caches and in-flight readers
drain), and keeps in the row whatever the storage could not remove, for the next sweep. Rows are
claimed with SKIP LOCKED, so every instance may sweep without two removing the same files.
"""

import logging
from datetime import timedelta

from sqlalchemy import func, select, update

from socialhub.kit.database import Database
from socialhub.posts.media import MediaStorage, StoredMedia
from socialhub.posts.models import MEDIA_TO_PURGE, posts
from socialhub.posts.settings import PostsSettings

log = logging.getLogger(__name__)


async def purge_deleted_media(
    database: Database, storage: MediaStorage, *, grace: timedelta, batch_size: int
) -> int:
    """One sweep over up to `batch_size` deleted posts; returns how many files it removed."""
    removed = 0
    async with database.transaction() as session:
        rows = (
            await session.execute(
                select(posts.c.id, posts.c.media)
                # MEDIA_TO_PURGE is the predicate of the index `idx_posts_media_to_purge`.
                .where(MEDIA_TO_PURGE, posts.c.deleted_at < func.now() - grace)
                .order_by(posts.c.deleted_at)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for post_id, media in rows:
            stored = [StoredMedia.from_json(item) for item in media]
            left = await storage.remove(stored)
            removed += len(stored) - len(left)
            await session.execute(
                update(posts)
                .where(posts.c.id == post_id)
                .values(media=[item.to_json() for item in left])
            )
    return removed


async def sweep_deleted_media(
    database: Database, storage: MediaStorage, settings: PostsSettings
) -> None:
    """One sweep with the configured grace and batch (the app runs it periodically)."""
    removed = await purge_deleted_media(
        database,
        storage,
        grace=timedelta(seconds=settings.media_purge_grace_seconds),
        batch_size=settings.media_purge_batch_size,
    )
    if removed:
        log.info("removed %d media files of deleted posts", removed)
