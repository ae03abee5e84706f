"""A rule webhook's payload and signature (issue 18, action `webhook`), free of I/O.

The receiver checks `X-Switchboard-Signature: v1=<hex>` = HMAC-SHA256(secret,
"<X-Switchboard-Timestamp>.<raw body>") and may refuse an old timestamp (replay)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from switchboard.v1 import events_pb2

from services.runtime.ticket_names import PRIORITY_NAMES, STATUS_NAMES

SIGNATURE_HEADER = "X-Switchboard-Signature"
TIMESTAMP_HEADER = "X-Switchboard-Timestamp"
DELIVERY_HEADER = "X-Switchboard-Delivery"
USER_AGENT = "Switchboard-Webhook/1"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hint(secret: str) -> str:
    """What the API shows of a secret: its last 4 characters."""
    return "…" + secret[-4:]


def payload(
    delivery_id: str,
    occurred_at: datetime,
    trigger: str,
    rule_id: str,
    rule_name: str,
    ticket: events_pb2.TicketSummary,
) -> str:
    """The JSON body (UTF-8 text, sent and signed as is)."""
    body: dict[str, Any] = {
        "id": delivery_id,
        "type": "rule.webhook",
        "occurred_at": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "trigger": trigger,
        "rule": {"id": rule_id, "name": rule_name},
        "ticket": {
            "id": ticket.id,
            "number": ticket.number,
            "subject": ticket.subject,
            "inbox": {"id": ticket.inbox.id, "name": ticket.inbox.name},
            "status": STATUS_NAMES.get(ticket.status, "open"),
            "priority": PRIORITY_NAMES.get(ticket.priority, "normal"),
        },
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def headers(secret: str, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """The receiver's check (documented; used by the tests' receiver)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    return hmac.compare_digest(signature(secret, ts, body), header)


def backoff_s(attempts: int, base_s: float, cap_s: float) -> float:
    """The wait after the `attempts`-th failed attempt: base · 2^(attempts-1), capped."""
    return float(min(cap_s, base_s * (2 ** max(0, attempts - 1))))
