"""Rooms, access and history: what the Socket.IO handlers and the HTTP routes share."""

import uuid
from collections.abc import Sequence

from redis.asyncio import Redis

from socialhub.chat.blocks import BlockStore
from socialhub.chat.fanout import encode_event
from socialhub.chat.rooms import (
    InvalidRoomIdError,
    Room,
    RoomKind,
    dm_room_id,
    new_group_id,
    parse_room,
)
from socialhub.chat.settings import ChatSettings
from socialhub.chat.store import Group, GroupStore, MessageStore, Page
from socialhub.contracts.channels import user_push
from socialhub.kit.errors import ApiError, bad_request, conflict, forbidden, not_found

NOT_A_MEMBER = "you are not a member of this room"
YOU_BLOCKED = "you have blocked this user; unblock them to send them direct messages"
BLOCKED_YOU = "this user has blocked you"
# Internal room-channel event: the named user's sockets must leave the room (a removed group
# member, a direct-message room a block closed).
EVICT = "evict"
REMOVED_FROM_GROUP = "you were removed from this group"


def storage_unavailable() -> ApiError:
    return ApiError(503, "unavailable", "chat storage unavailable, retry shortly")


class ChatService:
    def __init__(self, settings: ChatSettings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.messages = MessageStore(redis, max_per_room=settings.chat_history_max_per_room)
        self.groups = GroupStore(redis, max_members=settings.chat_group_max_members)
        self.blocks = BlockStore(redis)

    def room_channel(self, room_id: str) -> str:
        return self.settings.channel(f"chat:room:{room_id}")

    def push_channel(self, user_id: uuid.UUID | str) -> str:
        return self.settings.channel(user_push(user_id))

    async def authorize(self, room_id: object, user_id: uuid.UUID) -> Room:
        """The room, if `user_id` may join and read it; otherwise an ApiError (nothing leaks)."""
        try:
            room = parse_room(room_id)
        except InvalidRoomIdError as exc:
            raise bad_request(str(exc)) from None
        if room.kind is RoomKind.DM:
            assert room.participants is not None
            if user_id not in room.participants:
                raise forbidden("this direct-message room belongs to two other users")
            await self.refuse_if_blocked(room, user_id)
        elif room.kind is RoomKind.GROUP:
            exists, member = await self.groups.membership(room.id, user_id)
            if not exists:
                raise not_found("group room")
            if not member:
                raise forbidden(NOT_A_MEMBER)
        return room

    async def direct_room(self, user_id: uuid.UUID, other: uuid.UUID) -> str:
        """The id of the two users' direct-message room, unless a block closes it."""
        if other == user_id:
            raise bad_request("a direct-message room needs two different users")
        return (await self.authorize(dm_room_id(user_id, other), user_id)).id

    async def refuse_if_blocked(self, room: Room, user_id: uuid.UUID) -> None:
        """A direct-message room is closed while either of its users blocks the other."""
        if room.kind is not RoomKind.DM:
            return
        blockers = await self.blocks.blockers(room.id)
        if user_id in blockers:
            raise forbidden(YOU_BLOCKED)
        if blockers:
            raise forbidden(BLOCKED_YOU)

    async def history(
        self, room_id: str, user_id: uuid.UUID, before: str | None, limit: int
    ) -> Page:
        room = await self.authorize(room_id, user_id)
        return await self.messages.page(room.id, before, limit)

    async def create_group(self, owner: uuid.UUID, name: str, members: set[uuid.UUID]) -> Group:
        return await self.groups.create(new_group_id(), name, owner, members)

    async def group(self, room_id: str, user_id: uuid.UUID) -> Group:
        room = await self.authorize(room_id, user_id)
        if room.kind is not RoomKind.GROUP:
            raise not_found("group room")
        group = await self.groups.get(room.id)
        if group is None:
            raise not_found("group room")
        return group

    async def add_members(self, room_id: str, actor: uuid.UUID, members: set[uuid.UUID]) -> Group:
        group = await self._owned(room_id, actor)
        await self.groups.add_members(group.id, members)
        return await self.group(group.id, actor)

    async def remove_member(self, room_id: str, actor: uuid.UUID, member: uuid.UUID) -> None:
        """The owner removes anyone but themself; a member may remove (leave) themself."""
        group = await self.group(room_id, actor)
        if member == group.owner_id:
            raise conflict("the owner cannot leave their group")
        if actor not in (group.owner_id, member):
            raise forbidden("only the group's owner manages its members")
        if not await self.groups.remove_member(group.id, member):
            raise not_found("member")
        await self.evict(group.id, [member], REMOVED_FROM_GROUP)

    async def evict(self, room_id: str, users: Sequence[uuid.UUID], message: str) -> None:
        """Make the users' sockets leave the room on every instance, told why (`removed`)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.publish(
                    self.room_channel(room_id),
                    encode_event(
                        EVICT, {"roomId": room_id, "userId": str(user), "message": message}
                    ),
                )
            await pipe.execute()

    async def _owned(self, room_id: str, actor: uuid.UUID) -> Group:
        group = await self.group(room_id, actor)
        if group.owner_id != actor:
            raise forbidden("only the group's owner manages its members")
        return group
