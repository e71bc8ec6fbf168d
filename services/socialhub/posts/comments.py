"""Comments: threads nested to a bounded depth, read as a tree paginated at the top level.

A page holds top-level comments oldest first (a conversation reads top-down), each with its
first replies (`COMMENT_REPLIES_PREVIEW` per comment, recursively) and `replyCount`; the rest of
a comment's replies are paged with `?parentId=`. Comments by someone the reader blocked, or who
blocked the reader, are hidden with their replies. Deleting a comment deletes its replies.
"""

import uuid
from typing import Any

from sqlalchemy import Row, case, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from socialhub.contracts.events import CommentReplied, PostCommented
from socialhub.kit.errors import ApiError, forbidden, not_found
from socialhub.kit.events.outbox import Outbox
from socialhub.kit.identity import Principal
from socialhub.posts.models import blocks, comments, posts
from socialhub.posts.pagination import Position, now_ms_precision, to_ms
from socialhub.posts.schemas import CommentOut, CreateCommentRequest
from socialhub.posts.service import PostService
from socialhub.posts.settings import PostsSettings

LIVE_COMMENT = comments.c.deleted_at.is_(None)
OLDEST_FIRST = (comments.c.created_at, comments.c.id)


class CommentService:
    def __init__(self, posts: PostService, outbox: Outbox, settings: PostsSettings) -> None:
        self.posts = posts
        self.outbox = outbox
        self.max_depth = settings.comment_max_depth
        self.preview = settings.comment_replies_preview

    async def add(
        self,
        session: AsyncSession,
        user: Principal,
        post_id: uuid.UUID,
        request: CreateCommentRequest,
    ) -> CommentOut:
        post = await self.posts.visible_post(session, user.id, post_id)
        parent = None
        if request.parent_id is not None:
            parent = await self._visible_comment(
                session, user.id, post_id, request.parent_id, what="parent comment"
            )
            if parent.depth >= self.max_depth:
                raise ApiError(
                    422,
                    "too_deep",
                    f"replies nest at most {self.max_depth} levels; reply to an "
                    "earlier comment of this thread instead",
                    fields={"parentId": f"at depth {parent.depth} already"},
                )
        comment_id, now = uuid.uuid4(), now_ms_precision()
        values = {
            "id": comment_id,
            "post_id": post_id,
            "author_id": user.id,
            "author_username": user.username,
            "parent_id": parent.id if parent else None,
            "root_id": parent.root_id if parent else comment_id,
            "depth": parent.depth + 1 if parent else 1,
            "content": request.content,
            "created_at": now,
            "deleted_at": None,
        }
        await session.execute(comments.insert().values(values))
        event: PostCommented | CommentReplied
        if parent is None:
            event = PostCommented(
                post_id=post_id,
                post_author_id=post.author_id,
                comment_id=comment_id,
                user_id=user.id,
                username=user.username,
                content=request.content,
                timestamp=to_ms(now),
            )
        else:
            event = CommentReplied(
                post_id=post_id,
                post_author_id=post.author_id,
                comment_id=comment_id,
                user_id=user.id,
                username=user.username,
                content=request.content,
                timestamp=to_ms(now),
                parent_comment_id=parent.id,
                parent_author_id=parent.author_id,
            )
        await self.outbox.emit(session, event)
        await session.execute(
            update(posts)
            .where(posts.c.id == post_id)
            .values(comment_count=posts.c.comment_count + 1)
        )
        return _out(values)

    async def page(
        self,
        session: AsyncSession,
        viewer: uuid.UUID,
        post_id: uuid.UUID,
        parent_id: uuid.UUID | None,
        after: Position | None,
        limit: int,
    ) -> list[CommentOut]:
        """Top-level comments (or the replies of `parent_id`) after `after`, as trees;
        limit + 1 of them, to tell whether there are more."""
        await self.posts.visible_post(session, viewer, post_id)
        if parent_id is not None:
            await self._visible_comment(session, viewer, post_id, parent_id, what="comment")
        hidden = await _hidden_authors(session, viewer)
        query = select(comments).where(
            comments.c.post_id == post_id,
            LIVE_COMMENT,
            comments.c.parent_id == parent_id if parent_id else comments.c.parent_id.is_(None),
            comments.c.author_id.not_in(hidden),
        )
        if after is not None:
            query = query.where(tuple_(*OLDEST_FIRST) > tuple_(after.at, after.id))
        found = (await session.execute(query.order_by(*OLDEST_FIRST).limit(limit + 1))).all()
        nodes = [_out(row._mapping) for row in found]
        await self._attach_replies(session, nodes, hidden)
        return nodes

    async def _attach_replies(
        self, session: AsyncSession, level: list[CommentOut], hidden: list[uuid.UUID]
    ) -> None:
        """Fill `replies` and `replyCount` level by level (depth is bounded: few queries)."""
        while level:
            by_id = {node.id: node for node in level}
            ranked = (
                select(
                    comments,
                    func.row_number()
                    .over(partition_by=comments.c.parent_id, order_by=OLDEST_FIRST)
                    .label("rank"),
                    func.count().over(partition_by=comments.c.parent_id).label("siblings"),
                )
                .where(
                    comments.c.parent_id.in_(list(by_id)),
                    LIVE_COMMENT,
                    comments.c.author_id.not_in(hidden),
                )
                .subquery()
            )
            rows = (
                await session.execute(
                    select(ranked)
                    .where(ranked.c.rank <= self.preview)
                    .order_by(ranked.c.created_at, ranked.c.id)
                )
            ).all()
            level = []
            for row in rows:
                node = _out(row._mapping)
                parent = by_id[row.parent_id]
                parent.replies.append(node)
                parent.reply_count = row.siblings
                level.append(node)

    async def delete(
        self, session: AsyncSession, user: Principal, post_id: uuid.UUID, comment_id: uuid.UUID
    ) -> None:
        """The comment's author or the post's author may delete it; its replies go with it."""
        post = await self.posts.visible_post(session, user.id, post_id)
        # A post's author may remove comments from people they blocked, unseen as those are.
        comment = await self._visible_comment(
            session,
            user.id,
            post_id,
            comment_id,
            what="comment",
            include_hidden=post.author_id == user.id,
        )
        if user.id not in (comment.author_id, post.author_id):
            raise forbidden("only the comment's author or the post's author can delete it")
        subtree = (
            select(comments.c.id).where(comments.c.id == comment_id).cte("subtree", recursive=True)
        )
        subtree = subtree.union_all(
            select(comments.c.id).where(comments.c.parent_id == subtree.c.id, LIVE_COMMENT)
        )
        removed = (
            await session.execute(
                update(comments)
                .where(comments.c.id.in_(select(subtree.c.id)), LIVE_COMMENT)
                .values(deleted_at=now_ms_precision())
                .returning(comments.c.id)
            )
        ).all()
        await session.execute(
            update(posts)
            .where(posts.c.id == post_id)
            .values(comment_count=posts.c.comment_count - len(removed))
        )

    async def _visible_comment(
        self,
        session: AsyncSession,
        viewer: uuid.UUID,
        post_id: uuid.UUID,
        comment_id: uuid.UUID,
        what: str,
        include_hidden: bool = False,
    ) -> Row[Any]:
        query = select(comments).where(
            comments.c.id == comment_id, comments.c.post_id == post_id, LIVE_COMMENT
        )
        if not include_hidden:
            query = query.where(comments.c.author_id.not_in(await _hidden_authors(session, viewer)))
        row = (await session.execute(query)).first()
        if row is None:
            raise not_found(what)
        return row


async def _hidden_authors(session: AsyncSession, viewer: uuid.UUID) -> list[uuid.UUID]:
    """Users in a block with the viewer, either way."""
    other = case((blocks.c.blocker_id == viewer, blocks.c.blocked_id), else_=blocks.c.blocker_id)
    rows = (
        (
            await session.execute(
                select(other).where(
                    blocks.c.active,
                    or_(blocks.c.blocker_id == viewer, blocks.c.blocked_id == viewer),
                ),
            )
        )
        .scalars()
        .all()
    )
    return list(rows)


def _out(row: Any) -> CommentOut:
    return CommentOut(
        id=row["id"],
        post_id=row["post_id"],
        parent_id=row["parent_id"],
        user_id=row["author_id"],
        username=row["author_username"],
        content=row["content"],
        depth=row["depth"],
        created_at=row["created_at"],
    )
