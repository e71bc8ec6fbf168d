"""The notification API (`/notify/...` through the gateway): the caller's own notifications only.

Someone else's notification answers 404 exactly like a missing one, so ids leak nothing.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from socialhub.kit.errors import not_found
from socialhub.kit.identity import CurrentUser
from socialhub.kit.openapi import errors
from socialhub.kit.pagination import (
    DEFAULT_LIMIT,
    INVALID_CURSOR,
    CursorQuery,
    LimitQuery,
    set_next_link,
)
from socialhub.notifications.models import Notification, NotificationType
from socialhub.notifications.schemas import (
    NotificationPage,
    ReadAllResult,
    page_cursor,
    page_position,
)
from socialhub.notifications.store import NotificationStore

router = APIRouter(prefix="/notify/notifications", tags=["notifications"])
NOT_FOUND = (404, "no such notification of the caller's")


async def _store(request: Request) -> NotificationStore:
    store: NotificationStore = request.app.state.notifications
    return store


Store = Annotated[NotificationStore, Depends(_store)]


@router.get("", response_model=NotificationPage, responses=errors(INVALID_CURSOR))
async def list_notifications(
    request: Request,
    response: Response,
    user: CurrentUser,
    store: Store,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    kind: Annotated[NotificationType | None, Query(alias="type")] = None,
    unread: Annotated[
        bool | None, Query(description="true: only unread; false: only read; absent: both")
    ] = None,
    mark_read: Annotated[
        bool,
        Query(
            alias="markRead",
            description="mark the returned notifications read (they are returned as they were)",
        ),
    ] = False,
) -> NotificationPage:
    user_id = str(user.id)
    after = page_position(cursor) if cursor is not None else None
    read = None if unread is None else not unread
    found = await store.page(user_id, limit=limit + 1, after=after, kind=kind, read=read)
    page = found[:limit]
    if mark_read:
        await store.mark_read(user_id, [n.id for n in page if not n.read])
    next_cursor = page_cursor(page[-1]) if len(found) > limit else None
    set_next_link(request, response, next_cursor)
    return NotificationPage(
        items=page,
        notifications=page,
        next_cursor=next_cursor,
        unread_count=await store.unread_count(user_id),
    )


@router.patch("/{notification_id}/read", response_model=Notification, responses=errors(NOT_FOUND))
async def mark_read(notification_id: uuid.UUID, user: CurrentUser, store: Store) -> Notification:
    notification = await store.mark_one_read(str(user.id), str(notification_id))
    if notification is None:
        raise not_found("notification")
    return notification


@router.post("/read-all", response_model=ReadAllResult)
async def mark_all_read(user: CurrentUser, store: Store) -> ReadAllResult:
    updated = await store.mark_read(str(user.id))
    return ReadAllResult(updated=updated, unread_count=await store.unread_count(str(user.id)))


@router.delete(
    "/{notification_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(NOT_FOUND)
)
async def delete_notification(
    notification_id: uuid.UUID, user: CurrentUser, store: Store
) -> Response:
    if not await store.delete(str(user.id), str(notification_id)):
        raise not_found("notification")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
