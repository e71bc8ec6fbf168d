"""Profiles, follows and blocks.

Write paths lock the two profiles involved (in id order, so concurrent A->B and B->A cannot
deadlock) before touching the graph: that serialises a follow against a concurrent block of the
same pair, keeps the denormalised counters exact, and tells whether the other user exists.
Counters change in the same statement as the edge they count; events go through the outbox in
the same transaction. A write that changes nothing (following twice, unblocking a stranger)
emits nothing.

Profiles travel as JSON text: that is what the cache stores and what a cache hit answers with,
without parsing or re-validating it on the way.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from socialhub.contracts.events import (
    UserBlocked,
    UserFollowed,
    UserUnblocked,
    UserUnfollowed,
    UserUpdated,
)
from socialhub.kit.database import Database
from socialhub.kit.errors import bad_request, conflict, forbidden, not_found, unauthorized
from socialhub.kit.events.outbox import Outbox
from socialhub.kit.identity import Principal
from socialhub.kit.sql import Connection, Runner, Statement
from socialhub.users import queries
from socialhub.users.cache import ProfileCache
from socialhub.users.models import USERNAME_MAX, Profile
from socialhub.users.pagination import FollowCursor, SearchCursor
from socialhub.users.schemas import BlockState, FollowState, ProfileOut, ProfileUpdate

NEW_USER_POLL_SECONDS = 0.05
ListItem = dict[str, Any]


@dataclass
class Write:
    """A request's transaction and the profiles it changed (uncached once it commits)."""

    session: AsyncSession
    changed: set[uuid.UUID] = field(default_factory=set)


@dataclass
class GraphWrite:
    """A follow-graph change's transaction, a plain asyncpg one (kit.sql: the follow path is on
    a published rate), and the profiles it changed (uncached once it commits)."""

    connection: Connection
    changed: set[uuid.UUID] = field(default_factory=set)


def now_ms() -> int:
    return int(time.time() * 1000)


def profile_json(profile: Profile) -> str:
    return ProfileOut.model_validate(profile).model_dump_json(by_alias=True)


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


class UsersService:
    def __init__(
        self,
        database: Database,
        cache: ProfileCache,
        outbox: Outbox,
        *,
        new_user_wait_seconds: float = 2.0,
        max_waiting: int = 4,
    ) -> None:
        self.database = database
        self.cache = cache
        self.outbox = outbox
        self.new_user_wait_seconds = new_user_wait_seconds
        # Waiting holds a database connection: only a few requests may wait at once.
        self._waiting = asyncio.Semaphore(max_waiting)

    # -- profiles ----------------------------------------------------------------------------

    async def me(self, session: AsyncSession, me: Principal) -> str:
        """The caller's profile (JSON), created from the gateway's payload if it is new."""
        found = await self._profile(session, me.id)
        if found is None:  # auth's user.created has not arrived yet
            return profile_json(await self._create_provisional(session, me))
        return found

    async def profile(self, session: AsyncSession, user_id: uuid.UUID) -> str:
        found = await self._profile(session, user_id)
        if found is None:
            raise not_found("user")
        return found

    async def profile_by_username(self, session: AsyncSession, username: str) -> str:
        row = await queries.ID_BY_USERNAME.fetchrow(session, {"username": username})
        if row is None:
            raise not_found("user")
        return await self.profile(session, row["id"])

    async def update_me(self, write: Write, me: Principal, changes: ProfileUpdate) -> str:
        session = write.session
        profile = await session.get(Profile, me.id, with_for_update=True)
        if profile is None:
            profile = await self._create_provisional(session, me)
        before = profile_json(profile)
        sent = changes.model_fields_set
        if "name" in sent and changes.name is not None:
            profile.name = changes.name
            profile.provisional = False  # the user's choice wins over a late user.created
        if "bio" in sent:
            profile.bio = changes.bio or ""
        if "avatar_url" in sent:
            profile.avatar_url = str(changes.avatar_url) if changes.avatar_url else None
        after = profile_json(profile)
        if after == before:
            return after
        profile.updated_at = datetime.now(UTC)
        await session.flush()
        await self.outbox.emit(
            session,
            UserUpdated(
                user_id=me.id,
                username=profile.username,
                name=profile.name,
                bio=profile.bio,
                avatar_url=profile.avatar_url,
            ),
        )
        write.changed.add(me.id)
        return after

    async def search(
        self,
        session: AsyncSession,
        viewer: uuid.UUID,
        query: str,
        cursor: SearchCursor | None,
        limit: int,
    ) -> tuple[list[ListItem], SearchCursor | None]:
        """Username or name starting with `query` (case-insensitive), by username."""
        pattern = _like_prefix(query)
        stmt = (
            select(Profile.id, Profile.username, Profile.name, Profile.avatar_url)
            .where(
                or_(
                    Profile.username.like(pattern, escape="\\"),
                    func.lower(Profile.name).like(pattern, escape="\\"),
                ),
                ~queries.blocked_between(viewer, Profile.id),
            )
            .order_by(Profile.username)
            .limit(limit + 1)
        )
        if cursor is not None:
            stmt = stmt.where(Profile.username > cursor.username)
        rows = (await session.execute(stmt)).all()
        items = [
            {"id": r.id, "username": r.username, "name": r.name, "avatarUrl": r.avatar_url}
            for r in rows[:limit]
        ]
        more = len(rows) > limit
        return items, SearchCursor(rows[limit - 1].username) if more else None

    # -- the follow graph --------------------------------------------------------------------

    async def follow(self, write: GraphWrite, me: Principal, target: uuid.UUID) -> FollowState:
        connection = write.connection
        if target == me.id:
            raise bad_request("you cannot follow yourself", userId="is your own id")
        target_username = await self._lock_pair(connection, me, target, wait_for_new_user=True)
        pair = {"me": me.id, "target": target}
        followed = await queries.FOLLOW.fetchrow(connection, pair)
        if followed is None:  # already following, or a block is in the way
            blocker = await queries.BLOCKER.fetchrow(connection, pair)
            if blocker is not None and blocker["blocker_id"] == target:
                raise forbidden("this user has blocked you")
            if blocker is not None:
                raise forbidden("you have blocked this user; unblock them to follow")
            return FollowState(follower_id=me.id, following_id=target, is_following=True)
        await self.outbox.emit(
            connection,
            UserFollowed(
                follower_id=me.id,
                follower_username=me.username,
                following_id=target,
                following_username=target_username,
                timestamp=int(followed["followed_at"].timestamp() * 1000),
            ),
        )
        write.changed.update((me.id, target))
        return FollowState(follower_id=me.id, following_id=target, is_following=True)

    async def unfollow(self, write: GraphWrite, me: Principal, target: uuid.UUID) -> FollowState:
        if target == me.id:
            raise bad_request("you cannot unfollow yourself", userId="is your own id")
        await self._lock_pair(write.connection, me, target)
        ended = await queries.UNFOLLOW.fetchrow(write.connection, {"me": me.id, "target": target})
        if ended is not None:
            await self._unfollowed(write, me.id, target)
        return FollowState(follower_id=me.id, following_id=target, is_following=False)

    async def followers(
        self, viewer: uuid.UUID, user_id: uuid.UUID, cursor: FollowCursor | None, limit: int
    ) -> tuple[list[ListItem], FollowCursor | None]:
        """Who follows `user_id`, newest first."""
        page = queries.FOLLOWERS_AFTER if cursor else queries.FOLLOWERS_FIRST
        return await self._follow_page(page, viewer, user_id, cursor, limit)

    async def following(
        self, viewer: uuid.UUID, user_id: uuid.UUID, cursor: FollowCursor | None, limit: int
    ) -> tuple[list[ListItem], FollowCursor | None]:
        """Whom `user_id` follows, newest first."""
        page = queries.FOLLOWING_AFTER if cursor else queries.FOLLOWING_FIRST
        return await self._follow_page(page, viewer, user_id, cursor, limit)

    # -- blocks ------------------------------------------------------------------------------

    async def block(self, write: GraphWrite, me: Principal, target: uuid.UUID) -> BlockState:
        """Block `target`: follows between the two end both ways (each with its event)."""
        connection = write.connection
        if target == me.id:
            raise bad_request("you cannot block yourself", userId="is your own id")
        await self._lock_pair(connection, me, target, wait_for_new_user=True)
        created = await queries.BLOCK.fetchval(connection, {"me": me.id, "target": target})
        if created is not None:
            for follower, followed in ((me.id, target), (target, me.id)):
                ended = await queries.UNFOLLOW.fetchrow(
                    connection, {"me": follower, "target": followed}
                )
                if ended is not None:
                    await self._unfollowed(write, follower, followed)
            await self.outbox.emit(
                connection,
                UserBlocked(
                    blocker_id=me.id, blocked_id=target, timestamp=int(created.timestamp() * 1000)
                ),
            )
        return BlockState(blocker_id=me.id, blocked_id=target, is_blocking=True)

    async def unblock(self, write: GraphWrite, me: Principal, target: uuid.UUID) -> BlockState:
        """Lift a block; follows that it ended stay ended."""
        connection = write.connection
        if target == me.id:
            raise bad_request("you cannot unblock yourself", userId="is your own id")
        if await queries.PROFILE_EXISTS.fetchval(connection, {"user_id": target}) is None:
            raise not_found("user")
        removed = await queries.UNBLOCK.fetchval(connection, {"me": me.id, "target": target})
        if removed is not None:
            await self.outbox.emit(
                connection, UserUnblocked(blocker_id=me.id, blocked_id=target, timestamp=now_ms())
            )
        return BlockState(blocker_id=me.id, blocked_id=target, is_blocking=False)

    # -- internals ---------------------------------------------------------------------------

    async def _profile(self, session: AsyncSession, user_id: uuid.UUID) -> str | None:
        """A profile with its counts (JSON): from Redis, else PostgreSQL (then cached)."""
        cached, version = await self.cache.get(user_id)
        if cached is not None:
            return cached
        row = await queries.PROFILE_BY_ID.fetchrow(session, {"user_id": user_id})
        if row is None:
            return None
        data = ProfileOut.model_validate(dict(row)).model_dump_json(by_alias=True)
        await self.cache.fill(user_id, version, data)
        return data

    async def _create_provisional(self, session: AsyncSession, me: Principal) -> Profile:
        """The caller's profile from the gateway's payload, for the ORM (profile reads and
        edits); user.created fills in the name."""
        await self._ensure_profile(session, me)
        profile = await session.get(Profile, me.id, populate_existing=True)
        assert profile is not None  # _ensure_profile raised otherwise
        return profile

    async def _ensure_profile(self, on: Runner, me: Principal) -> None:
        if not 0 < len(me.username) <= USERNAME_MAX or not me.username.isprintable():
            raise unauthorized("the verified user payload carries an invalid username")
        params = {"me": me.id, "username": me.username}
        await queries.CREATE_PROVISIONAL.execute(on, params)
        if await queries.PROFILE_EXISTS.fetchval(on, {"user_id": me.id}) is None:
            # another account holds that username: auth would never allow it
            raise conflict("a different account already has this username")

    async def _lock_pair(
        self,
        connection: Connection,
        me: Principal,
        other: uuid.UUID,
        *,
        wait_for_new_user: bool = False,
    ) -> str:
        """Lock both profiles (creating the caller's if needed); returns the other's username.

        With `wait_for_new_user`, an unknown other user gets a short grace period: an account
        created a moment ago reaches this service through auth's `user.created` event, and
        "sign up, then get followed at once" (the Quick Start) must not answer 404.
        """
        usernames = await self._lock_profiles(connection, me.id, other)
        if other not in usernames and wait_for_new_user and await self._arrived(connection, other):
            usernames = await self._lock_profiles(connection, me.id, other)
        if other not in usernames:
            raise not_found("user")
        if me.id not in usernames:
            await self._ensure_profile(connection, me)
        return usernames[other]

    async def _lock_profiles(
        self, connection: Connection, me: uuid.UUID, other: uuid.UUID
    ) -> dict[uuid.UUID, str]:
        rows = await queries.LOCK_PAIR.fetch(connection, {"me": me, "target": other})
        return {row["id"]: row["username"] for row in rows}

    async def _arrived(self, connection: Connection, user_id: uuid.UUID) -> bool:
        if self.new_user_wait_seconds <= 0 or self._waiting.locked():
            return False
        async with self._waiting:
            deadline = time.monotonic() + self.new_user_wait_seconds
            while time.monotonic() < deadline:
                await asyncio.sleep(NEW_USER_POLL_SECONDS)
                if await queries.PROFILE_EXISTS.fetchval(connection, {"user_id": user_id}):
                    return True
        return False

    async def _unfollowed(
        self, write: GraphWrite, follower: uuid.UUID, followed: uuid.UUID
    ) -> None:
        await self.outbox.emit(
            write.connection,
            UserUnfollowed(follower_id=follower, following_id=followed, timestamp=now_ms()),
        )
        write.changed.update((follower, followed))

    async def _follow_page(
        self,
        page: Statement,
        viewer: uuid.UUID,
        user_id: uuid.UUID,
        cursor: FollowCursor | None,
        limit: int,
    ) -> tuple[list[ListItem], FollowCursor | None]:
        params: dict[str, Any] = {"user_id": user_id, "viewer": viewer, "limit": limit + 1}
        if cursor is not None:
            params.update(after_at=cursor.followed_at, after_id=cursor.follow_id)
        # reads only: each statement on its own (autocommit), no session
        async with self.database.connection() as connection:
            rows = await page.fetch(connection, params)
            if not rows and not await queries.PROFILE_BY_ID.fetchrow(
                connection, {"user_id": user_id}
            ):
                raise not_found("user")
        items = [
            {
                "id": r["id"],
                "username": r["username"],
                "name": r["name"],
                "avatarUrl": r["avatar_url"],
                "followedAt": r["followed_at"],
            }
            for r in rows[:limit]
        ]
        if len(rows) <= limit:
            return items, None
        last = rows[limit - 1]
        return items, FollowCursor(last["followed_at"], last["follow_id"])
