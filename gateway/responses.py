"""Answers, for every route module: JSON (masked on its way out for callers who may not
see customers' addresses, SEC-6), a page of items, 204, a connection test's result and a
file download that a browser never renders, and the HTML of a public link's page."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import quote

from aiohttp import web
from switchboard.v1 import common_pb2

from . import masking
from .access import CALLER

_dumps = partial(json.dumps, ensure_ascii=False)


class JsonBody(web.Response):
    """A JSON answer serialised at the last moment (by `json_middleware`), so that
    masking happens in one place for every route."""

    def __init__(
        self, data: Any, status: int = 200, *, customer_data: bool = True, headers: Any = None
    ) -> None:
        super().__init__(status=status, content_type="application/json", headers=headers)
        self.data = data
        self.customer_data = customer_data


def json_response(body: Any, status: int = 200, *, customer_data: bool = True) -> web.Response:
    """A JSON answer; `customer_data=False` for answers that hold none (never masked)."""
    return JsonBody(body, status, customer_data=customer_data)


def page_response(
    items: list[Any], next_cursor: str = "", *, customer_data: bool = True
) -> web.Response:
    """`{"items", "next"}`: one page of a list; `next` is the cursor of the following
    page, null on the last."""
    return json_response({"items": items, "next": next_cursor or None}, customer_data=customer_data)


def public_page(text: str, status: int, csp: str) -> web.Response:
    """An HTML page of a public link (the survey, the unsubscribe page): its own content
    policy, never cached, and no Referer carrying the token to other sites' logs."""
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": csp,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


def no_content() -> web.Response:
    return web.Response(status=204)


def connection_tested(result: common_pb2.ConnectionTestResult) -> web.Response:
    """The answer of a connection test (a mailbox, an SMTP route)."""
    return json_response(
        {
            "ok": result.ok,
            "step": result.step or ("ok" if result.ok else "connect"),
            "detail": result.detail,
            "elapsed_ms": result.elapsed_ms,
        },
        customer_data=False,
    )


def download(data: bytes, filename: str, declared_type: str | None = None) -> web.Response:
    """A file as a download: never rendered in the browser, whatever it claims to be; the
    type it declared, if any, in X-Declared-Content-Type."""
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    headers = {
        "Content-Disposition": (
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
    if declared_type is not None:
        headers["X-Declared-Content-Type"] = "".join(
            c for c in declared_type if c.isascii() and c.isprintable()
        )[:200]
    return web.Response(body=data, content_type="application/octet-stream", headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serialises a `JsonBody`, masked for a caller without see_customer_addresses (the
    tenant's own addresses stay as they are)."""
    response = await handler(request)
    if isinstance(response, JsonBody):
        data = response.data
        caller = request.get(CALLER)
        if response.customer_data and caller is not None and not caller.sees_addresses:
            data = masking.mask(data, keep=caller.tenant_addresses)
        response.text = _dumps(data)
    return response
