"""What the users service consumes (group `users-service`): accounts and post counts.

- `user.created` (auth) creates the profile, or fills in the real name of one created just in
  time from the gateway's payload.
- `post.created` / `post.deleted` (posts) move the author's post count.

Each batch is one transaction that first records the event ids in `processed_events`: an event
delivered again (Kafka is at-least-once) finds its id there and changes nothing. Other event
types on these topics (the users service's own, posts' likes...) are not ours and are skipped.
"""

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from pydantic import Field, ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from socialhub.contracts import events as contract
from socialhub.kit.database import Database
from socialhub.kit.events.consumer import Rejected
from socialhub.kit.events.envelope import Event
from socialhub.users.cache import ProfileCache
from socialhub.users.models import NAME_MAX, USERNAME_MAX, ProcessedEvent, Profile

log = logging.getLogger(__name__)

CONSUMER_GROUP = "users-service"


class UserCreated(contract.UserCreated):
    """With this service's limits: a profile's columns hold no more."""

    username: str = Field(min_length=1, max_length=USERNAME_MAX)
    name: str = Field(min_length=1, max_length=NAME_MAX)


class PostCreated(contract.PostCreated):
    username: str = Field(min_length=1, max_length=USERNAME_MAX)


HANDLED = frozenset(
    {UserCreated.event_type, PostCreated.event_type, contract.PostDeleted.event_type}
)


@dataclass
class PostCountChange:
    """Steps of +1/-1 applied in order to an author's post count, which never goes below zero.

    Summing a batch's steps would be wrong: a delete then a create on a count of 0 gives 1 one
    at a time (the delete stops at 0) but 0 summed. One at a time, a count c becomes
    `max(c + total, total - lowest)`, where `lowest` is the lowest running total (at most 0),
    so a whole batch still takes one UPDATE per author.
    """

    total: int = 0
    lowest: int = 0

    def step(self, delta: int) -> None:
        self.total += delta
        self.lowest = min(self.lowest, self.total)

    @property
    def moves_anything(self) -> bool:
        return self.total != 0 or self.lowest != 0

    @property
    def from_zero(self) -> int:
        return self.total - self.lowest

    @property
    def new_count(self) -> ColumnElement[int]:
        return func.greatest(Profile.posts_count + self.total, self.from_zero)


class EventHandler:
    """The `BatchConsumer` handler; profile caches are invalidated after each batch commits."""

    def __init__(self, database: Database, cache: ProfileCache) -> None:
        self.database = database
        self.cache = cache

    async def __call__(self, events: Sequence[Event]) -> Sequence[Rejected]:
        ours = list({e.event_id: e for e in events if e.event_type in HANDLED}.values())
        if not ours:
            return []
        rejected: list[Rejected] = []
        changed: set[uuid.UUID] = set()
        async with self.database.transaction() as session:
            fresh = set(
                (
                    await session.scalars(
                        pg_insert(ProcessedEvent)
                        .values([{"event_id": e.event_id} for e in ours])
                        .on_conflict_do_nothing()
                        .returning(ProcessedEvent.event_id)
                    )
                ).all()
            )
            await _lock_profiles(session, [e for e in ours if e.event_id in fresh])
            post_counts: defaultdict[uuid.UUID, PostCountChange] = defaultdict(PostCountChange)
            authors: dict[uuid.UUID, str] = {}
            for event in ours:
                if event.event_id not in fresh:
                    continue
                try:
                    if event.event_type == UserCreated.event_type:
                        created = UserCreated.of(event.data)
                        if not await _store_user(session, created):
                            rejected.append(Rejected(event, "username belongs to another user"))
                            continue
                        changed.add(created.user_id)
                    elif event.event_type == PostCreated.event_type:
                        post = PostCreated.of(event.data)
                        post_counts[post.user_id].step(+1)
                        authors.setdefault(post.user_id, post.username)
                    else:
                        deleted = contract.PostDeleted.of(event.data)
                        post_counts[deleted.user_id].step(-1)
                except ValidationError as exc:
                    rejected.append(
                        Rejected(event, f"invalid {event.event_type} data: {_first_error(exc)}")
                    )
            await _apply_post_counts(session, post_counts, authors)
            changed.update(post_counts)
        await self.cache.invalidate(changed)
        return rejected


async def _lock_profiles(session: AsyncSession, events: Sequence[Event]) -> None:
    """Lock the batch's existing profiles in id order, the order follows and blocks lock
    theirs in, so a batch and a concurrent follow can never wait on each other in a cycle."""
    ids = sorted({user_id for event in events if (user_id := _user_id(event)) is not None})
    if ids:
        await session.execute(
            select(Profile.id)
            .where(Profile.id.in_(ids))
            .order_by(Profile.id)
            .with_for_update(key_share=True)
        )


def _user_id(event: Event) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(event.data.get("userId")))
    except ValueError:
        return None


async def _store_user(session: AsyncSession, user: UserCreated) -> bool:
    """Create the profile or complete a provisional one; False if the username is taken."""
    values = {
        "id": user.user_id,
        "username": user.username,
        "name": user.name,
        "provisional": False,
        "created_at": user.created_at,
    }
    stmt = pg_insert(Profile).values(values)
    try:
        async with session.begin_nested():
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[Profile.id],
                    set_={
                        "name": stmt.excluded.name,
                        "created_at": stmt.excluded.created_at,
                        "provisional": False,
                        "updated_at": func.now(),
                    },
                    where=Profile.provisional.is_(True),
                )
            )
    except IntegrityError:
        return False
    return True


async def _apply_post_counts(
    session: AsyncSession, changes: dict[uuid.UUID, PostCountChange], authors: dict[uuid.UUID, str]
) -> None:
    """Move post counts; an author without a profile yet gets a provisional one."""
    for user_id, change in sorted(changes.items()):
        if not change.moves_anything:
            continue
        updated = await session.scalar(
            sql_update(Profile)
            .where(Profile.id == user_id)
            .values(posts_count=change.new_count)
            .returning(Profile.id)
        )
        if updated is None and user_id in authors:
            username = authors[user_id]
            stmt = pg_insert(Profile).values(
                id=user_id,
                username=username,
                name=username,
                provisional=True,
                posts_count=change.from_zero,
            )
            try:
                async with session.begin_nested():  # a racing just-in-time insert may win
                    await session.execute(
                        stmt.on_conflict_do_update(
                            index_elements=[Profile.id], set_={"posts_count": change.new_count}
                        )
                    )
            except IntegrityError:
                log.warning(
                    "post count of %s lost: username %r belongs to another user", user_id, username
                )


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error.get("loc", ())) or "data"
    return f"{where}: {error.get('msg', 'invalid')}"


async def prune_processed_events(database: Database, retention: timedelta) -> None:
    """Forget event ids older than Kafka keeps events: they cannot be delivered again."""
    async with database.transaction() as session:
        cutoff = select(func.now() - retention).scalar_subquery()
        result = await session.execute(
            delete(ProcessedEvent).where(ProcessedEvent.processed_at < cutoff)
        )
        removed = getattr(result, "rowcount", 0)
    if removed:
        log.info("forgot %d processed event ids", removed)
