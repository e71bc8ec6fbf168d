"""SQL every read shares: who may see which post, and a post row with the caller's reaction.

Visibility (the follow graph and blocks are this service's replica, `graph.py`):
- the author always sees their own posts;
- a block, in either direction, hides everything else between two users;
- `public`: everyone; `followers`: the author's followers; `private`: the author only.

The statements of the hot paths are built once, here, with bound parameters (`:viewer`,
`:cursor_at`, ...): building and hashing a statement of this size costs more than a millisecond
of CPU, executing a prebuilt one almost nothing (SQLAlchemy memoises its cache key).
"""

import uuid
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    Uuid,
    and_,
    any_,
    bindparam,
    cast,
    exists,
    or_,
    select,
    true,
    tuple_,
)

from socialhub.kit.sql import Statement
from socialhub.posts.models import Visibility, blocks, follower_counts, follows, posts, reactions
from socialhub.posts.pagination import Position

VIEWER = bindparam("viewer", type_=Uuid())
AUTHOR = bindparam("author", type_=Uuid())
POST_ID = bindparam("post_id", type_=Uuid())
LIMIT = bindparam("limit", type_=Integer())
THRESHOLD = bindparam("threshold", type_=Integer())
CURSOR_AT = bindparam("cursor_at", type_=DateTime(timezone=True))
CURSOR_ID = bindparam("cursor_id", type_=Uuid())

LIVE_POST = posts.c.deleted_at.is_(None)
NEWEST_FIRST = (posts.c.created_at.desc(), posts.c.id.desc())
# "Before everything": the position the first page starts from.
TOP = Position(ms=253_402_214_400_000, id=uuid.UUID(int=2**128 - 1))  # 9999-12-31


def after(position: Position | None) -> dict[str, Any]:
    """The cursor parameters of a page that starts after `position` (None: the first page)."""
    start = position or TOP
    return {"cursor_at": start.at, "cursor_id": start.id}


def my_reaction(post_id: ColumnElement[uuid.UUID]) -> ColumnElement[str | None]:
    """The viewer's reaction to a post: one primary-key lookup per row returned (PostgreSQL
    evaluates it after ORDER BY ... LIMIT), never a scan of the viewer's reactions."""
    return (
        select(reactions.c.kind)
        .where(reactions.c.post_id == post_id, reactions.c.user_id == VIEWER)
        .scalar_subquery()
        .label("my_reaction")
    )


def post_columns() -> Select[tuple[Any, ...]]:
    """Every column of a post plus `my_reaction`."""
    return select(*posts.c, my_reaction(posts.c.id))


def newest_of(authors: Select[tuple[uuid.UUID]]) -> Select[tuple[Any, ...]]:
    """The newest posts of `authors` after the cursor, merged: each author's own newest LIMIT
    (an index range on idx_posts_user_created), then the newest LIMIT of those. The cost grows
    with the number of authors times the page, never with how much they ever posted.

    `authors` must already exclude blocked users; followed authors' private posts are left out.
    """
    chosen = authors.subquery("authors")
    per_author = (
        select(posts)
        .where(
            posts.c.author_id == chosen.c.author_id,
            LIVE_POST,
            OLDER_THAN_CURSOR,
            or_(posts.c.author_id == VIEWER, posts.c.visibility != Visibility.PRIVATE.value),
        )
        .order_by(*NEWEST_FIRST)
        .limit(LIMIT)
        .lateral("per_author")
    )
    top = (
        select(per_author)
        .select_from(chosen)
        .join(per_author, true())
        .order_by(per_author.c.created_at.desc(), per_author.c.id.desc())
        .limit(LIMIT)
        .subquery("top")
    )
    return select(*top.c, my_reaction(top.c.id)).order_by(top.c.created_at.desc(), top.c.id.desc())


def blocked_between(
    a: ColumnElement[uuid.UUID], b: ColumnElement[uuid.UUID]
) -> ColumnElement[bool]:
    """A block between a and b, in either direction."""
    return exists().where(
        blocks.c.active,
        or_(
            and_(blocks.c.blocker_id == a, blocks.c.blocked_id == b),
            and_(blocks.c.blocker_id == b, blocks.c.blocked_id == a),
        ),
    )


def follows_author(author: ColumnElement[uuid.UUID]) -> ColumnElement[bool]:
    return exists().where(
        follows.c.follower_id == VIEWER, follows.c.following_id == author, follows.c.active
    )


def visible_to_viewer() -> ColumnElement[bool]:
    """The visibility rules as a filter on `posts`."""
    author = posts.c.author_id
    return or_(
        author == VIEWER,
        and_(
            ~blocked_between(VIEWER, author),
            or_(
                posts.c.visibility == Visibility.PUBLIC.value,
                and_(posts.c.visibility == Visibility.FOLLOWERS.value, follows_author(author)),
            ),
        ),
    )


def followed_authors() -> Select[tuple[uuid.UUID]]:
    return select(follows.c.following_id.label("author_id")).where(
        follows.c.follower_id == VIEWER, follows.c.active
    )


def unblocked(authors: Select[tuple[uuid.UUID]]) -> Select[tuple[uuid.UUID]]:
    return authors.where(~blocked_between(VIEWER, follows.c.following_id))


def with_viewer(authors: Select[tuple[uuid.UUID]]) -> Select[tuple[uuid.UUID]]:
    return select(cast(VIEWER, Uuid()).label("author_id")).union(authors)  # type: ignore[return-value]


def fanned_out_on_read() -> Select[tuple[uuid.UUID]]:
    """Followed authors with so many followers that their posts are merged in at read time."""
    return (
        followed_authors()
        .join(
            follower_counts,
            follower_counts.c.user_id == follows.c.following_id,
        )
        .where(follower_counts.c.followers >= THRESHOLD)
    )


def fanned_out_on_write() -> Select[tuple[uuid.UUID]]:
    return (
        followed_authors()
        .outerjoin(
            follower_counts,
            follower_counts.c.user_id == follows.c.following_id,
        )
        .where(or_(follower_counts.c.followers.is_(None), follower_counts.c.followers < THRESHOLD))
    )


def shared_by_followed(authors: Select[tuple[uuid.UUID]]) -> ColumnElement[bool]:
    """Posts of `authors` (a subset of those the viewer follows) that the viewer may see.

    Following implies `public` and `followers` posts are both visible, short of a block.
    """
    return and_(
        posts.c.author_id.in_(authors),
        posts.c.visibility != Visibility.PRIVATE.value,
        ~blocked_between(VIEWER, posts.c.author_id),
    )


def in_home_feed() -> ColumnElement[bool]:
    """The home feed: the viewer's own posts and what the authors they follow let them see."""
    return or_(posts.c.author_id == VIEWER, shared_by_followed(followed_authors()))


OLDER_THAN_CURSOR = tuple_(posts.c.created_at, posts.c.id) < tuple_(CURSOR_AT, CURSOR_ID)

VISIBLE_POST = post_columns().where(posts.c.id == POST_ID, LIVE_POST, visible_to_viewer())
VISIBLE_POST_FOR_UPDATE = VISIBLE_POST.with_for_update(of=posts)
BY_IDEMPOTENCY_KEY = Statement(
    post_columns().where(
        posts.c.author_id == VIEWER,
        posts.c.idempotency_key == bindparam("idempotency_key", type_=String()),
    )
)

RELATION = select(
    follows_author(AUTHOR).label("follows"), blocked_between(VIEWER, AUTHOR).label("blocked")
)
TIMELINE = (
    post_columns()
    .where(
        posts.c.author_id == AUTHOR,
        LIVE_POST,
        posts.c.visibility.in_(bindparam("allowed", expanding=True)),
        OLDER_THAN_CURSOR,
    )
    .order_by(*NEWEST_FIRST)
    .limit(LIMIT)
)

# The home feed's reads run as plain asyncpg calls (socialhub.kit.sql): through
# `AsyncSession.execute` each cost about 1 ms of CPU more (loadtests/REPORT.md).
HOME_FEED = Statement(newest_of(with_viewer(unblocked(followed_authors()))))
# The part of a feed read at read time: own posts and big accounts' posts.
FEED_ON_READ = Statement(newest_of(with_viewer(unblocked(fanned_out_on_read()))))
# Cached ids, checked against the rules as they are now.
FEED_VISIBLE = Statement(
    post_columns().where(
        posts.c.id == any_(bindparam("ids", type_=ARRAY(Uuid()))), LIVE_POST, in_home_feed()
    )
)
# Every followed author's posts, blocked ones included: reads filter blocks as they are then.
FEED_REBUILD = Statement(newest_of(fanned_out_on_write()))
