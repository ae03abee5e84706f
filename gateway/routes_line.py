"""LINE's webhook (issue 21, docs/channels.md "LINE"): `POST /hooks/line/{public_key}` —
the URL an administrator pastes into the LINE Developers console. Public: LINE signs the
body (`X-Line-Signature`), and ingestion, which holds the channel secret, checks it
(ChannelsService.ReceiveSigned, kind "line"); the body is passed on exactly as received,
since the signature is over its bytes.

- 200 once ingestion has the messages (stored once each: a redelivery is answered 200
  and adds nothing); the console's "Verify" request (an empty `events` list, signed) is a
  200 too;
- LINE counts a webhook unanswered after 2 seconds as failed: when ingestion is still
  busy after `ANSWER_WITHIN_S` (fetching an image from LINE, say), the answer is 200 with
  `pending: true` and the call goes on (its failure is logged; it is not cancelled when
  LINE hangs up);
- a missing or wrong signature → 401 and nothing stored; an unknown or disabled
  channel → 404 (the same for both, so a key's existence is not told);
- ingestion unavailable → 503, so that LINE redelivers when the channel has redelivery
  on."""

from __future__ import annotations

import asyncio
import json

import grpc
from aiohttp import web
from switchboard.v1 import ingestion_channels_pb2 as pb
from switchboard.v1 import ingestion_channels_pb2_grpc as pb_grpc

from services.runtime import log

from .access import CLIENT, RULE
from .errors import ApiError
from .request import bad, deps

SIGNATURE = "X-Line-Signature"
ANSWER_WITHIN_S = 1.5  # LINE: a webhook not answered within 2 s failed
# calls still running after their answer (a reference, so that they are not collected)
_PENDING: set[asyncio.Task[pb.ReceiveSignedResponse]] = set()


async def _receive(request: web.Request, raw: bytes, signature: str) -> pb.ReceiveSignedResponse:
    stub = pb_grpc.ChannelsServiceStub(deps(request).channels["ingestion"])  # type: ignore[no-untyped-call,unused-ignore]
    resp: pb.ReceiveSignedResponse = await stub.ReceiveSigned(
        pb.ReceiveSignedRequest(
            kind="line",
            public_key=request.match_info["public_key"],
            body=raw,
            signature=signature,
            client_address=request[CLIENT] or "",
        ),
        timeout=30,
    )
    return resp


def _finished_late(task: asyncio.Task[pb.ReceiveSignedResponse]) -> None:
    if task.cancelled():
        return
    err = task.exception()
    if err is not None:
        code = err.code().name if isinstance(err, grpc.aio.AioRpcError) else type(err).__name__
        log.get("gateway.line").warning("line webhook failed after its answer", code=code)


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
    # a task of its own: neither LINE hanging up nor the answer's deadline cancels it
    task = asyncio.get_running_loop().create_task(_receive(request, raw, signature))
    done, _ = await asyncio.wait({task}, timeout=ANSWER_WITHIN_S)
    if task not in done:
        _PENDING.add(task)
        task.add_done_callback(_PENDING.discard)
        task.add_done_callback(_finished_late)
        return web.json_response({"received": 0, "duplicates": 0, "pending": True})
    resp = task.result()  # a refusal (401, 404, 503) raises here, answered as such
    fresh = sum(1 for m in resp.messages if not m.duplicate)
    return web.json_response(
        {"received": fresh, "duplicates": len(resp.messages) - fresh, "pending": False}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/hooks/line/{public_key}", line_webhook)
