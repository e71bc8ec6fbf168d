"""SQL pieces every read shares: who may see which post, and a post row with the caller's reaction.

Visibility (the follow graph and blocks are this service's replica, `graph.py`):
- the author always sees their own posts;
- a block, in either direction, hides everything else between two users;
- `public`: everyone; `followers`: the author's followers; `private`: the author only.
"""

import uuid

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select, true, tuple_

from socialhub.posts.models import Visibility, blocks, follower_counts, follows, posts, reactions
from socialhub.posts.pagination import Position

LIVE_POST = posts.c.deleted_at.is_(None)
NEWEST_FIRST = (posts.c.created_at.desc(), posts.c.id.desc())


def post_columns(viewer: uuid.UUID) -> Select[tuple[object, ...]]:
    """Every column of a post plus `my_reaction`, the viewer's reaction (one join, no N+1)."""
    return select(*posts.c, reactions.c.kind.label("my_reaction")).select_from(
        posts.outerjoin(reactions, and_(reactions.c.post_id == posts.c.id,
                                        reactions.c.user_id == viewer)))


def blocked_between(a: uuid.UUID | ColumnElement[uuid.UUID],
                    b: uuid.UUID | ColumnElement[uuid.UUID]) -> ColumnElement[bool]:
    """A block between a and b, in either direction."""
    return exists().where(blocks.c.active, or_(
        and_(blocks.c.blocker_id == a, blocks.c.blocked_id == b),
        and_(blocks.c.blocker_id == b, blocks.c.blocked_id == a)))


def follows_author(viewer: uuid.UUID,
                   author: uuid.UUID | ColumnElement[uuid.UUID]) -> ColumnElement[bool]:
    return exists().where(follows.c.follower_id == viewer, follows.c.following_id == author,
                          follows.c.active)


def visible_to(viewer: uuid.UUID) -> ColumnElement[bool]:
    """The visibility rules as a filter on `posts`."""
    author = posts.c.author_id
    return or_(author == viewer, and_(
        ~blocked_between(viewer, author),
        or_(posts.c.visibility == Visibility.PUBLIC.value,
            and_(posts.c.visibility == Visibility.FOLLOWERS.value,
                 follows_author(viewer, author)))))


def followed_authors(viewer: uuid.UUID) -> Select[tuple[uuid.UUID]]:
    return select(follows.c.following_id).where(follows.c.follower_id == viewer,
                                                follows.c.active)


def fanned_out_on_read(viewer: uuid.UUID, threshold: int) -> Select[tuple[uuid.UUID]]:
    """Followed authors with so many followers that their posts are merged in at read time."""
    return followed_authors(viewer).join(
        follower_counts, follower_counts.c.user_id == follows.c.following_id,
    ).where(follower_counts.c.followers >= threshold)


def fanned_out_on_write(viewer: uuid.UUID, threshold: int) -> Select[tuple[uuid.UUID]]:
    return followed_authors(viewer).outerjoin(
        follower_counts, follower_counts.c.user_id == follows.c.following_id,
    ).where(or_(follower_counts.c.followers.is_(None), follower_counts.c.followers < threshold))


def shared_by_followed(authors: Select[tuple[uuid.UUID]],
                       viewer: uuid.UUID) -> ColumnElement[bool]:
    """Posts of `authors` (a subset of those the viewer follows) that the viewer may see.

    Following implies `public` and `followers` posts are both visible, short of a block.
    """
    return and_(posts.c.author_id.in_(authors),
                posts.c.visibility != Visibility.PRIVATE.value,
                ~blocked_between(viewer, posts.c.author_id))


def in_home_feed(viewer: uuid.UUID) -> ColumnElement[bool]:
    """The home feed: the viewer's own posts and what the authors they follow let them see."""
    return or_(posts.c.author_id == viewer, shared_by_followed(followed_authors(viewer), viewer))


def older_than(position: Position | None) -> ColumnElement[bool]:
    if position is None:
        return true()
    return tuple_(posts.c.created_at, posts.c.id) < tuple_(position.at, position.id)
