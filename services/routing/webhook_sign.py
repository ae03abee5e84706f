"""A rule webhook's payload (issue 18, action `webhook`), free of I/O; its signature is
services/runtime/signing.py's (the API channel's too), re-exported here.

The receiver checks `X-Switchboard-Signature: v1=<hex>` = HMAC-SHA256(secret,
"<X-Switchboard-Timestamp>.<raw body>") and may refuse an old timestamp (replay)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from switchboard.v1 import events_pb2

from services.runtime.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    USER_AGENT,
    backoff_s,
    headers,
    hint,
    new_secret,
    signature,
    verify,
)
from services.runtime.ticket_names import PRIORITY_NAMES, STATUS_NAMES

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "USER_AGENT",
    "backoff_s",
    "headers",
    "hint",
    "new_secret",
    "payload",
    "signature",
    "verify",
]


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
