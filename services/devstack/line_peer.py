"""A local stand-in for LINE's platform (issue 21), speaking the documented formats of the
Messaging API, for the tests and `make run`:

- `POST /v2/bot/message/reply` and `POST /v2/bot/message/push` — recorded (`replies`,
  `pushes`); the bearer token is checked (401 as LINE answers it); a reply token is good
  once and for `ttl_s` after it was issued (else 400 `Invalid reply token`); a push's
  `X-Line-Retry-Key` is a UUID, and a key accepted before is answered 409 with
  `X-Line-Accepted-Request-Id` (the message is not sent twice); a retry key on the reply
  API is a 400; message objects are checked (1–5, text 1–5,000 characters);
- `GET /v2/bot/message/{id}/content` (LINE serves it from api-data.line.me; here the same
  server) — what `add_content` stored, else 404;
- `GET /v2/bot/profile/{userId}`, `/v2/bot/group/{g}/member/{u}`, `/v2/bot/room/{r}/member/{u}`
  — what `add_profile` stored, else 404;
- `fail(api, status, times)` — the next `times` calls of an API answer `status` (0: no
  answer for `hang_s` seconds, a timeout);
- the webhook side: `text_event` / `image_event` build events as LINE sends them, and
  `post_webhook` signs a body with the channel secret (`X-Line-Signature`) and POSTs it.

Every answer carries `X-Line-Request-Id`; error bodies are LINE's
`{"message": …, "details": [{"message", "property"}]}`.

Run alone: `python -m services.devstack.line_peer serve --port 8099 --token T`, then
`python -m services.devstack.line_peer send --url http://127.0.0.1:8080/hooks/line/<key>
--secret S --text こんにちは` posts a signed webhook (docs/channels.md "LINE").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

TEXT_MAX = 5000
MAX_MESSAGES = 5
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ids = itertools.count(int(time.time() * 1000) * 1000)


def sign(secret: str, body: bytes) -> str:
    """LINE's `X-Line-Signature`: base64(HMAC-SHA256(channel secret, body))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def user_id() -> str:
    return "U" + secrets.token_hex(16)


def group_id() -> str:
    return "C" + secrets.token_hex(16)


def _ulid() -> str:
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def message_id() -> str:
    return str(next(_ids))


@dataclass
class _Failure:
    status: int
    times: int


@dataclass
class LinePeer:
    token: str = "line-peer-access-token"
    host: str = "127.0.0.1"
    port: int = 0
    ttl_s: float = 60.0  # how long a reply token issued by `reply_token` can be used
    hang_s: float = 30.0
    echo: bool = False  # print each reply and push (`make run`)
    replies: list[dict[str, Any]] = field(default_factory=list)
    pushes: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, int]] = field(default_factory=list)  # (api, status) of each
    profiles: dict[str, dict[str, str]] = field(default_factory=dict)
    contents: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    _tokens: dict[str, float] = field(default_factory=dict)  # reply token → expiry
    _accepted: dict[str, str] = field(default_factory=dict)  # retry key → request id
    _failures: dict[str, _Failure] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    # -- the server --------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=2 * 1024 * 1024)
        app.router.add_post("/v2/bot/message/reply", self._reply)
        app.router.add_post("/v2/bot/message/push", self._push)
        app.router.add_get("/v2/bot/message/{id}/content", self._content)
        app.router.add_get("/v2/bot/profile/{user}", self._profile)
        app.router.add_get("/v2/bot/group/{where}/member/{user}", self._profile)
        app.router.add_get("/v2/bot/room/{where}/member/{user}", self._profile)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- what a test arranges ----------------------------------------------------------

    def reply_token(self, ttl_s: float | None = None) -> str:
        """A reply token as a webhook event carries it, good once for `ttl_s`."""
        token = secrets.token_hex(16)
        self._tokens[token] = time.monotonic() + (self.ttl_s if ttl_s is None else ttl_s)
        return token

    def expire(self, token: str) -> None:
        self._tokens[token] = 0.0

    def add_profile(self, user: str, name: str, language: str = "ja") -> None:
        self.profiles[user] = {
            "displayName": name,
            "userId": user,
            "language": language,
            "pictureUrl": f"https://profile.line-scdn.net/{user}",
            "statusMessage": "",
        }

    def add_content(self, message: str, content: bytes, content_type: str = "image/jpeg") -> None:
        self.contents[message] = (content, content_type)

    def fail(self, api: str, status: int, times: int = 1_000_000) -> None:
        """The next `times` calls of `api` ("reply", "push", "content", "profile") answer
        `status`; 0 answers nothing for `hang_s` (a timeout)."""
        self._failures[api] = _Failure(status, times)

    def heal(self) -> None:
        self._failures.clear()

    # -- the handlers ------------------------------------------------------------------

    def _echo(self, api: str, call: dict[str, Any]) -> None:
        if self.echo:
            print(f"LINE peer: {api} {json.dumps(call, ensure_ascii=False)}", flush=True)

    @staticmethod
    def _error(
        status: int, message: str, details: list[dict[str, str]] | None = None
    ) -> web.Response:
        body: dict[str, Any] = {"message": message}
        if details:
            body["details"] = details
        return web.json_response(
            body, status=status, headers={"X-Line-Request-Id": str(uuid.uuid4())}
        )

    @staticmethod
    def _ok(body: dict[str, Any]) -> web.Response:
        return web.json_response(body, headers={"X-Line-Request-Id": str(uuid.uuid4())})

    async def _gate(self, api: str, request: web.Request) -> web.Response | None:
        failure = self._failures.get(api)
        if failure is not None and failure.times > 0:
            failure.times -= 1
            self.calls.append((api, failure.status))
            if failure.status == 0:
                await asyncio.sleep(self.hang_s)
                return self._error(504, "timeout")
            return self._error(failure.status, "An error occurred in the peer (as told)")
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            self.calls.append((api, 401))
            return self._error(
                401,
                "Authentication failed. Confirm that the access token in the authorization "
                "header is valid.",
            )
        return None

    async def _messages(
        self, request: web.Request
    ) -> tuple[dict[str, Any] | None, web.Response | None]:
        try:
            body = await request.json()
        except ValueError:
            return None, self._error(
                400,
                "The request body has 1 error(s)",
                [{"message": "Invalid JSON", "property": ""}],
            )
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
            return None, self._error(
                400,
                "The request body has 1 error(s)",
                [{"message": f"Size must be between 1 and {MAX_MESSAGES}", "property": "messages"}],
            )
        for i, m in enumerate(messages):
            text = m.get("text") if isinstance(m, dict) else None
            if not isinstance(m, dict) or m.get("type") != "text" or not isinstance(text, str):
                return None, self._error(
                    400,
                    "The request body has 1 error(s)",
                    [
                        {
                            "message": "Must be one of the following values: [text]",
                            "property": f"messages[{i}].type",
                        }
                    ],
                )
            if not 1 <= len(text) <= TEXT_MAX:
                return None, self._error(
                    400,
                    "The request body has 1 error(s)",
                    [
                        {
                            "message": f"Length must be between 1 and {TEXT_MAX}",
                            "property": f"messages[{i}].text",
                        }
                    ],
                )
        assert isinstance(body, dict)
        return body, None

    @staticmethod
    def _sent(body: dict[str, Any]) -> dict[str, Any]:
        return {
            "sentMessages": [
                {"id": message_id(), "quoteToken": secrets.token_urlsafe(24)}
                for _ in body["messages"]
            ]
        }

    async def _reply(self, request: web.Request) -> web.Response:
        refused = await self._gate("reply", request)
        if refused is not None:
            return refused
        if "X-Line-Retry-Key" in request.headers:
            self.calls.append(("reply", 400))
            return self._error(400, "The retry key cannot be specified for this API")
        body, bad = await self._messages(request)
        if bad is not None or body is None:
            self.calls.append(("reply", 400))
            return bad or self._error(400, "bad request")
        token = body.get("replyToken")
        expiry = self._tokens.pop(token, None) if isinstance(token, str) else None
        if expiry is None or expiry < time.monotonic():
            self.calls.append(("reply", 400))
            return self._error(400, "Invalid reply token")
        self.replies.append({"replyToken": token, "messages": body["messages"]})
        self._echo("reply", self.replies[-1])
        self.calls.append(("reply", 200))
        return self._ok(self._sent(body))

    async def _push(self, request: web.Request) -> web.Response:
        refused = await self._gate("push", request)
        if refused is not None:
            return refused
        key = request.headers.get("X-Line-Retry-Key")
        if key is not None:
            try:
                uuid.UUID(key)
            except ValueError:
                self.calls.append(("push", 400))
                return self._error(400, "The retry key must be a UUID in hexadecimal format")
            if key in self._accepted:
                self.calls.append(("push", 409))
                resp = self._error(409, "The retry key is already accepted")
                resp.headers["X-Line-Accepted-Request-Id"] = self._accepted[key]
                return resp
        body, bad = await self._messages(request)
        if bad is not None or body is None:
            self.calls.append(("push", 400))
            return bad or self._error(400, "bad request")
        to = body.get("to")
        if not isinstance(to, str) or len(to) != 33 or to[0] not in "UCR":
            self.calls.append(("push", 400))
            return self._error(
                400,
                "The request body has 1 error(s)",
                [{"message": "Invalid to", "property": "to"}],
            )
        request_id = str(uuid.uuid4())
        if key is not None:
            self._accepted[key] = request_id
        self.pushes.append({"to": to, "messages": body["messages"], "retry_key": key})
        self._echo("push", self.pushes[-1])
        self.calls.append(("push", 200))
        return self._ok(self._sent(body))

    async def _content(self, request: web.Request) -> web.StreamResponse:
        refused = await self._gate("content", request)
        if refused is not None:
            return refused
        found = self.contents.get(request.match_info["id"])
        if found is None:
            self.calls.append(("content", 404))
            return self._error(404, "Not found")
        self.calls.append(("content", 200))
        return web.Response(body=found[0], content_type=found[1])

    async def _profile(self, request: web.Request) -> web.Response:
        refused = await self._gate("profile", request)
        if refused is not None:
            return refused
        found = self.profiles.get(request.match_info["user"])
        if found is None:
            self.calls.append(("profile", 404))
            return self._error(404, "Not found")
        self.calls.append(("profile", 200))
        return self._ok(found)


# -- the webhook side: events as LINE sends them ---------------------------------------


def _event(
    source: dict[str, str], message: dict[str, Any], reply_token: str, redelivery: bool
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message",
        "message": message,
        "webhookEventId": _ulid(),
        "deliveryContext": {"isRedelivery": redelivery},
        "timestamp": int(time.time() * 1000),
        "source": source,
        "mode": "active",
    }
    if reply_token:
        event["replyToken"] = reply_token
    return event


def _source(user: str, group: str = "") -> dict[str, str]:
    if group:
        return {"type": "group", "groupId": group, "userId": user}
    return {"type": "user", "userId": user}


def text_event(
    user: str, text: str, reply_token: str = "", *, group: str = "", redelivery: bool = False
) -> dict[str, Any]:
    message = {
        "type": "text",
        "id": message_id(),
        "quoteToken": secrets.token_urlsafe(24),
        "text": text,
    }
    return _event(_source(user, group), message, reply_token, redelivery)


def image_event(
    user: str, message: str = "", reply_token: str = "", *, group: str = ""
) -> dict[str, Any]:
    content = {
        "type": "image",
        "id": message or message_id(),
        "quoteToken": secrets.token_urlsafe(24),
        "contentProvider": {"type": "line"},
    }
    return _event(_source(user, group), content, reply_token, False)


def webhook_body(events: list[dict[str, Any]], destination: str = "") -> bytes:
    doc = {"destination": destination or "U" + "0" * 32, "events": events}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def post_webhook(
    url: str,
    secret: str,
    events: list[dict[str, Any]],
    *,
    signature: str | None = None,
    body: bytes | None = None,
) -> tuple[int, str]:
    """POST a webhook body to `url` as LINE does; (status, answer text)."""
    raw = body if body is not None else webhook_body(events)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-Line-Signature": sign(secret, raw) if signature is None else signature,
        "User-Agent": "LineBotWebhook/2.0",
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=raw, headers=headers) as resp:
            return resp.status, await resp.text()


# -- the command line ------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    peer = LinePeer(token=args.token, port=args.port, echo=True)
    await peer.start()
    print(f"LINE peer at {peer.url} (SB_LINE_API_URL and SB_LINE_DATA_URL)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await peer.stop()


async def _send(args: argparse.Namespace) -> None:
    event = text_event(args.user or user_id(), args.text, secrets.token_hex(16))
    status, text = await post_webhook(args.url, args.secret, [event])
    print(status, text)


def main() -> None:
    parser = argparse.ArgumentParser(prog="line_peer", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Messaging API")
    serve.add_argument("--port", type=int, default=8099)
    serve.add_argument("--token", default=LinePeer.token)
    send = sub.add_parser("send", help="post a signed text webhook")
    send.add_argument("--url", required=True)
    send.add_argument("--secret", required=True)
    send.add_argument("--text", default="こんにちは")
    send.add_argument("--user", default="")
    args = parser.parse_args()
    asyncio.run(_serve(args) if args.command == "serve" else _send(args))


if __name__ == "__main__":
    main()
