"""Reading a request, for every route module: the caller and the gRPC metadata that
carries them, the JSON body (checked against the operation's schema in openapi.yaml),
query parameters (whole numbers, booleans, lists, paging) and timestamps. Every refusal
is a 400 `invalid_argument` naming the parameter or field."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis.asyncio as aioredis
from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import common_pb2

from .access import CALLER, REQUEST_ID, RULE
from .auth import Caller
from .deps import DEPS, Deps
from .errors import ApiError

INT32_MAX = 2**31 - 1
FENCE_MAX = 2**63 - 1  # a reply lock's fence (TKT-3)
LIMIT_DEFAULT = 50  # rows of a page, unless the route says otherwise
LIMIT_MAX = 200
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def bad(message: str, field: str | None = None) -> ApiError:
    """400 invalid_argument naming the field or parameter."""
    return ApiError(400, "invalid_argument", message, field)


def deps(request: web.Request) -> Deps:
    return request.app[DEPS]


# -- who is calling -------------------------------------------------------------------


async def over_rate(request: web.Request, key: str, per_minute: int) -> bool:
    """A public route's limit: whether this is more than `per_minute` requests under `key`
    (with the client's address in it) in the current minute. A limiter that is down lets
    everything through: better a public page that works than one that refuses."""
    redis = deps(request).redis
    try:
        count = await redis.incr(key)
        if count == 1:
            await redis.expire(key, 60)
    except (aioredis.RedisError, OSError):
        return False
    return bool(count > per_minute)


def caller(request: web.Request) -> Caller:
    """The caller the access middleware verified for this request (gateway/access.py)."""
    if CALLER not in request:  # a route the document does not describe: refused, never open
        raise ApiError(401, "unauthenticated", "log in, or send Authorization: Bearer <token>")
    return request[CALLER]


def request_id(request: web.Request) -> str:
    """The request's id (its X-Request-Id when sane, else a new one): the correlation id
    of everything the request causes."""
    return request.get(REQUEST_ID) or ""


def metadata(request: web.Request) -> list[tuple[str, str]]:
    """The gRPC metadata of a call made for the caller: identity, permissions, inboxes,
    session and correlation id (every service checks them again)."""
    return caller(request).metadata(request_id(request))


# -- the JSON body --------------------------------------------------------------------


def _number(text: str) -> int | float:
    """A JSON number with a fraction or exponent; a whole one (`1.0`, `1e3`) is an int,
    as JSON Schema counts it."""
    value = float(text)
    return int(value) if value.is_integer() else value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _bad_text(node: Any, path: tuple[str, ...] = ()) -> str | None:
    """The dotted path of the first string or key holding a lone surrogate, if any."""
    if isinstance(node, str):
        try:
            node.encode("utf-8")
        except UnicodeEncodeError:
            return ".".join(path) or "body"
    elif isinstance(node, dict):
        for key, value in node.items():
            found = _bad_text(key, path) or _bad_text(value, (*path, key))
            if found:
                return found
    elif isinstance(node, list):
        for value in node:
            found = _bad_text(value, path)
            if found:
                return found
    return None


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, checked against its operation's requestBody schema."""
    # A JSON body is sent as JSON: a cross-site form cannot send this type without CORS.
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        text = await request.text()
        body = json.loads(text, parse_float=_number, parse_constant=_no_constant)
    except (ValueError, LookupError):  # JSONDecodeError, UnicodeDecodeError; a bad charset
        raise bad("the body must be JSON") from None
    if not isinstance(body, dict):
        raise bad("the body must be a JSON object")
    if _SURROGATE_ESCAPE.search(text):
        where = _bad_text(body)
        if where:
            raise bad(f"{where} is not valid Unicode text", where)
    rule = request.get(RULE)
    if rule is not None:
        deps(request).bodies.check(rule.operation_id, body)
    return body


async def optional_body(request: web.Request) -> dict[str, Any] | None:
    """As `json_body`, or None when the request has no body (the operation's body is
    optional)."""
    if not request.body_exists:
        return None
    return await json_body(request)


# -- query and path parameters --------------------------------------------------------


def whole_number(raw: str, name: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise bad(f"{name} must be a whole number", name) from None
    if not low <= value <= high:
        raise bad(f"{name} must be between {low} and {high}", name)
    return value


def query_int(
    request: web.Request, name: str, *, default: int = 0, low: int = 1, high: int = INT32_MAX
) -> int:
    """A whole number in [low, high]; `default` when absent or empty."""
    raw = request.query.get(name, "")
    return default if raw == "" else whole_number(raw, name, low, high)


def path_int(request: web.Request, name: str, *, low: int = 0, high: int = INT32_MAX) -> int:
    return whole_number(request.match_info[name], name, low, high)


def query_bool(request: web.Request, name: str) -> bool:
    """true/1 or false/0; false when absent."""
    value = request.query.get(name, "")
    if value not in ("", "true", "false", "1", "0"):
        raise bad(f"{name} must be true or false", name)
    return value in ("true", "1")


def query_list(request: web.Request, name: str) -> list[str]:
    """A comma-separated list, entries trimmed, empty ones left out."""
    return [v.strip() for v in request.query.get(name, "").split(",") if v.strip()]


def query_choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, or "" when absent or empty."""
    value = request.query.get(name, "")
    if value and value not in choices:
        raise bad(f"{name} must be one of {', '.join(choices)}", name)
    return value


def limit(request: web.Request, *, default: int = LIMIT_DEFAULT, high: int = LIMIT_MAX) -> int:
    return query_int(request, "limit", default=default, low=1, high=high)


def page(request: web.Request) -> common_pb2.PageRequest:
    """`limit` (1–200, default 50) and `cursor` (from the previous page's `next`)."""
    return common_pb2.PageRequest(limit=limit(request), cursor=request.query.get("cursor", ""))


# -- timestamps -----------------------------------------------------------------------


def zone(name: str) -> tzinfo:
    """An IANA time zone; UTC when empty or unknown."""
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def timestamp(value: str, field: str, default_zone: tzinfo = UTC) -> Timestamp:
    """An ISO 8601 date or date-time; without an offset it is in `default_zone`."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise bad(f"{field} must be an ISO 8601 date-time", field) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=default_zone)
    ts = Timestamp()
    try:
        ts.FromDatetime(when.astimezone(UTC))
    except (ValueError, OverflowError):
        raise bad(f"{field} is out of range", field) from None
    return ts


def local_time(request: web.Request, value: str, field: str) -> Timestamp:
    """An ISO 8601 date-time; without an offset it is in the caller's time zone (OUT-2:
    "tomorrow at 9" means 9 where the operator is)."""
    return timestamp(value, field, zone(caller(request).time_zone))
