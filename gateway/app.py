"""The gateway's composition root and routes (documented in gateway/openapi.yaml)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import redis.asyncio as aioredis
from aiohttp import web
from pydantic import Field
from switchboard.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    common_pb2,
    composition_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
    outbound_pb2_grpc,
    tickets_pb2,
    tickets_pb2_grpc,
)

from services.runtime import grpc_client, log, redis_client, registry
from services.runtime import settings as rt_settings
from services.runtime.bus import Bus
from services.runtime.ids import IdGenerator
from services.runtime.metrics import Metrics, http_middleware

from . import (
    routes_accounts,
    routes_compose,
    routes_contacts,
    routes_locks,
    routes_outbound,
    routes_tickets,
    static,
    views,
)
from .access import (
    CALLER,
    CLIENT,
    REQUEST_ID,
    Access,
    JsonBody,
    json_middleware,
    load_spec,
    rules_of,
    security_headers,
)
from .auth import SESSION_COOKIE, Caller, SessionResolver, client_address, parse_networks
from .errors import ApiError, error_middleware, from_grpc
from .live import LiveHub

BACKENDS = registry.SERVICE_NAMES  # every gRPC service the gateway reports on
OPENAPI = Path(__file__).with_name("openapi.yaml")
_dumps = partial(json.dumps, ensure_ascii=False)


def json_response(body: Any, status: int = 200, *, customer_data: bool = True) -> web.Response:
    """A JSON answer; masked on its way out for callers who may not see customers'
    addresses, unless `customer_data` is False (see access.JsonBody)."""
    return JsonBody(body, status, customer_data=customer_data)


class GatewaySettings(rt_settings.RuntimeSettings):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    session_cache_s: int = Field(default=30, ge=0, le=3600)
    import_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024, le=1024**3)
    form_rate_per_minute: int = Field(default=10, ge=1, le=10_000)  # per form and client
    # SEC-2: the real client address is read from `client_ip_header` only when the TCP peer
    # is one of these proxies (comma-separated addresses or CIDR ranges).
    trusted_proxies: str = ""
    client_ip_header: str = "X-Forwarded-For"
    # The session cookie is Secure unless this is off (plain http other than localhost).
    cookie_secure: bool = True
    hsts: bool = False  # Strict-Transport-Security, when the gateway is reached over https


class Deps:
    """What the handlers use, built once in `build_app`."""

    def __init__(self, settings: GatewaySettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.ids = IdGenerator()
        self.channels = {name: grpc_client.channel(settings.addr_of(name)) for name in BACKENDS}
        self.accounts = accounts_pb2_grpc.AccountsServiceStub(self.channels["accounts"])
        self.tickets = tickets_pb2_grpc.TicketsServiceStub(self.channels["tickets"])
        self.ingestion = ingestion_pb2_grpc.IngestionServiceStub(self.channels["ingestion"])
        self.composition = composition_pb2_grpc.CompositionServiceStub(self.channels["composition"])
        self.outbound = outbound_pb2_grpc.OutboundServiceStub(self.channels["outbound"])
        self.redis = redis_client.connect(settings.redis_url)
        self.sessions = SessionResolver(
            self.channels["accounts"], self.redis, settings.session_cache_s
        )
        self.bus = Bus(settings.nats_url, "sb-gateway")
        self.live = LiveHub(metrics)
        self.spec = load_spec(OPENAPI)
        trusted = parse_networks(settings.trusted_proxies.split(","))
        header = settings.client_ip_header
        self.access = Access(
            rules_of(self.spec),
            self.sessions,
            self.bus,
            self.ids,
            lambda request: client_address(request, trusted, header),
        )


DEPS = web.AppKey("deps", Deps)


async def _json_body(request: web.Request) -> dict[str, Any]:
    # A JSON body is sent as JSON: a cross-site form cannot send this type without CORS.
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_argument", "the body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_argument", "the body must be a JSON object")
    return body


def _strings(body: dict[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    """These fields of a JSON body, each a string ("" when absent or null)."""
    values = {}
    for name in names:
        value = body.get(name) or ""
        if not isinstance(value, str):
            raise ApiError(400, "invalid_argument", f"{name} must be a string", name)
        values[name] = value
    return values


async def caller_of(request: web.Request) -> Caller:
    """The caller the access middleware verified for this request (gateway/access.py)."""
    caller = request.get(CALLER)
    if caller is None:  # a route the document does not describe: refused, never open
        raise ApiError(401, "unauthenticated", "log in, or send Authorization: Bearer <token>")
    return caller


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def request_id(request: web.Request) -> str:
    """The caller's X-Request-Id when it is a sane token, else a new id; it becomes the
    correlation id of everything the request causes, and is echoed in the response."""
    return request.get(REQUEST_ID) or ""


def _md(caller: Caller, request: web.Request) -> list[tuple[str, str]]:
    return caller.metadata(request_id(request))


def request_id_middleware(ids: IdGenerator) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("X-Request-Id", "")
        rid = given if _REQUEST_ID.match(given) else ids.new_str()
        request[REQUEST_ID] = rid
        with log.bound(request_id=rid):
            response = await handler(request)
        if not response.prepared:
            response.headers["X-Request-Id"] = rid
        return response

    return middleware


# -- health ----------------------------------------------------------------------------


async def livez(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    checks = {"nats": deps.bus.connected}
    try:
        checks["redis"] = bool(await asyncio.wait_for(deps.redis.ping(), 2))
    except (aioredis.RedisError, OSError, TimeoutError):
        checks["redis"] = False
    ok = all(checks.values())
    return json_response(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )


async def healthz(request: web.Request) -> web.Response:
    """200 when every backend service reports SERVING; 503 naming the ones that do not."""
    deps = request.app[DEPS]
    statuses = await asyncio.gather(*(grpc_client.check_health(deps.channels[n]) for n in BACKENDS))
    services = dict(zip(BACKENDS, statuses, strict=True))
    failing = sorted(n for n, s in services.items() if s != "SERVING")
    body: dict[str, Any] = {"status": "ok" if not failing else "unavailable", "services": services}
    if failing:
        body["failing"] = failing
    return json_response(body, status=200 if not failing else 503)


# -- API -------------------------------------------------------------------------------


async def create_session(request: web.Request) -> web.Response:
    """Log in (SEC-1): the token for API clients, and for browsers the same token in an
    HttpOnly, SameSite=Strict cookie with the CSRF token their state-changing requests
    send in X-CSRF-Token."""
    body = await _json_body(request)
    login, password = body.get("login"), body.get("password")
    if not isinstance(login, str) or not login:
        raise ApiError(400, "invalid_argument", "login is required", "login")
    if not isinstance(password, str) or not password:
        raise ApiError(400, "invalid_argument", "password is required", "password")
    deps = request.app[DEPS]
    try:
        resp = await deps.accounts.Authenticate(
            accounts_pb2.AuthenticateRequest(
                login=login,
                password=password,
                client_address=request[CLIENT],
                user_agent=request.headers.get("User-Agent", "")[:500],
            ),
            timeout=30,
        )
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.UNAUTHENTICATED:
            raise ApiError(401, "unauthenticated", "wrong login or password") from None
        if err.code() == grpc.StatusCode.PERMISSION_DENIED:
            raise ApiError(403, "address_not_allowed", err.details() or "") from None
        if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            api = from_grpc(err)
            raise ApiError(
                429, "login_locked", api.message, retry_after_s=api.retry_after_s
            ) from None
        raise
    caller = Caller.from_principal(resp.principal)
    response = json_response(
        {
            "token": resp.token,
            "csrf_token": resp.csrf_token,
            "expires_at": views.iso(resp.expires_at),
            "operator": caller.to_json(),
            "password_change_required": caller.password_change_required or None,
        },
        status=201,
        customer_data=False,
    )
    response.set_cookie(
        SESSION_COOKIE,
        resp.token,
        max_age=max(60, int(resp.expires_at.seconds - time.time())),
        path="/",
        secure=deps.settings.cookie_secure,
        httponly=True,
        samesite="Strict",
    )
    return response


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "invalid_argument", f"{name} must be a whole number", name) from None


async def list_tickets(request: web.Request) -> web.Response:
    """Search and list (TKT-10): filters, keyword, sort and paging are read by
    routes_tickets.search; each row carries its elapsed time (TKT-14)."""
    resp = await routes_tickets.search(request)
    return json_response(
        {"items": [views.ticket_row(r) for r in resp.rows], "next": resp.next_cursor or None}
    )


async def get_ticket(request: web.Request) -> web.Response:
    """The ticket with its messages (mail and phone memos), internal comments, both merged
    in time order as `timeline`, and its elapsed time."""
    caller = await caller_of(request)
    resp = await request.app[DEPS].tickets.GetTicket(
        tickets_pb2.GetTicketRequest(ticket_id=request.match_info["ticket_id"]),
        metadata=_md(caller, request),
        timeout=10,
    )
    body = views.ticket(resp.ticket)
    body.update(views.elapsed(resp.elapsed_seconds, resp.elapsed_level, resp.elapsed_color))
    body["messages"] = [views.message(m) for m in resp.messages]
    body["comments"] = [views.comment(c) for c in resp.comments]
    body["timeline"] = [views.timeline_entry(e) for e in resp.timeline]
    body["actions"] = views.ticket_actions(caller.permissions, resp.ticket)
    return json_response(body)


# -- intake channels (admin) -------------------------------------------------------------

MAILBOX_FIELDS = {
    "inbox_id": str,
    "host": str,
    "port": int,
    "security": str,
    "username": str,
    "auth": str,
    "folder": str,
    "after_fetch": str,
    "move_to": str,
    "poll_interval_s": int,
    "enabled": bool,
}


def mailbox_json(mb: ingestion_pb2.Mailbox) -> dict[str, Any]:
    st = mb.settings
    return {
        "id": mb.id,
        "inbox": {"id": st.inbox_id, "name": mb.inbox_name},
        **{k: getattr(st, k) for k in MAILBOX_FIELDS if k != "inbox_id"},
        "state": {
            "state": mb.state.state or None,
            "last_error": mb.state.last_error or None,
            "last_ok_at": views.iso(mb.state.last_ok_at),
            "fetched": mb.state.fetched,
            "last_uid": mb.state.last_uid,
        },
    }


async def _mailbox_request(
    request: web.Request, secret_required: bool = True
) -> ingestion_pb2.CreateMailboxRequest:
    """The settings of a JSON body; without `secret_required` (an edit) a missing secret
    means "keep the stored one"."""
    body = await _json_body(request)
    settings = ingestion_pb2.MailboxSettings(enabled=True)
    for name, kind in MAILBOX_FIELDS.items():
        if name not in body:
            continue
        value = body[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ApiError(400, "invalid_argument", f"{name} must be a {kind.__name__}", name)
        if isinstance(value, int) and not -(2**31) <= value < 2**31:
            raise ApiError(400, "invalid_argument", f"{name} is out of range", name)
        setattr(settings, name, value)
    secret = body.get("secret")
    if secret is None and not secret_required:
        secret = ""
    if not isinstance(secret, str) or (secret_required and not secret):
        raise ApiError(400, "invalid_argument", "secret (password or token) is required", "secret")
    return ingestion_pb2.CreateMailboxRequest(settings=settings, secret=secret)


async def create_mailbox(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    resp = await request.app[DEPS].ingestion.CreateMailbox(
        await _mailbox_request(request), metadata=_md(caller, request), timeout=10
    )
    return json_response(mailbox_json(resp), status=201)


def _tested(result: common_pb2.ConnectionTestResult) -> web.Response:
    return json_response(
        {"ok": result.ok, "detail": result.detail, "elapsed_ms": result.elapsed_ms},
        customer_data=False,
    )


async def test_mailbox_settings(request: web.Request) -> web.Response:
    """Connect and log in with mailbox settings not saved yet (the body of a new one)."""
    caller = await caller_of(request)
    settings = await _mailbox_request(request)
    resp = await request.app[DEPS].ingestion.TestMailbox(
        ingestion_pb2.TestMailboxRequest(settings=settings),
        metadata=_md(caller, request),
        timeout=30,
    )
    return _tested(resp)


async def test_mailbox(request: web.Request) -> web.Response:
    """A stored mailbox as it is (no body), or edited settings with its stored secret."""
    caller = await caller_of(request)
    test = ingestion_pb2.TestMailboxRequest(mailbox_id=request.match_info["mailbox_id"])
    if request.can_read_body:
        test.settings.CopyFrom(await _mailbox_request(request, secret_required=False))
    resp = await request.app[DEPS].ingestion.TestMailbox(
        test, metadata=_md(caller, request), timeout=30
    )
    return _tested(resp)


async def update_mailbox(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    edit = await _mailbox_request(request, secret_required=False)
    resp = await request.app[DEPS].ingestion.UpdateMailbox(
        ingestion_pb2.UpdateMailboxRequest(
            mailbox_id=request.match_info["mailbox_id"], settings=edit.settings, secret=edit.secret
        ),
        metadata=_md(caller, request),
        timeout=10,
    )
    return json_response(mailbox_json(resp))


async def list_mailboxes(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    resp = await request.app[DEPS].ingestion.ListMailboxes(
        ingestion_pb2.ListMailboxesRequest(), metadata=_md(caller, request), timeout=10
    )
    return json_response({"items": [mailbox_json(m) for m in resp.mailboxes]})


async def delete_mailbox(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    await request.app[DEPS].ingestion.DeleteMailbox(
        ingestion_pb2.DeleteMailboxRequest(mailbox_id=request.match_info["mailbox_id"]),
        metadata=_md(caller, request),
        timeout=10,
    )
    return web.Response(status=204)


# -- imports (admin) ---------------------------------------------------------------------

IMPORT_CHUNK = 1024 * 1024


def import_json(job: ingestion_pb2.ImportJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "inbox": {"id": job.inbox_id, "name": job.inbox_name},
        "filename": job.filename,
        "kind": job.kind,
        "size_bytes": job.size_bytes,
        "state": job.state,
        "total": job.total if job.total or job.state in ("done", "failed") else None,
        "done": job.done,
        "created": job.created,
        "duplicates": job.duplicates,
        "failures": [
            {"index": f.index, "name": f.name, "problem": f.problem} for f in job.failures
        ],
        "error": job.error or None,
        "created_at": views.iso(job.created_at),
        "updated_at": views.iso(job.updated_at),
    }


async def create_import(request: web.Request) -> web.Response:
    """The file is the request body (any content type); it is streamed to ingestion."""
    caller = await caller_of(request)
    deps = request.app[DEPS]
    limit = deps.settings.import_max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"the file is larger than {limit} bytes")
    inbox_id = request.query.get("inbox_id", "")
    if not inbox_id:
        raise ApiError(400, "invalid_argument", "inbox_id is required", "inbox_id")
    kind = request.query.get("kind", "")
    if kind and kind not in ("eml", "mbox", "zip"):
        raise ApiError(400, "invalid_argument", "kind must be eml, mbox or zip", "kind")
    header = ingestion_pb2.ImportHeader(
        inbox_id=inbox_id, filename=request.query.get("filename", "")[:255], kind=kind
    )
    size = 0

    async def chunks() -> Any:
        nonlocal size
        yield ingestion_pb2.ImportChunk(header=header)
        async for data in request.content.iter_chunked(IMPORT_CHUNK):
            size += len(data)
            if size > limit:
                raise ApiError(413, "too_large", f"the file is larger than {limit} bytes")
            yield ingestion_pb2.ImportChunk(data=data)

    resp = await deps.ingestion.CreateImport(chunks(), metadata=_md(caller, request), timeout=600)
    return json_response(import_json(resp), status=201)


async def get_import(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    resp = await request.app[DEPS].ingestion.GetImport(
        ingestion_pb2.GetImportRequest(import_id=request.match_info["import_id"]),
        metadata=_md(caller, request),
        timeout=10,
    )
    return json_response(import_json(resp))


async def list_imports(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    resp = await request.app[DEPS].ingestion.ListImports(
        ingestion_pb2.ListImportsRequest(), metadata=_md(caller, request), timeout=10
    )
    return json_response({"items": [import_json(j) for j in resp.imports]})


async def list_inboxes(request: web.Request) -> web.Response:
    """The inboxes the caller may see; `?all=true` (manage_inboxes): every inbox, with its
    members."""
    caller = await caller_of(request)
    every = request.query.get("all", "") in ("1", "true")
    resp = await request.app[DEPS].accounts.ListInboxes(
        accounts_pb2.ListInboxesRequest(all=every), metadata=_md(caller, request), timeout=10
    )
    return json_response(
        {"items": [views.inbox(i, members=every) for i in resp.inboxes]}, customer_data=False
    )


async def get_message(request: web.Request) -> web.Response:
    """The parsed mail: what the ticket view shows (HTML already sanitised)."""
    caller = await caller_of(request)
    resp = await request.app[DEPS].ingestion.GetMessage(
        ingestion_pb2.GetMessageRequest(message_id=request.match_info["message_id"]),
        metadata=_md(caller, request),
        timeout=30,
    )
    parsed = json.loads(resp.parsed_json) if resp.parsed_json else None
    if parsed is not None:
        for att in parsed.get("attachments", []):
            att["download_url"] = f"/api/v1/messages/{resp.message_id}/attachments/{att['index']}"
    return json_response(
        {
            "id": resp.message_id,
            "channel": resp.channel,
            "received_at": views.iso(resp.received_at),
            "parsed": parsed,
        }
    )


async def get_attachment(request: web.Request) -> web.Response:
    """An attachment as a download: never rendered in the browser, whatever it claims."""
    caller = await caller_of(request)
    try:
        index = int(request.match_info["index"])
    except ValueError:
        raise ApiError(400, "invalid_argument", "index must be a whole number", "index") from None
    resp = await request.app[DEPS].ingestion.GetAttachment(
        ingestion_pb2.GetAttachmentRequest(
            message_id=request.match_info["message_id"], index=index
        ),
        metadata=_md(caller, request),
        timeout=60,
    )
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in resp.filename
    )
    return web.Response(
        body=resp.data,
        content_type="application/octet-stream",
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(resp.filename)}"
            ),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "X-Declared-Content-Type": "".join(
                c for c in resp.content_type if c.isascii() and c.isprintable()
            )[:200],
        },
    )


async def raw_message(request: web.Request) -> web.Response:
    """The mail exactly as it arrived, as a download (never rendered by the browser)."""
    caller = await caller_of(request)
    resp = await request.app[DEPS].ingestion.GetRawMessage(
        ingestion_pb2.GetRawMessageRequest(message_id=request.match_info["message_id"]),
        metadata=_md(caller, request),
        timeout=30,
    )
    return web.Response(
        body=resp.raw,
        content_type="message/rfc822",
        headers={
            "Content-Disposition": f'attachment; filename="{resp.message_id}.eml"',
            "X-Content-Type-Options": "nosniff",
        },
    )


# -- web inquiry forms ---------------------------------------------------------------------

FORM_MAX_BYTES = 64 * 1024
FORM_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}


def form_json(f: ingestion_pb2.Form) -> dict[str, Any]:
    return {
        "id": f.id,
        "inbox": {"id": f.inbox_id, "name": f.inbox_name},
        "name": f.name,
        "redirect_url": f.redirect_url or None,
        "enabled": f.enabled,
        "submit_url": f"/api/v1/forms/{f.id}/submissions",
        "created_at": views.iso(f.created_at),
    }


async def create_form(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    values = _strings(await _json_body(request), ("inbox_id", "name", "redirect_url"))
    resp = await request.app[DEPS].ingestion.CreateForm(
        ingestion_pb2.CreateFormRequest(**values), metadata=_md(caller, request), timeout=10
    )
    return json_response(form_json(resp), status=201)


async def list_forms(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    resp = await request.app[DEPS].ingestion.ListForms(
        ingestion_pb2.ListFormsRequest(), metadata=_md(caller, request), timeout=10
    )
    return json_response({"items": [form_json(f) for f in resp.forms]})


async def delete_form(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    await request.app[DEPS].ingestion.DeleteForm(
        ingestion_pb2.DeleteFormRequest(form_id=request.match_info["form_id"]),
        metadata=_md(caller, request),
        timeout=10,
    )
    return web.Response(status=204)


async def form_preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=FORM_CORS)


async def _form_fields(request: web.Request) -> list[tuple[str, str]]:
    if request.content_length is not None and request.content_length > FORM_MAX_BYTES:
        raise ApiError(413, "too_large", f"a submission is at most {FORM_MAX_BYTES} bytes")
    raw = await request.content.read(FORM_MAX_BYTES + 1)
    if len(raw) > FORM_MAX_BYTES:
        raise ApiError(413, "too_large", f"a submission is at most {FORM_MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_argument", "the submission must be UTF-8") from None
    if request.content_type == "application/json":
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            raise ApiError(400, "invalid_argument", "the body must be JSON") from None
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            raise ApiError(400, "invalid_argument", "the body must be an object of strings")
        return list(body.items())
    if request.content_type in ("application/x-www-form-urlencoded", ""):
        from urllib.parse import parse_qsl

        return parse_qsl(text, keep_blank_values=True, max_num_fields=100)
    raise ApiError(415, "unsupported_media_type", "send application/x-www-form-urlencoded or JSON")


async def submit_form(request: web.Request) -> web.StreamResponse:
    """Public: no session, no CSRF cookie (nothing here acts as anyone). Limited per form
    and client address; a filled-in honeypot is answered like a success and dropped."""
    deps = request.app[DEPS]
    form_id = request.match_info["form_id"]
    client = request[CLIENT] or "unknown"
    key = f"sb:gw:form-rate:{form_id[:40]}:{client}"
    try:
        count = await deps.redis.incr(key)
        if count == 1:
            await deps.redis.expire(key, 60)
    except (aioredis.RedisError, OSError):
        count = 0  # the limiter is down: better a form that works than one that refuses
    if count > deps.settings.form_rate_per_minute:
        raise ApiError(429, "resource_exhausted", "too many submissions; try again in a minute")
    fields = await _form_fields(request)
    resp = await deps.ingestion.SubmitForm(
        ingestion_pb2.SubmitFormRequest(
            form_id=form_id,
            fields=[ingestion_pb2.FormField(name=k, value=v) for k, v in fields],
            client_address=client,
            user_agent=request.headers.get("User-Agent", "")[:500],
        ),
        timeout=30,
    )
    if resp.redirect_url and request.content_type != "application/json":
        raise web.HTTPSeeOther(resp.redirect_url, headers=FORM_CORS)
    return web.json_response(
        {"status": "received", "submission_id": resp.submission_id}, status=201, headers=FORM_CORS
    )


# -- blocked senders (admin) -------------------------------------------------------------


def block_json(b: ingestion_pb2.Block) -> dict[str, Any]:
    return {
        "id": b.id,
        "kind": b.kind,
        "value": b.value,
        "inbox_id": b.inbox_id or None,
        "created_at": views.iso(b.created_at),
    }


async def add_block(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    values = _strings(await _json_body(request), ("kind", "value", "inbox_id"))
    resp = await request.app[DEPS].ingestion.AddBlock(
        ingestion_pb2.AddBlockRequest(**values), metadata=_md(caller, request), timeout=10
    )
    return json_response(block_json(resp), status=201)


async def list_blocks(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    resp = await request.app[DEPS].ingestion.ListBlocks(
        ingestion_pb2.ListBlocksRequest(), metadata=_md(caller, request), timeout=10
    )
    return json_response({"items": [block_json(b) for b in resp.blocks]})


async def delete_block(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    await request.app[DEPS].ingestion.DeleteBlock(
        ingestion_pb2.DeleteBlockRequest(block_id=request.match_info["block_id"]),
        metadata=_md(caller, request),
        timeout=10,
    )
    return web.Response(status=204)


async def live(request: web.Request) -> web.StreamResponse:
    caller = await caller_of(request)
    return await request.app[DEPS].live.serve(request, caller)


async def openapi(request: web.Request) -> web.FileResponse:
    return web.FileResponse(OPENAPI, headers={"Content-Type": "application/yaml"})


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(request.app[DEPS].spec, customer_data=False)


# -- assembly --------------------------------------------------------------------------


def build_app(settings: GatewaySettings, metrics: Metrics | None = None) -> web.Application:
    deps = Deps(settings, metrics or Metrics("gateway"))
    app = web.Application(
        middlewares=[
            http_middleware(deps.metrics),  # first: it sees every request's final status
            request_id_middleware(deps.ids),
            error_middleware(deps.ids),
            deps.access.middleware(),
            json_middleware,
        ],
        client_max_size=1024 * 1024,
    )
    app[DEPS] = deps
    app.on_response_prepare.append(security_headers(settings.hsts))
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/openapi.yaml", openapi)
    app.router.add_get("/api/v1/openapi.json", openapi_json)
    app.router.add_post("/api/v1/sessions", create_session)
    app.router.add_get("/api/v1/tickets", list_tickets)
    app.router.add_get("/api/v1/tickets/{ticket_id}", get_ticket)
    app.router.add_get("/api/v1/live", live)
    app.router.add_post("/api/v1/mailboxes", create_mailbox)
    app.router.add_get("/api/v1/mailboxes", list_mailboxes)
    app.router.add_post("/api/v1/mailboxes/test", test_mailbox_settings)
    app.router.add_post("/api/v1/mailboxes/{mailbox_id}/test", test_mailbox)
    app.router.add_put("/api/v1/mailboxes/{mailbox_id}", update_mailbox)
    app.router.add_delete("/api/v1/mailboxes/{mailbox_id}", delete_mailbox)
    app.router.add_post("/api/v1/imports", create_import)
    app.router.add_get("/api/v1/imports", list_imports)
    app.router.add_get("/api/v1/imports/{import_id}", get_import)
    app.router.add_get("/api/v1/inboxes", list_inboxes)
    app.router.add_post("/api/v1/blocklist", add_block)
    app.router.add_get("/api/v1/blocklist", list_blocks)
    app.router.add_delete("/api/v1/blocklist/{block_id}", delete_block)
    app.router.add_post("/api/v1/forms", create_form)
    app.router.add_get("/api/v1/forms", list_forms)
    app.router.add_delete("/api/v1/forms/{form_id}", delete_form)
    app.router.add_post("/api/v1/forms/{form_id}/submissions", submit_form)
    app.router.add_route("OPTIONS", "/api/v1/forms/{form_id}/submissions", form_preflight)
    app.router.add_get("/api/v1/messages/{message_id}", get_message)
    app.router.add_get("/api/v1/messages/{message_id}/raw", raw_message)
    app.router.add_get("/api/v1/messages/{message_id}/attachments/{index}", get_attachment)
    routes_tickets.add_routes(app)
    routes_locks.add_routes(app)
    routes_contacts.add_routes(app)
    routes_accounts.add_routes(app)
    routes_compose.add_routes(app)
    routes_outbound.add_routes(app)
    static.add_routes(app)

    async def lifecycle(app: web.Application) -> Any:
        await deps.bus.connect()
        await deps.live.start(deps.bus.nc)
        yield
        await deps.live.stop()
        await deps.access.drain()
        await deps.bus.drain()
        for ch in deps.channels.values():
            await ch.close()
        await deps.redis.aclose()

    app.cleanup_ctx.append(lifecycle)
    return app


async def main() -> int:
    settings = rt_settings.load(GatewaySettings)
    log.configure("gateway", settings.effective_log_format, settings.log_level)
    logger = log.get("gateway")
    metrics = Metrics("gateway")
    app = build_app(settings, metrics)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    metrics_at = settings.metrics_address("gateway")
    if metrics_at is not None:
        try:
            port = await metrics.serve(*metrics_at)
        except OSError as exc:
            logger.error("cannot serve metrics", error=str(exc))
            await runner.cleanup()
            return 2
        logger.info("metrics listening", host=metrics_at[0], port=port)
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    logger.info("http listening", host=settings.http_host, port=settings.http_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("shutting down")
    await runner.shutdown()
    await runner.cleanup()
    await metrics.close()
    logger.info("stopped")
    return 0
