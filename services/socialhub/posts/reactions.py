"""Like and dislike: toggles, one reaction per user per post, counts kept on the post.

Race-free: toggles of one user on one post take turns on an advisory lock for that pair (the
primary key keeps one reaction per user per post in any case), and the post's counters move by
relative increments in one UPDATE, so concurrent reactions of many users all count.
"""

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

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

from socialhub.contracts.events import PostLiked
from socialhub.kit.errors import not_found
from socialhub.kit.events.outbox import EVENT_ROW, Outbox
from socialhub.kit.identity import Principal
from socialhub.kit.sql import Statement
from socialhub.posts.models import ReactionKind, posts, reactions
from socialhub.posts.pagination import to_ms
from socialhub.posts.queries import VISIBLE_POST
from socialhub.posts.schemas import ReactionOut
from socialhub.posts.service import PostService

# Not named after columns: UPDATE and DELETE keep those names for their own parameters.
POST = bindparam("pair_post", type_=Uuid())
USER = bindparam("pair_user", type_=Uuid())
MINE = and_(reactions.c.post_id == POST, reactions.c.user_id == USER)
# Statements built once (see queries.py): a toggle runs several of them.
# A toggle is on a published rate: five round trips (BEGIN, the lock with the post, the
# current reaction, the change with the counters and the event, COMMIT), as plain asyncpg
# calls (kit.sql). Each round trip costs ~0.3 ms of CPU here (loadtests/REPORT.md).
LOCKED_POST = Statement(
    VISIBLE_POST.add_columns(
        func.pg_advisory_xact_lock(bindparam("lock_key", type_=BigInteger())).label("locked")
    )
)
CURRENT = Statement(select(reactions.c.kind).where(MINE))
_ADD = insert(reactions).values(post_id=POST, user_id=USER, kind=bindparam("kind", type_=String()))
_REMOVE = delete(reactions).where(MINE)
_SWITCH = update(reactions).where(MINE).values(kind=bindparam("kind", type_=String()))
_COUNT = (
    update(posts)
    .where(posts.c.id == POST)
    .values(
        like_count=posts.c.like_count + bindparam("likes", type_=Integer()),
        dislike_count=posts.c.dislike_count + bindparam("dislikes", type_=Integer()),
    )
    .returning(posts.c.like_count, posts.c.dislike_count)
)


def _counted(change: Any, *, with_event: bool) -> Statement:
    """The change, the counters and (a new like) the event, as one statement."""
    counted = _COUNT.add_cte(change.cte("changed"))
    return Statement(counted.add_cte(EVENT_ROW.cte("event")) if with_event else counted)


# by (previous reaction is none, the same kind, the other kind) and whether a like results
CHANGES = {
    ("add", True): _counted(_ADD, with_event=True),
    ("add", False): _counted(_ADD, with_event=False),
    ("remove", False): _counted(_REMOVE, with_event=False),
    ("switch", True): _counted(_SWITCH, with_event=True),
    ("switch", False): _counted(_SWITCH, with_event=False),
}


class ReactionService:
    def __init__(self, posts: PostService, outbox: Outbox) -> None:
        self.posts = posts
        self.outbox = outbox

    async def toggle(self, user: Principal, post_id: uuid.UUID, kind: ReactionKind) -> ReactionOut:
        """None -> kind; kind -> None; the other kind -> kind. The user's toggles on this post
        take turns (a transaction-scoped advisory lock), so the reaction read after the lock
        is the one the change applies to."""
        pair = {"pair_post": post_id, "pair_user": user.id}
        async with self.posts.database.driver_transaction() as connection:
            post = await LOCKED_POST.fetchrow(
                connection,
                {"viewer": user.id, "post_id": post_id, "lock_key": _pair_key(post_id, user.id)},
            )
            if post is None:
                raise not_found("post")
            previous = await CURRENT.fetchval(connection, pair)
            change, current, likes, dislikes = _change(previous, kind)
            params: dict[str, Any] = {
                **pair,
                "kind": kind.value,
                "likes": likes,
                "dislikes": dislikes,
            }
            liked = current is ReactionKind.LIKE
            if liked:
                params |= self.outbox.row_params(
                    PostLiked(
                        post_id=post_id,
                        post_author_id=post["author_id"],
                        user_id=user.id,
                        username=user.username,
                        timestamp=to_ms(datetime.now(UTC)),
                    )
                )
            counts = await CHANGES[change, liked].fetchrow(connection, params)
        assert counts is not None  # the post is live: it was read under this transaction
        return ReactionOut(
            post_id=post_id,
            reaction=current,
            like_count=counts["like_count"],
            dislike_count=counts["dislike_count"],
        )


def _change(previous: str | None, kind: ReactionKind) -> tuple[str, ReactionKind | None, int, int]:
    """(change, the reaction after it, like delta, dislike delta)."""
    sign = {ReactionKind.LIKE: (1, 0), ReactionKind.DISLIKE: (0, 1)}
    added_likes, added_dislikes = sign[kind]
    if previous is None:
        return "add", kind, added_likes, added_dislikes
    if previous == kind.value:
        return "remove", None, -added_likes, -added_dislikes
    return "switch", kind, added_likes - added_dislikes, added_dislikes - added_likes


def _pair_key(post_id: uuid.UUID, user: uuid.UUID) -> int:
    """A signed 64-bit advisory-lock key for one (post, user) pair."""
    digest = hashlib.blake2b(post_id.bytes + user.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
