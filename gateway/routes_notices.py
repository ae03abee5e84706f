"""Notices and the bulletin board (SEC-8): what administrators announce for a period, and
posts with comments that every operator of the tenant reads."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from switchboard.v1 import accounts_pb2

from . import views_accounts
from .request import deps, json_body, metadata, page, query_bool, timestamp
from .responses import json_response, no_content, page_response


async def list_notices(request: web.Request) -> web.Response:
    resp = await deps(request).accounts.ListNotices(
        accounts_pb2.ListNoticesRequest(current_only=query_bool(request, "current")),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response({"items": [views_accounts.notice(n) for n in resp.notices]})


def _notice_request(body: dict[str, Any], notice_id: str = "") -> accounts_pb2.PutNoticeRequest:
    req = accounts_pb2.PutNoticeRequest(notice_id=notice_id, title=body["title"], body=body["body"])
    req.starts_at.CopyFrom(timestamp(body["starts_at"], "starts_at"))
    req.ends_at.CopyFrom(timestamp(body["ends_at"], "ends_at"))
    return req


async def create_notice(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).accounts.PutNotice(
        _notice_request(body), metadata=metadata(request), timeout=10
    )
    return json_response(views_accounts.notice(resp), status=201)


async def update_notice(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).accounts.PutNotice(
        _notice_request(body, request.match_info["notice_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views_accounts.notice(resp))


async def delete_notice(request: web.Request) -> web.Response:
    await deps(request).accounts.DeleteNotice(
        accounts_pb2.DeleteNoticeRequest(notice_id=request.match_info["notice_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


async def list_posts(request: web.Request) -> web.Response:
    resp = await deps(request).accounts.ListPosts(
        accounts_pb2.ListPostsRequest(page=page(request)), metadata=metadata(request), timeout=10
    )
    return page_response([views_accounts.post(p) for p in resp.posts], resp.next_cursor)


async def create_post(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).accounts.CreatePost(
        accounts_pb2.CreatePostRequest(title=body["title"], body=body["body"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views_accounts.post(resp), status=201)


async def get_post(request: web.Request) -> web.Response:
    resp = await deps(request).accounts.GetPost(
        accounts_pb2.GetPostRequest(post_id=request.match_info["post_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views_accounts.post(resp, with_comments=True))


async def add_post_comment(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).accounts.AddPostComment(
        accounts_pb2.AddPostCommentRequest(
            post_id=request.match_info["post_id"], body=body["body"]
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views_accounts.post_comment(resp), status=201)


async def delete_post(request: web.Request) -> web.Response:
    await deps(request).accounts.DeletePost(
        accounts_pb2.DeletePostRequest(post_id=request.match_info["post_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/notices", list_notices)
    r.add_post("/api/v1/notices", create_notice)
    r.add_put("/api/v1/notices/{notice_id}", update_notice)
    r.add_delete("/api/v1/notices/{notice_id}", delete_notice)
    r.add_get("/api/v1/posts", list_posts)
    r.add_post("/api/v1/posts", create_post)
    r.add_get("/api/v1/posts/{post_id}", get_post)
    r.add_delete("/api/v1/posts/{post_id}", delete_post)
    r.add_post("/api/v1/posts/{post_id}/comments", add_post_comment)
