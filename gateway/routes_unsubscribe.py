"""RFC 8058 one-click unsubscribe (issue 20, OUT-6): the public page a campaign mail's
`List-Unsubscribe` link opens — no login, no cookie, no CSRF token: the signed token in
the path is the only key, and a mail provider's POST carries nothing else.

- `GET /unsubscribe/{token}` shows the question and one button, in the mail's language;
  it never unsubscribes (mail scanners and link previews follow links).
- `POST /unsubscribe/{token}` with the form field `List-Unsubscribe=One-Click`
  (`application/x-www-form-urlencoded` or `multipart/form-data`, RFC 8058 §3.1) — what
  a mail provider posts, and what the page's button posts — unsubscribes: idempotent,
  200 each time. Any other body is a 400 page saying so.

Both are limited per client address (429). Outbound checks the token and keeps the list;
documented in openapi.yaml."""

from __future__ import annotations

from urllib.parse import parse_qsl

import grpc
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from switchboard.v1 import outbound_outreach_pb2 as pb

from services.outbound.suppression_domain import is_one_click

from . import unsubscribe_page as page
from .access import CLIENT
from .errors import from_grpc
from .request import deps, over_rate
from .responses import public_page

BODY_MAX = 4096
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _html(text: str, status: int = 200) -> web.Response:
    return public_page(text, status, page.CSP)


def _refused(request: web.Request, why: str, status: int) -> web.Response:
    lang = page.language_of(request.headers.get("Accept-Language", ""))
    return _html(page.refusal_page(lang, why), status)


async def _limited(request: web.Request) -> bool:
    key = f"sb:gw:unsubscribe-rate:{request[CLIENT] or 'unknown'}"
    return await over_rate(request, key, deps(request).settings.unsubscribe_rate_per_minute)


async def _call(request: web.Request, post: bool) -> pb.UnsubscribeState | web.Response:
    stub = deps(request).outreach
    req = pb.UnsubscribeRequest(token=request.match_info["token"])
    try:
        state: pb.UnsubscribeState = await (stub.Unsubscribe if post else stub.ReadUnsubscribe)(
            req, timeout=10
        )
        return state
    except grpc.aio.AioRpcError as exc:
        err = from_grpc(exc)
        if err.status >= 500:
            return _refused(request, "down", 503)
        return _refused(request, "invalid", 400)


async def unsubscribe_get(request: web.Request) -> web.Response:
    if await _limited(request):
        return _refused(request, "busy", 429)
    got = await _call(request, post=False)
    if isinstance(got, web.Response):
        return got
    token = request.match_info["token"]
    return _html(page.question_page(token, got.language, got.masked_address, got.unsubscribed))


async def _one_click(request: web.Request) -> bool | None:
    """Whether the form holds `List-Unsubscribe=One-Click`; None for a body too large."""
    if request.content_length is not None and request.content_length > BODY_MAX:
        return None
    if request.content_type not in FORM_TYPES:
        return False
    if request.content_length is None:  # chunked: read it bounded, urlencoded only
        raw = await request.content.read(BODY_MAX + 1)
        if len(raw) > BODY_MAX:
            return None
        fields = dict(parse_qsl(raw.decode("utf-8", "replace"), max_num_fields=20))
        return is_one_click(fields)
    return is_one_click(await request.post())


async def unsubscribe_post(request: web.Request) -> web.Response:
    """RFC 8058's one-click POST (a mail provider) or the page's button: no session and no
    cookie to ride on, so no CSRF token either — the token in the path is the key."""
    if await _limited(request):
        return _refused(request, "busy", 429)
    try:
        one_click = await _one_click(request)
    except (ValueError, HttpProcessingError):  # a malformed form (a part's headers, …)
        one_click = False
    if one_click is None:
        return _refused(request, "bad_request", 413)
    if not one_click:
        return _refused(request, "bad_request", 400)
    got = await _call(request, post=True)
    if isinstance(got, web.Response):
        return got
    return _html(page.done_page(got.language, got.masked_address))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/unsubscribe/{token}", unsubscribe_get)
    app.router.add_post("/unsubscribe/{token}", unsubscribe_post)
