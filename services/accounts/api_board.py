"""Notices and the bulletin board (SEC-8), and reading the operation log (SEC-7)."""

from __future__ import annotations

from datetime import UTC

from switchboard.v1 import accounts_pb2

from services.runtime import identity, paging, permissions
from services.runtime.errors import InvalidArgument, PermissionDenied
from services.runtime.grpc_server import Context
from services.runtime.ids import parse_uuid

from . import domain
from .deps import Deps

TITLE_MAX = 200
BODY_MAX = 20_000
COMMENT_MAX = 5_000


def _text(value: str, field: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise InvalidArgument(f"{field} must not be empty", field=field)
    if len(text) > limit:
        raise InvalidArgument(f"{field} is longer than {limit} characters", field=field)
    if "\0" in text:
        raise InvalidArgument(f"{field} must not contain NUL characters", field=field)
    return text


class BoardApi:
    _d: Deps

    # -- notices -----------------------------------------------------------------------

    async def ListNotices(
        self, request: accounts_pb2.ListNoticesRequest, context: Context
    ) -> accounts_pb2.ListNoticesResponse:
        """Everyone sees the notices showing now; publishers also see past and future ones."""
        ident = identity.require_operator()
        current = request.current_only or not ident.may(permissions.MANAGE_NOTICES)
        notices = await self._d.board.notices(
            ident.tenant_id, self._d.clock.now() if current else None
        )
        return accounts_pb2.ListNoticesResponse(notices=notices)

    async def PutNotice(
        self, request: accounts_pb2.PutNoticeRequest, context: Context
    ) -> accounts_pb2.Notice:
        ident = identity.require_operator()
        identity.require_permission(ident, permissions.MANAGE_NOTICES, "publish notices")
        d = self._d
        title = _text(request.title, "title", TITLE_MAX)
        body = _text(request.body, "body", BODY_MAX)
        if not request.HasField("starts_at") or not request.HasField("ends_at"):
            raise InvalidArgument("starts_at and ends_at are required", field="ends_at")
        starts = request.starts_at.ToDatetime(tzinfo=UTC)
        ends = request.ends_at.ToDatetime(tzinfo=UTC)
        if ends <= starts:
            raise InvalidArgument("ends_at must be after starts_at", field="ends_at")
        new = not request.notice_id
        notice_id = d.ids.new() if new else parse_uuid(request.notice_id, "notice_id")
        return await d.board.put_notice(
            tenant_id=ident.tenant_id,
            notice_id=notice_id,
            new=new,
            title=title,
            body=body,
            starts_at=starts,
            ends_at=ends,
            author_id=ident.operator_id,
            author_name=ident.display_name,
            now=d.clock.now(),
        )

    async def DeleteNotice(
        self, request: accounts_pb2.DeleteNoticeRequest, context: Context
    ) -> accounts_pb2.DeleteNoticeResponse:
        ident = identity.require_operator()
        identity.require_permission(ident, permissions.MANAGE_NOTICES, "delete notices")
        await self._d.board.delete_notice(
            ident.tenant_id, parse_uuid(request.notice_id, "notice_id")
        )
        return accounts_pb2.DeleteNoticeResponse()

    # -- the bulletin board ------------------------------------------------------------

    async def ListPosts(
        self, request: accounts_pb2.ListPostsRequest, context: Context
    ) -> accounts_pb2.ListPostsResponse:
        ident = identity.require_operator()
        limit = paging.page_size(request.page.limit)
        after = paging.Cursor.decode(request.page.cursor) if request.page.cursor else None
        posts, next_cursor = paging.page(
            await self._d.board.posts(ident.tenant_id, after, limit + 1),
            limit,
            lambda p: paging.Cursor.of(p.created_at, p.id),
        )
        return accounts_pb2.ListPostsResponse(posts=posts, next_cursor=next_cursor)

    async def GetPost(
        self, request: accounts_pb2.GetPostRequest, context: Context
    ) -> accounts_pb2.Post:
        ident = identity.require_operator()
        return await self._d.board.post(ident.tenant_id, parse_uuid(request.post_id, "post_id"))

    async def CreatePost(
        self, request: accounts_pb2.CreatePostRequest, context: Context
    ) -> accounts_pb2.Post:
        ident = identity.require_operator()
        d = self._d
        return await d.board.create_post(
            tenant_id=ident.tenant_id,
            post_id=d.ids.new(),
            title=_text(request.title, "title", TITLE_MAX),
            body=_text(request.body, "body", BODY_MAX),
            author_id=ident.operator_id,
            author_name=ident.display_name,
            now=d.clock.now(),
        )

    async def AddPostComment(
        self, request: accounts_pb2.AddPostCommentRequest, context: Context
    ) -> accounts_pb2.PostComment:
        ident = identity.require_operator()
        d = self._d
        return await d.board.add_comment(
            tenant_id=ident.tenant_id,
            comment_id=d.ids.new(),
            post_id=parse_uuid(request.post_id, "post_id"),
            body=_text(request.body, "body", COMMENT_MAX),
            author_id=ident.operator_id,
            author_name=ident.display_name,
            now=d.clock.now(),
        )

    async def DeletePost(
        self, request: accounts_pb2.DeletePostRequest, context: Context
    ) -> accounts_pb2.DeletePostResponse:
        """Its author, or whoever may publish notices, takes a post down."""
        ident = identity.require_operator()
        post_id = parse_uuid(request.post_id, "post_id")
        author = await self._d.board.post_author(ident.tenant_id, post_id)
        if author != ident.operator_id and not ident.may(permissions.MANAGE_NOTICES):
            raise PermissionDenied("only its author or a notice publisher may delete a post")
        await self._d.board.delete_post(ident.tenant_id, post_id, self._d.clock.now())
        return accounts_pb2.DeletePostResponse()

    # -- the operation log -------------------------------------------------------------

    async def ListOperations(
        self, request: accounts_pb2.ListOperationsRequest, context: Context
    ) -> accounts_pb2.ListOperationsResponse:
        ident = identity.require_operator()
        identity.require_permission(ident, permissions.VIEW_OPERATION_LOG, "read the operation log")
        limit = paging.page_size(request.page.limit, 100, 1000)
        after = paging.Cursor.decode(request.page.cursor) if request.page.cursor else None
        operator_id = (
            parse_uuid(request.operator_id, "operator_id") if request.operator_id else None
        )
        text = request.text.strip()
        if len(text) > 200 or len(request.action) > 100 or len(request.target) > 200:
            raise InvalidArgument("a filter is too long", field="text")
        period = request.period
        rows = await self._d.board.operations(
            ident.tenant_id,
            operator_id=operator_id,
            action=request.action,
            target=request.target,
            start=period.start.ToDatetime(tzinfo=UTC) if period.HasField("start") else None,
            end=period.end.ToDatetime(tzinfo=UTC) if period.HasField("end") else None,
            text=domain.clean_name(text, "text") if text else "",
            after=after,
            limit=limit + 1,
        )
        operations, next_cursor = paging.page(rows, limit, lambda o: paging.Cursor.of(o.at, o.id))
        return accounts_pb2.ListOperationsResponse(operations=operations, next_cursor=next_cursor)
