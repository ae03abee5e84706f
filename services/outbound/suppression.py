"""The suppression list per tenant (issue 20, OUT-6): addresses no campaign mails again —
unsubscribed (RFC 8058 one-click or the page's button), bounced (a permanent DSN for
any mail outbound sent), or added by an operator (manual). Transactional mail — replies
to a contact's own inquiries, automatic replies, surveys — still goes to them.

The interface for the campaigns engine:
- `suppressed_among(conn, tenant_id, addresses)`: which of them are on the list;
- `unsubscribe_headers(config, …)` / `unsubscribe_url(config, …)`: RFC 8058's headers
  and the link (`config_from(settings)` in app.py builds the config);
- `suppress(conn, …)`: put an address on the list in the caller's transaction; an
  unsubscribe that adds it also queues `sb.outbound.contact.unsubscribed` there.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events
from services.runtime.errors import InvalidArgument
from services.runtime.ids import IdGenerator
from services.runtime.outbox import enqueue

from .suppression_domain import (
    Unsubscribe,
    UnsubscribeConfig,
    check_address,
    check_reason,
    derived_secret,
)
from .suppression_domain import unsubscribe_headers as _headers
from .suppression_domain import unsubscribe_url as _url

__all__ = [
    "Suppression",
    "UnsubscribeConfig",
    "config_from",
    "entries",
    "list_suppressions",
    "reason_of",
    "suppress",
    "suppressed_among",
    "unsubscribe_headers",
    "unsubscribe_url",
    "unsuppress",
]

PAGE_MAX = 200
_IDS = IdGenerator()
ACTOR = events.system_actor("outbound")


@dataclass(frozen=True, slots=True)
class Suppression:
    address: str
    reason: str
    campaign_id: uuid.UUID | None
    recipient_id: uuid.UUID | None
    created_at: datetime


def config_from(
    *, own: str | None, secret_key: str | None, survey_secret: str | None, public_url: str
) -> UnsubscribeConfig:
    """The links' key: its own, else derived from secret_key, else from the survey key;
    "" when none is set (then no unsubscribe link can be made, and no campaign mail)."""
    if own:
        secret = own
    elif secret_key:
        secret = derived_secret(secret_key)
    elif survey_secret:
        secret = derived_secret(survey_secret)
    else:
        secret = ""
    return UnsubscribeConfig(secret=secret, public_url=public_url)


def _what(
    tenant_id: str, address: str, campaign_id: str, recipient_id: str, language: str
) -> Unsubscribe:
    return Unsubscribe(
        tenant_id=str(tenant_id),
        address=address.lower(),
        campaign_id=str(campaign_id or ""),
        recipient_id=str(recipient_id or ""),
        language=language,
    )


def unsubscribe_headers(
    config: UnsubscribeConfig,
    *,
    tenant_id: str,
    address: str,
    campaign_id: str,
    recipient_id: str,
    language: str,
) -> list[tuple[str, str]]:
    """[("List-Unsubscribe", "<https://…/unsubscribe/{token}>"), ("List-Unsubscribe-Post",
    "List-Unsubscribe=One-Click")]. ValueError when no unsubscribe secret is configured."""
    return _headers(config, _what(tenant_id, address, campaign_id, recipient_id, language))


def unsubscribe_url(
    config: UnsubscribeConfig,
    *,
    tenant_id: str,
    address: str,
    campaign_id: str,
    recipient_id: str,
    language: str,
) -> str:
    """The link itself (for `{{unsubscribe.url}}` in a campaign's body)."""
    return _url(config, _what(tenant_id, address, campaign_id, recipient_id, language))


async def suppressed_among(
    conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str, addresses: Sequence[str]
) -> set[str]:
    """The lower-cased addresses among `addresses` that are on the tenant's list."""
    wanted = sorted({a.strip().lower() for a in addresses if a and a.strip()})
    if not wanted:
        return set()
    rows = await conn.fetch(
        "SELECT address FROM suppressions WHERE tenant_id = $1 AND address = ANY($2::text[])",
        uuid.UUID(str(tenant_id)),
        wanted,
    )
    return {r["address"] for r in rows}


async def entries(
    conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str, addresses: Sequence[str]
) -> list[Suppression]:
    """The list's entries for `addresses` (lower-cased)."""
    rows = await conn.fetch(
        "SELECT address, reason, campaign_id, recipient_id, created_at FROM suppressions "
        "WHERE tenant_id = $1 AND address = ANY($2::text[]) ORDER BY address",
        uuid.UUID(str(tenant_id)),
        sorted({a.strip().lower() for a in addresses}),
    )
    return [Suppression(**dict(r)) for r in rows]


async def reason_of(
    conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str, address: str
) -> str | None:
    """Why `address` is on the list (None: it is not)."""
    found = await entries(conn, tenant_id, [address])
    return found[0].reason if found else None


def _uuid(value: str | uuid.UUID | None, field: str) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{field} is not an id", field=field) from None


async def suppress(
    conn: asyncpg.Connection,
    tenant_id: str,
    address: str,
    reason: str,
    *,
    campaign_id: str | uuid.UUID | None = None,
    recipient_id: str | uuid.UUID | None = None,
    language: str = "",
    now: datetime | None = None,
) -> bool:
    """Put `address` on the tenant's list, in the caller's transaction; False when it was
    there already (the first entry and its reason stay). An unsubscribe that adds it
    queues `contact.unsubscribed` in the same transaction (the caller wakes the outbox)."""
    addr = check_address(address)
    check_reason(reason)
    at = now or datetime.now(UTC)
    campaign = _uuid(campaign_id, "campaign_id")
    recipient = _uuid(recipient_id, "recipient_id")
    status = await conn.execute(
        "INSERT INTO suppressions (tenant_id, address, reason, campaign_id, recipient_id, "
        "created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        uuid.UUID(str(tenant_id)),
        addr,
        reason,
        campaign,
        recipient,
        at,
    )
    added = bool(status == "INSERT 0 1")
    if added and reason == "unsubscribed":
        payload = events_pb2.ContactUnsubscribed(
            address=addr,
            campaign_id=str(campaign or ""),
            recipient_id=str(recipient or ""),
            language=language,
        )
        actor = common_pb2.Actor(kind=common_pb2.Actor.KIND_CUSTOMER, id=addr, display=addr)
        await enqueue(
            conn,
            events.envelope(
                events.CONTACT_UNSUBSCRIBED,
                event_id=_IDS.new_str(),
                tenant_id=str(tenant_id),
                occurred_at=at,
                payload=payload,
                actor=actor,
            ),
        )
    return added


async def unsuppress(conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str, address: str) -> bool:
    """Take `address` off the list (an operator's decision); False when it was not on it."""
    status = await conn.execute(
        "DELETE FROM suppressions WHERE tenant_id = $1 AND address = $2",
        uuid.UUID(str(tenant_id)),
        check_address(address),
    )
    return bool(status == "DELETE 1")


def _cursor(row: Suppression) -> str:
    raw = json.dumps([row.created_at.isoformat(), row.address]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, addr = json.loads(raw)
        return datetime.fromisoformat(at), str(addr)
    except (ValueError, TypeError):
        raise InvalidArgument("cursor is not one this list gave", field="cursor") from None


def _like(query: str) -> str:
    text = query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{text}%"


async def list_suppressions(
    conn: asyncpg.Connection | asyncpg.Pool,
    tenant_id: str,
    *,
    query: str = "",
    cursor: str = "",
    limit: int = 50,
) -> tuple[list[Suppression], str]:
    """The newest first, those whose address contains `query`; and the cursor of the
    next page ("" at the end)."""
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidArgument(f"limit must be between 1 and {PAGE_MAX}", field="limit")
    if len(query) > 254:
        raise InvalidArgument("query is at most 254 characters", field="query")
    after = _after(cursor)
    rows = await conn.fetch(
        "SELECT address, reason, campaign_id, recipient_id, created_at FROM suppressions "
        "WHERE tenant_id = $1 AND ($2 = '' OR address LIKE $3) "
        "AND ($4::timestamptz IS NULL OR ($4, address) > (created_at, $5)) "
        "ORDER BY created_at DESC, address LIMIT $6",
        uuid.UUID(str(tenant_id)),
        query.strip(),
        _like(query),
        after[0] if after else None,
        after[1] if after else "",
        limit + 1,
    )
    out = [Suppression(**dict(r)) for r in rows[:limit]]
    return out, (_cursor(out[-1]) if len(rows) > limit and out else "")
