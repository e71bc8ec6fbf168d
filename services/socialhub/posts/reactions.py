"""Like and dislike: toggles, one reaction per user per post, counts kept on the post.

Race-free: toggles of one user on one post take turns on an advisory lock for that pair (the
primary key keeps one reaction per user per post in any case), and the post's counters move by
relative increments in one UPDATE, so concurrent reactions of many users all count.
"""

import hashlib
import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Uuid,
    and_,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from socialhub.contracts.events import PostLiked
from socialhub.kit.events.outbox import Outbox
from socialhub.kit.identity import Principal
from socialhub.posts.models import ReactionKind, posts, reactions
from socialhub.posts.pagination import to_ms
from socialhub.posts.schemas import ReactionOut
from socialhub.posts.service import PostService

# Not named after columns: UPDATE and DELETE keep those names for their own parameters.
POST = bindparam("pair_post", type_=Uuid())
USER = bindparam("pair_user", type_=Uuid())
MINE = and_(reactions.c.post_id == POST, reactions.c.user_id == USER)
# Statements built once (see queries.py): a toggle runs several of them.
TAKE_TURNS = select(func.pg_advisory_xact_lock(bindparam("lock_key", type_=BigInteger())))
CURRENT = select(reactions.c.kind).where(MINE)
ADD = insert(reactions)
REMOVE = delete(reactions).where(MINE)
SWITCH = update(reactions).where(MINE).values(kind=bindparam("new_kind", type_=String()))
COUNT = (
    update(posts)
    .where(posts.c.id == POST)
    .values(
        like_count=posts.c.like_count + bindparam("likes", type_=Integer()),
        dislike_count=posts.c.dislike_count + bindparam("dislikes", type_=Integer()),
    )
    .returning(posts.c.like_count, posts.c.dislike_count)
)


class ReactionService:
    def __init__(self, posts: PostService, outbox: Outbox) -> None:
        self.posts = posts
        self.outbox = outbox

    async def toggle(
        self, session: AsyncSession, user: Principal, post_id: uuid.UUID, kind: ReactionKind
    ) -> ReactionOut:
        """None -> kind; kind -> None; the other kind -> kind."""
        post = await self.posts.visible_post(session, user.id, post_id)
        deltas = {ReactionKind.LIKE: 0, ReactionKind.DISLIKE: 0}
        current = await self._toggle_row(session, user.id, post_id, kind, deltas)
        if current is ReactionKind.LIKE:
            await self.outbox.emit(
                session,
                PostLiked(
                    post_id=post_id,
                    post_author_id=post.author_id,
                    user_id=user.id,
                    username=user.username,
                    timestamp=to_ms(datetime.now(UTC)),
                ),
            )
        # Last, so the post row stays locked only until the commit right after.
        counts = (
            await session.execute(
                COUNT,
                {
                    "pair_post": post_id,
                    "likes": deltas[ReactionKind.LIKE],
                    "dislikes": deltas[ReactionKind.DISLIKE],
                },
            )
        ).one()
        return ReactionOut(
            post_id=post_id,
            reaction=current,
            like_count=counts.like_count,
            dislike_count=counts.dislike_count,
        )

    async def _toggle_row(
        self,
        session: AsyncSession,
        user: uuid.UUID,
        post_id: uuid.UUID,
        kind: ReactionKind,
        deltas: dict[ReactionKind, int],
    ) -> ReactionKind | None:
        """The user's toggles on this post take turns (a transaction-scoped advisory lock), so
        what is read next is what the change applies to."""
        pair = {"pair_post": post_id, "pair_user": user}
        await session.execute(TAKE_TURNS, {"lock_key": _pair_key(post_id, user)})
        previous = (await session.execute(CURRENT, pair)).scalar()
        if previous is None:
            await session.execute(ADD, {"post_id": post_id, "user_id": user, "kind": kind.value})
            deltas[kind] += 1
            return kind
        if previous == kind.value:
            await session.execute(REMOVE, pair)
            deltas[kind] -= 1
            return None
        await session.execute(SWITCH, {**pair, "new_kind": kind.value})
        deltas[ReactionKind(previous)] -= 1
        deltas[kind] += 1
        return kind


def _pair_key(post_id: uuid.UUID, user: uuid.UUID) -> int:
    """A signed 64-bit advisory-lock key for one (post, user) pair."""
    digest = hashlib.blake2b(post_id.bytes + user.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
