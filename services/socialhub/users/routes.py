"""The users API. Every route is private: the gateway verified the caller (`CurrentUser`)."""

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic_core import to_json

from socialhub.kit.database import Database, SessionDep
from socialhub.kit.identity import CurrentUser
from socialhub.kit.openapi import errors
from socialhub.kit.pagination import (
    DEFAULT_LIMIT,
    INVALID_CURSOR,
    CursorQuery,
    LimitQuery,
    next_link,
)
from socialhub.kit.responses import JsonText, json_model
from socialhub.users.cache import ProfileCache
from socialhub.users.pagination import FollowCursor, SearchCursor
from socialhub.users.schemas import (
    USERNAME_PATTERN,
    BlockState,
    FollowPage,
    FollowState,
    ProfileOut,
    ProfileUpdate,
    SearchPage,
    SearchQuery,
)
from socialhub.users.service import GraphWrite, UsersService, Write

router = APIRouter(prefix="/users", tags=["users"])


async def _service(request: Request) -> UsersService:
    service: UsersService = request.app.state.users
    return service


Users = Annotated[UsersService, Depends(_service)]


async def _write(request: Request) -> AsyncIterator[Write]:
    """The request's session transaction and the profiles it changed, whose cache entries go
    once it committed: the code after `yield` runs only when the commit succeeded."""
    database: Database = request.app.state.database
    async with database.transaction() as session:
        write = Write(session)
        yield write
    await _uncache(request, write.changed)


async def _graph_write(request: Request) -> AsyncIterator[GraphWrite]:
    """The same for the follow graph, on a plain asyncpg transaction. Each is one dependency,
    not a session dependency inside another: a level costs ~0.1 ms of CPU (loadtests/REPORT.md)."""
    database: Database = request.app.state.database
    async with database.driver_transaction() as connection:
        write = GraphWrite(connection)
        yield write
    await _uncache(request, write.changed)


async def _uncache(request: Request, changed: set[uuid.UUID]) -> None:
    cache: ProfileCache = request.app.state.profile_cache
    await cache.invalidate(changed)


WriteDep = Annotated[Write, Depends(_write, scope="function")]
GraphWriteDep = Annotated[GraphWrite, Depends(_graph_write, scope="function")]
UserId = Annotated[uuid.UUID, Path(description="a user id (UUID)")]
NEW_PROFILE_TAKEN = (409, "a new profile's username is held by another account")
SELF = (400, "the user is the caller")


@router.get("/me", response_model=ProfileOut, responses=errors(NEW_PROFILE_TAKEN))
async def get_me(me: CurrentUser, session: SessionDep, users: Users) -> Response:
    return JsonText(await users.me(session, me))


@router.patch("/me", response_model=ProfileOut, responses=errors(NEW_PROFILE_TAKEN))
async def update_me(
    body: ProfileUpdate, me: CurrentUser, write: WriteDep, users: Users
) -> Response:
    return JsonText(await users.update_me(write, me, body))


@router.get("/search", response_model=SearchPage, responses=errors(INVALID_CURSOR))
async def search(
    me: CurrentUser,
    session: SessionDep,
    users: Users,
    request: Request,
    q: Annotated[SearchQuery, Query()],
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Response:
    """Users whose username or name starts with `q` (case-insensitive), by username."""
    after = SearchCursor.decode(cursor) if cursor is not None else None
    items, last = await users.search(session, me.id, q, after, limit)
    return _page(request, items, last.encode() if last else None)


@router.get("/by-username/{username}", response_model=ProfileOut, responses=errors(404))
async def get_by_username(
    me: CurrentUser,
    session: SessionDep,
    users: Users,
    username: Annotated[str, Path(pattern=USERNAME_PATTERN)],
) -> Response:
    return JsonText(await users.profile_by_username(session, username.lower()))


@router.post(
    "/follow/{user_id}",
    response_model=FollowState,
    responses=errors(SELF, (403, "a block between the two users, either way"), 404),
)
async def follow(user_id: UserId, me: CurrentUser, write: GraphWriteDep, users: Users) -> Response:
    """Follow a user; following again is not an error and changes nothing."""
    return json_model(await users.follow(write, me, user_id))


@router.delete("/follow/{user_id}", response_model=FollowState, responses=errors(SELF, 404))
async def unfollow(
    user_id: UserId, me: CurrentUser, write: GraphWriteDep, users: Users
) -> Response:
    return json_model(await users.unfollow(write, me, user_id))


@router.post("/block/{user_id}", response_model=BlockState, responses=errors(SELF, 404))
async def block(user_id: UserId, me: CurrentUser, write: GraphWriteDep, users: Users) -> Response:
    """Block a user: follows between you end both ways, and they cannot follow you."""
    return json_model(await users.block(write, me, user_id))


@router.delete("/block/{user_id}", response_model=BlockState, responses=errors(SELF, 404))
async def unblock(user_id: UserId, me: CurrentUser, write: GraphWriteDep, users: Users) -> Response:
    return json_model(await users.unblock(write, me, user_id))


@router.get(
    "/{user_id}/followers", response_model=FollowPage, responses=errors(INVALID_CURSOR, 404)
)
async def followers(
    user_id: UserId,
    me: CurrentUser,
    users: Users,
    request: Request,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Response:
    """Who follows the user, newest first."""
    after = FollowCursor.decode(cursor) if cursor is not None else None
    items, last = await users.followers(me.id, user_id, after, limit)
    return _page(request, items, last.encode() if last else None)


@router.get(
    "/{user_id}/following", response_model=FollowPage, responses=errors(INVALID_CURSOR, 404)
)
async def following(
    user_id: UserId,
    me: CurrentUser,
    users: Users,
    request: Request,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Response:
    """Whom the user follows, newest first."""
    after = FollowCursor.decode(cursor) if cursor is not None else None
    items, last = await users.following(me.id, user_id, after, limit)
    return _page(request, items, last.encode() if last else None)


@router.get("/{user_id}", response_model=ProfileOut, responses=errors(404))
async def get_user(user_id: UserId, me: CurrentUser, session: SessionDep, users: Users) -> Response:
    return JsonText(await users.profile(session, user_id))


# Answers are serialised here, once: `response_model` only documents them (FastAPI does not
# validate a returned Response again), which keeps a second validation pass off the hot paths.


def _page(request: Request, items: list[dict[str, Any]], next_cursor: str | None) -> Response:
    """`{"items": [...], "nextCursor": ...}`, with a `Link` to the next page when there is one."""
    response = JsonText(to_json({"items": items, "nextCursor": next_cursor}))
    if next_cursor:
        response.headers["Link"] = next_link(request.url, next_cursor)
    return response
