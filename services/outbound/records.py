"""What outbound's storage gives back: each database row converted once, at the
repository, into a frozen dataclass (one constructor call per row)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True, slots=True)
class Send:
    """A row of `sends`: one mail to send, its schedule, lease and outcome."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    kind: str
    draft_id: uuid.UUID | None
    draft_revision: int
    ticket_id: uuid.UUID | None
    inbox_id: uuid.UUID
    operator_id: uuid.UUID | None
    operator_name: str
    operator_md: Any
    fence: int
    lock_held: bool
    status_after: int
    state: str
    phase: str
    message_id: str
    subject: str
    envelope_from: str
    recipients: list[str]
    rejected: list[str]
    raw: bytes
    dkim_signed: bool
    send_at: datetime
    next_attempt_at: datetime
    attempts: int
    max_attempts: int
    lease_owner: str | None
    lease_until: datetime | None
    route_name: str
    last_code: int | None
    last_message: str
    bounce: str
    sent_at: datetime | None
    finished_at: datetime | None
    finish_error: str
    created_at: datetime
    updated_at: datetime
    without_survey: bool = False


def send_of(r: asyncpg.Record) -> Send:
    return Send(
        r["tenant_id"],
        r["id"],
        r["kind"],
        r["draft_id"],
        r["draft_revision"],
        r["ticket_id"],
        r["inbox_id"],
        r["operator_id"],
        r["operator_name"],
        r["operator_md"],
        r["fence"],
        r["lock_held"],
        r["status_after"],
        r["state"],
        r["phase"],
        r["message_id"],
        r["subject"],
        r["envelope_from"],
        r["recipients"],
        r["rejected"],
        bytes(r["raw"]),
        r["dkim_signed"],
        r["send_at"],
        r["next_attempt_at"],
        r["attempts"],
        r["max_attempts"],
        r["lease_owner"],
        r["lease_until"],
        r["route_name"],
        r["last_code"],
        r["last_message"],
        r["bounce"],
        r["sent_at"],
        r["finished_at"],
        r["finish_error"],
        r["created_at"],
        r["updated_at"],
        r["without_survey"],
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt of a send."""

    send_id: uuid.UUID
    attempt: int
    at: datetime
    outcome: str
    code: int | None
    message: str
    worker: str


def attempt_of(r: asyncpg.Record) -> Attempt:
    return Attempt(
        r["send_id"],
        r["attempt"],
        r["at"],
        r["outcome"],
        r["code"],
        r["message"],
        r["worker"],
    )


@dataclass(frozen=True, slots=True)
class Route:
    """An SMTP route: where mail of an inbox, a recipient domain or the tenant goes."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    name: str
    scope: str
    inbox_id: uuid.UUID | None
    domain: str | None
    host: str
    port: int
    security: str
    username: str
    password_sealed: bytes | None
    verify_certificate: bool
    created_at: datetime
    updated_at: datetime


def route_of(r: asyncpg.Record) -> Route:
    return Route(
        r["tenant_id"],
        r["id"],
        r["name"],
        r["scope"],
        r["inbox_id"],
        r["domain"],
        r["host"],
        r["port"],
        r["security"],
        r["username"],
        None if r["password_sealed"] is None else bytes(r["password_sealed"]),
        r["verify_certificate"],
        r["created_at"],
        r["updated_at"],
    )


@dataclass(frozen=True, slots=True)
class DkimKey:
    tenant_id: uuid.UUID
    domain: str
    selector: str
    private_key_sealed: bytes
    public_key_b64: str
    created_at: datetime


def dkim_key_of(r: asyncpg.Record) -> DkimKey:
    return DkimKey(
        r["tenant_id"],
        r["domain"],
        r["selector"],
        bytes(r["private_key_sealed"]),
        r["public_key_b64"],
        r["created_at"],
    )


@dataclass(frozen=True, slots=True)
class AutoReplySettings:
    tenant_id: uuid.UUID
    inbox_id: uuid.UUID
    enabled: bool
    mode: str
    hours: Any
    time_zone: str
    template_id: uuid.UUID | None
    period_hours: int
    form_template_id: uuid.UUID | None
    updated_at: datetime


def auto_reply_of(r: asyncpg.Record) -> AutoReplySettings:
    return AutoReplySettings(
        r["tenant_id"],
        r["inbox_id"],
        r["enabled"],
        r["mode"],
        r["hours"],
        r["time_zone"],
        r["template_id"],
        r["period_hours"],
        r["form_template_id"],
        r["updated_at"],
    )
