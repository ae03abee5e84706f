"""The gateway serving the web UI's build (gateway/static.py)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway import static
from gateway.access import security_headers
from gateway.errors import error_middleware
from services.runtime.ids import IdGenerator


async def client(dist: Path) -> TestClient:
    app = web.Application(middlewares=[error_middleware(IdGenerator())])
    app.on_response_prepare.append(security_headers(False))
    static.add_routes(app, dist)
    c = TestClient(TestServer(app))
    await c.start_server()
    return c


async def test_the_page_and_its_bundles_with_a_policy_that_allows_only_the_app(
    tmp_path: Path,
) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    (tmp_path / "assets" / "index-abc.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("not served")
    c = await client(tmp_path)
    try:
        r = await c.get("/")
        assert r.status == 200 and "id=root" in await r.text()
        assert r.headers["Content-Type"].startswith("text/html")
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-eval" not in csp
        assert r.headers["Cache-Control"] == "no-cache"
        r = await c.get("/assets/index-abc.js")
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/javascript")
        assert "immutable" in r.headers["Cache-Control"]
        for path in ("/assets/nope.js", "/assets/..%2Fsecret.txt", "/assets/.hidden"):
            r = await c.get(path)
            assert r.status == 404, path
            assert (await r.json())["error"]["code"] == "not_found"
    finally:
        await c.close()


async def test_without_a_build_the_page_says_how_to_make_one(tmp_path: Path) -> None:
    c = await client(tmp_path / "missing")
    try:
        r = await c.get("/")
        assert r.status == 503
        assert "make ui" in (await r.json())["error"]["message"]
    finally:
        await c.close()
