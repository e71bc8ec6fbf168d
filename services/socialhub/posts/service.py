"""Posts: create (with media and Idempotency-Key), read with visibility, edit, delete, timelines.

Domain code never commits: the request's transaction (`SessionDep`) does, events included
(outbox). Posts a caller may not see answer 404 exactly like missing ones, so ids leak nothing;
a visible post the caller may not change answers 403.
"""

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, and_, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from socialhub.contracts.events import PostCreated, PostDeleted, PostUpdated
from socialhub.kit.database import Database
from socialhub.kit.errors import ApiError, conflict, forbidden, invalid_input, not_found
from socialhub.kit.events.outbox import Outbox, event_row_after
from socialhub.kit.identity import Principal
from socialhub.kit.sql import Connection, Statement
from socialhub.posts.drafts import PostDraft
from socialhub.posts.feed import FeedReader
from socialhub.posts.media import MediaStorage, StoredMedia
from socialhub.posts.models import Visibility, comments, posts, reactions
from socialhub.posts.pagination import Position, now_ms_precision, to_ms
from socialhub.posts.queries import (
    BY_IDEMPOTENCY_KEY,
    RELATION,
    TIMELINE,
    VISIBLE_POST,
    VISIBLE_POST_FOR_UPDATE,
    after,
)
from socialhub.posts.schemas import PostOut, UpdatePostRequest

log = logging.getLogger(__name__)

# The post and its PostCreated event in one statement (one round trip, atomic on its own): a
# retry racing the first request with the same Idempotency-Key inserts neither.
_INSERTED = (
    insert(posts)
    .values({column.name: bindparam(column.name, type_=column.type) for column in posts.c})
    .on_conflict_do_nothing(
        index_elements=[posts.c.author_id, posts.c.idempotency_key],
        index_where=posts.c.idempotency_key.is_not(None),
    )
    .returning(posts.c.id)
    .cte("inserted")
)
INSERT_POST = Statement(select(_INSERTED.c.id).add_cte(event_row_after(_INSERTED).cte("event")))


@dataclass(frozen=True)
class Created:
    post: PostOut
    replayed: bool  # an earlier request with the same Idempotency-Key made it


class PostService:
    def __init__(
        self, database: Database, outbox: Outbox, storage: MediaStorage, feed: FeedReader
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.storage = storage
        self.feed = feed

    # -- create ----------------------------------------------------------------------------

    async def create(
        self, author: Principal, draft: PostDraft, idempotency_key: str | None
    ) -> Created:
        """Each statement on its own (autocommit): the insert carries its event, and no
        pooled connection is held while the files upload."""
        fingerprint = draft.fingerprint() if idempotency_key else None
        if idempotency_key:
            async with self.database.connection() as connection:
                earlier = await self._replay(connection, author, idempotency_key, fingerprint)
            if earlier is not None:
                return earlier
        stored = await self.storage.store(draft.media) if draft.media else []
        try:
            async with self.database.connection() as connection:
                return await self._insert(
                    connection, author, draft, stored, idempotency_key, fingerprint
                )
        except BaseException:
            await self.storage.remove(stored)
            raise

    async def _insert(
        self,
        connection: Connection,
        author: Principal,
        draft: PostDraft,
        stored: list[StoredMedia],
        idempotency_key: str | None,
        fingerprint: str | None,
    ) -> Created:
        now = now_ms_precision()
        post_id = uuid.uuid4()
        values: dict[str, Any] = {
            "id": post_id,
            "author_id": author.id,
            "author_username": author.username,
            "content": draft.content,
            "visibility": draft.visibility.value,
            "media": [m.to_json() for m in stored],
            "like_count": 0,
            "dislike_count": 0,
            "comment_count": 0,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
            "idempotency_key": idempotency_key,
            "request_fingerprint": fingerprint,
        }
        event = PostCreated(
            post_id=post_id,
            user_id=author.id,
            username=author.username,
            content=draft.content,
            timestamp=to_ms(now),
            visibility=draft.visibility.value,
            media_count=len(stored),
        )
        inserted = await INSERT_POST.fetchval(
            connection,
            {**values, "media": json.dumps(values["media"]), **self.outbox.row_params(event)},
        )
        if inserted is None:  # a concurrent request with the same key won
            assert idempotency_key is not None
            winner = await self._replay(connection, author, idempotency_key, fingerprint)
            assert winner is not None
            await self.storage.remove(stored)
            return winner
        return Created(PostOut.from_values({**values, "my_reaction": None}), replayed=False)

    async def _replay(
        self, connection: Connection, author: Principal, key: str, fingerprint: str | None
    ) -> Created | None:
        row = await BY_IDEMPOTENCY_KEY.fetchrow(
            connection, {"viewer": author.id, "idempotency_key": key}
        )
        if row is None:
            return None
        if row["request_fingerprint"] != fingerprint:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was already used for a different post; "
                "use a new key for a new post",
                fields={"Idempotency-Key": "used for a different request"},
            )
        if row["deleted_at"] is not None:
            raise conflict("the post created with this Idempotency-Key has been deleted")
        return Created(PostOut.from_values(row), replayed=True)

    # -- read --------------------------------------------------------------------------------

    async def visible_post(
        self,
        session: AsyncSession,
        viewer: uuid.UUID,
        post_id: uuid.UUID,
    ) -> Row[Any]:
        """The post with the viewer's reaction, or 404 if it is gone or not theirs to see."""
        row: Row[Any] | None = (
            await session.execute(VISIBLE_POST, {"viewer": viewer, "post_id": post_id})
        ).first()
        if row is None:
            raise not_found("post")
        return row

    async def get(self, session: AsyncSession, viewer: uuid.UUID, post_id: uuid.UUID) -> PostOut:
        return PostOut.from_row(await self.visible_post(session, viewer, post_id))

    async def timeline(
        self,
        session: AsyncSession,
        viewer: uuid.UUID,
        author: uuid.UUID,
        position: Position | None,
        limit: int,
    ) -> list[PostOut]:
        """An author's posts the viewer may see, newest first (limit + 1 to detect more)."""
        if viewer == author:
            allowed = [v.value for v in Visibility]
        else:
            relation = (await session.execute(RELATION, {"viewer": viewer, "author": author})).one()
            if relation.blocked:
                return []
            allowed = [Visibility.PUBLIC.value]
            if relation.follows:
                allowed.append(Visibility.FOLLOWERS.value)
        rows = (
            await session.execute(
                TIMELINE,
                {
                    "viewer": viewer,
                    "author": author,
                    "allowed": allowed,
                    "limit": limit + 1,
                    **after(position),
                },
            )
        ).all()
        return [PostOut.from_row(row) for row in rows]

    async def home_feed(
        self, viewer: uuid.UUID, position: Position | None, limit: int
    ) -> list[PostOut]:
        """Reads only, each statement on its own (autocommit): no session, no transaction."""
        async with self.database.connection() as connection:
            rows = await self.feed.page(connection, viewer, position, limit + 1)
        return [PostOut.from_values(row) for row in rows]

    # -- change ------------------------------------------------------------------------------

    async def _own_post(
        self, session: AsyncSession, user: uuid.UUID, post_id: uuid.UUID, action: str
    ) -> Row[Any]:
        """The caller's own live post, locked for the change; 404 or 403 otherwise."""
        row: Row[Any] | None = (
            await session.execute(VISIBLE_POST_FOR_UPDATE, {"viewer": user, "post_id": post_id})
        ).first()
        if row is None:
            raise not_found("post")
        if row.author_id != user:
            raise forbidden(f"only the author can {action} this post")
        return row

    async def update(
        self, session: AsyncSession, user: Principal, post_id: uuid.UUID, change: UpdatePostRequest
    ) -> PostOut:
        row = await self._own_post(session, user.id, post_id, "edit")
        values: dict[str, Any] = {"updated_at": now_ms_precision()}
        if change.content is not None:
            if not change.content and not row.media:
                raise invalid_input(content="a post without media needs text")
            values["content"] = change.content
        if change.visibility is not None:
            values["visibility"] = change.visibility.value
        await session.execute(update(posts).where(posts.c.id == post_id).values(values))
        visibility = values.get("visibility", row.visibility)
        await self.outbox.emit(
            session, PostUpdated(post_id=post_id, user_id=user.id, visibility=visibility)
        )
        return PostOut.from_values({**row._asdict(), **values})

    async def delete(self, session: AsyncSession, user: Principal, post_id: uuid.UUID) -> None:
        """Soft delete: the post and its comments are marked deleted, its reactions removed."""
        await self._own_post(session, user.id, post_id, "delete")
        now = now_ms_precision()
        await session.execute(
            update(posts).where(posts.c.id == post_id).values(deleted_at=now, updated_at=now)
        )
        await session.execute(
            update(comments)
            .where(and_(comments.c.post_id == post_id, comments.c.deleted_at.is_(None)))
            .values(deleted_at=now)
        )
        await session.execute(delete(reactions).where(reactions.c.post_id == post_id))
        await self.outbox.emit(session, PostDeleted(post_id=post_id, user_id=user.id))
