"""structlog: JSON lines in production, a readable console in development.

Ids (tenant_id, ticket_id, event_id, correlation_id, …) are bound through contextvars, so
every line logged while handling a request or an event carries them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum
from typing import Any

import structlog
import structlog.tracebacks


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


# Keys that must never reach a log line, whatever the caller binds.
_SECRET_KEYS = frozenset({"password", "token", "secret", "authorization", "api_key"})


def _drop_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in list(event_dict):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def configure(service: str, fmt: LogFormat, level: LogLevel) -> None:
    numeric = getattr(logging, level.value.upper())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
    ]
    renderer: Any
    if fmt is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer()
        # tracebacks as data, without the frames' local variables: they can hold
        # passwords, tokens and customers' mail, none of which belongs in a log
        shared.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False, use_rich=False)
            )
        )
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries that use the standard logging module go to the same stream, at warning+.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def get(name: str | None = None) -> Any:
    return structlog.get_logger(name) if name else structlog.get_logger()


@contextmanager
def bound(**ids: Any) -> Iterator[None]:
    """Bind ids for the duration of a block (a request, an event), then restore."""
    clean = {k: v for k, v in ids.items() if v}
    tokens = structlog.contextvars.bind_contextvars(**clean)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


# The ids `also()` bound in the operation running now, each with its value before (or
# _UNBOUND). Values, not tokens: an event's handler runs in a task of its own, whose
# context is a copy, and a token can only be reset in the context that made it.
_FOUND: ContextVar[dict[str, Any] | None] = ContextVar("sb_log_found", default=None)
_UNBOUND = object()


@contextmanager
def operation(**ids: Any) -> Iterator[None]:
    """Bind ids for one operation (an RPC, an event), like `bound`; ids the operation finds
    as it goes (`also(ticket_id=…)` once it has read the draft) are bound until its end."""
    clean = {k: v for k, v in ids.items() if v}
    tokens = structlog.contextvars.bind_contextvars(**clean)
    found: dict[str, Any] = {}
    scope = _FOUND.set(found)
    try:
        yield
    finally:
        _FOUND.reset(scope)
        for key, before in found.items():
            if before is _UNBOUND:
                structlog.contextvars.unbind_contextvars(key)
            else:
                structlog.contextvars.bind_contextvars(**{key: before})
        structlog.contextvars.reset_contextvars(**tokens)


def also(**ids: Any) -> None:
    """Bind ids for the rest of the operation running now (see `operation`): once, where
    the operation learns them, rather than on every log line. Outside an operation this
    does nothing (an id bound for good would be carried into unrelated work)."""
    found = _FOUND.get()
    if found is None:
        return
    clean = {k: v for k, v in ids.items() if v}
    current = structlog.contextvars.get_contextvars()
    for key in clean:
        found.setdefault(key, current.get(key, _UNBOUND))
    structlog.contextvars.bind_contextvars(**clean)
