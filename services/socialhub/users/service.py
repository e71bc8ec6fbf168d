"""Profiles, follows and blocks.

Write paths lock the two profiles involved (in id order, so concurrent A->B and B->A cannot
deadlock) before touching the graph: that serialises a follow against a concurrent block of the
same pair, keeps the denormalised counters exact, and tells whether the other user exists.
Counters change in the same transaction as the edge they count; events go through the outbox in
it too. A write that changes nothing (following twice, unblocking a stranger) emits nothing.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from socialhub.kit.errors import bad_request, conflict, forbidden, not_found, unauthorized
from socialhub.kit.events.outbox import Outbox
from socialhub.kit.events.topics import USER_TOPIC
from socialhub.kit.identity import Principal
from socialhub.users.cache import ProfileCache
from socialhub.users.models import USERNAME_MAX, Block, Follow, Profile
from socialhub.users.pagination import FollowCursor, SearchCursor
from socialhub.users.schemas import (
    BlockState,
    FollowListItem,
    FollowState,
    ProfileOut,
    ProfileUpdate,
    UserSummary,
)

ProfileData = dict[str, Any]
NEW_USER_POLL_SECONDS = 0.05


@dataclass
class Write:
    """A request's transaction and the profiles it changed (uncached once it commits)."""

    session: AsyncSession
    changed: set[uuid.UUID] = field(default_factory=set)


def now_ms() -> int:
    return int(time.time() * 1000)


def profile_data(profile: Profile) -> ProfileData:
    return ProfileOut.model_validate(profile).model_dump(mode="json", by_alias=True)


def blocked_between(a: Any, b: Any) -> ColumnElement[bool]:
    """Whether either of two users blocks the other."""
    return exists().where(or_(and_(Block.blocker_id == a, Block.blocked_id == b),
                              and_(Block.blocker_id == b, Block.blocked_id == a)))


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


class UsersService:
    def __init__(self, cache: ProfileCache, outbox: Outbox, *,
                 new_user_wait_seconds: float = 2.0, max_waiting: int = 4) -> None:
        self.cache = cache
        self.outbox = outbox
        self.new_user_wait_seconds = new_user_wait_seconds
        # Waiting holds a database connection: only a few requests may wait at once.
        self._waiting = asyncio.Semaphore(max_waiting)

    # -- profiles ----------------------------------------------------------------------------

    async def me(self, session: AsyncSession, me: Principal) -> ProfileData:
        cached, version = await self.cache.get(me.id)
        if cached is not None:
            return cached
        profile = await session.get(Profile, me.id)
        if profile is None:  # auth's user.created has not arrived yet
            return profile_data(await self._create_provisional(session, me))
        data = profile_data(profile)
        await self.cache.fill(me.id, version, data)
        return data

    async def profile(self, session: AsyncSession, user_id: uuid.UUID) -> ProfileData:
        cached, version = await self.cache.get(user_id)
        if cached is not None:
            return cached
        profile = await session.get(Profile, user_id)
        if profile is None:
            raise not_found("user")
        data = profile_data(profile)
        await self.cache.fill(user_id, version, data)
        return data

    async def profile_by_username(self, session: AsyncSession, username: str) -> ProfileData:
        user_id = await session.scalar(select(Profile.id).where(Profile.username == username))
        if user_id is None:
            raise not_found("user")
        return await self.profile(session, user_id)

    async def update_me(self, write: Write, me: Principal, changes: ProfileUpdate) -> ProfileData:
        session = write.session
        profile = await session.get(Profile, me.id, with_for_update=True)
        if profile is None:
            profile = await self._create_provisional(session, me)
        before = profile_data(profile)
        sent = changes.model_fields_set
        if "name" in sent and changes.name is not None:
            profile.name = changes.name
            profile.provisional = False  # the user's choice wins over a late user.created
        if "bio" in sent:
            profile.bio = changes.bio or ""
        if "avatar_url" in sent:
            profile.avatar_url = str(changes.avatar_url) if changes.avatar_url else None
        after = profile_data(profile)
        if after == before:
            return after
        profile.updated_at = datetime.now(UTC)
        await session.flush()
        await self.outbox.emit(session, USER_TOPIC, "user.updated", {
            "userId": str(me.id), "username": profile.username, "name": profile.name,
            "bio": profile.bio, "avatarUrl": profile.avatar_url}, key=str(me.id))
        write.changed.add(me.id)
        return after

    async def search(self, session: AsyncSession, viewer: uuid.UUID, query: str,
                     cursor: SearchCursor | None, limit: int) -> tuple[list[UserSummary],
                                                                      SearchCursor | None]:
        """Username or name starting with `query` (case-insensitive), by username."""
        pattern = _like_prefix(query)
        stmt = (select(Profile.id, Profile.username, Profile.name, Profile.avatar_url)
                .where(or_(Profile.username.like(pattern, escape="\\"),
                           func.lower(Profile.name).like(pattern, escape="\\")),
                       ~blocked_between(viewer, Profile.id))
                .order_by(Profile.username).limit(limit + 1))
        if cursor is not None:
            stmt = stmt.where(Profile.username > cursor.username)
        rows = (await session.execute(stmt)).all()
        items = [UserSummary(id=r.id, username=r.username, name=r.name, avatar_url=r.avatar_url)
                 for r in rows[:limit]]
        more = len(rows) > limit
        return items, SearchCursor(items[-1].username) if more else None

    # -- the follow graph --------------------------------------------------------------------

    async def follow(self, write: Write, me: Principal, target: uuid.UUID) -> FollowState:
        session = write.session
        if target == me.id:
            raise bad_request("you cannot follow yourself", userId="is your own id")
        target_username = await self._lock_pair(session, me, target, wait_for_new_user=True)
        followed_at = await session.scalar(
            pg_insert(Follow)
            .from_select(["follower_id", "following_id", "is_active"],
                         select(literal(me.id, Uuid), literal(target, Uuid), true())
                         .where(~blocked_between(me.id, target)))
            .on_conflict_do_update(constraint="uq_follows_pair",
                                   set_={"is_active": True, "followed_at": func.now(),
                                         "updated_at": func.now()},
                                   where=Follow.is_active.is_(False))
            .returning(Follow.followed_at))
        if followed_at is None:  # already following, or a block is in the way
            blocker = await session.scalar(select(Block.blocker_id).where(
                or_(and_(Block.blocker_id == me.id, Block.blocked_id == target),
                    and_(Block.blocker_id == target, Block.blocked_id == me.id))).limit(1))
            if blocker == target:
                raise forbidden("this user has blocked you")
            if blocker == me.id:
                raise forbidden("you have blocked this user; unblock them to follow")
            return FollowState(follower_id=me.id, following_id=target, is_following=True)
        await self._adjust_counts(session, followers={target: 1}, following={me.id: 1})
        await self.outbox.emit(session, USER_TOPIC, "user.followed", {
            "followerId": str(me.id), "followerUsername": me.username,
            "followingId": str(target), "followingUsername": target_username,
            "timestamp": int(followed_at.timestamp() * 1000)}, key=str(me.id))
        write.changed.update((me.id, target))
        return FollowState(follower_id=me.id, following_id=target, is_following=True)

    async def unfollow(self, write: Write, me: Principal, target: uuid.UUID) -> FollowState:
        session = write.session
        if target == me.id:
            raise bad_request("you cannot unfollow yourself", userId="is your own id")
        await self._lock_pair(session, me, target)
        ended = await self._end_follows(write, [(me.id, target)])
        if ended:
            await self._adjust_counts(session, followers={target: -1}, following={me.id: -1})
        return FollowState(follower_id=me.id, following_id=target, is_following=False)

    async def followers(self, session: AsyncSession, viewer: uuid.UUID, user_id: uuid.UUID,
                        cursor: FollowCursor | None, limit: int
                        ) -> tuple[list[FollowListItem], FollowCursor | None]:
        return await self._follow_list(session, viewer, user_id, cursor, limit,
                                       owner=Follow.following_id, listed=Follow.follower_id)

    async def following(self, session: AsyncSession, viewer: uuid.UUID, user_id: uuid.UUID,
                        cursor: FollowCursor | None, limit: int
                        ) -> tuple[list[FollowListItem], FollowCursor | None]:
        return await self._follow_list(session, viewer, user_id, cursor, limit,
                                       owner=Follow.follower_id, listed=Follow.following_id)

    # -- blocks ------------------------------------------------------------------------------

    async def block(self, write: Write, me: Principal, target: uuid.UUID) -> BlockState:
        """Block `target`: follows between the two end both ways (each with its event)."""
        session = write.session
        if target == me.id:
            raise bad_request("you cannot block yourself", userId="is your own id")
        await self._lock_pair(session, me, target, wait_for_new_user=True)
        created = await session.scalar(
            pg_insert(Block).values(blocker_id=me.id, blocked_id=target)
            .on_conflict_do_nothing().returning(Block.created_at))
        if created is not None:
            ended = await self._end_follows(write, [(me.id, target), (target, me.id)])
            followers: dict[uuid.UUID, int] = {}
            following: dict[uuid.UUID, int] = {}
            for follower, followed in ended:
                following[follower] = following.get(follower, 0) - 1
                followers[followed] = followers.get(followed, 0) - 1
            await self._adjust_counts(session, followers=followers, following=following)
            await self.outbox.emit(session, USER_TOPIC, "user.blocked", {
                "blockerId": str(me.id), "blockedId": str(target),
                "timestamp": int(created.timestamp() * 1000)}, key=str(me.id))
        return BlockState(blocker_id=me.id, blocked_id=target, is_blocking=True)

    async def unblock(self, write: Write, me: Principal, target: uuid.UUID) -> BlockState:
        """Lift a block; follows that it ended stay ended."""
        session = write.session
        if target == me.id:
            raise bad_request("you cannot unblock yourself", userId="is your own id")
        if await session.get(Profile, target) is None:
            raise not_found("user")
        removed = await session.scalar(
            delete(Block).where(Block.blocker_id == me.id, Block.blocked_id == target)
            .returning(Block.blocker_id))
        if removed is not None:
            await self.outbox.emit(session, USER_TOPIC, "user.unblocked", {
                "blockerId": str(me.id), "blockedId": str(target), "timestamp": now_ms()},
                key=str(me.id))
        return BlockState(blocker_id=me.id, blocked_id=target, is_blocking=False)

    # -- internals ---------------------------------------------------------------------------

    async def _create_provisional(self, session: AsyncSession, me: Principal) -> Profile:
        """The caller's profile from the gateway's payload; user.created fills in the name."""
        if not 0 < len(me.username) <= USERNAME_MAX or not me.username.isprintable():
            raise unauthorized("the verified user payload carries an invalid username")
        await session.execute(
            pg_insert(Profile)
            .values(id=me.id, username=me.username, name=me.username, provisional=True)
            .on_conflict_do_nothing())
        profile = await session.get(Profile, me.id, populate_existing=True)
        if profile is None:  # another account holds that username: auth would never allow it
            raise conflict("a different account already has this username")
        return profile

    async def _lock_pair(self, session: AsyncSession, me: Principal, other: uuid.UUID, *,
                         wait_for_new_user: bool = False) -> str:
        """Lock both profiles (creating the caller's if needed); returns the other's username.

        With `wait_for_new_user`, an unknown other user gets a short grace period: an account
        created a moment ago reaches this service through auth's `user.created` event, and
        "sign up, then get followed at once" (the Quick Start) must not answer 404.
        """
        usernames = await self._lock_profiles(session, me.id, other)
        if other not in usernames and wait_for_new_user and await self._arrived(session, other):
            usernames = await self._lock_profiles(session, me.id, other)
        if other not in usernames:
            raise not_found("user")
        if me.id not in usernames:
            await self._create_provisional(session, me)
        return usernames[other]

    async def _lock_profiles(self, session: AsyncSession, *ids: uuid.UUID
                             ) -> dict[uuid.UUID, str]:
        rows = (await session.execute(
            select(Profile.id, Profile.username).where(Profile.id.in_(ids))
            .order_by(Profile.id).with_for_update(key_share=True))).all()
        return {row.id: row.username for row in rows}

    async def _arrived(self, session: AsyncSession, user_id: uuid.UUID) -> bool:
        if self.new_user_wait_seconds <= 0 or self._waiting.locked():
            return False
        async with self._waiting:
            deadline = time.monotonic() + self.new_user_wait_seconds
            while time.monotonic() < deadline:
                await asyncio.sleep(NEW_USER_POLL_SECONDS)
                if await session.scalar(select(Profile.id).where(Profile.id == user_id)):
                    return True
        return False

    async def _end_follows(self, write: Write, pairs: list[tuple[uuid.UUID, uuid.UUID]]
                           ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Deactivate the active follows among `pairs`, with their unfollow events."""
        session = write.session
        rows = (await session.execute(
            sql_update(Follow)
            .where(or_(*(and_(Follow.follower_id == a, Follow.following_id == b)
                         for a, b in pairs)), Follow.is_active.is_(True))
            .values(is_active=False, updated_at=func.now())
            .returning(Follow.follower_id, Follow.following_id))).all()
        timestamp = now_ms()
        for row in rows:
            await self.outbox.emit(session, USER_TOPIC, "user.unfollowed", {
                "followerId": str(row.follower_id), "followingId": str(row.following_id),
                "timestamp": timestamp}, key=str(row.follower_id))
            write.changed.update((row.follower_id, row.following_id))
        return [(row.follower_id, row.following_id) for row in rows]

    async def _adjust_counts(self, session: AsyncSession, *, followers: dict[uuid.UUID, int],
                             following: dict[uuid.UUID, int]) -> None:
        ids = set(followers) | set(following)
        if not ids:
            return

        def delta(changes: dict[uuid.UUID, int]) -> Any:
            if not changes:
                return 0
            return case(*((Profile.id == user, n) for user, n in changes.items()), else_=0)

        await session.execute(
            sql_update(Profile).where(Profile.id.in_(ids))
            .values(followers_count=Profile.followers_count + delta(followers),
                    following_count=Profile.following_count + delta(following))
            .execution_options(synchronize_session=False))

    async def _follow_list(self, session: AsyncSession, viewer: uuid.UUID, user_id: uuid.UUID,
                           cursor: FollowCursor | None, limit: int, *, owner: Any, listed: Any
                           ) -> tuple[list[FollowListItem], FollowCursor | None]:
        stmt = (select(Follow.id.label("follow_id"), Follow.followed_at, Profile.id,
                       Profile.username, Profile.name, Profile.avatar_url)
                .join(Profile, Profile.id == listed)
                .where(owner == user_id, Follow.is_active.is_(True),
                       ~blocked_between(viewer, listed))
                .order_by(Follow.followed_at.desc(), Follow.id.desc())
                .limit(limit + 1))
        if cursor is not None:
            # a row comparison: one range bound on the index, not a filter
            stmt = stmt.where(tuple_(Follow.followed_at, Follow.id)
                              < tuple_(literal(cursor.followed_at), literal(cursor.follow_id)))
        rows = (await session.execute(stmt)).all()
        if not rows and await session.get(Profile, user_id) is None:
            raise not_found("user")
        items = [FollowListItem(id=r.id, username=r.username, name=r.name,
                                avatar_url=r.avatar_url, followed_at=r.followed_at)
                 for r in rows[:limit]]
        if len(rows) <= limit:
            return items, None
        last = rows[limit - 1]
        return items, FollowCursor(last.followed_at, last.follow_id)
