"""One customer-data lookup over HTTP (issue 21): GET the expanded URL with aiohttp and
answer what came back — never an exception. Where the URL may lead is checked by the
ConnectPolicy (the deployment's SB_CONNECT_ALLOW widened by the tenant's allow-list) on
the addresses actually connected to (`PolicyResolver`; an address written as the host is
checked before). Redirects are followed on the same scheme, host and port only, at most
REDIRECTS_MAX; the answer must be JSON of at most BODY_MAX_BYTES; the whole lookup,
redirects included, ends within the configured timeout."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from services.runtime.errors import InvalidArgument
from services.runtime.hosts import ConnectPolicy
from services.runtime.hosts_http import AddressRefused, PolicyResolver

from .lookup_rules import BODY_MAX_BYTES, REDIRECTS_MAX, is_json_type, same_origin

USER_AGENT = "Switchboard-CustomerLookup/1"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Fetched:
    ok: bool
    error: str = ""  # lookup_rules.ERRORS when not ok
    detail: str = ""
    status: int = 0
    elapsed_ms: int = 0
    doc: Any = None
    text: str = ""  # the answer as received (decoded), when it was JSON


class _Failed(Exception):
    def __init__(self, error: str, detail: str, status: int = 0) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail
        self.status = status


async def fetch(
    url: str, *, header: tuple[str, str] | None, timeout_ms: int, policy: ConnectPolicy
) -> Fetched:
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    timeout_s = timeout_ms / 1000
    try:
        async with asyncio.timeout(timeout_s):
            status, doc, text = await _get(url, header, timeout_s, policy)
    except _Failed as f:
        return Fetched(False, f.error, f.detail, f.status, elapsed())
    except TimeoutError:
        return Fetched(False, "timeout", f"no answer within {timeout_s:g} s", 0, elapsed())
    return Fetched(True, "", "", status, elapsed(), doc, text)


async def _get(
    url: str, header: tuple[str, str] | None, timeout_s: float, policy: ConnectPolicy
) -> tuple[int, Any, str]:
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if header is not None:
        headers[header[0]] = header[1]
    connector = aiohttp.TCPConnector(resolver=PolicyResolver(policy), limit=2, force_close=True)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)
    ) as http:
        for _ in range(REDIRECTS_MAX + 1):
            parts = urlsplit(url)
            if parts.scheme.lower() not in ("http", "https"):
                raise _Failed("refused", "only http and https URLs are fetched")
            try:
                # aiohttp does not ask the resolver about an address written as the host
                policy.check_literal(parts.hostname or "", "url_template")
            except InvalidArgument as err:
                raise _Failed("refused", err.message) from None
            try:
                async with http.get(url, headers=headers, allow_redirects=False) as resp:
                    if resp.status in _REDIRECTS:
                        target = urljoin(url, resp.headers.get("Location", ""))
                        if not same_origin(url, target):
                            host = urlsplit(target).hostname or "?"
                            raise _Failed(
                                "redirect",
                                f"redirected to another host ({host}): not followed",
                                resp.status,
                            )
                        url = target
                        continue
                    if not 200 <= resp.status < 300:
                        raise _Failed("http_status", f"HTTP {resp.status}", resp.status)
                    ctype = resp.headers.get("Content-Type", "")
                    if not is_json_type(ctype):
                        raise _Failed(
                            "invalid_json",
                            f"the answer is {ctype or 'untyped'}, not JSON",
                            resp.status,
                        )
                    raw = await _read(resp)
                    try:
                        text = raw.decode(resp.charset or "utf-8")
                        return resp.status, json.loads(text), text
                    except (UnicodeDecodeError, LookupError, ValueError):
                        raise _Failed(
                            "invalid_json", "the answer is not valid JSON", resp.status
                        ) from None
            except aiohttp.ClientConnectorError as err:
                if isinstance(err.os_error, AddressRefused):
                    raise _Failed("refused", str(err.os_error)) from None
                reason = err.os_error.strerror or str(err.os_error)
                raise _Failed("connect", f"no connection: {reason}") from None
            except aiohttp.ClientError as err:
                raise _Failed("error", f"{type(err).__name__}") from None
        raise _Failed("redirect", f"more than {REDIRECTS_MAX} redirects")


async def _read(resp: aiohttp.ClientResponse) -> bytes:
    limit = BODY_MAX_BYTES
    too_large = _Failed("too_large", f"the answer is larger than {limit // 1024} KiB", resp.status)
    if resp.content_length is not None and resp.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
