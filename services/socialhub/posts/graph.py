"""This service's replica of the follow graph and blocks, built from USER_TOPIC events.

The users service owns follows and blocks; visibility checks and feeds here need them on every
request, so they are kept locally instead of asked for over HTTP. Consumer group
`posts-service` (docs/events.md). Each (follower, following) and (blocker, blocked) row keeps
the state of the newest event applied to it, newest by the event's `timestamp` and then its
`occurredAt`: duplicates and replays change nothing, and an older event arriving late (events of
one pair can travel on different partitions: a block is keyed by the blocker, a follow by the
follower) never overrides a newer one.

A block also ends follows both ways, as the users service does: those rows are written inactive
with the block's time, so a follow event from before the block cannot revive them later.
"""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import Table, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from socialhub.contracts.events import UserBlocked, UserFollowed, UserUnblocked, UserUnfollowed
from socialhub.kit.database import Database
from socialhub.kit.events.consumer import Rejected
from socialhub.kit.events.envelope import Event
from socialhub.posts.feed import FeedCache
from socialhub.posts.models import blocks, follower_counts, follows

log = logging.getLogger(__name__)

CONSUMER_GROUP = "posts-service"


@dataclass(frozen=True)
class Edge:
    """The state one event gives one row: `source -> target` is active or not."""

    table: Table
    source: uuid.UUID
    target: uuid.UUID
    active: bool
    event_ms: int
    event_at: datetime

    @property
    def row(self) -> tuple[str, uuid.UUID, uuid.UUID]:
        return self.table.name, self.source, self.target

    @property
    def version(self) -> tuple[int, datetime]:
        return self.event_ms, self.event_at


def edges_of(event: Event) -> list[Edge] | None:
    """The row states an event sets; None for events this replica does not use.

    Raises ValidationError when a graph event's data breaks the contract.
    """
    at = event.occurred_at
    match event.event_type:
        case UserFollowed.event_type | UserUnfollowed.event_type:
            active = event.event_type == UserFollowed.event_type
            f = (UserFollowed if active else UserUnfollowed).of(event.data)
            return [Edge(follows, f.follower_id, f.following_id, active, f.timestamp, at)]
        case UserBlocked.event_type | UserUnblocked.event_type:
            active = event.event_type == UserBlocked.event_type
            b = (UserBlocked if active else UserUnblocked).of(event.data)
            edges = [Edge(blocks, b.blocker_id, b.blocked_id, active, b.timestamp, at)]
            if active:
                edges += [
                    Edge(follows, b.blocker_id, b.blocked_id, False, b.timestamp, at),
                    Edge(follows, b.blocked_id, b.blocker_id, False, b.timestamp, at),
                ]
            return edges
        case _:
            return None


class GraphReplica:
    def __init__(self, database: Database, feeds: FeedCache) -> None:
        self.database = database
        self.feeds = feeds

    async def handle(self, events: Sequence[Event]) -> list[Rejected]:
        """Apply a batch in one transaction, then drop the feeds it made stale."""
        rejected: list[Rejected] = []
        newest: dict[tuple[str, uuid.UUID, uuid.UUID], Edge] = {}
        for event in events:
            try:
                edges = edges_of(event)
            except ValidationError as exc:
                rejected.append(Rejected(event, f"invalid {event.event_type} data: {exc}"[:500]))
                continue
            for edge in edges or ():
                known = newest.get(edge.row)
                if known is None or edge.version > known.version:
                    newest[edge.row] = edge
        if newest:
            # A fixed order keeps concurrent batches (other partitions) from deadlocking.
            ordered = sorted(
                newest.values(), key=lambda e: (e.row[0], str(e.source), str(e.target))
            )
            async with self.database.transaction() as session:
                for edge in ordered:
                    await _apply(session, edge)
                await _recount(session, sorted({e.target for e in ordered if e.table is follows}))
            await self.feeds.invalidate({user for e in ordered for user in _stale_feeds(e)})
        return rejected


def _stale_feeds(edge: Edge) -> tuple[uuid.UUID, ...]:
    """Whose cached home feed an edge changes: a follower's; both sides of a block."""
    return (edge.source,) if edge.table is follows else (edge.source, edge.target)


async def _apply(session: AsyncSession, edge: Edge) -> None:
    table = edge.table
    source, target = table.primary_key.columns.values()
    statement = insert(table).values(
        {
            source.name: edge.source,
            target.name: edge.target,
            "active": edge.active,
            "event_ms": edge.event_ms,
            "event_at": edge.event_at,
        }
    )
    newer = statement.excluded
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[source, target],
            set_={"active": newer.active, "event_ms": newer.event_ms, "event_at": newer.event_at},
            where=text(
                f"({table.name}.event_ms, {table.name}.event_at) "
                "< (excluded.event_ms, excluded.event_at)"
            ),
        )
    )


async def _recount(session: AsyncSession, authors: list[uuid.UUID]) -> None:
    """Recount the followers of `authors`, serialised per author.

    The counter rows are locked before counting, so a batch applied concurrently on another
    partition is either counted here or counts after this commit: never both missed.
    """
    if not authors:
        return
    await session.execute(
        insert(follower_counts)
        .values([{"user_id": author, "followers": 0} for author in authors])
        .on_conflict_do_nothing()
    )
    await session.execute(
        select(follower_counts.c.user_id)
        .where(follower_counts.c.user_id.in_(authors))
        .order_by(follower_counts.c.user_id)
        .with_for_update()
    )
    counted = (
        select(func.count())
        .select_from(follows)
        .where(follows.c.following_id == follower_counts.c.user_id, follows.c.active)
        .scalar_subquery()
    )
    await session.execute(
        update(follower_counts)
        .where(follower_counts.c.user_id.in_(authors))
        .values(followers=counted)
    )
