"""Like and dislike: toggles, one reaction per user per post, counts kept on the post.

Race-free without application locks: the reaction row's primary key decides who inserted
first (INSERT ... ON CONFLICT), the row lock orders toggles of one user, and the counters move
by relative increments in one UPDATE, so concurrent reactions of many users all count.
"""

import uuid
from datetime import UTC, datetime

from sqlalchemy import and_, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from socialhub.kit.errors import ApiError
from socialhub.kit.events.outbox import Outbox
from socialhub.kit.events.topics import POST_TOPIC
from socialhub.kit.identity import Principal
from socialhub.posts.models import ReactionKind, posts, reactions
from socialhub.posts.pagination import to_ms
from socialhub.posts.schemas import ReactionOut
from socialhub.posts.service import PostService

COUNTER = {ReactionKind.LIKE: "like_count", ReactionKind.DISLIKE: "dislike_count"}
# A toggle whose row vanishes between two statements (the same user toggling concurrently)
# starts over; more rounds than this means something else is wrong.
MAX_ROUNDS = 5


class ReactionService:
    def __init__(self, posts: PostService, outbox: Outbox) -> None:
        self.posts = posts
        self.outbox = outbox

    async def toggle(self, session: AsyncSession, user: Principal, post_id: uuid.UUID,
                     kind: ReactionKind) -> ReactionOut:
        """None -> kind; kind -> None; the other kind -> kind."""
        post = await self.posts.visible_post(session, user.id, post_id)
        deltas = {ReactionKind.LIKE: 0, ReactionKind.DISLIKE: 0}
        current = await self._toggle_row(session, user.id, post_id, kind, deltas)
        if current is ReactionKind.LIKE:
            await self.outbox.emit(session, POST_TOPIC, "post.liked", {
                "postId": str(post_id), "postAuthorId": str(post.author_id),
                "userId": str(user.id), "username": user.username,
                "timestamp": to_ms(datetime.now(UTC))}, key=str(post_id))
        # Last, so the post row stays locked only until the commit right after.
        counts = (await session.execute(
            update(posts).where(posts.c.id == post_id)
            .values({COUNTER[k]: getattr(posts.c, COUNTER[k]) + d for k, d in deltas.items()})
            .returning(posts.c.like_count, posts.c.dislike_count))).one()
        return ReactionOut(post_id=post_id, reaction=current, like_count=counts.like_count,
                           dislike_count=counts.dislike_count)

    async def _toggle_row(self, session: AsyncSession, user: uuid.UUID, post_id: uuid.UUID,
                          kind: ReactionKind, deltas: dict[ReactionKind, int],
                          ) -> ReactionKind | None:
        mine = and_(reactions.c.post_id == post_id, reactions.c.user_id == user)
        for _ in range(MAX_ROUNDS):
            inserted = (await session.execute(
                insert(reactions).values(post_id=post_id, user_id=user, kind=kind.value)
                .on_conflict_do_nothing().returning(reactions.c.kind))).first()
            if inserted is not None:
                deltas[kind] += 1
                return kind
            previous = (await session.execute(
                select(reactions.c.kind).where(mine).with_for_update())).scalar()
            if previous is None:
                continue  # removed since the insert saw it: insert again
            if previous == kind.value:
                await session.execute(delete(reactions).where(mine))
                deltas[kind] -= 1
                return None
            await session.execute(update(reactions).where(mine).values(kind=kind.value))
            deltas[ReactionKind(previous)] -= 1
            deltas[kind] += 1
            return kind
        raise ApiError(409, "conflict", "the reaction changed concurrently; try again")
