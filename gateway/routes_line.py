"""LINE's webhook (issue 21, docs/channels.md "LINE"): `POST /hooks/line/{public_key}` —
the URL an administrator pastes into the LINE Developers console. Public: LINE signs the
body (`X-Line-Signature`), and ingestion, which holds the channel secret, checks it
(ChannelsService.ReceiveSigned, kind "line"); the body is passed on exactly as received,
since the signature is over its bytes.

- 200 once ingestion has the messages (stored once each: a redelivery is answered 200
  and adds nothing); the console's "Verify" request (an empty `events` list, signed) is a
  200 too;
- a missing or wrong signature → 401 and nothing stored; an unknown or disabled
  channel → 404 (the same for both, so a key's existence is not told);
- ingestion unavailable → 503, so that LINE redelivers when the channel has redelivery
  on."""

from __future__ import annotations

import json

from aiohttp import web
from switchboard.v1 import ingestion_channels_pb2 as pb
from switchboard.v1 import ingestion_channels_pb2_grpc as pb_grpc

from .access import CLIENT, RULE
from .errors import ApiError
from .request import bad, deps

SIGNATURE = "X-Line-Signature"
STUB = web.AppKey("line_channels_stub", pb_grpc.ChannelsServiceStub)


def _stub(request: web.Request) -> pb_grpc.ChannelsServiceStub:
    stub = request.app.get(STUB)
    if stub is None:
        stub = pb_grpc.ChannelsServiceStub(deps(request).channels["ingestion"])  # type: ignore[no-untyped-call,unused-ignore]
        request.app[STUB] = stub
    return stub


async def line_webhook(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = await request.read()  # at most the app's client_max_size (1 MiB): else 413
    signature = request.headers.get(SIGNATURE, "")
    if not signature:
        raise ApiError(401, "unauthenticated", f"the {SIGNATURE} header is missing", SIGNATURE)
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad("the body must be JSON") from None
    if not isinstance(doc, dict):
        raise bad("the body must be a JSON object")
    rule = request.get(RULE)
    if rule is not None:
        deps(request).bodies.check(rule.operation_id, doc)
    resp = await _stub(request).ReceiveSigned(
        pb.ReceiveSignedRequest(
            kind="line",
            public_key=request.match_info["public_key"],
            body=raw,
            signature=signature,
            client_address=request[CLIENT] or "",
        ),
        timeout=20,
    )
    fresh = sum(1 for m in resp.messages if not m.duplicate)
    return web.json_response(
        {"received": fresh, "duplicates": len(resp.messages) - fresh}, status=200
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/hooks/line/{public_key}", line_webhook)
