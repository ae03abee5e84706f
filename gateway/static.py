"""The operator web UI (gateway/ui, built by Vite into gateway/ui/dist): `/` answers its
index.html and `/assets/{name}` its hashed bundles. The app talks only to /api/v1 and
/api/v1/live; its routes are in the URL fragment (`/#/tickets/…`), so nothing else is
served. Without a build, `/` answers 503 saying how to build it."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from .errors import ApiError

DIST = Path(__file__).resolve().parent / "ui" / "dist"
_ASSET = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".json": "application/json",
}
# The app's own scripts and styles only; mail is shown in a sandboxed frame (no scripts)
# whose document inherits this policy: its inline styles are allowed, and its images once
# the operator presses "show images" (the sanitiser keeps remote ones out until then).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob: https: http:; connect-src 'self'; font-src 'self'; "
    "frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def add_routes(app: web.Application, dist: Path = DIST) -> None:
    async def index(request: web.Request) -> web.StreamResponse:
        page = dist / "index.html"
        if not page.is_file():
            raise ApiError(503, "unavailable", "the web UI is not built: run `make ui`")
        return web.FileResponse(
            page,
            headers={
                "Content-Type": "text/html; charset=utf-8",
                "Cache-Control": "no-cache",
                "Content-Security-Policy": CSP,
            },
        )

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = dist / "assets" / name
        if not _ASSET.match(name) or name.startswith(".") or not path.is_file():
            raise ApiError(404, "not_found", "no such file")
        return web.FileResponse(
            path,
            headers={
                "Content-Type": _TYPES.get(path.suffix, "application/octet-stream"),
                "Cache-Control": "public, max-age=31536000, immutable",
            },
        )

    app.router.add_get("/", index)
    app.router.add_get("/assets/{name}", asset)
