"""The hot statements, built once: per request only parameters change.

Building and executing a SQLAlchemy statement costs more Python time than PostgreSQL spends
running these (index-only scans, single-row upserts), so the follow path, list pages and profile
reads are compiled here once and run as plain asyncpg calls (`socialhub.kit.sql.Statement`).
`LOCK_PAIR` is the first statement of every follow-graph write, in its asyncpg transaction.
"""

from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.types import DateTime, Uuid

from socialhub.kit.sql import Statement
from socialhub.users.models import Block, Follow, Profile

ME = bindparam("me", type_=Uuid)
TARGET = bindparam("target", type_=Uuid)


def blocked_between(a: Any, b: Any) -> ColumnElement[bool]:
    """Whether either of two users blocks the other."""
    return exists().where(
        or_(
            and_(Block.blocker_id == a, Block.blocked_id == b),
            and_(Block.blocker_id == b, Block.blocked_id == a),
        )
    )


def _counts_moved(by: int, changed: Any) -> Any:
    """Move the pair's counters when the `changed` CTE returned a row (same statement)."""
    return (
        sql_update(Profile)
        .where(Profile.id.in_([ME, TARGET]), exists(select(changed.c[0])))
        .values(
            following_count=Profile.following_count + case((Profile.id == ME, by), else_=0),
            followers_count=Profile.followers_count + case((Profile.id == TARGET, by), else_=0),
        )
        .cte("counted")
    )


# Both profiles, locked in id order (no deadlock between A->B and B->A); FOR NO KEY UPDATE does
# not conflict with the foreign-key checks of concurrent follow inserts.
LOCK_PAIR = Statement(
    select(Profile.id, Profile.username)
    .where(Profile.id.in_([ME, TARGET]))
    .order_by(Profile.id)
    .with_for_update(key_share=True)
)

# Follow (insert, or reactivate a soft-deleted row) unless a block is in the way, and move the
# counters only if something changed. Returns followed_at, or nothing when nothing changed.
_followed = (
    pg_insert(Follow)
    .from_select(
        ["follower_id", "following_id", "is_active"],
        select(ME, TARGET, true()).where(~blocked_between(ME, TARGET)),
    )
    .on_conflict_do_update(
        constraint="uq_follows_pair",
        set_={"is_active": True, "followed_at": func.now(), "updated_at": func.now()},
        where=Follow.is_active.is_(False),
    )
    .returning(Follow.followed_at)
    .cte("followed")
)
FOLLOW = Statement(select(_followed.c.followed_at).add_cte(_counts_moved(1, _followed)))

_ended = (
    sql_update(Follow)
    .where(Follow.follower_id == ME, Follow.following_id == TARGET, Follow.is_active.is_(True))
    .values(is_active=False, updated_at=func.now())
    .returning(Follow.id)
    .cte("ended")
)
UNFOLLOW = Statement(select(_ended.c.id).add_cte(_counts_moved(-1, _ended)))

BLOCKER = Statement(
    select(Block.blocker_id)
    .where(
        or_(
            and_(Block.blocker_id == ME, Block.blocked_id == TARGET),
            and_(Block.blocker_id == TARGET, Block.blocked_id == ME),
        )
    )
    .limit(1)
)


def _follow_page(owner: Any, listed: Any, *, after_cursor: bool) -> Statement:
    """A page of one user's followers or followings, newest first, without users blocked
    either way by the viewer. An index-only range scan on (owner, is_active, followed_at, id)."""
    stmt = (
        select(
            Follow.id.label("follow_id"),
            Follow.followed_at,
            Profile.id,
            Profile.username,
            Profile.name,
            Profile.avatar_url,
        )
        .join(Profile, Profile.id == listed)
        .where(
            owner == bindparam("user_id", type_=Uuid),
            Follow.is_active.is_(True),
            ~blocked_between(bindparam("viewer", type_=Uuid), listed),
        )
        .order_by(Follow.followed_at.desc(), Follow.id.desc())
        .limit(bindparam("limit"))
    )
    if after_cursor:  # a row comparison: one range bound on the index, not a filter
        stmt = stmt.where(
            tuple_(Follow.followed_at, Follow.id)
            < tuple_(bindparam("after_at", type_=DateTime(timezone=True)), bindparam("after_id"))
        )
    return Statement(stmt)


FOLLOWERS_FIRST = _follow_page(Follow.following_id, Follow.follower_id, after_cursor=False)
FOLLOWERS_AFTER = _follow_page(Follow.following_id, Follow.follower_id, after_cursor=True)
FOLLOWING_FIRST = _follow_page(Follow.follower_id, Follow.following_id, after_cursor=False)
FOLLOWING_AFTER = _follow_page(Follow.follower_id, Follow.following_id, after_cursor=True)

PROFILE_BY_ID = Statement(
    select(
        Profile.id,
        Profile.username,
        Profile.name,
        Profile.bio,
        Profile.avatar_url,
        Profile.followers_count,
        Profile.following_count,
        Profile.posts_count,
        Profile.created_at,
    ).where(Profile.id == bindparam("user_id", type_=Uuid))
)
PROFILE_EXISTS = Statement(select(Profile.id).where(Profile.id == bindparam("user_id", type_=Uuid)))
# The caller's provisional profile from the gateway's payload (user.created fills in the name);
# a username another account holds inserts nothing.
CREATE_PROVISIONAL = Statement(
    pg_insert(Profile)
    .values(
        id=ME,
        username=bindparam("username", type_=String),
        name=bindparam("username", type_=String),
        provisional=true(),
    )
    .on_conflict_do_nothing()
)
BLOCK = Statement(
    pg_insert(Block)
    .values(blocker_id=ME, blocked_id=TARGET)
    .on_conflict_do_nothing()
    .returning(Block.created_at)
)
UNBLOCK = Statement(
    sql_delete(Block)
    .where(Block.blocker_id == ME, Block.blocked_id == TARGET)
    .returning(Block.blocker_id)
)
ID_BY_USERNAME = Statement(select(Profile.id).where(Profile.username == bindparam("username")))
