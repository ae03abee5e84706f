"""LINE's outbound side and its content (issue 21, docs/channels.md "LINE"): the
`ChannelSender` and `ContentFetcher` of kind "line", over LINE's Messaging API with the
channel's access token (a bearer token).

Sending one reply (`send`): while the conversation holds a reply token that has not
expired (line_adapter.REPLY_TOKEN_TTL_S after the customer's message) the reply API
(`POST /v2/bot/message/reply`, free of charge, one use per token); otherwise — or when
LINE answers that the token is invalid (used or expired) — the push API
(`POST /v2/bot/message/push` to the user, group or room) with `X-Line-Retry-Key` = the
delivery id, so an attempt retried after a timeout is sent once (LINE answers 409 to a key
it accepted before: delivered). The reply API takes no retry key: a reply whose answer was
lost spends the token (the next attempt pushes). 4xx answers other than 429 are final (not
retried); 429, 5xx, timeouts and connection failures are retried by the deliverer.

Fetching (`fetch`): `GET <data url>/v2/bot/message/{id}/content` (images, video, audio,
files), at most `content_max_bytes`. The sender's display name (`display_name`): the
profile API (`/v2/bot/profile/{userId}`, or the group's / room's member profile), cached
for an hour; a failure gives "" (the conversation is named by the intake's fallback) and
never holds the message up for long.

Connections go through the runtime's ConnectPolicy; the base URLs are settings
(`SB_LINE_API_URL`, `SB_LINE_DATA_URL`) so tests and `make run` use the local peer
(services/devstack/line_peer.py). Neither the token nor message text is ever logged.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from services.runtime import log
from services.runtime.errors import InvalidArgument, NotFound, Unavailable
from services.runtime.hosts import ConnectPolicy
from services.runtime.hosts_http import AddressRefused, PolicyResolver

from .channel_model import (
    ChannelRow,
    ContentRef,
    ConversationRow,
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    SendResult,
)
from .line_adapter import KIND, TEXT_MAX

MAX_MESSAGES = 5  # message objects per reply/push request
ERROR_BODY_MAX = 16 * 1024
PROFILE_TTL_S = 3600.0
PROFILE_CACHE_MAX = 10_000


@dataclass(frozen=True)
class LineEndpoints:
    api_url: str = "https://api.line.me"
    data_url: str = "https://api-data.line.me"
    timeout_s: float = 10.0
    profile_timeout_s: float = 3.0
    content_max_bytes: int = 10 * 1024 * 1024


def text_messages(text: str) -> list[dict[str, str]]:
    """The reply as LINE text message objects: pieces of at most 5,000 characters, at most
    five of them (the API's limits; what does not fit ends in "…")."""
    text = text.strip() or "…"
    pieces = [text[i : i + TEXT_MAX] for i in range(0, len(text), TEXT_MAX)]
    if len(pieces) > MAX_MESSAGES:
        pieces = pieces[:MAX_MESSAGES]
        pieces[-1] = pieces[-1][: TEXT_MAX - 1] + "…"
    return [{"type": "text", "text": p} for p in pieces]


def _profile_path(external_id: str, user_id: str) -> str:
    """LINE's ids start with U (users), C (groups) and R (rooms)."""
    user = quote(user_id, safe="")
    if external_id and external_id != user_id:
        where = quote(external_id, safe="")
        if external_id.startswith("C"):
            return f"/v2/bot/group/{where}/member/{user}"
        if external_id.startswith("R"):
            return f"/v2/bot/room/{where}/member/{user}"
    return f"/v2/bot/profile/{user}"


class _Answer:
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message  # LINE's error message ("Invalid reply token", …)


class LineClient:
    """`ChannelSender`, `ContentFetcher` and the display-name lookup of kind "line"."""

    kind = KIND

    def __init__(self, endpoints: LineEndpoints, policy: ConnectPolicy) -> None:
        self._e = endpoints
        self._policy = policy
        self._session: aiohttp.ClientSession | None = None
        self._names: dict[tuple[str, str, str], tuple[float, str]] = {}
        self._log = log.get("ingestion.line")

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=PolicyResolver(self._policy), limit=32),
                timeout=aiohttp.ClientTimeout(total=self._e.timeout_s),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _check(self, url: str) -> None:
        # aiohttp does not ask the resolver about an address written as the host
        self._policy.check_literal(urlsplit(url).hostname or "", "url")

    async def _post(self, path: str, token: str, body: dict[str, Any], retry_key: str) -> _Answer:
        url = self._e.api_url.rstrip("/") + path
        self._check(url)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if retry_key:
            headers["X-Line-Retry-Key"] = retry_key
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        async with self._http().post(
            url, data=data, headers=headers, allow_redirects=False
        ) as resp:
            if 200 <= resp.status < 300:
                return _Answer(resp.status, "")
            raw = await resp.content.read(ERROR_BODY_MAX)
            try:
                found = json.loads(raw)
                message = found.get("message", "") if isinstance(found, dict) else ""
            except ValueError:
                message = ""
            return _Answer(resp.status, str(message)[:300])

    async def send(
        self,
        channel: ChannelRow,
        secret: str | None,
        token: str | None,
        conversation: ConversationRow,
        message: OutboundMessage,
        now: datetime,
    ) -> SendResult:
        if not token:
            return SendResult(False, retry=False, error="the LINE channel has no access token")
        messages = text_messages(message.text)
        ids = {
            "tenant_id": str(channel.tenant_id),
            "channel_id": str(channel.id),
            "conversation_id": str(conversation.id),
            "delivery_id": str(message.delivery_id),
        }
        spent = False
        reply_token = conversation.reply_token or ""
        expires = conversation.reply_token_expires_at
        if reply_token and expires is not None and expires > now:
            spent = True  # tried once, the token is gone whatever the answer
            body = {"replyToken": reply_token, "messages": messages}
            result = await self._attempt("reply", "/v2/bot/message/reply", token, body, "")
            if result.ok or not _token_refused(result):
                self._log.info(
                    "line reply" if result.ok else "line reply failed",
                    api="reply",
                    error=result.error,
                    **ids,
                )
                # a reply whose answer was lost (retried) spent the token: the next
                # attempt pushes; one refused for its content or credentials did not
                spent = result.ok or result.retry
                return SendResult(result.ok, result.retry, result.error, used_reply_token=spent)
        body = {"to": conversation.external_id, "messages": messages}
        result = await self._attempt(
            "push", "/v2/bot/message/push", token, body, str(message.delivery_id)
        )
        self._log.info(
            "line push" if result.ok else "line push failed", api="push", error=result.error, **ids
        )
        return SendResult(result.ok, result.retry, result.error, used_reply_token=spent)

    async def _attempt(
        self, api: str, path: str, token: str, body: dict[str, Any], retry_key: str
    ) -> SendResult:
        try:
            answer = await self._post(path, token, body, retry_key)
        except InvalidArgument as err:
            return SendResult(False, retry=False, error=f"address not allowed: {err.message}")
        except aiohttp.ClientConnectorError as err:
            if isinstance(err.os_error, AddressRefused):
                return SendResult(False, retry=False, error=f"address not allowed: {err.os_error}")
            return SendResult(False, error=f"no connection to LINE: {err.os_error.strerror or err}")
        except TimeoutError:
            return SendResult(False, error=f"LINE did not answer within {self._e.timeout_s:g} s")
        except aiohttp.ClientError as err:
            return SendResult(False, error=f"{type(err).__name__}: {err}")
        if answer.status < 300:
            return SendResult(True)
        if answer.status == 409 and retry_key:
            return SendResult(True)  # LINE accepted this retry key before: sent once
        error = f"LINE {api} API: HTTP {answer.status}" + (
            f" {answer.message}" if answer.message else ""
        )
        retry = answer.status == 429 or answer.status >= 500
        return SendResult(False, retry=retry, error=error)

    async def fetch(
        self, channel: ChannelRow, token: str | None, ref: ContentRef
    ) -> InboundAttachment:
        """The content of a message (NotFound: LINE no longer has it; Unavailable: try
        again later)."""
        if not token:
            raise Unavailable("the LINE channel has no access token")
        url = f"{self._e.data_url.rstrip('/')}/v2/bot/message/{quote(ref.ref, safe='')}/content"
        self._check(url)
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with self._http().get(url, headers=headers, allow_redirects=False) as resp:
                if resp.status == 404:
                    raise NotFound("LINE no longer has this message's content")
                if resp.status != 200:
                    raise Unavailable(f"LINE content API: HTTP {resp.status}")
                content = await resp.content.read(self._e.content_max_bytes + 1)
                if len(content) > self._e.content_max_bytes:
                    raise InvalidArgument("the content is larger than allowed", field="content")
                content_type = resp.content_type or ref.content_type
        except (aiohttp.ClientError, TimeoutError) as err:
            raise Unavailable(f"LINE content API: {type(err).__name__}") from None
        name = ref.name
        if "." not in name:
            ext = mimetypes.guess_extension(content_type) or ""
            name = f"{name}{ext}"
        return InboundAttachment(name=name, content_type=content_type, content=content)

    async def display_name(
        self, channel: ChannelRow, token: str | None, message: InboundMessage
    ) -> str:
        """The sender's LINE display name, or "" when LINE does not say (no token, the user
        has not added the account, LINE is down)."""
        if not token or not message.sender_id:
            return ""
        key = (str(channel.id), message.external_id, message.sender_id)
        cached = self._names.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        url = self._e.api_url.rstrip("/") + _profile_path(message.external_id, message.sender_id)
        name = ""
        try:
            self._check(url)
            async with asyncio.timeout(self._e.profile_timeout_s):
                async with self._http().get(
                    url, headers={"Authorization": f"Bearer {token}"}, allow_redirects=False
                ) as resp:
                    if resp.status != 200:
                        self._log.warning(
                            "line profile unavailable",
                            tenant_id=str(channel.tenant_id),
                            channel_id=str(channel.id),
                            status=resp.status,
                        )
                        return ""
                    found = json.loads(await resp.content.read(ERROR_BODY_MAX))
        except (aiohttp.ClientError, TimeoutError, ValueError, InvalidArgument):
            return ""
        if isinstance(found, dict) and isinstance(found.get("displayName"), str):
            name = found["displayName"][:200]
        if len(self._names) >= PROFILE_CACHE_MAX:
            self._names.clear()
        self._names[key] = (time.monotonic() + PROFILE_TTL_S, name)
        return name


def _token_refused(result: SendResult) -> bool:
    """LINE's answer to a reply token that was used or has expired."""
    return not result.ok and "HTTP 400" in result.error and "reply token" in result.error.lower()
